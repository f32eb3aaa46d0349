import { parseBitRateMbps, parseDurationMs, parsePort, parseRateMiBps, parseSizeBytes, parseSizeMiB } from '../../../src/util/units.js';

describe('units', () => {
  it('parses sizes with binary prefixes', () => {
    expect(parseSizeBytes('256M')).toBe(256 * 1024 * 1024);
    expect(parseSizeBytes('1GiB')).toBe(1024 ** 3);
    expect(parseSizeMiB('1G')).toBe(1024);
    expect(parseSizeMiB('512')).toBe(512);
  });
  it('rejects nonsense with a hint', () => {
    expect(() => parseSizeMiB('lots')).toThrow('invalid memory size "lots"; use a number with an optional unit, e.g. 256M or 1G');
    expect(() => parseSizeMiB('0')).toThrow(/whole number of MiB/);
    expect(() => parsePort('70000')).toThrow(/1 to 65535/);
    expect(() => parsePort('44a')).toThrow(/invalid port/);
  });
  it('parses rates, bit rates and durations', () => {
    expect(parseRateMiBps('200M/s')).toBe(200);
    expect(parseRateMiBps('1G/s')).toBe(1024);
    expect(parseRateMiBps('300')).toBe(300);
    // A link speed is not a migration rate: the hint says which unit is meant.
    expect(() => parseRateMiBps('100mbit', '--max-bandwidth')).toThrow('invalid --max-bandwidth "100mbit"; use a rate in bytes per second, e.g. 128M/s or 1G/s');
    expect(parseBitRateMbps('100mbit')).toBe(100);
    expect(parseBitRateMbps('1gbit')).toBe(1000);
    expect(parseDurationMs('2s')).toBe(2000);
    expect(parseDurationMs('300ms')).toBe(300);
    expect(parseDurationMs('1.5m')).toBe(90000);
    expect(() => parseDurationMs('soon')).toThrow(/invalid duration/);
  });
});
