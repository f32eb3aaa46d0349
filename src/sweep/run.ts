// Executes a sweep: every point x repetition, one migration each, on one lab brought up once.
// Everything is validated before anything starts. Results go to a stable folder
// (results/sweep-NAME/POINT/repK/) so a second invocation resumes: a repetition whose run.json
// is complete is skipped. A run that fails or does not converge is recorded and the sweep goes
// on; an interrupt (Ctrl-C, the caller's signal) stops it. sweep.json and summary.csv are
// rewritten after every run, from the saved reports.
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { migrateOnLab, preflightFor, REPO_ROOT, useLab } from '../api.js';
import { describeError, UsageError } from '../errors.js';
import type { LabSpecInput } from '../lab/index.js';
import type { Progress } from '../progress/progress.js';
import type { RunReport } from '../migrate/report.js';
import type { Scenario } from '../migrate/scenario.js';
import { checkPortFree } from '../preflight.js';
import { checkResultsDir } from '../report/results-dir.js';
import { makePrivateDir } from '../util/private.js';
import { writeRunFiles } from '../report/run-files.js';
import { withTeardown } from '../util/teardown.js';
import { writeResult } from '../results/contract.js';
import { SWEEP_CONTRACT } from '../results/sweep.js';
import { readRunReport, readSweepFile, SWEEP_SCHEMA, type RunEntry, type RunStatus, type SweepFile } from './results.js';
import { loadSweepSpec, parseSweepSpec, validateSweep, type SweepSpec, type SweepSpecInput, type ValidatedPoint } from './spec.js';
import { summarizePoints, writeSummaryCsv, type PointSummary } from './summary.js';

/**
 * Runs one migration and writes its files into `dir` (at least run.json; if it does not, the
 * sweep writes run.json from the returned report). Tests pass a fake; the default drives QEMU.
 */
export type SweepRunner = (scenario: Scenario, dir: string, point: ValidatedPoint, rep: number, signal: AbortSignal) => Promise<RunReport>;

export interface RunSweepOptions {
  /** A YAML sweep file; or give `spec`. */
  readonly specPath?: string;
  readonly spec?: SweepSpecInput;
  /** The sweep goes to `<resultsRoot>/sweep-NAME/` (default: the repository's results/). */
  readonly resultsRoot?: string;
  /** Use the lab that is up with this prefix, or bring one up for the sweep. */
  readonly lab?: LabSpecInput;
  /** A hosts file: run on the machines it names, over SSH, instead of the embedded lab. */
  readonly hosts?: string;
  /** Override the spec's repetitions (more adds runs; already complete ones are kept). */
  readonly repetitions?: number;
  readonly progress?: Progress;
  readonly signal?: AbortSignal;
  readonly runner?: SweepRunner;
}

export interface SweepResult {
  readonly dir: string;
  readonly spec: SweepSpec;
  readonly points: readonly ValidatedPoint[];
  readonly runs: readonly RunStatus[];
  readonly ran: number;
  readonly skipped: number;
  /** Runs that threw instead of producing a report (they run again next time). */
  readonly errors: number;
  readonly summary: readonly PointSummary[];
  readonly files: { readonly sweepJson: string; readonly summaryCsv: string };
}

const SHAPING_TIMEOUT_MS = 30000;

interface Planned {
  readonly point: ValidatedPoint;
  readonly rep: number;
  readonly dir: string;
  status: RunStatus;
  report?: RunReport;
}

/** The results folder of a sweep: stable, so that a rerun resumes. */
export function sweepDir(resultsRoot: string, name: string): string {
  return join(resolve(resultsRoot), `sweep-${name}`);
}

/** Everything but repetitions decides which runs belong together. */
function sameSweep(a: SweepSpec, b: SweepSpec): boolean {
  const strip = (s: SweepSpec) => JSON.stringify({ ...s, repetitions: undefined });
  return strip(a) === strip(b);
}

