// `miglab containers sweep`: the related work's two figures, with spread. Downtime against the
// container's memory size (its working set, at one write rate) and against its memory write speed
// (at one working set), per strategy, each point repeated. Every run is a `containers migrate` on
// the same lab; the sweep folder holds each run's folder, sweep.json, sweep.csv, summary.md and
// plots/ (CRIU's frozen time and the client's downtime, median with min-max whiskers).
import { stringify } from 'csv-stringify/sync';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT, newRunId, useLab } from '../api.js';
import { UsageError, describeError } from '../errors.js';
import type { LabSpecInput } from '../lab/spec.js';
import { renderChart, scatterWithSpread } from '../plot/index.js';
import type { Progress } from '../progress/progress.js';
import { checkResultsDir } from '../report/results-dir.js';
import { summarize } from '../stats/index.js';
import { withTeardown } from '../util/teardown.js';
import type { ContainerFigures } from './migrate.js';
import { STRATEGIES, type Strategy } from './strategies.js';
import { TRANSFERS, type TransferMode } from './transfer.js';
import { checkCombination, containersMigrate } from './run.js';

export interface SweepAxes {
  /** Working sets (MiB) swept at `atRateMiBps`. */
  readonly wssMiB: readonly number[];
  readonly atRateMiBps: number;
  /** Write rates (MiB/s) swept at `atWssMiB`. */
  readonly ratesMiBps: readonly number[];
  readonly atWssMiB: number;
}

export interface SweepPoint {
  readonly wssMiB: number;
  readonly rateMiBps: number;
  /** Which figure the point belongs to: the size axis, the rate axis, or both (the shared point). */
  readonly axes: readonly ('size' | 'rate')[];
}

export interface SweepRun {
  readonly strategy: Strategy;
  readonly wssMiB: number;
  readonly rateMiBps: number;
  readonly repetition: number;
  readonly runId?: string;
  readonly verdict: 'intact' | 'broken' | 'failed';
  readonly figures?: ContainerFigures;
  readonly failure?: string;
}

/** The points to run: the size axis and the rate axis, the point they share once. */
export function sweepPoints(a: SweepAxes): SweepPoint[] {
  const points = new Map<string, SweepPoint>();
  const add = (wssMiB: number, rateMiBps: number, axis: 'size' | 'rate') => {
    const key = `${wssMiB}@${rateMiBps}`;
    const p = points.get(key);
    points.set(key, { wssMiB, rateMiBps, axes: p ? [...new Set([...p.axes, axis])] : [axis] });
  };
  for (const w of a.wssMiB) add(w, a.atRateMiBps, 'size');
  for (const r of a.ratesMiBps) add(a.atWssMiB, r, 'rate');
  return [...points.values()];
}

function positiveList(what: string, values: readonly number[], min: number): void {
  if (values.length === 0) throw new UsageError(`no ${what} given`, `give a comma-separated list, e.g. 16,32,64`);
  const bad = values.find((v) => !Number.isInteger(v) || v < min || v > 4096);
  if (bad !== undefined) throw new UsageError(`${what} ${bad} is out of range`, `use whole numbers from ${min} to 4096`);
}

export function checkSweepAxes(a: SweepAxes): void {
  positiveList('working set (MiB)', a.wssMiB, 1);
  positiveList('working set (MiB)', [a.atWssMiB], 1);
  positiveList('write rate (MiB/s)', a.ratesMiBps, 0);
  positiveList('write rate (MiB/s)', [a.atRateMiBps], 0);
}

export interface PointSummaryRow {
  readonly strategy: Strategy;
  readonly wssMiB: number;
  readonly rateMiBps: number;
  readonly runs: number;
  readonly intact: number;
  readonly frozenMs?: number;
  readonly frozenMinMs?: number;
  readonly frozenMaxMs?: number;
  readonly downtimeMs?: number;
  readonly downtimeMinMs?: number;
  readonly downtimeMaxMs?: number;
}

/** Median and min-max per strategy and point, over the intact runs. */
export function summarizeSweep(runs: readonly SweepRun[]): PointSummaryRow[] {
  const keys = [...new Set(runs.map((r) => `${r.strategy}|${r.wssMiB}|${r.rateMiBps}`))];
  return keys.map((key) => {
    const [strategy, wss, rate] = key.split('|') as [Strategy, string, string];
    const mine = runs.filter((r) => r.strategy === strategy && r.wssMiB === Number(wss) && r.rateMiBps === Number(rate));
    const ok = mine.filter((r) => r.verdict === 'intact' && r.figures);
    const frozen = summarize(ok.map((r) => r.figures!.criuFrozenMs));
    const down = summarize(ok.map((r) => r.figures!.clientDowntimeMs));
    return {
      strategy,
      wssMiB: Number(wss),
      rateMiBps: Number(rate),
      runs: mine.length,
      intact: ok.length,
      frozenMs: frozen.median,
      frozenMinMs: frozen.min,
      frozenMaxMs: frozen.max,
      downtimeMs: down.median,
      downtimeMinMs: down.min,
      downtimeMaxMs: down.max,
    };
  });
}

