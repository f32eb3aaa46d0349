// Figures and a short report drawn from saved results alone: every run.json under a sweep folder
// (or any folder of runs). `planCharts` decides which figures apply and builds their specs (pure);
// `plotResults` renders them to <dir>/plots/ and writes report.md and report.html next to them.
// `miglab plot SWEEP_DIR` calls plotResults (through replot.ts); a single run's folder has its own
// report (report/run-report.ts).
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { barChart, renderChart, scatterWithSpread, type Marker, type PlannedChart, type VegaLiteSpec } from '../plot/index.js';
import { writeReport, type WrittenReport } from '../report/html.js';
import { fmtMs, markdown, writeTableCsv, type Column } from '../report/markdown.js';
import { FAULT_COLUMNS, FAULT_REPORT_COLUMNS, faultRows } from '../fault/table.js';
import { MATRIX_COLUMNS, qemuMatrix } from './qemu-matrix.js';
import { comparePolicies, POLICY_COLUMNS } from './policy-table.js';
import { loadResults, type LoadedResults, type RunEntry } from './results.js';
import { workloadKind } from './spec.js';
import { PARAMETER_COLUMNS, summarizePoints, workloadOf, writeSummaryCsv, type MetricKey, type ParameterColumn, type PointSummary } from './summary.js';

export interface PlotResult {
  readonly dir: string;
  readonly charts: readonly { readonly name: string; readonly title: string; readonly svgPath: string; readonly pngPath: string }[];
  readonly summary: readonly PointSummary[];
  readonly report: WrittenReport;
  readonly summaryCsv: string;
}

const NOT_CONVERGED_COLOR = '#d62728';

/** The parameters (other than `except`) that tell points apart, as a short label. */
function otherLabel(p: PointSummary, except: ParameterColumn): string {
  return PARAMETER_COLUMNS.filter((c) => c !== except && p.parameters[c] !== undefined)
    .map((c) => `${c} ${p.parameters[c]}`)
    .join(', ');
}

function distinct<T>(xs: readonly T[]): number {
  return new Set(xs.map((x) => JSON.stringify(x))).size;
}

interface SpreadRow {
  readonly x: number;
  readonly series: string;
  readonly mean: number;
  readonly min: number;
  readonly max: number;
}

/** QEMU's downtime and the client-seen downtime of each point, as two series against `x`. */
function downtimeRows(points: readonly { p: PointSummary; x: number }[], except: ParameterColumn): SpreadRow[] {
  const rows: SpreadRow[] = [];
  const series: [MetricKey, string][] = [
    ['downtimeMs', 'downtime (QEMU)'],
    ['clientDowntimeMs', 'downtime (client probe)'],
  ];
  for (const { p, x } of points) {
    const other = otherLabel(p, except);
    for (const [key, label] of series) {
      const s = p.metrics[key];
      if (s.mean === undefined) continue;
      rows.push({ x, series: other ? `${label}, ${other}` : label, mean: s.mean, min: s.min!, max: s.max! });
    }
  }
  return rows;
}

/** Dashed red rules with a label at the top, for the x values where pre-copy did not converge. */
function withNotConverged(spec: VegaLiteSpec, markers: readonly Marker[]): VegaLiteSpec {
  if (markers.length === 0) return spec;
  const s = spec as unknown as { layer: Record<string, unknown>[] };
  const values = markers.map((m) => ({ x: m.x, label: m.label }));
  const x = { field: 'x', type: 'quantitative' };
  s.layer.push(
    { data: { values }, mark: { type: 'rule', color: NOT_CONVERGED_COLOR, strokeDash: [4, 3] }, encoding: { x } },
    {
      data: { values },
      // Up from the bottom of the plot, where the points (downtime, time and bytes grow with the rate) seldom are.
      mark: { type: 'text', color: NOT_CONVERGED_COLOR, angle: 270, align: 'left', baseline: 'bottom', dx: 4, dy: -3, y: { expr: 'height' }, fontSize: 10 },
      encoding: { x, text: { field: 'label' } },
    },
  );
  return spec;
}

function notConvergedMarkers(points: readonly { p: PointSummary; x: number }[]): Marker[] {
  return points.filter(({ p }) => p.converged < p.runs).map(({ p, x }) => ({ x, label: p.converged === 0 ? 'did not converge' : `${p.converged}/${p.runs} converged` }));
}

