// `miglab compare A B ...`: saved runs (run folders) or sweeps (sweep folders) side by side. The
// headline figures of each set (a run's own figures; a sweep's medians per point), with deltas
// against the first set, as a Markdown table, a CSV and a figure, written to a folder of their
// own. Everything is read back through the result schemas, so an old or damaged folder is
// refused with one line before anything is written.
import { existsSync, realpathSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { newRunId } from '../api.js';
import { UsageError } from '../errors.js';
import { barChart } from '../plot/charts.js';
import { folderKind } from '../plot/folder.js';
import { renderChart } from '../plot/render.js';
import { writeReport } from '../report/html.js';
import { markdown, writeTableCsv, type Column } from '../report/markdown.js';
import { readResultIn } from '../results/contract.js';
import { RUN_CONTRACT } from '../results/run.js';
import { roundByName, unitOfName } from '../results/units.js';
import { loadResults, type RunEntry } from '../sweep/results.js';
import { SUMMARY_METRICS, summarizePoints, type MetricKey } from '../sweep/summary.js';
import { makePrivateDir } from '../util/private.js';

export type SetKind = 'run' | 'sweep';

/** One folder being compared. */
export interface CompareSet {
  /** A, B, C...: how tables and the figure name it. */
  readonly label: string;
  readonly dir: string;
  readonly kind: SetKind;
  /** The run's or the sweep's name. */
  readonly name: string;
  /** Per point (a run is one point, named ''): each figure and how many runs it rests on. */
  readonly points: ReadonlyMap<string, PointFigures>;
  /** A run's verdict; for a sweep, completed/total. */
  readonly outcome: string;
}

type Figures = Readonly<Partial<Record<MetricKey, number>>>;

/** A point's figures: a run's own, or a sweep point's medians with their min and max. */
export interface PointFigures {
  readonly runs: number;
  readonly completed: number;
  readonly figures: Figures;
  readonly min?: Figures;
  readonly max?: Figures;
}

/** One cell of the comparison: a figure of one set at one point, against the first set. */
export interface CompareRow {
  readonly set: string;
  readonly folder: string;
  readonly point: string;
  readonly figure: MetricKey;
  readonly unit: string;
  readonly value?: number;
  readonly delta?: number;
  readonly deltaPct?: number;
}

/** The figures compared: the sweep summary's headline metrics (one list for both). */
export const COMPARE_RUN_FIGURES = SUMMARY_METRICS.map((m) => ({ key: m.key, title: m.about }));

/** compare.csv, long form: one row per set, point and figure. */
export const COMPARE_CSV_COLUMNS = [
  { key: 'set', unit: '', about: 'A, B, C... in the order given (A is the baseline)' },
  { key: 'folder', unit: '', about: "The set's folder" },
  { key: 'point', unit: '', about: "The sweep point (empty for a run)" },
  { key: 'figure', unit: '', about: 'Which figure (see the list above)' },
  { key: 'unit', unit: '', about: "The figure's unit" },
  { key: 'value', unit: 'of the figure', about: "A run's figure; a sweep point's median over its completed runs" },
  { key: 'delta', unit: 'of the figure', about: 'value minus the first set\'s at the same point' },
  { key: 'deltaPct', unit: '%', about: 'delta over the first set\'s value' },
] as const satisfies readonly { key: keyof CompareRow; unit: string; about: string }[];

const SHORT: Record<MetricKey, string> = {
  downtimeMs: 'downtime',
  eventDowntimeMs: 'STOP→RESUME',
  clientDowntimeMs: 'client gap',
  traceDowntimeMs: 'trace',
  totalTimeMs: 'total time',
  setupTimeMs: 'setup',
  transferredMiB: 'RAM sent',
  averageThroughputMiBps: 'throughput',
  dirtySyncCount: 'passes',
  postcopyRequests: 'page requests',
  postcopyBlocktimeMs: 'blocktime',
  sourceCpuMs: 'src CPU',
  destinationCpuMs: 'dst CPU',
};

const LABELS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

function figuresOf(entries: readonly RunEntry[]): Partial<Record<MetricKey, number>> {
  const e = entries[0];
  return e ? Object.fromEntries(SUMMARY_METRICS.map((m) => [m.key, m.of(e)]).filter(([, v]) => v !== undefined)) : {};
}

const KINDS_HINT = 'give run folders (results/<run-id>/) or sweep folders (results/sweep-NAME/)';

/** Read one folder: a run folder (run.json) or a sweep folder (sweep.json); anything else is refused. */
export async function loadSet(dir: string, index: number): Promise<CompareSet> {
  const label = LABELS[index] ?? `S${index + 1}`;
  const kind = folderKind(dir);
  if (kind === 'run') {
    const report = await readResultIn(RUN_CONTRACT, dir);
    const entry: RunEntry = { report, dir, point: report.name };
    const completed = report.outputs.status === 'completed' ? 1 : 0;
    return { label, dir, kind: 'run', name: report.name, outcome: report.verdict, points: new Map([['', { runs: 1, completed, figures: figuresOf([entry]) }]]) };
  }
  if (kind === 'sweep') {
    const loaded = await loadResults(dir);
    const summary = summarizePoints(loaded.entries, { order: loaded.sweep?.points.map((p) => p.name) });
    const stat = (p: (typeof summary)[number], f: 'median' | 'min' | 'max'): Figures =>
      Object.fromEntries(SUMMARY_METRICS.map((m) => [m.key, p.metrics[m.key][f]]).filter(([, v]) => v !== undefined));
    const points = new Map<string, PointFigures>(summary.map((p) => [p.point, { runs: p.runs, completed: p.converged, figures: stat(p, 'median'), min: stat(p, 'min'), max: stat(p, 'max') }]));
    const total = summary.reduce((a, p) => a + p.runs, 0);
    const completed = summary.reduce((a, p) => a + p.converged, 0);
    return { label, dir, kind: 'sweep', name: loaded.sweep?.name ?? basename(dir), outcome: `${completed}/${total} completed`, points };
  }
  throw new UsageError(`${dir} is a ${kind} folder: compare sets runs or sweeps side by side`, KINDS_HINT);
}

/** The same folder given twice (also spelled differently: a trailing slash, .., a symlink) is refused. */
function refuseRepeats(dirs: readonly string[]): void {
  const seen = new Map<string, number>();
  for (const [i, d] of dirs.entries()) {
    const real = existsSync(d) ? realpathSync(d) : resolve(d);
    const first = seen.get(real);
    if (first !== undefined) {
      throw new UsageError(`${LABELS[first] ?? `S${first + 1}`} and ${LABELS[i] ?? `S${i + 1}`} are the same folder (${real}): a folder compared with itself shows nothing`, 'give each folder once');
    }
    seen.set(real, i);
  }
}

/** Check the folders before reading any: at least two, each once, and all of one kind. */
export async function loadSets(dirs: readonly string[]): Promise<CompareSet[]> {
  if (dirs.length < 2) throw new UsageError(`compare needs at least two folders (got ${dirs.length})`, 'e.g. miglab compare results/RUN-A results/RUN-B');
  if (dirs.length > LABELS.length) throw new UsageError(`compare takes at most ${LABELS.length} folders (got ${dirs.length})`, 'compare fewer at a time');
  refuseRepeats(dirs);
  const sets: CompareSet[] = [];
  for (const [i, d] of dirs.entries()) sets.push(await loadSet(resolve(d), i));
  const first = sets[0]!;
  const other = sets.find((s) => s.kind !== first.kind);
  if (other) {
    throw new UsageError(
      `cannot compare a ${first.kind} with a ${other.kind}: ${first.label} (${first.dir}) is a ${first.kind} folder, ${other.label} (${other.dir}) is a ${other.kind} folder`,
      'give only run folders or only sweep folders',
    );
  }
  return sets;
}

/** Every set x point x figure, with its delta against the first set at the same point. */
export function compareRows(sets: readonly CompareSet[]): CompareRow[] {
  const base = sets[0]!;
  const points = [...new Set(sets.flatMap((s) => [...s.points.keys()]))];
  const rows: CompareRow[] = [];
  for (const point of points) {
    for (const m of SUMMARY_METRICS) {
      const b = base.points.get(point)?.figures[m.key];
      for (const s of sets) {
        const value = s.points.get(point)?.figures[m.key];
        const delta = value !== undefined && b !== undefined && s !== base ? value - b : undefined;
        const deltaPct = delta !== undefined && b !== undefined && b !== 0 ? (100 * delta) / b : undefined;
        rows.push({ set: s.label, folder: s.dir, point, figure: m.key, unit: unitOfName(m.key)?.symbol ?? '', value, delta, deltaPct });
      }
    }
  }
  return rows;
}

/** A figure with its unit, rounded as measured: "41.8 ms", "82.7 MiB", "3 passes". */
export function formatFigure(key: string, v: number | undefined, signed = false): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  const unit = unitOfName(key);
  const r = roundByName(key, v);
  const text = `${signed && r > 0 ? '+' : ''}${r.toLocaleString('en-US', { maximumFractionDigits: 3 })}`;
  return unit ? `${text} ${unit.symbol}` : text;
}

