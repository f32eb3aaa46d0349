// `perf stat` on a running process (QEMU, for the "with/without KVM" comparison), either once over
// a fixed window (runPerfStat) or as an interval series while a migration runs (startPerfSampler).
// perf's CSV mode (`-x,`) is parsed and validated here; counters perf could not read stay null
// with `supported:false` / `counted:false`, never zero, so a report cannot mistake "unknown" for
// "nothing happened". On the project's machine cycles/instructions are "<not supported>".
import { writeFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { UsageError } from '../errors.js';
import type { ExitInfo, Host, HostProcess } from '../host/host.js';
import { withDeadline, type WaitOptions } from '../util/deadline.js';
import { MeasureError, excerpt } from './errors.js';
import { commandText } from '../host/local.js';

/** Software counters work everywhere; cycles/instructions need hardware counters. */
export const DEFAULT_PERF_EVENTS = ['task-clock', 'context-switches', 'cpu-migrations', 'page-faults', 'cycles', 'instructions'] as const;

export interface PerfStatArgvOptions {
  /** The process to watch (e.g. QEMU). */
  readonly pid: number;
  readonly events?: readonly string[];
  /** Print one row per event every `intervalMs` (perf's `-I`, at least 10 ms). */
  readonly intervalMs?: number;
  /** Stop after this long (`-- sleep N`); without it perf runs until SIGINT or the target exits. */
  readonly durationMs?: number;
  /**
   * Where perf writes its counts: `{ logFd: 1 }` (the default) puts the CSV alone on stdout, with
   * perf's own warnings on stderr; `{ file }` writes it to a file on the host (`-o`).
   */
  readonly output?: { readonly logFd: number } | { readonly file: string };
}

/** `perf stat -x , ...` for `opts`. Pure. */
export function perfStatArgv(opts: PerfStatArgvOptions): string[] {
  if (!Number.isInteger(opts.pid) || opts.pid <= 0) throw new UsageError(`invalid pid ${opts.pid} for perf stat`, 'give the pid of a running process');
  const events = opts.events ?? DEFAULT_PERF_EVENTS;
  if (events.length === 0) throw new UsageError('perf stat needs at least one event');
  for (const e of events) {
    if (!/^[\w.:/=,-]+$/.test(e)) throw new UsageError(`invalid perf event "${e}"`, 'use a name from `perf list`, e.g. task-clock');
  }
  const argv = ['perf', 'stat', '-x', ','];
  const output = opts.output ?? { logFd: 1 };
  if ('file' in output) argv.push('-o', output.file);
  else argv.push('--log-fd', String(output.logFd));
  argv.push('-e', events.join(','), '-p', String(opts.pid));
  if (opts.intervalMs !== undefined) {
    if (!Number.isInteger(opts.intervalMs) || opts.intervalMs < 10) {
      throw new UsageError(`invalid perf interval ${opts.intervalMs} ms`, 'use a whole number of at least 10 ms');
    }
    argv.push('-I', String(opts.intervalMs));
  }
  if (opts.durationMs !== undefined) {
    if (!(opts.durationMs > 0)) throw new UsageError(`invalid perf duration ${opts.durationMs} ms`, 'it must be greater than zero');
    argv.push('--', 'sleep', String(opts.durationMs / 1000));
  }
  return argv;
}

export const PerfStatRowSchema = z
  .object({
    /** Milliseconds since perf started (interval mode only): the end of the interval. */
    tMs: z.number().nonnegative().optional(),
    event: z.string().min(1),
    /** null when not supported or not counted: never a made-up zero. */
    value: z.number().finite().nullable(),
    unit: z.string(),
    supported: z.boolean(),
    counted: z.boolean(),
    runtimeNs: z.number().nonnegative().optional(),
    /** Share of the time the counter was really counting (below 100 when multiplexed). */
    runPct: z.number().min(0).max(100).optional(),
    /** perf's own derived figure (e.g. 0.98 "CPUs utilized"), when it printed one. */
    metricValue: z.number().finite().optional(),
    metricUnit: z.string().optional(),
  })
  .refine((r) => (r.value === null) === !r.counted, { message: 'value must be null exactly when the event was not counted' })
  .refine((r) => r.supported || !r.counted, { message: 'an unsupported event cannot be counted' });
export type PerfStatRow = z.infer<typeof PerfStatRowSchema>;

const NUMBER_RE = /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i;

function optionalNumber(s: string | undefined): number | undefined {
  return s !== undefined && NUMBER_RE.test(s.trim()) ? Number(s.trim()) : undefined;
}

/**
 * Parse one line of `perf stat -x,` output, or undefined for a blank or `#` comment line.
 * Fields: [time,] value, unit, event, run time (ns), run %, metric value, metric unit.
 */
export function parsePerfStatLine(line: string): PerfStatRow | undefined {
  const trimmed = line.trim();
  if (trimmed === '' || trimmed.startsWith('#')) return undefined;
  const fields = trimmed.split(',');
  // In interval mode the second field is the value (a number or "<not ...>"); otherwise it is the
  // unit, which is never numeric.
  const f1 = fields[1]?.trim() ?? '';
  const interval = NUMBER_RE.test(fields[0]?.trim() ?? '') && (NUMBER_RE.test(f1) || f1.startsWith('<'));
  const rest = interval ? fields.slice(1) : fields;
  if (rest.length < 3) throw new MeasureError('perf', `cannot read perf stat line "${excerpt(line)}"`);
  // An event name may itself hold commas (cpu/event=0x3c,umask=0/): the fields after it are fixed.
  const tail = 4;
  const eventEnd = Math.max(3, rest.length - tail);
  const [rawValue = '', unit = ''] = rest;
  const event = rest.slice(2, eventEnd).join(',');
  const [runtime, pct, metricValue, metricUnit] = rest.slice(eventEnd);
  const v = rawValue.trim();
  const notSupported = v === '<not supported>';
  const notCounted = v === '<not counted>';
  if (!notSupported && !notCounted && !NUMBER_RE.test(v)) throw new MeasureError('perf', `cannot read the value "${v}" in "${excerpt(line)}"`);
  const row = {
    // perf prints seconds with ns digits: keep them exactly, in ms.
    tMs: interval ? Math.round(Number(fields[0]) * 1e9) / 1e6 : undefined,
    event: event.trim(),
    value: notSupported || notCounted ? null : Number(v),
    unit: unit.trim(),
    supported: !notSupported,
    counted: !notSupported && !notCounted,
    runtimeNs: optionalNumber(runtime),
    runPct: optionalNumber(pct),
    metricValue: optionalNumber(metricValue),
    metricUnit: metricUnit?.trim() ? metricUnit.trim() : undefined,
  };
  const parsed = PerfStatRowSchema.safeParse(row);
  if (!parsed.success) throw new MeasureError('perf', `bad perf stat line "${excerpt(line)}": ${z.prettifyError(parsed.error)}`);
  // Drop keys that are undefined so rows compare and serialise cleanly.
  return Object.fromEntries(Object.entries(parsed.data).filter(([, x]) => x !== undefined)) as PerfStatRow;
}

/** Parse the whole CSV output of `perf stat -x,` (summary or `-I` mode). */
export function parsePerfStatCsv(text: string): PerfStatRow[] {
  const rows: PerfStatRow[] = [];
  for (const line of text.split('\n')) {
    const row = parsePerfStatLine(line);
    if (row) rows.push(row);
  }
  return rows;
}

/** Figures derived from one window of counts. null when the counter was not counted. */
export interface PerfDerived {
  /** task-clock / wall time: 1.0 is one CPU busy all the time (QEMU may use several). */
  readonly cpusUtilized: number | null;
  readonly contextSwitchesPerS: number | null;
}

/** One `-I` interval: every event's row at the same timestamp. */
export interface PerfInterval extends PerfDerived {
  /** End of the interval, ms since perf started. */
  readonly tMs: number;
  /** Its length (the last one, cut short by SIGINT, is shorter). */
  readonly intervalMs: number;
  readonly rows: readonly PerfStatRow[];
}

function countedValue(rows: readonly PerfStatRow[], event: string): { value: number; unit: string } | undefined {
  const r = rows.find((x) => x.event === event);
  return r && r.value !== null ? { value: r.value, unit: r.unit } : undefined;
}

/** CPU utilisation and context switches per second from the rows of one window of `windowMs`. */
export function derivePerf(rows: readonly PerfStatRow[], windowMs: number): PerfDerived {
  if (!(windowMs > 0)) return { cpusUtilized: null, contextSwitchesPerS: null };
  const clock = countedValue(rows, 'task-clock') ?? countedValue(rows, 'cpu-clock');
  const clockMs = clock === undefined ? undefined : clock.unit === 'msec' || clock.unit === '' ? clock.value : clock.unit === 'ns' ? clock.value / 1e6 : undefined;
  const cs = countedValue(rows, 'context-switches') ?? countedValue(rows, 'cs');
  return {
    cpusUtilized: clockMs === undefined ? null : clockMs / windowMs,
    contextSwitchesPerS: cs === undefined ? null : cs.value / (windowMs / 1000),
  };
}

/** Group interval-mode rows by timestamp, oldest first, with derived figures. */
export function groupPerfIntervals(rows: readonly PerfStatRow[]): PerfInterval[] {
  const byT = new Map<number, PerfStatRow[]>();
  for (const r of rows) {
    if (r.tMs === undefined) continue;
    const list = byT.get(r.tMs) ?? [];
    list.push(r);
    byT.set(r.tMs, list);
  }
  const out: PerfInterval[] = [];
  let prev = 0;
  for (const tMs of [...byT.keys()].sort((a, b) => a - b)) {
    const group = byT.get(tMs)!;
    const intervalMs = tMs - prev;
    out.push({ tMs, intervalMs, rows: group, ...derivePerf(group, intervalMs) });
    prev = tMs;
  }
  return out;
}

/** Events perf reported as "<not supported>" (e.g. cycles without hardware counters). */
export function unsupportedEvents(rows: readonly PerfStatRow[]): string[] {
  return [...new Set(rows.filter((r) => !r.supported).map((r) => r.event))];
}

export interface PerfStatSummary extends PerfDerived {
  readonly argv: readonly string[];
  readonly pid: number;
  readonly durationMs: number;
  readonly rows: readonly PerfStatRow[];
  readonly unsupported: readonly string[];
}

export interface RunPerfStatOptions {
  readonly pid: number;
  readonly durationMs: number;
  readonly events?: readonly string[];
}

async function perfFailure(host: Host, argv: readonly string[], pid: number, exitCode: number, stderr: string, cause?: unknown): Promise<MeasureError> {
  if ((await host.which('perf')) === undefined) {
    return new MeasureError('perf', `perf is not installed on ${host.name}; install it with: apt-get install linux-perf`, { cause });
  }
  const why = /Problems finding threads|No such process/i.test(stderr) ? `no process with pid ${pid} on ${host.name}` : `exited ${exitCode}`;
  return new MeasureError('perf', `\`${commandText(argv)}\` failed: ${why}${stderr.trim() ? `: ${excerpt(stderr)}` : ''}`, {
    cause,
    context: { host: host.name, argv, pid, exitCode },
  });
}

/** Count `opts.events` of `opts.pid` for `opts.durationMs` on `host`, once. */
export async function runPerfStat(host: Host, opts: RunPerfStatOptions, wait: WaitOptions): Promise<PerfStatSummary> {
  if (wait.timeoutMs <= opts.durationMs) {
    throw new UsageError(`perf stat timeout ${wait.timeoutMs} ms is not longer than its duration ${opts.durationMs} ms`, 'allow a second or two more');
  }
  const argv = perfStatArgv({ pid: opts.pid, events: opts.events, durationMs: opts.durationMs });
  const operation = `perf stat on pid ${opts.pid} (${host.name})`;
  // The host kills perf at the deadline; withDeadline turns that into a TimeoutError by name.
  const result = await withDeadline(operation, host.run(argv, { reject: false, timeoutMs: wait.timeoutMs, signal: wait.signal }), {
    timeoutMs: wait.timeoutMs + 1000,
    signal: wait.signal,
  });
  const rows = parsePerfStatCsv(result.stdout);
  if (result.exitCode !== 0 || rows.length === 0) throw await perfFailure(host, argv, opts.pid, result.exitCode, result.stderr);
  return {
    argv,
    pid: opts.pid,
    durationMs: opts.durationMs,
    rows,
    unsupported: unsupportedEvents(rows),
    ...derivePerf(rows, opts.durationMs),
  };
}

/**
 * The columns of `perf stat -x, -I` output, in perf's order: the header miglab writes at the top
 * of a kept perf log (perf itself writes none), and what results/README.md documents.
 */
export const PERF_CSV_COLUMNS = [
  { key: 'time_s', unit: 's', about: 'End of the interval, since perf started' },
  { key: 'value', unit: 'per event', about: 'The count in the interval (task-clock in ms; `<not supported>` where the host has no such counter, never 0)' },
  { key: 'unit', unit: '', about: "perf's unit of the value (msec for task-clock, else empty)" },
  { key: 'event', unit: '', about: 'The perf event (task-clock, context-switches, cpu-migrations, page-faults, cycles, instructions)' },
  { key: 'runtime_ns', unit: 'ns', about: 'How long the counter ran in the interval' },
  { key: 'run_pct', unit: '%', about: 'Share of the interval the counter was really counting (below 100 when multiplexed)' },
  { key: 'metric_value', unit: 'per metric', about: "perf's derived figure (e.g. CPUs utilized), when it printed one" },
  { key: 'metric_unit', unit: '', about: 'Its unit' },
] as const;

export interface PerfSamplerOptions {
  readonly pid: number;
  readonly intervalMs: number;
  readonly events?: readonly string[];
  /** Keep perf's raw output (CSV and warnings) in this file on the host. */
  readonly logFile?: string;
}

export interface PerfSeries {
  readonly argv: readonly string[];
  readonly pid: number;
  /** Wall clock (Date.now()) when perf was started: add an interval's tMs to place it in time. */
  readonly startedAtMs: number;
  readonly intervalMs: number;
  readonly intervals: readonly PerfInterval[];
  readonly unsupported: readonly string[];
  readonly exit: ExitInfo;
}

export interface PerfSampler {
  /** perf's own pid. */
  readonly perfPid: number;
  readonly startedAtMs: number;
  /** The complete intervals read so far (grows while perf runs). */
  intervals(): PerfInterval[];
  /** End perf with SIGINT (it prints the last, partial interval) and return the series. Idempotent. */
  stop(wait?: WaitOptions): Promise<PerfSeries>;
}

/** Call `onLine` for every complete line of `stream`; resolves when the stream ends. */
function eachLine(stream: Readable, onLine: (line: string) => void): Promise<void> {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  });
  return new Promise((resolve, reject) => {
    const done = () => {
      if (buf) onLine(buf);
      buf = '';
      resolve();
    };
    stream.once('end', done);
    stream.once('close', done);
    stream.once('error', reject);
  });
}

