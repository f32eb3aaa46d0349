// The fault benchmark (`miglab bench --which faults`): every fault kind on an idle and a busy
// guest, as a sweep, so the sweep report carries the fault x outcome table (when each fault fired,
// how soon the run noticed, how it ended, what it left behind); and the cost of TLS on the
// migration stream against plain TCP, both on one lab in one session so their ratios compare.
// Figures go to results/bench/faults.json beside the two sweeps' own folders and reports.
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { faultRows, type FaultRow } from '../fault/table.js';
import type { Progress } from '../progress/progress.js';
import { summarize, type Summary } from '../stats/index.js';
import { plotResults } from '../sweep/plots.js';
import { loadResults } from '../sweep/results.js';
import { runSweep, sweepDir } from '../sweep/run.js';
import type { SweepSpecInput } from '../sweep/spec.js';
import { makePrivateDir } from '../util/private.js';
import { MiB } from '../util/units.js';
import { fmtMs, markdown } from '../report/markdown.js';
import { spreadCase, spreadSampleOf, spreadSection, type SpreadCase } from './spread.js';

export interface FaultsBenchOptions {
  readonly outDir: string;
  readonly progress?: Progress;
  readonly signal?: AbortSignal;
  /** TLS against plain: repetitions of each (default 3). */
  readonly repetitions?: number;
}

/** Each kind, mid-migration; timed ones both shorter and longer than the run waits. */
export const BENCH_FAULTS = [
  'kill-dst@2s',
  'kill-src@2s',
  'freeze-dst:3s@2s',
  'freeze-dst@2s',
  'freeze-src:3s@2s',
  'link-down:3s@2s',
  'link-down@2s',
  'link-loss:20:3s@2s',
  'nfs-down@2s',
  'nfs-freeze:3s@2s',
  'guest-oom@2s',
] as const;

const WORKLOADS = ['idle', 'dirty:32M@8M/s,random'];

/**
 * 256 MiB guests at 16 MiB/s: an idle one takes about 5 s to move, so a fault at 2 s lands in
 * pre-copy; an 8 s stall limit keeps the cut-off cases short.
 */
function faultSweep(): SweepSpecInput {
  return {
    name: 'faults-bench',
    repetitions: 1,
    base: { guest: { memoryMiB: 256, accel: 'tcg', diskSizeMiB: 16 }, parameters: { maxBandwidthMiBps: 16 }, stallAfterMs: 8000 },
    grid: { workload: WORKLOADS, faults: [...BENCH_FAULTS] },
    timeoutMs: 60000,
  };
}

/** Unthrottled, so what TLS costs shows in time and CPU rather than hiding under the cap. */
function tlsSweep(repetitions: number): SweepSpecInput {
  return {
    name: 'tls-bench',
    repetitions,
    base: { guest: { memoryMiB: 256, accel: 'tcg', diskSizeMiB: 16 }, parameters: { maxBandwidthMiBps: 4096 } },
    grid: { workload: ['idle', 'dirty:64M@16M/s,random'], tls: [false, true] },
    timeoutMs: 60000,
  };
}

interface TlsCase {
  readonly plain: Record<string, Summary>;
  readonly tls: Record<string, Summary>;
  /** TLS mean over plain mean, per figure. */
  readonly ratio: Record<string, number | undefined>;
}

const TLS_FIGURES = ['totalTimeMs', 'downtimeMs', 'throughputMiBps', 'sourceCpuMs', 'destinationCpuMs'] as const;