/** The dirty rate of a point's workload, when it is the `dirty` workload with a rateMiBps. */
export function dirtyRateMiBps(e: RunEntry | undefined): number | undefined {
  const w = e ? workloadOf(e) : undefined;
  if (workloadKind(w) !== 'dirty' || typeof w !== 'object') return undefined;
  const rate = (w as Record<string, unknown>).rateMiBps;
  return typeof rate === 'number' ? rate : undefined;
}

/** One metric of each point (mean, min, max) against `x`, one series per other parameter set. */
function metricRows(points: readonly { p: PointSummary; x: number }[], except: ParameterColumn, key: MetricKey, label: string): SpreadRow[] {
  return points.flatMap(({ p, x }) => {
    const s = p.metrics[key];
    if (s.mean === undefined) return [];
    const other = otherLabel(p, except);
    return [{ x, series: other ? `${label}, ${other}` : label, mean: s.mean, min: s.min!, max: s.max! }];
  });
}

/**
 * Downtime, total time and RAM sent against one varied parameter (memory size, dirty rate): what
 * the guest paused for, what the whole migration took and what it cost the link, side by side.
 */
function figuresAgainst(
  points: readonly { p: PointSummary; x: number }[],
  except: ParameterColumn,
  what: { readonly slug: string; readonly noun: string; readonly axis: { field: 'x'; title: string; unit: string }; readonly log2: boolean; readonly why: string },
): PlannedChart[] {
  const markers = notConvergedMarkers(points);
  const spread = { y: { field: 'mean', title: '', unit: '' }, series: { field: 'series', title: '' }, yLow: 'min', yHigh: 'max', x: what.axis, xLog2: what.log2 } as const;
  const chart = (name: string, title: string, rows: SpreadRow[], y: { title: string; unit: string }, caption: string): PlannedChart => ({
    name,
    title,
    caption: `${caption} ${what.why}`,
    // Every point has a place on the axis, also one where no run converged (it has only its marker).
    spec: withNotConverged(scatterWithSpread({ ...spread, title, data: rows, y: { field: 'mean', ...y }, xInclude: points.map((p) => p.x) }), markers),
  });
  return [
    chart(
      `downtime-vs-${what.slug}`,
      `Downtime vs ${what.noun}`,
      downtimeRows(points, except),
      { title: 'Downtime, mean', unit: 'ms' },
      `Mean downtime per ${what.noun} over the repetitions; whiskers span min to max. QEMU reports its own downtime; the client figure is the longest silence of a 1 ms UDP probe to the guest.`,
    ),
    chart(`total-time-vs-${what.slug}`, `Total migration time vs ${what.noun}`, metricRows(points, except, 'totalTimeMs', 'total time'), { title: 'Total time, mean', unit: 'ms' }, `Mean total migration time (QEMU's, from the migrate command to completion) per ${what.noun}; whiskers span min to max.`),
    chart(`sent-vs-${what.slug}`, `RAM sent vs ${what.noun}`, metricRows(points, except, 'transferredMiB', 'RAM sent'), { title: 'RAM sent, mean', unit: 'MiB' }, `Mean bytes QEMU sent over the migration link per ${what.noun} (every pass, resent dirty pages included); whiskers span min to max.`),
  ];
}

