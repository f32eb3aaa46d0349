// COLO runs over a series of checkpoint intervals, each repeated: the sweep `miglab colo
// --interval 100,1000,10000 --repeat N` and `miglab bench --which colo` run. Each run is a whole
// `miglab colo` run in a folder of its own (its QEMUs stopped before the next starts); the series
// sums them up per interval (series.json, series.csv, series.md) and draws what COLO costs the
// guest's network against the same guest without COLO, and the client's failover time.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { newRunId } from '../api.js';
import { barChart } from '../plot/charts.js';
import { renderChart } from '../plot/render.js';
import { markdown, writeTableCsv, type Column } from '../report/markdown.js';
import { median } from '../stats/index.js';
import { makePrivateDir, PRIVATE } from '../util/private.js';
import { Teardown } from '../util/teardown.js';
import type { ColoSettings } from './options.js';
import type { ColoRecord } from './record.js';
import { runColo, type ColoContext } from './run.js';

export interface SeriesRow {
  readonly checkpointMs: number;
  readonly runs: number;
  readonly failedOver: number;
  /** Medians over the runs that reached lock-step. */
  readonly checkpointsPerS?: number;
  readonly pauseMedianMs?: number;
  readonly pausedSharePct?: number;
  readonly checkpointKiB?: number;
  readonly checkpointStreamMbps?: number;
  readonly rttColoMs?: number;
  readonly rttWithoutMs?: number;
  readonly iperfColoMbps?: number;
  readonly iperfWithoutMbps?: number;
  readonly clientSilenceMs?: number;
  readonly serviceBackMs?: number;
  readonly failoverPauseMs?: number;
  /** Why runs failed, once each. */
  readonly failures: readonly string[];
}

const r1 = (x: number | undefined) => (x === undefined ? undefined : Math.round(x * 10) / 10);
const med = (xs: (number | undefined)[]) => r1(median(xs.filter((x): x is number => x !== undefined)));

export function seriesRow(checkpointMs: number, runs: readonly ColoRecord[]): SeriesRow {
  const o = runs.map((r) => r.outputs);
  return {
    checkpointMs,
    runs: runs.length,
    failedOver: runs.filter((r) => r.verdict === 'failed-over').length,
    checkpointsPerS: med(o.map((x) => (x.checkpoints && x.checkpoints.lockStepMs > 0 ? (x.checkpoints.count / x.checkpoints.lockStepMs) * 1000 : undefined))),
    pauseMedianMs: med(o.map((x) => x.checkpoints?.pauseMs.median)),
    pausedSharePct: med(o.map((x) => (x.checkpoints?.pausedShare === undefined ? undefined : x.checkpoints.pausedShare * 100))),
    checkpointKiB: med(o.map((x) => (x.streams?.checkpointMeanBytes === undefined ? undefined : x.streams.checkpointMeanBytes / 1024))),
    checkpointStreamMbps: med(o.map((x) => x.streams?.migration?.mbpsToSecondary)),
    rttColoMs: med(o.map((x) => x.probeInLockStep?.rttMs.median)),
    rttWithoutMs: med(o.map((x) => x.probeAfter?.rttMs.median)),
    iperfColoMbps: med(o.map((x) => x.iperfInLockStep?.mbps)),
    iperfWithoutMbps: med(o.map((x) => x.iperfWithoutColo?.mbps)),
    clientSilenceMs: med(o.map((x) => x.clientSilenceMs)),
    serviceBackMs: med(o.map((x) => x.serviceBackAfterKillMs)),
    failoverPauseMs: med(o.map((x) => x.failover?.pausedMs)),
    failures: [...new Set(runs.filter((r) => r.failure).map((r) => r.failure!))],
  };
}

export const SERIES_COLUMNS: readonly Column<SeriesRow>[] = [
  { key: 'checkpointMs', title: 'checkpoint interval (ms)' },
  { key: 'runs', title: 'runs' },
  { key: 'failedOver', title: 'failed over' },
  { key: 'checkpointsPerS', title: 'checkpoints/s' },
  { key: 'pauseMedianMs', title: 'pause per checkpoint (ms)' },
  { key: 'pausedSharePct', title: 'time paused (%)' },
  { key: 'checkpointKiB', title: 'checkpoint size, mean (KiB)' },
  { key: 'checkpointStreamMbps', title: 'checkpoint stream (Mbit/s)' },
  { key: 'rttColoMs', title: 'probe RTT with COLO (ms)' },
  { key: 'rttWithoutMs', title: 'probe RTT without (ms)' },
  { key: 'iperfColoMbps', title: 'iperf3 with COLO (Mbit/s)' },
  { key: 'iperfWithoutMbps', title: 'iperf3 without (Mbit/s)' },
  { key: 'clientSilenceMs', title: 'client silence at failover (ms)' },
  { key: 'serviceBackMs', title: 'kill -> answered (ms)' },
  { key: 'failoverPauseMs', title: 'failover pause (ms)' },
];

