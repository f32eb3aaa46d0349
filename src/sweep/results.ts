// Reading saved results back: a run directory's run.json, and every run under a sweep directory
// (grouped by point through sweep.json when it is there). Tables and plots start from here, so
// they need nothing but the files a sweep or a run left behind.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { UsageError } from '../errors.js';
import type { Shaping } from '../lab/index.js';
import { RUN_SCHEMA, type RunReport } from '../migrate/report.js';
import { workloadLabel, type SweepPoint, type SweepSpec, type WorkloadValue } from './spec.js';

export const SWEEP_SCHEMA = 'miglab.sweep/1';

export type RunOutcome = 'skipped' | 'ran' | 'error' | 'pending';

/** What happened to one repetition of one point, as sweep.json records it. */
export interface RunStatus {
  readonly point: string;
  readonly rep: number;
  /** Relative to the sweep directory. */
  readonly dir: string;
  readonly outcome: RunOutcome;
  readonly verdict?: RunReport['verdict'];
  readonly ok?: boolean;
  readonly downtimeMs?: number;
  readonly totalTimeMs?: number;
  /** Why a run that produced a report failed (its report's failure). */
  readonly failure?: string;
  /** Why a run could not produce a report (it is run again on the next invocation). */
  readonly error?: string;
}

/** sweep.json: the spec, the expanded points and what happened to every run. */
export interface SweepFile {
  readonly schema: typeof SWEEP_SCHEMA;
  readonly name: string;
  readonly spec: SweepSpec;
  readonly points: readonly SweepPoint[];
  readonly runs: readonly RunStatus[];
  readonly updatedAt: string;
  readonly counts: { readonly total: number; readonly ran: number; readonly skipped: number; readonly errors: number; readonly pending: number };
}

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
 * A run.json is complete when it parses and carries the run schema, a verdict and outputs, and
 * the run was not interrupted (an interrupted repetition runs again when the sweep resumes).
 */
export function isCompleteReport(x: unknown): x is RunReport {
  if (x === null || typeof x !== 'object') return false;
  const r = x as Partial<RunReport>;
  return (
    r.schema === RUN_SCHEMA &&
    typeof r.ok === 'boolean' &&
    typeof r.verdict === 'string' &&
    r.verdict !== 'interrupted' &&
    typeof r.outputs === 'object' &&
    r.outputs !== null &&
    typeof r.inputs === 'object' &&
    r.inputs !== null &&
    typeof r.inputs.scenario === 'object'
  );
}

/** The report in `<dir>/run.json`, or undefined when there is none or it is incomplete. */
export async function readRunReport(dir: string): Promise<RunReport | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, 'run.json'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // A run killed while writing run.json leaves a truncated file: that run is incomplete.
    return undefined;
  }
  return isCompleteReport(parsed) ? parsed : undefined;
}

export async function readSweepFile(dir: string): Promise<SweepFile | undefined> {
  const file = join(dir, 'sweep.json');
  if (!existsSync(file)) return undefined;
  const parsed = JSON.parse(await readFile(file, 'utf8')) as Partial<SweepFile>;
  if (parsed.schema !== SWEEP_SCHEMA) throw new UsageError(`${file} is not a miglab sweep file (schema ${String(parsed.schema)})`);
  return parsed as SweepFile;
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
