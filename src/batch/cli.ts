// `miglab batch`: options declared as data, their translation into a BatchSpec, and the command
// body for the CLI to call after parsing (it only calls runBatch and prints a summary).
import type { Options } from 'yargs';
import { UsageError } from '../errors.js';
import { EXIT } from '../cli/exit.js';
import type { CommandIo } from '../cli/io.js';
import { asOption, optionIssue, prefixFromArgs, type OptionRange } from '../cli/options.js';
import { parseFault } from '../fault/spec.js';
import { parseBitRateMbps, parseDurationMs, parseRateMiBps, parseSizeMiB, subject } from '../util/units.js';
import type { BatchResult } from './run.js';
import type { StopReason } from './record.js';
import { BatchSpecSchema, type BatchSpecInput } from './spec.js';

export const BATCH_OPTIONS = {
  steps: { type: 'string', default: '1,2,4', describe: 'values of N: a list (1,2,4), or a growth rule START..MAX*FACTOR (1..8*2) or START..MAX+ADD (1..6+1)' },
  mode: { type: 'string', default: 'parallel', describe: 'sequential | parallel | waves:K | scheduled (the scheduler: concurrency from the saturated resource, link shares, retries)' },
  compare: { type: 'boolean', default: false, describe: 'with --mode scheduled: also run naive parallel at each N, side by side' },
  memory: { type: 'string', default: '256M', describe: 'RAM of each guest: a size, e.g. 128M' },
  'dirty-rate': { type: 'string', describe: 'dirty rate the scheduler assumes for each guest: a rate in bytes per second, e.g. 50M/s (default: idle)' },
  timeout: { type: 'string', default: '60s', describe: 'per-migration deadline, a duration like 60s: cancelled (did-not-converge) if not done by then' },
  deadline: { type: 'string', default: '20m', describe: 'deadline of the whole batch: a duration, e.g. 20m' },
  reserve: { type: 'string', default: '1G', describe: 'host memory never given to guests, a size like 1G: a step that would need it is refused' },
  'psi-cpu': { type: 'number', default: 80, describe: 'stall when PSI cpu some avg10 stays above this (%)' },
  'psi-memory': { type: 'number', default: 10, describe: 'stall when PSI memory some avg10 stays above this (%)' },
  'load-per-cpu': { type: 'number', default: 4, describe: 'stall when load1 / CPUs stays above this' },
  sustain: { type: 'number', default: 3, describe: 'host samples in a row a symptom must hold to count as a stall' },
  'sample-interval': { type: 'string', default: '500ms', describe: 'how often to sample the host: a duration, e.g. 500ms' },
  'max-bandwidth': { type: 'string', describe: 'migration max-bandwidth of every guest: a rate in bytes per second, e.g. 64M/s (the scheduler sets its own)' },
  bandwidth: { type: 'string', describe: 'shape each migration uplink: a link rate in bits per second, e.g. 100mbit' },
  fault: { type: 'array', string: true, default: [] as string[], describe: "inject a fault into every guest's migration, KIND[:ARGS]@WHEN (repeatable; the forms: miglab migrate --help)" },
  results: { type: 'string', default: 'results', describe: 'directory for results/batch-<id>/' },
  prefix: { type: 'string', default: 'mlab', describe: 'lab prefix: the lab that is up with it, or one brought up for the batch' },
} as const satisfies Record<string, Options>;

type Raw = Record<string, unknown>;

export function parseStepsArg(text: string): BatchSpecInput['steps'] {
  const t = text.trim();
  const rule = /^(\d+)\.\.(\d+)([*x+])(\d+(?:\.\d+)?)$/.exec(t);
  if (rule) {
    const [, start, max, op, k] = rule;
    return op === '+' ? { start: Number(start), max: Number(max), add: Number(k) } : { start: Number(start), max: Number(max), factor: Number(k) };
  }
  if (/^\d+(,\d+)*$/.test(t)) return t.split(',').map(Number);
  throw new UsageError(`${subject('--steps', text)}: not a list of N or a growth rule`, 'give a list like 1,2,4 or a rule like 1..8*2 or 1..6+1');
}