/** The figures that apply to these results, built from the reports (and their summary) alone. */
export function planCharts(results: LoadedResults, summary: readonly PointSummary[]): PlannedChart[] {
  const charts: PlannedChart[] = [];

  const byMemory = summary.filter((p) => typeof p.parameters.memoryMiB === 'number').map((p) => ({ p, x: p.parameters.memoryMiB as number }));
  if (distinct(byMemory.map((m) => m.x)) > 1) {
    charts.push(
      ...figuresAgainst(byMemory, 'memoryMiB', {
        slug: 'memory',
        noun: 'guest memory',
        axis: { field: 'x', title: 'Guest memory', unit: 'MiB, log2 scale' },
        log2: true,
        why: 'Memory sizes double, so the axis is log2: each size is one step from the next.',
      }),
    );
  }

  const byRate = summary.map((p) => ({ p, x: dirtyRateMiBps(p.entries[0]) })).filter((r): r is { p: PointSummary; x: number } => r.x !== undefined);
  if (distinct(byRate.map((r) => r.x)) > 1) {
    charts.push(
      ...figuresAgainst(byRate, 'workload', {
        slug: 'dirty-rate',
        noun: 'dirty rate',
        axis: { field: 'x', title: 'Dirty rate', unit: 'MiB/s' },
        log2: false,
        why: 'Red dashed lines mark rates where pre-copy did not converge before the deadline in some or all repetitions.',
      }),
    );
  }

  const byLink = summary.filter((p) => p.parameters.linkBandwidthMbit !== undefined);
  if (distinct(byLink.map((p) => p.parameters.linkBandwidthMbit)) > 1) {
    const rows = byLink
      .filter((p) => p.metrics.totalTimeMs.mean !== undefined)
      .map((p) => {
        const link = p.parameters.linkBandwidthMbit!;
        return {
          link: typeof link === 'number' ? `${link} Mbit/s` : link,
          group: otherLabel(p, 'linkBandwidthMbit') || 'all',
          mean: p.metrics.totalTimeMs.mean!,
          min: p.metrics.totalTimeMs.min!,
          max: p.metrics.totalTimeMs.max!,
        };
      });
    const grouped = distinct(rows.map((r) => r.group)) > 1;
    const title = 'Total migration time vs link bandwidth';
    charts.push({
      name: 'total-time-vs-link-bandwidth',
      title,
      caption: 'Mean total migration time per rate limit of the migration uplinks (tc); error bars span min to max.',
      spec: barChart({
        title,
        data: rows,
        category: { field: 'link', title: 'Migration link bandwidth' },
        value: { field: 'mean', title: 'Total time, mean', unit: 'ms' },
        ...(grouped ? { group: { field: 'group', title: '' } } : {}),
        errorLow: 'min',
        errorHigh: 'max',
      }),
    });
  }

  const byCaps = summary.filter((p) => p.parameters.capabilities !== undefined);
  if (distinct(byCaps.map((p) => p.parameters.capabilities)) > 1) {
    for (const [key, what, file] of [
      ['downtimeMs', 'Downtime', 'downtime-by-capabilities'],
      ['totalTimeMs', 'Total time', 'total-time-by-capabilities'],
    ] as const) {
      const rows = byCaps
        .filter((p) => p.metrics[key].mean !== undefined)
        .map((p) => ({ caps: String(p.parameters.capabilities), mean: p.metrics[key].mean!, min: p.metrics[key].min!, max: p.metrics[key].max! }));
      const title = `${what} by migration capabilities`;
      charts.push({
        name: file,
        title,
        caption: `Mean ${what.toLowerCase()} with each set of capabilities; error bars span min to max. Points that never converged have no bar.`,
        spec: barChart({ title, data: rows, category: { field: 'caps', title: 'Capabilities' }, value: { field: 'mean', title: `${what}, mean`, unit: 'ms' }, errorLow: 'min', errorHigh: 'max' }),
      });
    }
  }

  return charts;
}

type TableRow = Record<string, string | number | undefined>;

