// Figures are saved to the precision they were measured with: the unit a field's name carries
// decides it, for CSV cells and JSON alike, so float noise never reaches a file.
import { csvText } from '../../../src/report/markdown.js';
import { resultJson } from '../../../src/results/contract.js';
import { denoise, roundByName, roundTo, unitOfName } from '../../../src/results/units.js';

describe('units from names', () => {
  it.each([
    ['downtimeMs', 'ms'],
    ['tMs', 'ms'],
    ['memoryMiB', 'MiB'],
    ['averageThroughputMiBps', 'MiB/s'],
    ['throughputMbps', 'Mbit/s'],
    ['mbps', 'Mbit/s'],
    ['linkBandwidthMbit', 'Mbit/s'],
    ['transferredBytes', 'bytes'],
    ['tS', 's'],
    ['startS', 's'],
    ['cpuBusyPct', '%'],
    ['cpuThrottlePercent', '%'],
    ['psiCpuSomeAvg10', '%'],
    ['opsPerS', '/s'],
    ['rxBitsPerSecond', 'bit/s'],
    ['dirtyPagesRate', '/s'],
    ['duplicatePages', 'pages'],
    ['vsLowerBound', 'x'],
    ['downtimeMs_median', 'ms'],
  ])('%s is in %s', (name, symbol) => {
    expect(unitOfName(name)?.symbol).toBe(symbol);
  });

  it('names without a unit have none', () => {
    for (const n of ['load1', 'dirtySyncCount', 'downtimeMs_count', 'pass', 'seq']) expect(unitOfName(n)).toBeUndefined();
  });
});

describe('rounding', () => {
  it('drops float noise without inventing digits', () => {
    expect(roundTo(0.1 + 0.2, 0.1)).toBe(0.3);
    expect(roundTo(1074.0348000000001, 0.1)).toBe(1074);
    expect(denoise(1074.0348000000001)).toBe(1074.0348);
    expect(denoise(42)).toBe(42);
  });

  it('rounds each figure by its unit: ms to 0.1 (µs below 1 ms), MiB and Mbit/s to 0.1, seconds to ms', () => {
    expect(roundByName('tMs', 117.679931640625)).toBe(117.7);
    expect(roundByName('rttP50Ms', 0.2514)).toBe(0.251);
    expect(roundByName('mbps', 607.3226969432314)).toBe(607.3);
    expect(roundByName('transferredMiB', 82.709808349609375)).toBe(82.7);
    expect(roundByName('tS', -1.4471234)).toBe(-1.447);
    expect(roundByName('transferredBytes', 86717024)).toBe(86717024);
    expect(roundByName('load1', 1.2300000000000002)).toBe(1.23);
    expect(roundByName('dirtySyncCount_stdev', 0.7071067811865476)).toBe(0.707);
    // Ratios (the schemas' `ratio` fields): 3 significant digits.
    expect(roundByName('vsLowerBound', 1.23456)).toBe(1.23);
    expect(roundByName('cpusUtilized', 0.55789)).toBe(0.558);
  });

  it('CSV cells are rounded by their column, and a column may say otherwise', () => {
    const rows = [{ tMs: 117.679931640625, mbps: 607.3226969432314, status: 'active', vsLowerBound: 1.23456, load1: 0.30000000000000004 }];
    expect(csvText(rows, ['tMs', 'mbps', 'status', 'vsLowerBound', 'load1'])).toBe('tMs,mbps,status,vsLowerBound,load1\n117.7,607.3,active,1.23,0.3\n');
    expect(csvText(rows, ['tMs'], { tMs: Math.round })).toBe('tMs\n118\n');
  });

  it('JSON results are rounded by key, and bigints kept as text', () => {
    const text = resultJson({ outputs: { averageThroughputMiBps: 66.01234567, migrateSentAtMs: 1796197800081 }, passes: [{ tMs: 1241.52099609375 }], big: 12n });
    expect(JSON.parse(text)).toEqual({ outputs: { averageThroughputMiBps: 66, migrateSentAtMs: 1796197800081 }, passes: [{ tMs: 1241.5 }], big: '12' });
  });
});