export interface ContainerSweepRequest extends Partial<SweepAxes> {
  readonly strategies?: readonly string[];
  readonly transfer?: string;
  readonly repeat?: number;
  readonly memoryMiB?: number;
  readonly lab?: LabSpecInput;
  readonly resultsRoot?: string;
  readonly progress?: Progress;
}

export const SWEEP_DEFAULTS: SweepAxes = { wssMiB: [16, 32, 64], atRateMiBps: 16, ratesMiBps: [0, 8, 16, 32], atWssMiB: 64 };

const fmt = (x: number | undefined) => (x === undefined ? 'n/a' : x.toFixed(0));

export async function containersSweep(req: ContainerSweepRequest): Promise<{ dir: string; rows: PointSummaryRow[]; runs: SweepRun[] }> {
  const axes: SweepAxes = {
    wssMiB: req.wssMiB ?? SWEEP_DEFAULTS.wssMiB,
    atRateMiBps: req.atRateMiBps ?? SWEEP_DEFAULTS.atRateMiBps,
    ratesMiBps: req.ratesMiBps ?? SWEEP_DEFAULTS.ratesMiBps,
    atWssMiB: req.atWssMiB ?? SWEEP_DEFAULTS.atWssMiB,
  };
  checkSweepAxes(axes);
  const strategies = (req.strategies ?? STRATEGIES) as readonly string[];
  const unknown = strategies.find((s) => !(STRATEGIES as readonly string[]).includes(s));
  if (unknown !== undefined) throw new UsageError(`unknown strategy "${unknown}"`, `use some of ${STRATEGIES.join(', ')}`);
  const transfer = (req.transfer ?? 'nfs') as TransferMode;
  if (!(TRANSFERS as readonly string[]).includes(transfer)) throw new UsageError(`unknown transfer "${transfer}"`, `use one of ${TRANSFERS.join(', ')}`);
  for (const s of strategies) checkCombination(s as Strategy, transfer);
  const repeat = req.repeat ?? 2;
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 50) throw new UsageError(`repeat ${repeat} is out of range`, 'use 1 to 50');
  const points = sweepPoints(axes);
  const root = await checkResultsDir(req.resultsRoot ?? join(REPO_ROOT, 'results'));
  const dir = join(root, newRunId('ctr-sweep'));
  const prefix = req.lab?.prefix ?? 'mlab';
  const runs: SweepRun[] = [];
  const total = points.length * strategies.length * repeat;
  await withTeardown(async (td, signal) => {
    // One lab for the sweep: each run attaches to it.
    await useLab(td, { lab: req.lab }, signal);
    // Repetitions outermost: a slow spell of the machine spreads over the points.
    for (let repetition = 1; repetition <= repeat; repetition++) {
      for (const p of points) {
        for (const strategy of strategies as readonly Strategy[]) {
          req.progress?.('sweep', `${runs.length + 1}/${total}: mem:${p.wssMiB}M@${p.rateMiBps}M/s ${strategy} (repetition ${repetition})`);
          try {
            const r = await containersMigrate({ workload: `mem:${p.wssMiB}M@${p.rateMiBps}M/s`, strategy, transfer, memoryMiB: req.memoryMiB, lab: { ...req.lab, prefix }, resultsRoot: dir, signal });
            runs.push({ strategy, wssMiB: p.wssMiB, rateMiBps: p.rateMiBps, repetition, runId: r.runId, verdict: r.verdict, figures: r.result.figures });
          } catch (err) {
            if (signal.aborted) throw err;
            runs.push({ strategy, wssMiB: p.wssMiB, rateMiBps: p.rateMiBps, repetition, verdict: 'failed', failure: describeError(err) });
          }
        }
      }
    }
  });
  const rows = summarizeSweep(runs);
  await writeSweep(dir, { axes, transfer, repeat, points, rows, runs });
  return { dir, rows, runs };
}