export async function runSweep(opts: RunSweepOptions): Promise<SweepResult> {
  if ((opts.specPath === undefined) === (opts.spec === undefined)) throw new UsageError('runSweep needs a sweep file or a spec (exactly one)');
  let spec = opts.specPath !== undefined ? await loadSweepSpec(opts.specPath) : parseSweepSpec(opts.spec);
  if (opts.repetitions !== undefined) spec = parseSweepSpec({ ...spec, repetitions: opts.repetitions }, 'repetitions');
  const points = validateSweep(spec);
  const progress = opts.progress ?? (() => undefined);
  if (opts.hosts !== undefined && points.some((p) => p.shaping !== undefined)) {
    throw new UsageError('a sweep over link shaping runs on the embedded lab only', "drop --hosts, or the shaping axis: miglab does not change your hosts' links");
  }

  // Where results go is checked before anything starts (a full or read-only disk is one line).
  const dir = sweepDir(await checkResultsDir(opts.resultsRoot ?? join(REPO_ROOT, 'results')), spec.name);
  const previous = await readSweepFile(dir);
  if (previous && !sameSweep(previous.spec, spec)) {
    throw new UsageError(`${dir} holds a sweep made from a different spec`, 'rename the sweep or move that folder away');
  }

  const plan: Planned[] = [];
  for (const point of points) {
    for (let rep = 1; rep <= spec.repetitions; rep++) {
      const runDir = join(dir, point.name, `rep${rep}`);
      const report = await readRunReport(runDir);
      const rel = relative(dir, runDir);
      plan.push({
        point,
        rep,
        dir: runDir,
        report,
        status: report ? statusOf(point.name, rep, rel, 'skipped', report) : { point: point.name, rep, dir: rel, outcome: 'pending' },
      });
    }
  }
  const pending = plan.filter((p) => !p.report);
  progress('sweep', `${spec.name}: ${points.length} points x ${spec.repetitions} = ${plan.length} runs, ${plan.length - pending.length} already complete`);
  await makePrivateDir(dir);
  await writeSweepFile(dir, spec, points, plan);

  if (pending.length > 0) {
    const loop = (runner: SweepRunner, signal: AbortSignal, shape: (p: ValidatedPoint) => Promise<() => Promise<void>>) =>
      runPending(pending, plan, { dir, spec, points, runner, signal, progress, shape });
    if (opts.runner) {
      const signal = opts.signal ?? new AbortController().signal;
      await loop(opts.runner, signal, async () => async () => undefined);
    } else {
      const where = { lab: opts.lab, hosts: opts.hosts, cpuModels: points.map((p) => p.parsed.guest.cpuModel) };
      const image = await preflightFor(where, points.flatMap((p) => p.parsed.faults));
      await withTeardown(async (td, signal) => {
        const lab = await useLab(td, where, signal);
        if (points.some((p) => p.shaping !== undefined)) {
          const before = lab.shaping;
          td.defer('restore link shaping', () => (before ? lab.shapeLinks(before) : lab.clearShaping()));
        }
        const ports = new Set(points.map((p) => p.parsed.port));
        for (const port of ports) await checkPortFree(lab.hosts.dst.host, port, 'migration');
        const runner: SweepRunner = async (scenario, runDir, _point, _rep, sig) =>
          (await migrateOnLab({ lab, image, scenario, dir: dirname(runDir), runDirName: basename(runDir), signal: sig, progress })).report;
        await loop(runner, signal, async (p) => {
          if (p.shaping === undefined) return async () => undefined;
          const step = { timeoutMs: SHAPING_TIMEOUT_MS, signal };
          if (p.shaping === null) await lab.clearShaping(step);
          else await lab.shapeLinks(p.shaping, step);
          progress('sweep', `${p.name}: uplinks ${p.shaping === null ? 'unshaped' : `limited to ${p.shaping.bandwidthMbit} Mbit/s`}`);
          return () => lab.clearShaping({ timeoutMs: SHAPING_TIMEOUT_MS });
        });
      }, opts.signal);
    }
  }

  const summary = await finish(dir, spec, points, plan);
  const count = (o: RunStatus['outcome']) => plan.filter((p) => p.status.outcome === o).length;
  return {
    dir,
    spec,
    points,
    runs: plan.map((p) => p.status),
    ran: count('ran'),
    skipped: count('skipped'),
    errors: count('error'),
    summary,
    files: { sweepJson: join(dir, 'sweep.json'), summaryCsv: join(dir, 'summary.csv') },
  };
}

interface LoopContext {
  readonly dir: string;
  readonly spec: SweepSpec;
  readonly points: readonly ValidatedPoint[];
  readonly runner: SweepRunner;
  readonly signal: AbortSignal;
  readonly progress: Progress;
  /** Set the point's link shaping; returns how to clear it. */
  readonly shape: (p: ValidatedPoint) => Promise<() => Promise<void>>;
}