function reportMarkdown(results: LoadedResults, summary: readonly PointSummary[], charts: readonly PlannedChart[]): string {
  const title = results.sweep ? `Sweep ${results.sweep.name}` : 'Migration runs';
  const doc = markdown().heading(1, title);
  const runs = results.entries.length;
  const converged = summary.reduce((a, p) => a + p.converged, 0);
  doc.paragraph(
    `${summary.length} point${summary.length === 1 ? '' : 's'}, ${runs} complete run${runs === 1 ? '' : 's'}, ${converged} converged. ` +
      'Figures are over the runs whose migration completed; `summary.csv` has every statistic (count, mean, median, stdev, min, max).',
  );
  const params = PARAMETER_COLUMNS.filter((c) => summary.some((p) => p.parameters[c] !== undefined));
  const rows: TableRow[] = summary.map((p) => ({
    point: p.point,
    ...p.parameters,
    runs: p.runs,
    converged: p.converged,
    downtimeMs: p.metrics.downtimeMs.mean,
    downtimeStdevMs: p.metrics.downtimeMs.stdev,
    clientDowntimeMs: p.metrics.clientDowntimeMs.mean,
    totalTimeMs: p.metrics.totalTimeMs.mean,
    transferredMiB: p.metrics.transferredMiB.mean,
  }));
  const ms = (v: unknown) => fmtMs(v as number | undefined);
  const columns: Column<TableRow>[] = [
    { key: 'point', title: 'point' },
    ...params.map((c) => ({ key: c, title: c })),
    { key: 'runs', title: 'runs' },
    { key: 'converged', title: 'converged' },
    { key: 'downtimeMs', title: 'downtime (QEMU), mean', format: ms, align: 'right' },
    { key: 'downtimeStdevMs', title: 'stdev', format: ms, align: 'right' },
    { key: 'clientDowntimeMs', title: 'downtime (client), mean', format: ms, align: 'right' },
    { key: 'totalTimeMs', title: 'total time, mean', format: ms, align: 'right' },
    { key: 'transferredMiB', title: 'transferred, mean', format: (v) => (typeof v === 'number' ? `${v.toFixed(1)} MiB` : '–'), align: 'right' },
  ];
  doc.heading(2, 'Summary').table(columns, rows);
  const matrix = qemuMatrix(summary);
  if (matrix) {
    const works = matrix.filter((m) => m.outcome === 'works').length;
    doc
      .heading(2, 'QEMU version matrix')
      .paragraph(
        `${works} of ${matrix.length} combinations worked: the migration completed and the guest went on at the destination with the same boot. ` +
          "A QEMU's plain `pc` is its own newest machine type, and a destination refuses any type but its own, so `pc` across two builds fails in both directions; `auto` pins the older build's, which both know. Where a combination failed, the reason is the run's, with what QEMU said. `matrix.csv` has these rows.",
      )
      .table(MATRIX_COLUMNS, matrix);
  }
  const policies = comparePolicies(summary);
  if (policies) {
    const aim = !policies.autoRan
      ? '`auto` was not among them.'
      : policies.autoMissed.length === 0
        ? '`auto` converged wherever any policy did.'
        : `\`auto\` did not converge at ${policies.autoMissed.join('; ')}, where another policy did.`;
    doc
      .heading(2, 'Switchover policies')
      .paragraph(`Each policy at each set of the other values: how many runs converged, QEMU's downtime and the total time (medians over those that did). ${aim} Each run's report lists its policy's decisions with the figures behind them. \`policies.csv\` has these rows.`)
      .table(POLICY_COLUMNS, policies.rows);
  }
  const faults = faultRows(results.entries);
  if (faults.length > 0) {
    const met = faults.filter((f) => f.asExpected === 'yes').length;
    doc
      .heading(2, 'Faults and outcomes')
      .paragraph(
        `${met} of ${faults.length} injected faults ended as they must (src/fault/outcome.ts). "Noticed after" is the time from the fault to the run's first reaction (a QEMU exit, the guest's console, the NFS watcher, a stall, QEMU's final status). \`faults.csv\` has these rows with what each fault must end as.`,
      )
      .table(FAULT_REPORT_COLUMNS, faults);
  }
  if (charts.length > 0) doc.heading(2, 'Figures');
  for (const c of charts) doc.heading(3, c.title).image(c.title, `plots/${c.name}.png`).paragraph(`${c.caption} ([SVG](plots/${c.name}.svg))`);
  return doc.render();
}

/** Read every run under `dir`, draw the figures that apply, write summary.csv and the report. */
export async function plotResults(dir: string): Promise<PlotResult> {
  const results = await loadResults(dir);
  // One run has a report of its own (report/run-report.ts), not a sweep's summary of one point.
  if (results.kind === 'run') throw new UsageError(`${dir} is one run's folder, not a sweep`, 'draw its own report with: miglab plot RUN_DIR');
  if (results.entries.length === 0) throw new UsageError(`no complete run (run.json) under ${dir}`);
  const summary = summarizePoints(results.entries, { order: results.sweep?.points.map((p) => p.name) });
  const planned = planCharts(results, summary);
  const charts = [];
  for (const c of planned) {
    const out = await renderChart(c.spec, join(dir, 'plots', c.name));
    charts.push({ name: c.name, title: c.title, svgPath: out.svgPath, pngPath: out.pngPath });
  }
  const summaryCsv = join(dir, 'summary.csv');
  await writeSummaryCsv(summaryCsv, summary);
  const faults = faultRows(results.entries);
  if (faults.length > 0) await writeTableCsv(join(dir, 'faults.csv'), FAULT_COLUMNS, faults);
  const matrix = qemuMatrix(summary);
  if (matrix) await writeTableCsv(join(dir, 'matrix.csv'), MATRIX_COLUMNS, matrix);
  const policies = comparePolicies(summary);
  if (policies) await writeTableCsv(join(dir, 'policies.csv'), POLICY_COLUMNS, policies.rows);
  const report = await writeReport(dir, reportMarkdown(results, summary, planned), results.sweep ? `miglab sweep ${results.sweep.name}` : 'miglab results');
  return { dir, charts, summary, report, summaryCsv };
}
