// `miglab batch`: options declared as data, their translation into a BatchSpec, and the command
// body for the CLI to call after parsing (it only calls runBatch and prints a summary).
import type { Options } from 'yargs';
import { UsageError } from '../errors.js';
import type { CommandIo } from '../cli/io.js';
import { parseBitRateMbps, parseDurationMs, parseRateMiBps, parseSizeMiB } from '../util/units.js';
import { runBatch, type BatchResult } from './run.js';
import type { BatchSpecInput } from './spec.js';

export const BATCH_OPTIONS = {
  steps: { type: 'string', default: '1,2,4', describe: 'values of N: a list (1,2,4), or a growth rule START..MAX*FACTOR (1..8*2) or START..MAX+ADD (1..6+1)' },
  mode: { type: 'string', default: 'parallel', describe: 'sequential | parallel | waves:K | scheduled (the scheduler: concurrency from the saturated resource, link shares, retries)' },
  compare: { type: 'boolean', default: false, describe: 'with --mode scheduled: also run naive parallel at each N, side by side' },
  memory: { type: 'string', default: '256M', describe: 'RAM of each guest, e.g. 128M' },
  'dirty-rate': { type: 'string', describe: 'dirty rate the scheduler assumes for each guest, e.g. 50M/s (default: idle)' },
  timeout: { type: 'string', default: '60s', describe: 'per-migration deadline: cancelled (did-not-converge) if not done by then' },
  deadline: { type: 'string', default: '20m', describe: 'deadline of the whole batch' },
  reserve: { type: 'string', default: '1G', describe: 'host memory never given to guests: a step that would need it is refused' },
  'psi-cpu': { type: 'number', default: 80, describe: 'stall when PSI cpu some avg10 stays above this (%)' },
  'psi-memory': { type: 'number', default: 10, describe: 'stall when PSI memory some avg10 stays above this (%)' },
  'load-per-cpu': { type: 'number', default: 4, describe: 'stall when load1 / CPUs stays above this' },
  sustain: { type: 'number', default: 3, describe: 'host samples in a row a symptom must hold to count as a stall' },
  'sample-interval': { type: 'string', default: '500ms', describe: 'how often to sample the host' },
  'max-bandwidth': { type: 'string', describe: 'migration max-bandwidth of every guest, e.g. 64M/s (the scheduler sets its own)' },
  bandwidth: { type: 'string', describe: 'shape each migration uplink, e.g. 100mbit' },
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
  throw new UsageError(`invalid --steps "${text}"`, 'use a list like 1,2,4 or a rule like 1..8*2 or 1..6+1');
}

export function parseModeArg(text: string): BatchSpecInput['mode'] {
  const waves = /^waves[:=](\d+)$/.exec(text.trim());
  if (waves) return { waves: Number(waves[1]) };
  if (text === 'sequential' || text === 'parallel' || text === 'scheduled') return text;
  throw new UsageError(`invalid --mode "${text}"`, 'use sequential, parallel, waves:K or scheduled');
}

export function batchSpecFromArgs(a: Raw): BatchSpecInput {
  const dirty = a['dirty-rate'] === undefined ? undefined : parseRateMiBps(String(a['dirty-rate']), '--dirty-rate');
  const maxBw = a['max-bandwidth'] === undefined ? undefined : parseRateMiBps(String(a['max-bandwidth']), '--max-bandwidth');
  const faults = (a.fault as string[] | undefined) ?? [];
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
    lab: { prefix: String(a.prefix ?? 'mlab') },
    ...(a.bandwidth !== undefined ? { shaping: { bandwidthMbit: parseBitRateMbps(String(a.bandwidth), '--bandwidth') } } : {}),
  };
}

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

/**
 * The body of `miglab batch`. Exit code: 0 when the batch ran (stopping at a stall is a result,
 * not an error), 2 when a step was refused by the memory guard, 130 when interrupted.
 */
export async function batchCommand(args: Raw, io: CommandIo): Promise<number> {
  const result = await runBatch(batchSpecFromArgs(args), { resultsRoot: String(args.results ?? 'results'), progress: io.progress, signal: io.signal });
  io.out(formatBatchSummary(result));
  io.json?.(result);
  const kind = result.record.stop.kind;
  return kind === 'refused' ? 2 : kind === 'aborted' ? 130 : 0;
}