export interface SeriesOutcome {
  readonly rows: readonly SeriesRow[];
  readonly runs: readonly ColoRecord[];
  readonly markdownPath: string;
}

export type SeriesContext = Omit<ColoContext, 'runId' | 'runDir' | 'td'>;

/** Every interval `repetitions` times, in turn; a failed run is recorded and the series goes on. */
export async function runColoSeries(ctx: SeriesContext, base: ColoSettings, intervals: readonly number[], repetitions: number, dir: string): Promise<SeriesOutcome> {
  await makePrivateDir(dir);
  const byInterval = new Map<number, ColoRecord[]>();
  for (let rep = 1; rep <= repetitions; rep++) {
    for (const checkpointMs of intervals) {
      ctx.progress?.('colo', `interval ${checkpointMs} ms, run ${rep} of ${repetitions}`);
      const runId = newRunId(`colo-${checkpointMs}ms`);
      const runDir = join(dir, runId);
      await makePrivateDir(runDir);
      const td = new Teardown();
      let rec: ColoRecord;
      try {
        rec = await runColo({ ...ctx, runId, runDir, td }, { ...base, checkpointMs });
      } finally {
        await td.run();
      }
      if (rec.verdict === 'interrupted') throw new Error('interrupted');
      byInterval.set(checkpointMs, [...(byInterval.get(checkpointMs) ?? []), rec]);
    }
  }
  const rows = intervals.map((ms) => seriesRow(ms, byInterval.get(ms) ?? []));
  const runs = [...byInterval.values()].flat();
  await writeFile(join(dir, 'series.json'), `${JSON.stringify({ settings: base, intervals, repetitions, rows, runs: runs.map((r) => r.runId) }, null, 2)}\n`, PRIVATE);
  await writeTableCsv(join(dir, 'series.csv'), SERIES_COLUMNS, rows);
  const markdownPath = join(dir, 'series.md');
  await writeFile(markdownPath, await seriesMarkdown(dir, base, rows, repetitions), PRIVATE);
  return { rows, runs, markdownPath };
}

async function seriesMarkdown(dir: string, base: ColoSettings, rows: readonly SeriesRow[], repetitions: number): Promise<string> {
  const plots = join(dir, 'plots');
  const bars = rows.flatMap((r) => [
    { interval: `${r.checkpointMs} ms`, guest: 'with COLO', mbps: r.iperfColoMbps, rtt: r.rttColoMs },
    { interval: `${r.checkpointMs} ms`, guest: 'without COLO', mbps: r.iperfWithoutMbps, rtt: r.rttWithoutMs },
  ]);
  const drawn: string[] = [];
  if (bars.some((b) => b.mbps !== undefined)) {
    await renderChart(barChart({ title: 'iperf3 TCP into the guest, by checkpoint interval', data: bars, category: { field: 'interval', title: 'checkpoint interval' }, group: { field: 'guest', title: 'guest' }, value: { field: 'mbps', title: 'throughput', unit: 'Mbit/s' } }), join(plots, 'colo-throughput'));
    drawn.push('colo-throughput');
  }
  if (bars.some((b) => b.rtt !== undefined)) {
    await renderChart(barChart({ title: "The client's probe round trip, by checkpoint interval", data: bars, category: { field: 'interval', title: 'checkpoint interval' }, group: { field: 'guest', title: 'guest' }, value: { field: 'rtt', title: 'round trip (median)', unit: 'ms' } }), join(plots, 'colo-rtt'));
    drawn.push('colo-rtt');
  }
  const md = markdown()
    .heading(1, 'COLO by checkpoint interval')
    .paragraph(
      `Each interval run ${repetitions} time(s): a ${base.memoryMiB} MiB guest in lock-step for ${base.lockStepS} s with a disk workload of ${base.diskRateKiBps} KiB/s and a UDP probe every ${base.probeIntervalMs} ms, ${base.iperfS > 0 ? `then ${base.iperfS} s of iperf3 into it, ` : ''}then the primary killed and the secondary failing over; "without COLO" is the same guest on the secondary after the failover. Medians over the runs; each run's own report is in its folder. A checkpoint's size is the migration connection's bytes in lock-step over its checkpoints, from the kernel's TCP counters on the primary's host (QEMU gives none).`,
    )
    .table(SERIES_COLUMNS, rows);
  for (const name of drawn) md.image(name, `plots/${name}.png`);
  const failures = rows.flatMap((r) => r.failures.map((f) => `${r.checkpointMs} ms: ${f}`));
  if (failures.length > 0) md.heading(2, 'Runs that failed').list(failures);
  md.paragraph('CSV: [series.csv](series.csv)');
  return md.render();
}
