// `miglab bench --which colo`: issue 14's benchmark. The guest's network with COLO at checkpoint
// intervals of 100 ms, 1 s and 10 s against the same guest without COLO (iperf3 throughput and the
// probe's round trip), and the failover as the client sees it, each interval run 5 times on QEMU
// 11.1 (src/colo/series.ts). Figures go to results/bench/colo/ (series.md, series.csv, plots, one
// folder per run); nothing here asserts a speed.
import { join } from 'node:path';
import { IMAGE_CACHE_DIR, preflightFor, useLab } from '../api.js';
import { COLO_DEFAULTS, COLO_QEMU } from '../colo/options.js';
import { runColoSeries, type SeriesOutcome } from '../colo/series.js';
import type { Progress } from '../progress/progress.js';
import { resolveBuild } from '../qemu/pair.js';
import { qemuCacheDir } from '../qemu/fetch.js';
import { withTeardown } from '../util/teardown.js';

export const COLO_BENCH_INTERVALS = [100, 1000, 10000] as const;

export interface ColoBenchOptions {
  readonly outDir: string;
  readonly repetitions: number;
  readonly progress?: Progress;
  readonly signal?: AbortSignal;
}

export async function runColoBench(o: ColoBenchOptions): Promise<SeriesOutcome> {
  const image = await preflightFor({});
  return withTeardown(async (td, signal) => {
    const lab = await useLab(td, {}, signal);
    const build = await resolveBuild(lab.hosts.src, COLO_QEMU, { cacheDir: qemuCacheDir(IMAGE_CACHE_DIR), signal, log: (line) => o.progress?.('qemu', line) });
    // 12 s in lock-step: the 10 s interval has room for one periodic checkpoint. A probe every
    // 500 ms: each answer forces a checkpoint (the guests never answer alike), so the period shows
    // only between them.
    const settings = { ...COLO_DEFAULTS, lockStepS: 12, probeIntervalMs: 500, iperfS: 5 };
    return runColoSeries({ lab, image, build, cacheDir: IMAGE_CACHE_DIR, signal, progress: o.progress }, settings, COLO_BENCH_INTERVALS, o.repetitions, join(o.outDir, 'colo'));
  }, o.signal);
}
