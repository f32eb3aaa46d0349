// The per-point table of a sweep: the parameters that vary, then count/mean/median/stdev/min/max
// of each metric over the repetitions, plus how many runs converged and how many failed. It reads
// only saved reports (RunEntry), so `miglab plot` can rebuild it from a results folder.
import { writeTableCsv, type Column } from '../report/markdown.js';
import { SUMMARY_FIELDS, summarize, type Summary } from '../stats/index.js';

export { SUMMARY_FIELDS };
import { MiB } from '../util/units.js';
import { formatFault } from '../fault/spec.js';
import type { RunEntry } from './results.js';
import { GRID_DIMENSIONS, labelWorkloads, QEMU_PAIR_SEPARATOR, type WorkloadValue } from './spec.js';
import { SYSTEM_QEMU } from '../qemu/build.js';

export interface Metric {
  readonly key: string;
  /** What the figure is, for tables and results/README.md (its unit is in the key). */
  readonly about: string;
  readonly of: (e: RunEntry) => number | undefined;
}

/** Metrics over the runs whose migration completed (a cancelled run has no downtime to count). */
export const SUMMARY_METRICS = [
  { key: 'downtimeMs', about: "QEMU's downtime", of: (e) => e.report.outputs.downtimeMs },
  { key: 'eventDowntimeMs', about: "Downtime from the source's STOP to the destination's RESUME event (QEMU's timestamps)", of: (e) => e.report.outputs.eventDowntimeMs },
  { key: 'clientDowntimeMs', about: 'Downtime a client of the guest saw (UDP probe)', of: (e) => e.report.outputs.clientDowntimeMs },
  { key: 'traceDowntimeMs', about: "Downtime from QEMU's trace points, the source's stop to the destination's start (8.2 on, both sides)", of: (e) => e.report.outputs.downtimeTrace?.totalMs },
  { key: 'totalTimeMs', about: 'Total migration time', of: (e) => e.report.outputs.totalTimeMs },
  { key: 'setupTimeMs', about: 'Setup time', of: (e) => e.report.outputs.setupTimeMs },
  { key: 'transferredMiB', about: 'RAM sent', of: (e) => (e.report.outputs.transferredBytes === undefined ? undefined : e.report.outputs.transferredBytes / MiB) },
  { key: 'averageThroughputMiBps', about: 'RAM sent over total time', of: (e) => e.report.outputs.averageThroughputMiBps },
  { key: 'dirtySyncCount', about: 'Pre-copy passes (dirty syncs)', of: (e) => e.report.outputs.dirtySyncCount },
  { key: 'postcopyRequests', about: 'Pages the destination asked the source for in post-copy', of: (e) => e.report.outputs.postcopy?.requests },
  { key: 'postcopyBlocktimeMs', about: "Time the destination's vCPUs all waited for pages in post-copy (postcopy-blocktime)", of: (e) => e.report.outputs.postcopy?.blocktimeMs },
  { key: 'sourceCpuMs', about: 'CPU time the source QEMU spent on the migration', of: (e) => e.report.outputs.qemuCpuMs?.source },
  { key: 'destinationCpuMs', about: 'CPU time the destination QEMU spent on the migration', of: (e) => e.report.outputs.qemuCpuMs?.destination },
] as const satisfies readonly Metric[];
export type MetricKey = (typeof SUMMARY_METRICS)[number]['key'];

/** Parameters a point can differ in, as they appear in tables (values derived from the reports). */
export const PARAMETER_COLUMNS = GRID_DIMENSIONS;
export type ParameterColumn = (typeof PARAMETER_COLUMNS)[number];
export type ParameterValues = Partial<Record<ParameterColumn, string | number>>;

export interface PointSummary {
  readonly point: string;
  readonly parameters: ParameterValues;
  readonly runs: number;
  /** Runs QEMU reported as completed (outputs.status). */
  readonly converged: number;
  /** Runs with verdict failed or stalled, plus runs that left no report. */
  readonly failures: number;
  readonly metrics: Readonly<Record<MetricKey, Summary>>;
  readonly entries: readonly RunEntry[];
}

export function migrationCompleted(e: RunEntry): boolean {
  return e.report.outputs.status === 'completed';
}

/** The workload of a run's scenario (the scenario holds it once the engine knows workloads). */
export function workloadOf(e: RunEntry): WorkloadValue | undefined {
  return (e.report.inputs.scenario as { workload?: WorkloadValue }).workload;
}