export async function runFaultsBench(opts: FaultsBenchOptions) {
  await makePrivateDir(opts.outDir);
  const progress = opts.progress ?? (() => undefined);
  const specs = [faultSweep(), tlsSweep(opts.repetitions ?? 3)];
  // A benchmark measures anew: a previous bench's runs are not resumed.
  for (const spec of specs) await rm(sweepDir(opts.outDir, spec.name), { recursive: true, force: true });

  progress('bench', `faults: ${BENCH_FAULTS.length} faults x ${WORKLOADS.length} workloads`);
  const faults = await runSweep({ spec: specs[0], resultsRoot: opts.outDir, progress, signal: opts.signal });
  const faultPlot = await plotResults(faults.dir);
  progress('bench', 'TLS against plain TCP');
  const tls = await runSweep({ spec: specs[1], resultsRoot: opts.outDir, progress, signal: opts.signal });
  const tlsPlot = await plotResults(tls.dir);

  const rows: FaultRow[] = faultRows((await loadResults(faults.dir)).entries);
  const byKind: Record<string, { runs: number; asExpected: number; detectMs: Summary; leftovers: number }> = {};
  for (const r of rows) {
    const kind = r.fault.split(/[:@]/)[0]!;
    const k = (byKind[kind] ??= { runs: 0, asExpected: 0, detectMs: summarize([]), leftovers: 0 });
    k.runs++;
    if (r.asExpected === 'yes') k.asExpected++;
    k.leftovers += r.leftovers;
  }
  for (const kind of Object.keys(byKind)) byKind[kind]!.detectMs = summarize(rows.filter((r) => r.fault.startsWith(kind)).map((r) => r.detectMs));

  const tlsEntries = (await loadResults(tls.dir)).entries;
  const tlsCases: Record<string, TlsCase> = {};
  const spread: SpreadCase[] = [];
  for (const workload of ['idle', 'dirty']) {
    const runsOf = (on: boolean) => tlsEntries.filter((e) => e.report.inputs.scenario.tls === on && e.report.inputs.scenario.workload.kind === workload);
    for (const on of [false, true]) spread.push(spreadCase(`${workload} ${on ? 'TLS' : 'plain TCP'}`, runsOf(on).map((e) => spreadSampleOf(e.report))));
    const pick = (on: boolean) => runsOf(on).filter((e) => e.report.ok);
    const figures = (on: boolean): Record<string, Summary> => {
      const es = pick(on);
      const o = es.map((e) => e.report.outputs);
      return {
        totalTimeMs: summarize(o.map((x) => x.totalTimeMs)),
        downtimeMs: summarize(o.map((x) => x.downtimeMs)),
        throughputMiBps: summarize(o.map((x) => (x.transferredBytes !== undefined && x.totalTimeMs ? x.transferredBytes / MiB / (x.totalTimeMs / 1000) : undefined))),
        sourceCpuMs: summarize(o.map((x) => x.qemuCpuMs?.source)),
        destinationCpuMs: summarize(o.map((x) => x.qemuCpuMs?.destination)),
      };
    };
    const plain = figures(false);
    const on = figures(true);
    const ratio = Object.fromEntries(TLS_FIGURES.map((f) => [f, plain[f]?.mean && on[f]?.mean !== undefined ? on[f]!.mean! / plain[f]!.mean! : undefined]));
    tlsCases[workload] = { plain, tls: on, ratio };
  }

  const leftovers = rows.reduce((a, r) => a + r.leftovers, 0);
  const result = {
    benchmark: 'faults: every kind on an idle and a busy guest; TLS against plain TCP',
    measuredAt: new Date().toISOString(),
    aims: { leftovers: 0, asExpected: 'every fault', nfsDownNoticedWithinMs: 15000 },
    faults: { runs: rows.length, asExpected: rows.filter((r) => r.asExpected === 'yes').length, leftovers, byKind, rows, report: faultPlot.report.markdownPath },
    tls: { cases: tlsCases, spread, report: tlsPlot.report.markdownPath },
  };
  const file = join(opts.outDir, 'faults.json');
  await writeFile(file, JSON.stringify(result, null, 2) + '\n');
  await writeFile(join(opts.outDir, 'faults.md'), faultsMarkdown(result));
  return { file, result };
}

type FaultsBenchResult = Awaited<ReturnType<typeof runFaultsBench>>['result'];

/** The bench's summary: each fault kind, TLS against plain, and the spread of the repeated TLS cases. */
function faultsMarkdown(r: Pick<FaultsBenchResult, 'measuredAt' | 'faults' | 'tls'>): string {
  const doc = markdown()
    .heading(1, 'Benchmark: faults, and TLS against plain TCP')
    .paragraph(`Measured ${r.measuredAt}. ${r.faults.asExpected} of ${r.faults.runs} fault runs ended as they must, ${r.faults.leftovers} processes or files left behind; each run's row is in ${r.faults.report}, TLS's in ${r.tls.report}.`)
    .table<{ kind: string; runs: number; asExpected: number; detect: string }>(
      [
        { key: 'kind', title: 'fault' },
        { key: 'runs', title: 'runs' },
        { key: 'asExpected', title: 'as they must' },
        { key: 'detect', title: 'noticed after, median' },
      ],
      Object.entries(r.faults.byKind).map(([kind, k]) => ({ kind, runs: k.runs, asExpected: k.asExpected, detect: fmtMs(k.detectMs.median) })),
    )
    .table<{ workload: string } & Record<string, string>>(
      [{ key: 'workload', title: 'TLS over plain (means)' }, ...TLS_FIGURES.map((f) => ({ key: f, title: f }))],
      Object.entries(r.tls.cases).map(([workload, c]) => ({ workload, ...Object.fromEntries(TLS_FIGURES.map((f) => [f, c.ratio[f] === undefined ? '–' : `${c.ratio[f]!.toFixed(2)}x`])) })),
    );
  return spreadSection(doc, r.tls.spread, { note: 'The faults ran once each (a fault run is not an idle or convergent one): only the TLS cases are repeated.' }).render();
}