function formatPct(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  return `${v > 0 ? '+' : ''}${v.toFixed(1)} %`;
}

export interface CompareResult {
  readonly dir: string;
  readonly sets: readonly CompareSet[];
  readonly rows: readonly CompareRow[];
  readonly markdownPath: string;
  readonly htmlPath: string;
  readonly csvPath: string;
  readonly pngPaths: readonly string[];
}

type Cell = Record<string, string>;

/** The Markdown table for one point: a row per figure, a column per set, and each set's delta. */
function pointTable(sets: readonly CompareSet[], rows: readonly CompareRow[], point: string): { columns: Column<Cell>[]; cells: Cell[] } {
  const columns: Column<Cell>[] = [{ key: 'figure', title: 'figure' }];
  for (const s of sets) {
    columns.push({ key: s.label, title: s.label, align: 'right' });
    if (s !== sets[0]) columns.push({ key: `${s.label}Δ`, title: `${s.label} − ${sets[0]!.label}`, align: 'right' });
  }
  const cells = SUMMARY_METRICS.map((m) => {
    const cell: Cell = { figure: m.about };
    for (const s of sets) {
      const r = rows.find((x) => x.point === point && x.figure === m.key && x.set === s.label);
      cell[s.label] = formatFigure(m.key, r?.value);
      if (s !== sets[0]) cell[`${s.label}Δ`] = r?.delta === undefined ? '–' : `${formatFigure(m.key, r.delta, true)} (${formatPct(r.deltaPct)})`;
    }
    return cell;
  });
  return { columns, cells };
}