async function writeSweep(dir: string, s: { axes: SweepAxes; transfer: TransferMode; repeat: number; points: SweepPoint[]; rows: PointSummaryRow[]; runs: SweepRun[] }): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'sweep.json'), `${JSON.stringify({ schema: 'miglab.container-sweep/1', ...s }, null, 2)}\n`);
  await writeFile(
    join(dir, 'sweep.csv'),
    stringify(
      s.runs.map((r) => ({
        strategy: r.strategy,
        wss_mib: r.wssMiB,
        rate_mibps: r.rateMiBps,
        repetition: r.repetition,
        verdict: r.verdict,
        criu_frozen_ms: r.figures?.criuFrozenMs ?? '',
        client_downtime_ms: r.figures?.clientDowntimeMs ?? '',
        restore_ms: r.figures?.restoreWallMs ?? '',
        total_ms: r.figures?.totalMs ?? '',
        pre_dumps: r.figures?.preDumpRounds ?? '',
        run_id: r.runId ?? '',
        failure: r.failure ?? '',
      })),
      { header: true },
    ),
  );
  const onAxis = (axis: 'size' | 'rate') => s.rows.filter((r) => s.points.some((p) => p.axes.includes(axis) && p.wssMiB === r.wssMiB && p.rateMiBps === r.rateMiBps));
  const charts = [
    { base: 'frozen-vs-wss', axis: 'size' as const, x: { field: 'wssMiB' as const, title: 'working set', unit: 'MiB' }, y: 'frozen' as const, title: `CRIU's frozen time vs working set (at ${s.axes.atRateMiBps} MiB/s)` },
    { base: 'downtime-vs-wss', axis: 'size' as const, x: { field: 'wssMiB' as const, title: 'working set', unit: 'MiB' }, y: 'downtime' as const, title: `Client downtime vs working set (at ${s.axes.atRateMiBps} MiB/s)` },
    { base: 'frozen-vs-rate', axis: 'rate' as const, x: { field: 'rateMiBps' as const, title: 'write rate', unit: 'MiB/s' }, y: 'frozen' as const, title: `CRIU's frozen time vs write rate (${s.axes.atWssMiB} MiB working set)` },
    { base: 'downtime-vs-rate', axis: 'rate' as const, x: { field: 'rateMiBps' as const, title: 'write rate', unit: 'MiB/s' }, y: 'downtime' as const, title: `Client downtime vs write rate (${s.axes.atWssMiB} MiB working set)` },
  ];
  for (const c of charts) {
    const data = onAxis(c.axis).filter((r) => (c.y === 'frozen' ? r.frozenMs : r.downtimeMs) !== undefined);
    if (data.length === 0) continue;
    const spec = scatterWithSpread<PointSummaryRow>({
      title: c.title,
      data,
      x: c.x,
      y: c.y === 'frozen' ? { field: 'frozenMs', title: "CRIU's frozen time (median)", unit: 'ms' } : { field: 'downtimeMs', title: 'client downtime (median)', unit: 'ms' },
      yLow: c.y === 'frozen' ? 'frozenMinMs' : 'downtimeMinMs',
      yHigh: c.y === 'frozen' ? 'frozenMaxMs' : 'downtimeMaxMs',
      series: { field: 'strategy', title: 'strategy' },
    });
    await renderChart(spec, join(dir, 'plots', c.base));
  }
  const md = [
    `# Container sweep (${s.transfer}, ${s.repeat} repetition(s) per point)`,
    '',
    `Working sets ${s.axes.wssMiB.join(', ')} MiB at ${s.axes.atRateMiBps} MiB/s, and write rates ${s.axes.ratesMiBps.join(', ')} MiB/s at ${s.axes.atWssMiB} MiB. Median (min-max) over the intact runs; CRIU's frozen time is the final dump's, the client's downtime the probe's longest silence (transfer and restore included).`,
    '',
    '| strategy | working set (MiB) | rate (MiB/s) | intact | frozen (ms) | client downtime (ms) |',
    '|---|---|---|---|---|---|',
    ...s.rows.map((r) => `| ${r.strategy} | ${r.wssMiB} | ${r.rateMiBps} | ${r.intact}/${r.runs} | ${fmt(r.frozenMs)} (${fmt(r.frozenMinMs)}-${fmt(r.frozenMaxMs)}) | ${fmt(r.downtimeMs)} (${fmt(r.downtimeMinMs)}-${fmt(r.downtimeMaxMs)}) |`),
    '',
    'Plots: plots/frozen-vs-wss, downtime-vs-wss, frozen-vs-rate, downtime-vs-rate (.png and .svg). Each run\'s own folder is here too.',
    '',
  ].join('\n');
  await writeFile(join(dir, 'summary.md'), md);
}
