// `miglab bench --which containers`: issue 11's benchmark. A container with a 64 MiB working set
// written at 16 MiB/s, moved by each strategy (stop-and-copy, iterative, mem-rounds) and each way
// of carrying the images (NFS export, page server), repeated; per case the median and spread of
// CRIU's frozen time, the client's downtime, the restore and the total, whether every run's
// sequence was intact, and the frozen-time ratio of each strategy against stop-and-copy measured
// in the same bench (the aim: at least 2x less for iterative and mem-rounds).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError } from '../errors.js';
import type { Progress } from '../progress/progress.js';
import type { ContainerFigures } from '../containers/migrate.js';
import { STRATEGIES, type Strategy } from '../containers/strategies.js';
import { TRANSFERS, type TransferMode } from '../containers/transfer.js';
import { containersMigrate } from '../containers/run.js';
import { summarize, type Summary } from '../stats/index.js';
import { useLab } from '../api.js';
import { withTeardown } from '../util/teardown.js';
import { markdown } from '../report/markdown.js';
import { spreadCase, spreadSection, type SpreadCase } from './spread.js';

export const CONTAINERS_BENCH_WORKLOAD = 'mem:64M@16M/s';
/** Frozen time at least this many times less than stop-and-copy's (issue 11's aim). */
export const FROZEN_CUT_AIM = 2;
/** The strategies the aim is about: the two that pre-dump. lazy has no frozen time to cut (CRIU 3.17.1 gives none for a lazy dump). */
const AIMED: readonly Strategy[] = ['iterative', 'mem-rounds'];

export interface ContainersBenchRun {
  readonly strategy: Strategy;
  readonly transfer: TransferMode;
  readonly repetition: number;
  readonly runId?: string;
  readonly verdict: 'intact' | 'broken' | 'failed';
  readonly figures?: ContainerFigures;
  readonly failure?: string;
}

export interface ContainersBenchCase {
  readonly strategy: Strategy;
  readonly transfer: TransferMode;
  readonly runs: number;
  readonly intact: number;
  readonly frozenMs: Summary;
  readonly clientDowntimeMs: Summary;
  readonly restoreMs: Summary;
  readonly totalMs: Summary;
  readonly preDumpRounds: Summary;
  /** stop-and-copy's median frozen time (same transfer) over this case's. */
  readonly frozenCutVsStopAndCopy: number | undefined;
  /** Cut >= FROZEN_CUT_AIM with every run intact (stop-and-copy: undefined). */
  readonly meetsAim: boolean | undefined;
  /** Total time and CRIU's frozen time (the container's downtime) over the repetitions. */
  readonly spread: SpreadCase;
}

export function summarizeContainersBench(runs: readonly ContainersBenchRun[]): ContainersBenchCase[] {
  const cases: ContainersBenchCase[] = [];
  for (const transfer of TRANSFERS) {
    const base = runs.filter((r) => r.transfer === transfer && r.strategy === 'stop-and-copy' && r.verdict === 'intact').map((r) => r.figures?.criuFrozenMs);
    const baseMedian = summarize(base).median;
    for (const strategy of STRATEGIES) {
      const mine = runs.filter((r) => r.transfer === transfer && r.strategy === strategy);
      if (mine.length === 0) continue;
      const ok = mine.filter((r) => r.verdict === 'intact');
      const pick = (f: (x: ContainerFigures) => number | null) => summarize(ok.map((r) => (r.figures ? f(r.figures) : null)));
      const frozenMs = pick((x) => x.criuFrozenMs);
      const cut = strategy === 'stop-and-copy' || baseMedian === undefined || !frozenMs.median ? undefined : baseMedian / frozenMs.median;
      cases.push({
        strategy,
        transfer,
        runs: mine.length,
        intact: ok.length,
        frozenMs,
        clientDowntimeMs: pick((x) => x.clientDowntimeMs),
        restoreMs: pick((x) => x.restoreWallMs),
        totalMs: pick((x) => x.totalMs),
        preDumpRounds: pick((x) => x.preDumpRounds),
        frozenCutVsStopAndCopy: cut,
        meetsAim: !AIMED.includes(strategy) ? undefined : cut !== undefined && cut >= FROZEN_CUT_AIM && ok.length === mine.length,
        spread: spreadCase(`${strategy} by ${transfer}`, mine.map((r) => ({ ok: r.verdict === 'intact', totalTimeMs: r.figures?.totalMs ?? undefined, downtimeMs: r.figures?.criuFrozenMs ?? undefined })), strategy === 'lazy' ? 'CRIU gives a lazy dump no frozen time' : undefined),
      });
    }
  }
  return cases;
}

