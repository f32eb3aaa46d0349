import { readFileSync } from 'node:fs';
import { MiglabError, UsageError } from '../../../src/errors.js';
import {
  derivePerf,
  groupPerfIntervals,
  parsePerfStatCsv,
  parsePerfStatLine,
  perfStatArgv,
  unsupportedEvents,
} from '../../../src/measure/perf.js';

const fixture = (name: string) => readFileSync(new URL(`../../fixtures/measure/${name}`, import.meta.url), 'utf8');

describe('perfStatArgv', () => {
  it('builds a CSV perf stat of a pid, counts alone on stdout, for a fixed time', () => {
    expect(perfStatArgv({ pid: 1234, durationMs: 1500 })).toEqual([
      'perf', 'stat', '-x', ',', '--log-fd', '1',
      '-e', 'task-clock,context-switches,cpu-migrations,page-faults,cycles,instructions',
      '-p', '1234', '--', 'sleep', '1.5',
    ]);
  });

  it('adds -I for a series and -o for a file, without a duration', () => {
    const argv = perfStatArgv({ pid: 7, events: ['task-clock'], intervalMs: 200, output: { file: '/tmp/p.csv' } });
    expect(argv).toEqual(['perf', 'stat', '-x', ',', '-o', '/tmp/p.csv', '-e', 'task-clock', '-p', '7', '-I', '200']);
    expect(argv).not.toContain('--log-fd');
  });

  it('refuses bad pids, intervals and events before anything runs', () => {
    expect(() => perfStatArgv({ pid: 0 })).toThrow(UsageError);
    expect(() => perfStatArgv({ pid: 5, intervalMs: 5 })).toThrow(/at least 10 ms/);
    expect(() => perfStatArgv({ pid: 5, events: ['cycles; rm -rf /'] })).toThrow(UsageError);
    expect(() => perfStatArgv({ pid: 5, events: [] })).toThrow(UsageError);
  });
});

describe('parsePerfStatCsv on real output from this machine', () => {
  it('reads a summary of a busy process; cycles/instructions are unsupported, not zero', () => {
    const rows = parsePerfStatCsv(fixture('perf-summary-yes.csv'));
    expect(rows.map((r) => r.event)).toEqual(['task-clock', 'context-switches', 'cpu-migrations', 'page-faults', 'cycles', 'instructions']);
    expect(rows[0]).toEqual({
      event: 'task-clock', value: 966.37, unit: 'msec', supported: true, counted: true,
      runtimeNs: 966365493, runPct: 100, metricValue: 0.965, metricUnit: 'CPUs utilized',
    });
    expect(rows[0]!.tMs).toBeUndefined();
    const cycles = rows.find((r) => r.event === 'cycles')!;
    expect(cycles).toMatchObject({ value: null, supported: false, counted: false });
    expect(unsupportedEvents(rows)).toEqual(['cycles', 'instructions']);
    // derived: 966.37 ms of CPU in a 1 s window
    expect(derivePerf(rows, 1000).cpusUtilized).toBeCloseTo(0.96637);
    expect(derivePerf(rows, 1000).contextSwitchesPerS).toBe(98);
  });

  it('reads `perf stat -e instructions true`', () => {
    expect(parsePerfStatCsv(fixture('perf-instructions-true.csv'))).toEqual([
      { event: 'instructions', value: null, unit: '', supported: false, counted: false, runtimeNs: 0, runPct: 100 },
    ]);
  });

  it('reads -I rows with their time and groups them into intervals with derived figures', () => {
    const rows = parsePerfStatCsv(fixture('perf-interval-yes.csv'));
    expect(rows.length % 6).toBe(0);
    expect(rows[0]!.tMs).toBe(250.296761);
    const intervals = groupPerfIntervals(rows);
    expect(intervals.length).toBe(rows.length / 6);
    const first = intervals[0]!;
    expect(first.intervalMs).toBeCloseTo(250.296761);
    expect(first.cpusUtilized).toBeCloseTo(212.59 / 250.296761);
    expect(first.contextSwitchesPerS).toBeCloseTo(63 / 0.250296761);
    const second = intervals[1]!;
    expect(second.intervalMs).toBeCloseTo(500.73599 - 250.296761);
    for (const iv of intervals) {
      expect(iv.cpusUtilized).toBeGreaterThan(0);
      expect(iv.rows.find((r) => r.event === 'cycles')).toMatchObject({ value: null, supported: false });
    }
  });

  it('keeps "<not counted>" of an idle process as null, and skips the -o header', () => {
    for (const name of ['perf-summary-sleep.csv', 'perf-interval-sleep.csv']) {
      const rows = parsePerfStatCsv(fixture(name));
      expect(rows.length).toBeGreaterThanOrEqual(6);
      const clock = rows.find((r) => r.event === 'task-clock')!;
      expect(clock).toMatchObject({ value: null, supported: true, counted: false });
      expect(rows.some((r) => r.value === 0 && !r.counted)).toBe(false);
    }
    const intervals = groupPerfIntervals(parsePerfStatCsv(fixture('perf-interval-sleep.csv')));
    expect(intervals.map((i) => i.cpusUtilized)).toEqual([null, null, null]);
  });
});

describe('parsePerfStatCsv on hand-written output with hardware counters', () => {
  const rows = parsePerfStatCsv(fixture('perf-interval-counted.csv'));

  it('reads counted cycles and multiplexed instructions with their run share', () => {
    const cycles = rows.filter((r) => r.event === 'cycles');
    expect(cycles.map((r) => r.value)).toEqual([1493820000, 750000000]);
    expect(cycles.every((r) => r.supported && r.counted)).toBe(true);
    const insn = rows.filter((r) => r.event === 'instructions');
    expect(insn[0]).toMatchObject({ value: 2987640000, runPct: 50, metricUnit: 'insn per cycle' });
    expect(insn[1]).toMatchObject({ value: null, supported: true, counted: false, runPct: 0 });
    expect(unsupportedEvents(rows)).toEqual([]);
  });

  it('keeps an event name that holds commas whole', () => {
    expect(rows.at(-1)).toMatchObject({ event: 'cpu/event=0x3c,umask=0x0/', value: 1234, tMs: 1000.25 });
  });

  it('derives CPU use from task-clock per interval', () => {
    const [a, b] = groupPerfIntervals(rows);
    expect(a!.cpusUtilized).toBeCloseTo(498.12 / 500.123456);
    expect(b!.cpusUtilized).toBeCloseTo(250 / 500.126544);
    expect(b!.contextSwitchesPerS).toBeCloseTo(50 / 0.500126544);
  });
});

describe('parsePerfStatLine', () => {
  it('refuses a line it cannot read with a MiglabError that quotes it', () => {
    expect(() => parsePerfStatLine('hello,,task-clock')).toThrow(MiglabError);
    expect(() => parsePerfStatLine('Problems finding threads of monitor')).toThrow(/Problems finding threads/);
  });
  it('ignores blank and comment lines', () => {
    expect(parsePerfStatLine('')).toBeUndefined();
    expect(parsePerfStatLine('# started on Mon')).toBeUndefined();
  });
});
