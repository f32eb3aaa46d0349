import { kindOf, parseBitRateMbps, parseDurationMs, parsePort, parseRateMiBps, parseSizeBytes, parseSizeMiB } from '../../../src/util/units.js';

describe('units', () => {
  it('parses sizes with binary prefixes', () => {
    expect(parseSizeBytes('256M')).toBe(256 * 1024 * 1024);
    expect(parseSizeBytes('1GiB')).toBe(1024 ** 3);
    expect(parseSizeMiB('1G')).toBe(1024);
    expect(parseSizeMiB('512')).toBe(512);
  });
  it('rejects nonsense with the hint of the kind of value wanted', () => {
    expect(() => parseSizeMiB('lots')).toThrow('memory size "lots": not a size; give a size like 256M or 1G (a bare number is MiB)');
    expect(() => parseSizeMiB('0', '--memory')).toThrow('--memory 0: must be more than zero; give a size like 256M or 1G (a bare number is MiB)');
    expect(() => parseSizeMiB('-5G', '--memory')).toThrow('--memory -5G: cannot be negative; give a size like 256M or 1G (a bare number is MiB)');
    expect(() => parsePort('70000')).toThrow(/1 to 65535/);
    expect(() => parsePort('44a', '--port')).toThrow('--port 44a: not a port; give a number from 1 to 65535');
  });
  it('parses rates, bit rates and durations', () => {
    expect(parseRateMiBps('200M/s')).toBe(200);
    expect(parseRateMiBps('1G/s')).toBe(1024);
    expect(parseRateMiBps('100MiB/s')).toBe(100);
    expect(parseRateMiBps('300')).toBe(300);
    expect(parseBitRateMbps('100mbit')).toBe(100);
    expect(parseBitRateMbps('1gbit')).toBe(1000);
    expect(parseBitRateMbps('10Mbit/s')).toBe(10);
    expect(parseBitRateMbps('100mbps')).toBe(100);
    expect(parseBitRateMbps('500kbit')).toBe(0.5);
    expect(parseDurationMs('2s')).toBe(2000);
    expect(parseDurationMs('300ms')).toBe(300);
    expect(parseDurationMs('1.5m')).toBe(90000);
    expect(parseDurationMs('2min')).toBe(120000);
    expect(parseDurationMs('1h')).toBe(3600000);
    expect(parseDurationMs('250')).toBe(250);
    expect(() => parseDurationMs('soon')).toThrow('duration "soon": not a duration; give a duration like 500ms, 90s or 2m (a bare number is milliseconds)');
    expect(() => parseDurationMs('-5s', '--timeout')).toThrow(/^--timeout -5s: cannot be negative/);
    // Without its sign "1m" reads as a size; it is a negative duration all the same, whatever the unit.
    for (const t of ['-1m', '-1min', '-500ms', '-2h', '-250']) expect(() => parseDurationMs(t, '--timeout')).toThrow(`--timeout ${t}: cannot be negative`);
    expect(() => parseSizeMiB('-1m', '--memory')).toThrow('--memory -1m: cannot be negative');
  });
  it('names a value of the wrong kind as such, with the conversion where there is one', () => {
    // A link speed is not a migration rate: 100 Mbit/s is 11.9 MiB/s, and the message says so.
    expect(() => parseRateMiBps('100mbit', '--max-bandwidth')).toThrow('--max-bandwidth 100mbit: that is a link rate in bits per second; give a rate in bytes per second like 128M/s or 1G/s (100mbit is 11.9M/s)');
    expect(() => parseBitRateMbps('100M/s', '--bandwidth')).toThrow('--bandwidth 100M/s: that is a rate in bytes per second; give a link rate in bits per second like 100mbit or 1gbit (100M/s is 839mbit)');
    expect(() => parseSizeMiB('1G/s', '--memory')).toThrow('--memory 1G/s: that is a rate in bytes per second; give a size like 256M or 1G (a bare number is MiB)');
    expect(() => parseDurationMs('5G', '--timeout')).toThrow(/^--timeout 5G: that is a size; give a duration/);
    expect(() => parseSizeMiB('2h', '--memory')).toThrow(/^--memory 2h: that is a duration; give a size/);
    // "100mbps" is megabits, as people write link speeds, never 100 MiB/s.
    expect(kindOf('100mbps')).toBe('bitrate');
    expect(() => parseRateMiBps('100mbps', '--max-bandwidth')).toThrow(/that is a link rate in bits per second/);
  });
});