/**
 * Start `perf stat -I` on `opts.pid` on `host` (the host or namespace where that process lives).
 * The rows stream in from perf's stdout as it prints them.
 */
export function startPerfSampler(host: Host, opts: PerfSamplerOptions): PerfSampler {
  const events = opts.events ?? DEFAULT_PERF_EVENTS;
  const argv = perfStatArgv({ pid: opts.pid, events, intervalMs: opts.intervalMs });
  const startedAtMs = Date.now();
  // perf prints no header; the kept log gets one so it reads as a CSV (the spawn appends after it;
  // the parser reads perf's stdout, not this file).
  if (opts.logFile) writeFileSync(opts.logFile, `${PERF_CSV_COLUMNS.map((c) => c.key).join(',')}\n`, { mode: 0o600 });
  const proc: HostProcess = host.spawn(argv, { logFile: opts.logFile });
  const rows: PerfStatRow[] = [];
  let parseError: unknown;
  const drained = eachLine(proc.stdout, (line) => {
    try {
      const row = parsePerfStatLine(line);
      if (row) rows.push(row);
    } catch (err) {
      parseError ??= err;
    }
  });
  let stopping: Promise<PerfSeries> | undefined;

  const intervals = (complete: boolean): PerfInterval[] => {
    const all = groupPerfIntervals(rows);
    // While perf runs, the newest group may still be arriving.
    const last = all.at(-1);
    if (!complete && last && last.rows.length < events.length) all.pop();
    return all;
  };

  async function stop(wait: WaitOptions = { timeoutMs: 5000 }): Promise<PerfSeries> {
    if (!proc.hasExited) {
      // SIGINT, by perf's own pid, so it prints the last interval and exits cleanly.
      await host.run(['kill', '-INT', String(proc.pid)], { reject: false, timeoutMs: wait.timeoutMs, signal: wait.signal });
    }
    let exit: ExitInfo;
    try {
      exit = await withDeadline(`perf stat (pid ${proc.pid}) to stop after SIGINT`, proc.exited, wait);
    } catch (err) {
      await proc.stop(500);
      throw err;
    }
    await withDeadline('reading the last perf output', drained, { timeoutMs: 2000, signal: wait.signal });
    if (parseError !== undefined) throw parseError;
    // perf that printed nothing never watched the process (wrong pid, perf missing): an error.
    // Once it printed rows, any exit (SIGINT, the target ending) leaves a usable series.
    if (rows.length === 0) throw await perfFailure(host, argv, opts.pid, exit.exitCode ?? -1, proc.tail(5));
    return {
      argv,
      pid: opts.pid,
      startedAtMs,
      intervalMs: opts.intervalMs,
      intervals: intervals(true),
      unsupported: unsupportedEvents(rows),
      exit,
    };
  }

  return {
    perfPid: proc.pid,
    startedAtMs,
    intervals: () => intervals(false),
    stop: (wait) => (stopping ??= stop(wait)),
  };
}