function rawParameters(e: RunEntry): Record<ParameterColumn, unknown> {
  const s = e.report.inputs.scenario;
  const caps = Object.entries(s.capabilities ?? {})
    .filter(([, on]) => on)
    .map(([c]) => c);
  const q = s.qemu ?? { source: SYSTEM_QEMU };
  const dst = q.destination ?? q.source;
  return {
    qemu: dst === q.source ? q.source : `${q.source}${QEMU_PAIR_SEPARATOR}${dst}`,
    machineType: s.guest?.machineType ?? 'auto',
    nicModel: s.guest?.nicModel,
    diskInterface: s.guest?.diskInterface,
    memoryMiB: s.guest?.memoryMiB,
    workload: workloadOf(e),
    maxBandwidthMiBps: s.parameters?.maxBandwidthMiBps,
    downtimeLimitMs: s.parameters?.downtimeLimitMs,
    linkBandwidthMbit: e.shaping === undefined ? undefined : e.shaping === null ? 'unshaped' : e.shaping.bandwidthMbit,
    capabilities: caps.length === 0 ? 'none' : caps.join('+'),
    monitor: s.monitor,
    switchover: s.switchover ?? 'qemu-default',
    faults: (s.faults ?? []).length === 0 ? 'none' : s.faults.map(formatFault).join(' + '),
    tls: s.tls ? 'tls' : 'plain',
  };
}

/** A point's varying values except `except`, as "name=value, ...": what sets a row apart in a table about `except`. */
export function otherValues(p: Pick<PointSummary, 'parameters'>, except: ParameterColumn): string {
  return Object.entries(p.parameters)
    .filter(([k]) => k !== except)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
}

export interface SummarizeOptions {
  /** Runs per point that produced no report (they count as failures). */
  readonly missing?: Readonly<Record<string, number>>;
  /** Point order (a sweep's grid order); otherwise the order points first appear in. */
  readonly order?: readonly string[];
}

/** One summary per point. */
export function summarizePoints(entries: readonly RunEntry[], opts: SummarizeOptions = {}): PointSummary[] {
  const missing = opts.missing ?? {};
  const groups = new Map<string, RunEntry[]>((opts.order ?? []).map((p) => [p, []]));
  for (const e of entries) groups.set(e.point, [...(groups.get(e.point) ?? []), e]);
  for (const p of Object.keys(missing)) if (!groups.has(p)) groups.set(p, []);
  for (const [p, es] of groups) if (es.length === 0 && !missing[p]) groups.delete(p);

  // Parameter columns: only those whose value differs between points.
  const raw = [...groups.values()].map((es) => (es[0] ? rawParameters(es[0]) : undefined));
  const workloads = [...new Map(raw.filter((r) => r?.workload !== undefined).map((r) => [JSON.stringify(r!.workload), r!.workload as WorkloadValue])).values()];
  const workloadLabel = new Map(labelWorkloads(workloads).map((l, i) => [JSON.stringify(workloads[i]), l]));
  const varying = PARAMETER_COLUMNS.filter((c) => new Set(raw.map((r) => JSON.stringify(r?.[c]))).size > 1);

  return [...groups.entries()].map(([point, es], i) => {
    const parameters: ParameterValues = {};
    const r = raw[i];
    for (const c of varying) {
      const v = r?.[c];
      if (v === undefined) continue;
      parameters[c] = c === 'workload' ? workloadLabel.get(JSON.stringify(v))! : (v as string | number);
    }
    const done = es.filter(migrationCompleted);
    const metrics = Object.fromEntries(SUMMARY_METRICS.map((m) => [m.key, summarize(done.map(m.of))])) as Record<MetricKey, Summary>;
    return {
      point,
      parameters,
      runs: es.length + (missing[point] ?? 0),
      converged: done.length,
      failures: es.filter((e) => e.report.verdict === 'failed' || e.report.verdict === 'stalled').length + (missing[point] ?? 0),
      metrics,
      entries: es,
    };
  });
}

export type SummaryRow = Record<string, string | number | undefined>;

/** Flat rows and columns for summary.csv: point, parameters, runs/converged/failures, metric stats. */
export function summaryTable(points: readonly PointSummary[]): { columns: Column<SummaryRow>[]; rows: SummaryRow[] } {
  const params = PARAMETER_COLUMNS.filter((c) => points.some((p) => p.parameters[c] !== undefined));
  const keys = ['point', ...params, 'runs', 'converged', 'failures', ...SUMMARY_METRICS.flatMap((m) => SUMMARY_FIELDS.map((f) => `${m.key}_${f}`))];
  const rows = points.map((p) => {
    const row: SummaryRow = { point: p.point, ...p.parameters, runs: p.runs, converged: p.converged, failures: p.failures };
    for (const m of SUMMARY_METRICS) {
      const s = p.metrics[m.key];
      // csvText rounds each figure to the precision of its unit (src/results/units.ts).
      for (const f of SUMMARY_FIELDS) row[`${m.key}_${f}`] = s[f];
    }
    return row;
  });
  return { columns: keys.map((k) => ({ key: k, title: k })), rows };
}

export async function writeSummaryCsv(file: string, points: readonly PointSummary[]): Promise<void> {
  const { columns, rows } = summaryTable(points);
  await writeTableCsv(file, columns, rows);
}
