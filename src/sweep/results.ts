// Reading saved results back: a run directory's run.json, and every run under a sweep directory
// (grouped by point through sweep.json when it is there). Tables and plots start from here, so
// they need nothing but the files a sweep or a run left behind.
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { UsageError } from '../errors.js';
import { readResultIn, ResultCutShortError } from '../results/contract.js';
import { RUN_CONTRACT } from '../results/run.js';
import { SWEEP_CONTRACT, type SweepFile } from '../results/sweep.js';
import type { Shaping } from '../lab/index.js';
import type { RunReport } from '../migrate/report.js';
import { workloadLabel, type WorkloadValue } from './spec.js';

export { SWEEP_SCHEMA } from '../results/sweep.js';
export type { RunOutcome, RunStatus, SweepFile } from '../results/sweep.js';

/** One saved run and where it sits. */
export interface RunEntry {
  readonly report: RunReport;
  /** Absolute path of the run directory. */
  readonly dir: string;
  /** The point it belongs to (a sweep point's name, or else the run's own name). */
  readonly point: string;
  readonly rep?: number;
  /** Uplink shaping during the run, when the sweep managed it (null = unshaped). */
  readonly shaping?: Shaping | null;
}

export interface LoadedResults {
  readonly kind: 'run' | 'sweep' | 'runs';
  readonly dir: string;
  readonly entries: readonly RunEntry[];
  readonly sweep?: SweepFile;
}

/** A run's name with its workload, so runs that differ only in workload stay apart. */
function runName(r: RunReport): string {
  const w = (r.inputs.scenario as { workload?: WorkloadValue }).workload;
  return w === undefined ? r.name : `${r.name}-${workloadLabel(w)}`;
}

/**
 * The run in `<dir>` a sweep counts as done: its run.json read as every reader reads one
 * (readResultIn), or undefined when there is none, when it was cut short (a run killed while
 * writing it) or when the run was interrupted (an interrupted repetition runs again when the
 * sweep resumes). A file of another version is migrated or refused (ResultsFormatError, one line
 * naming the file).
 */
export async function readRunReport(dir: string): Promise<RunReport | undefined> {
  if (!existsSync(join(dir, RUN_CONTRACT.file))) return undefined;
  try {
    const report = await readResultIn(RUN_CONTRACT, dir);
    return report.verdict === 'interrupted' ? undefined : report;
  } catch (err) {
    if (err instanceof ResultCutShortError) return undefined;
    throw err;
  }
}

/** sweep.json in `dir`, read through its schema, or undefined when there is none. */
export async function readSweepFile(dir: string): Promise<SweepFile | undefined> {
  const file = join(dir, 'sweep.json');
  if (!existsSync(file)) return undefined;
  return readResultIn(SWEEP_CONTRACT, dir);
}

const REP_DIR = /^rep(\d+)$/;

/** Every run.json below `dir` (not inside plots/), sorted by path. */
async function findRunDirs(dir: string, depth = 4): Promise<string[]> {
  if (existsSync(join(dir, 'run.json'))) return [dir];
  if (depth === 0) return [];
  const out: string[] = [];
  for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }))) {
    if (e.isDirectory() && e.name !== 'plots' && !e.name.startsWith('.')) out.push(...(await findRunDirs(join(dir, e.name), depth - 1)));
  }
  return out;
}

/**
 * Load a single run directory, a sweep directory, or any directory holding run directories.
 * Incomplete runs are left out. Sweep runs come in the order of the sweep's points.
 */
export async function loadResults(dir: string): Promise<LoadedResults> {
  if (!existsSync(dir)) throw new UsageError(`no results at ${dir}`);
  const single = await readRunReport(dir);
  if (single) return { kind: 'run', dir, entries: [{ report: single, dir, point: single.name }] };
  const sweep = await readSweepFile(dir);
  const pointIndex = new Map(sweep?.points.map((p, i) => [p.name, i]) ?? []);
  const entries: RunEntry[] = [];
  for (const runDir of await findRunDirs(dir)) {
    const report = await readRunReport(runDir);
    if (!report) continue;
    const parts = relative(dir, runDir).split(sep);
    const rep = parts.length === 2 ? REP_DIR.exec(parts[1]!) : null;
    const point = sweep && rep && pointIndex.has(parts[0]!) ? sweep.points[pointIndex.get(parts[0]!)!]! : undefined;
    // Without a sweep file, runs group by their POINT/repK folder, else by what they ran.
    const name = point?.name ?? (rep ? parts[0]! : runName(report));
    entries.push({ report, dir: runDir, point: name, rep: rep ? Number(rep[1]) : undefined, shaping: point?.shaping });
  }
  if (sweep) entries.sort((a, b) => (pointIndex.get(a.point) ?? Infinity) - (pointIndex.get(b.point) ?? Infinity) || (a.rep ?? 0) - (b.rep ?? 0));
  return { kind: sweep ? 'sweep' : 'runs', dir, entries, sweep };
}