/** Compare the folders and write compare.md/.html, compare.csv and the figures under `resultsRoot`. */
export async function compareResults(dirs: readonly string[], resultsRoot: string): Promise<CompareResult> {
  const sets = await loadSets(dirs);
  const rows = compareRows(sets);
  // results/compare-ID/, as README and results/README.md name it (a sweep's is sweep-NAME/).
  const dir = join(resolve(resultsRoot), `compare-${newRunId(`${sets[0]!.kind}s`)}`);
  await makePrivateDir(dir);
  const csvPath = join(dir, 'compare.csv');
  await writeTableCsv(
    csvPath,
    COMPARE_CSV_COLUMNS.map((c) => ({ key: c.key, title: c.key, about: c.about })),
    // value and delta are rounded by their own figure's unit (the column's name says none).
    rows.map((r) => ({ ...r, value: r.value === undefined ? undefined : roundByName(r.figure, r.value), delta: r.delta === undefined ? undefined : roundByName(r.figure, r.delta) })),
  );

  const doc = markdown().heading(1, `Comparison of ${sets.length} ${sets[0]!.kind}s`);
  doc.paragraph(
    sets[0]!.kind === 'run'
      ? `Each run's own figures; deltas are against ${sets[0]!.label}.`
      : `Each sweep point's median over its completed runs; deltas are against ${sets[0]!.label} at the same point. A point missing from a sweep has no figures there.`,
  );
  doc.table<Cell>(
    [
      { key: 'set', title: 'set' },
      { key: 'name', title: 'name' },
      { key: 'outcome', title: sets[0]!.kind === 'run' ? 'verdict' : 'runs' },
      { key: 'folder', title: 'folder' },
    ],
    sets.map((s) => ({ set: s.label, name: s.name, outcome: s.outcome, folder: s.dir })),
  );
  const points = [...new Set(sets.flatMap((s) => [...s.points.keys()]))];
  for (const point of points) {
    if (point !== '') doc.heading(2, `Point ${point}`);
    const t = pointTable(sets, rows, point);
    doc.table(t.columns, t.cells);
  }

  const pngPaths: string[] = [];
  const plots = join(dir, 'plots');
  if (sets[0]!.kind === 'run') {
    // Figures have different units: each is drawn as its change against the baseline's, in %,
    // so they share one axis whose zero is "as A" (the baseline has no bar of its own).
    const base = sets[0]!.label;
    const data = rows.filter((r) => r.deltaPct !== undefined).map((r) => ({ figure: SHORT[r.figure], set: r.set, pct: r.deltaPct! }));
    const title = `Each figure against ${base}'s: change in %`;
    const out = await renderChart(
      barChart({ title, data, category: { field: 'figure', title: 'figure' }, group: { field: 'set', title: 'set' }, value: { field: 'pct', title: `change against ${base}`, unit: '%' }, size: { width: 90 * SUMMARY_METRICS.length } }),
      join(plots, 'compare'),
    );
    pngPaths.push(out.pngPath);
    doc
      .heading(2, 'Figure')
      .image(`each figure against ${base}'s, change in %`, 'plots/compare.png')
      .paragraph(
        `0 is "as ${base}"; a bar above it is more than ${base}'s figure, below it less. ${SUMMARY_METRICS.map((m) => `${SHORT[m.key]}: ${m.about}`).join('; ')}. A figure ${base} or a set lacks has no bar.`,
      );
  } else {
    for (const key of ['downtimeMs', 'totalTimeMs', 'transferredMiB'] as const) {
      const spread = (r: CompareRow, f: 'min' | 'max') => sets.find((s) => s.label === r.set)!.points.get(r.point)?.[f]?.[key] ?? r.value!;
      const data = rows.filter((r) => r.figure === key && r.value !== undefined).map((r) => ({ point: r.point, set: r.set, value: r.value!, low: spread(r, 'min'), high: spread(r, 'max') }));
      if (data.length === 0) continue;
      const title = SUMMARY_METRICS.find((m) => m.key === key)!.about;
      const out = await renderChart(
        barChart({
          title: `${title} by point (median; whiskers from min to max)`,
          data,
          category: { field: 'point', title: 'point' },
          group: { field: 'set', title: 'sweep' },
          value: { field: 'value', title: SHORT[key], unit: unitOfName(key)?.symbol ?? '' },
          errorLow: 'low',
          errorHigh: 'high',
        }),
        join(plots, key),
      );
      pngPaths.push(out.pngPath);
      doc.heading(2, title).image(`${title} by point`, `plots/${key}.png`);
    }
  }
  doc.paragraph('`compare.csv` has every figure of every set and point, with its delta, in long form (one row each).');
  const written = await writeReport(dir, doc.render(), `miglab compare: ${sets.map((s) => s.label).join(' vs ')}`);
  return { dir, sets, rows, csvPath, pngPaths, ...written };
}

/** The terminal's summary: downtime and total time of each set (per point for sweeps), with deltas. */
export function formatHeadlines(r: Pick<CompareResult, 'sets' | 'rows'>): string {
  const lines: string[] = [];
  const points = [...new Set(r.rows.map((x) => x.point))];
  for (const point of points) {
    for (const key of ['downtimeMs', 'totalTimeMs'] as const) {
      const cells = r.sets.map((s) => {
        const row = r.rows.find((x) => x.point === point && x.figure === key && x.set === s.label);
        const delta = row?.delta === undefined ? '' : ` (${formatFigure(key, row.delta, true)}, ${formatPct(row.deltaPct)})`;
        return `${s.label} ${formatFigure(key, row?.value)}${delta}`;
      });
      lines.push(`  ${(point ? `${point} ` : '') + SHORT[key]}`.padEnd(point ? 34 : 18) + cells.join('   '));
    }
  }
  return lines.join('\n');
}