export function parseModeArg(text: string): BatchSpecInput['mode'] {
  const waves = /^waves[:=](\d+)$/.exec(text.trim());
  if (waves) return { waves: Number(waves[1]) };
  if (text === 'sequential' || text === 'parallel' || text === 'scheduled') return text;
  throw new UsageError(`${subject('--mode', text)}: not a mode`, 'give sequential, parallel, waves:K or scheduled');
}

export function batchSpecFromArgs(a: Raw): BatchSpecInput {
  const dirty = a['dirty-rate'] === undefined ? undefined : parseRateMiBps(String(a['dirty-rate']), '--dirty-rate');
  const maxBw = a['max-bandwidth'] === undefined ? undefined : parseRateMiBps(String(a['max-bandwidth']), '--max-bandwidth');
  const faults = (a.fault as string[] | undefined) ?? [];
  // Checked here, so a bad one is refused before the first guest boots (the scenario checks them again).
  for (const f of faults) asOption('--fault', f, () => parseFault(f));
  return {
    guests: { memoryMiB: parseSizeMiB(String(a.memory ?? '256M'), '--memory'), ...(dirty !== undefined ? { dirtyRateMiBps: dirty } : {}), ...(faults.length > 0 ? { faults } : {}) },
    mode: parseModeArg(String(a.mode ?? 'parallel')),
    compare: Boolean(a.compare),
    steps: parseStepsArg(String(a.steps ?? '1,2,4')),
    timeoutMs: parseDurationMs(String(a.timeout ?? '60s'), '--timeout'),
    deadlineMs: parseDurationMs(String(a.deadline ?? '20m'), '--deadline'),
    memoryReserveMiB: parseSizeMiB(String(a.reserve ?? '1G'), '--reserve'),
    stall: {
      psiCpuSomeAvg10: Number(a['psi-cpu'] ?? 80),
      psiMemorySomeAvg10: Number(a['psi-memory'] ?? 10),
      loadPerCpu: Number(a['load-per-cpu'] ?? 4),
      sustainSamples: Number(a.sustain ?? 3),
    },
    sampleIntervalMs: parseDurationMs(String(a['sample-interval'] ?? '500ms'), '--sample-interval'),
    ...(maxBw !== undefined ? { parameters: { maxBandwidthMiBps: maxBw } } : {}),
    lab: { prefix: prefixFromArgs(a) },
    ...(a.bandwidth !== undefined ? { shaping: { bandwidthMbit: parseBitRateMbps(String(a.bandwidth), '--bandwidth') } } : {}),
  };
}

/** The option behind each batch spec field, and the range it takes, for errors in the user's terms. */
export const BATCH_OPTION_OF: Readonly<Record<string, OptionRange>> = {
  steps: { flag: 'steps', range: 'values of N from 1 to 64, as a list like 1,2,4 or a rule like 1..8*2 (START <= MAX, factor above 1)' },
  'steps.start': { flag: 'steps', range: 'a rule START..MAX*FACTOR or START..MAX+ADD with 1 <= START <= MAX <= 64, e.g. 1..8*2' },
  'steps.max': { flag: 'steps', range: 'a rule START..MAX*FACTOR or START..MAX+ADD with 1 <= START <= MAX <= 64, e.g. 1..8*2' },
  'steps.factor': { flag: 'steps', range: 'a growth factor above 1, e.g. 1..8*2' },
  'steps.add': { flag: 'steps', range: 'a whole step of at least 1, e.g. 1..6+1' },
  'mode.waves': { flag: 'mode', range: 'waves:K with K at least 1, e.g. waves:2' },
  'guests.memoryMiB': { flag: 'memory', kind: 'size', range: 'from 64M to 64G' },
  'guests.dirtyRateMiBps': { flag: 'dirty-rate', kind: 'rate', range: '0 or more' },
  timeoutMs: { flag: 'timeout', kind: 'duration', range: 'at least 1s' },
  deadlineMs: { flag: 'deadline', kind: 'duration', range: 'at least 1s' },
  memoryReserveMiB: { flag: 'reserve', kind: 'size', range: '0 or more' },
  sampleIntervalMs: { flag: 'sample-interval', kind: 'duration', range: 'from 100ms to 10s' },
  'stall.psiCpuSomeAvg10': { flag: 'psi-cpu', range: 'a percentage from 0 to 100' },
  'stall.psiMemorySomeAvg10': { flag: 'psi-memory', range: 'a percentage from 0 to 100' },
  'stall.loadPerCpu': { flag: 'load-per-cpu', range: 'a number above 0, e.g. 4' },
  'stall.sustainSamples': { flag: 'sustain', range: 'a whole number of samples, at least 1' },
  'parameters.maxBandwidthMiBps': { flag: 'max-bandwidth', kind: 'rate', range: 'more than 0' },
  'shaping.bandwidthMbit': { flag: 'bandwidth', kind: 'bitrate', range: 'more than 0 and at most 1000gbit' },
};