const fmt = (s: Summary) => (s.median === undefined ? 'n/a' : `${s.median.toFixed(0)} (${s.min?.toFixed(0)}-${s.max?.toFixed(0)})`);

export function containersBenchMarkdown(cases: readonly ContainersBenchCase[], runs: readonly ContainersBenchRun[], when: string): string {
  return [
    `# Containers bench (${when})`,
    '',
    `Workload ${CONTAINERS_BENCH_WORKLOAD} in a container on two 512 MiB TCG container-host guests; median (min-max) in ms over the intact runs. Aim: iterative and mem-rounds cut CRIU's frozen time at least ${FROZEN_CUT_AIM}x against stop-and-copy (same transfer, same bench), every sequence intact.`,
    '',
    '| strategy | transfer | intact | frozen (CRIU) | cut vs stop-and-copy | client downtime | restore | total | pre-dumps | aim |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...cases.map(
      (c) =>
        `| ${c.strategy} | ${c.transfer} | ${c.intact}/${c.runs} | ${fmt(c.frozenMs)} | ${c.frozenCutVsStopAndCopy === undefined ? '' : `${c.frozenCutVsStopAndCopy.toFixed(2)}x`} | ${fmt(c.clientDowntimeMs)} | ${fmt(c.restoreMs)} | ${fmt(c.totalMs)} | ${fmt(c.preDumpRounds)} | ${c.meetsAim === undefined ? '' : c.meetsAim ? 'met' : 'NOT met'} |`,
    ),
    '',
    ...(cases.some((c) => c.strategy === 'lazy')
      ? ["lazy (once per repetition, pages from chost-src on demand) has no frozen time: CRIU 3.17.1 writes a lazy dump's stats with zeros and a frozen time longer than the run, so none is taken; its client downtime is the figure to compare. The aim is about the two strategies that pre-dump.", '']
      : []),
    ...runs.filter((r) => r.verdict !== 'intact').map((r) => `- ${r.strategy}/${r.transfer} #${r.repetition}: ${r.verdict}${r.failure ? `: ${r.failure}` : ''}`),
    '',
    spreadSection(
      markdown(),
      cases.map((c) => c.spread),
      { figures: "the move's total time and CRIU's frozen time (the container's downtime)", note: 'A run counts when its sequence was intact.' },
    ).render(),
  ].join('\n');
}

export async function runContainersBench(opts: { outDir: string; repetitions: number; progress?: Progress; lab?: string }): Promise<{ files: { json: string; markdown: string }; cases: ContainersBenchCase[] }> {
  const runs: ContainersBenchRun[] = [];
  const resultsRoot = join(opts.outDir, 'containers-runs');
  const prefix = opts.lab ?? 'mlab';
  // One lab for the whole bench (brought up here if none is, and taken down after): each run attaches to it.
  await withTeardown(async (td, signal) => {
    await useLab(td, { lab: { prefix } }, signal);
    // Interleaved (every case once, then again), so a slow spell of the machine spreads over the cases.
    for (let repetition = 1; repetition <= opts.repetitions; repetition++) {
      for (const transfer of TRANSFERS) {
        for (const strategy of STRATEGIES) {
          // lazy has its own way for the pages (from the source, on demand): measured once, with nfs.
          if (strategy === 'lazy' && transfer !== 'nfs') continue;
          opts.progress?.('bench', `containers: ${strategy} by ${transfer}, repetition ${repetition} of ${opts.repetitions}`);
          try {
            const r = await containersMigrate({ workload: CONTAINERS_BENCH_WORKLOAD, strategy, transfer, lab: { prefix }, resultsRoot, signal });
            runs.push({ strategy, transfer, repetition, runId: r.runId, verdict: r.verdict, figures: r.result.figures });
          } catch (err) {
            if (signal.aborted) throw err;
            runs.push({ strategy, transfer, repetition, verdict: 'failed', failure: describeError(err) });
          }
        }
      }
    }
  });
  const cases = summarizeContainersBench(runs);
  await mkdir(opts.outDir, { recursive: true });
  const json = join(opts.outDir, 'containers.json');
  const markdown = join(opts.outDir, 'containers.md');
  const when = new Date().toISOString();
  await writeFile(json, `${JSON.stringify({ when, workload: CONTAINERS_BENCH_WORKLOAD, cases, runs }, null, 2)}\n`);
  await writeFile(markdown, containersBenchMarkdown(cases, runs, when));
  return { files: { json, markdown }, cases };
}