async function runPending(pending: readonly Planned[], plan: readonly Planned[], c: LoopContext): Promise<void> {
  try {
    await runEach(pending, plan, c);
  } finally {
    c.progress.live?.({ topic: 'sweep' });
  }
}

async function runEach(pending: readonly Planned[], plan: readonly Planned[], c: LoopContext): Promise<void> {
  let n = 0;
  // Wall time of the runs done in this invocation: the estimate of what is left.
  let doneMs = 0;
  for (const point of c.points) {
    const mine = pending.filter((p) => p.point === point);
    if (mine.length === 0) continue;
    const unshape = await c.shape(point);
    try {
      for (const item of mine) {
        c.signal.throwIfAborted();
        n++;
        const rel = relative(c.dir, item.dir);
        const runStartedAt = Date.now();
        c.progress.live?.({ topic: 'sweep', status: { kind: 'sweep', run: n, of: pending.length, name: rel, runStartedAt, meanRunMs: n > 1 ? doneMs / (n - 1) : undefined } });
        // A repetition without a complete run.json was interrupted: start it afresh.
        if (existsSync(item.dir)) await rm(item.dir, { recursive: true, force: true });
        await makePrivateDir(item.dir);
        try {
          let report = await c.runner(point.parsed, item.dir, point, item.rep, c.signal);
          if (!(await readRunReport(item.dir))) report = await writeRunFiles(report, item.dir);
          item.report = report;
          item.status = statusOf(point.name, item.rep, rel, 'ran', report);
          c.progress('sweep', `${rel}: ${report.verdict}${report.outputs.downtimeMs !== undefined ? `, downtime ${report.outputs.downtimeMs} ms` : ''}${report.failure ? ` (${report.failure})` : ''}`);
        } catch (err) {
          if (c.signal.aborted) throw err;
          item.status = { point: point.name, rep: item.rep, dir: rel, outcome: 'error', error: describeError(err) };
          c.progress('sweep', `${rel}: error: ${item.status.error}`);
        }
        doneMs += Date.now() - runStartedAt;
        await writeSweepFile(c.dir, c.spec, c.points, plan);
      }
    } finally {
      await unshape();
    }
  }
}

function statusOf(point: string, rep: number, dir: string, outcome: 'skipped' | 'ran', r: RunReport): RunStatus {
  return { point, rep, dir, outcome, verdict: r.verdict, ok: r.ok, downtimeMs: r.outputs.downtimeMs, totalTimeMs: r.outputs.totalTimeMs, ...(r.failure ? { failure: r.failure } : {}) };
}

async function writeSweepFile(dir: string, spec: SweepSpec, points: readonly ValidatedPoint[], plan: readonly Planned[]): Promise<void> {
  const runs = plan.map((p) => p.status);
  const count = (o: RunStatus['outcome']) => runs.filter((r) => r.outcome === o).length;
  const file: SweepFile = {
    schema: SWEEP_SCHEMA,
    name: spec.name,
    spec,
    // The parsed scenario is in each run's report; the sweep file keeps the point as specified.
    points: points.map(({ parsed: _parsed, ...p }) => p),
    runs,
    updatedAt: new Date().toISOString(),
    counts: { total: runs.length, ran: count('ran'), skipped: count('skipped'), errors: count('error'), pending: count('pending') },
  };
  await writeResult(SWEEP_CONTRACT, join(dir, 'sweep.json'), file);
}

async function finish(dir: string, spec: SweepSpec, points: readonly ValidatedPoint[], plan: readonly Planned[]): Promise<PointSummary[]> {
  await writeSweepFile(dir, spec, points, plan);
  const entries: RunEntry[] = plan.flatMap((p) => (p.report ? [{ report: p.report, dir: p.dir, point: p.point.name, rep: p.rep, shaping: p.point.shaping }] : []));
  const missing: Record<string, number> = {};
  for (const p of plan) if (!p.report) missing[p.point.name] = (missing[p.point.name] ?? 0) + 1;
  const summary = summarizePoints(entries, { missing, order: points.map((p) => p.name) });
  await writeSummaryCsv(join(dir, 'summary.csv'), summary);
  return summary;
}