/**
 * The batch the command line asks for, validated before anything starts; a value out of range is
 * reported against its option (`--steps 0: too small; ...`), not the spec field inside.
 */
export function batchSpecFromArgsChecked(a: Raw): BatchSpecInput {
  const input = batchSpecFromArgs(a);
  const r = BatchSpecSchema.safeParse(input);
  if (!r.success) {
    const e = optionIssue(r.error.issues, BATCH_OPTION_OF, a);
    if (e) throw e;
  }
  if (input.compare && input.mode !== 'scheduled') throw new UsageError(`--compare: needs --mode scheduled (not ${String(a.mode ?? 'parallel')})`, 'it runs naive parallel next to the scheduler; add --mode scheduled');
  return input;
}

/**
 * How a batch ended, as an exit status: a batch that ran every step is done (0); one the host
 * stalled under is a finding, but not a clean batch (8, as a stalled run); its whole deadline
 * passing is 6 (as a run that did not converge); a step the memory guard refused is 2; Ctrl-C 130.
 */
export const BATCH_STOP_EXIT: Readonly<Record<StopReason['kind'], number>> = {
  finished: EXIT.done,
  stall: EXIT.stalled,
  deadline: EXIT.notConverged,
  refused: EXIT.badInput,
  aborted: EXIT.sigint,
};

/** A few lines a person reads after the batch. */
export function formatBatchSummary(r: BatchResult): string {
  const lines = [`batch ${r.record.stop.kind}  ${r.record.stop.detail}`];
  for (const d of r.diagnoses) {
    const dt = d.downtimeMs ? `downtime ${Math.round(d.downtimeMs.min)}/${Math.round(d.downtimeMs.median)}/${Math.round(d.downtimeMs.max)} ms` : 'no downtime figures';
    lines.push(`  N=${d.n} ${d.variant === 'naive-parallel' ? 'naive parallel' : d.mode}: ${d.migrated}/${d.attempted} migrated in ${(d.wallMs / 1000).toFixed(1)} s, ${dt}${d.stall ? `, stalled: ${d.stall.symptom} (${d.saturation.resource})` : ''}`);
  }
  lines.push(`  report  ${r.markdownPath}`, `  html    ${r.htmlPath}`);
  return lines.join('\n');
}

/** The body of `miglab batch`; its exit status says how the batch ended (BATCH_STOP_EXIT). */
export async function batchCommand(args: Raw, io: CommandIo): Promise<number> {
  // Loaded here, not at the top: it draws the report, and the plotting stack is slow to load for every other command.
  const { runBatch } = await import('./run.js');
  const result = await runBatch(batchSpecFromArgsChecked(args), {
    resultsRoot: String(args.results ?? 'results'),
    hosts: args.hosts === undefined ? undefined : String(args.hosts),
    progress: io.progress,
    signal: io.signal,
  });
  io.out(formatBatchSummary(result));
  io.json?.(result);
  return BATCH_STOP_EXIT[result.record.stop.kind];
}
