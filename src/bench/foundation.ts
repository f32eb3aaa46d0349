// `miglab bench`: the foundation benchmark. It times what a user waits for (from `migrate`
// starting to the source's first heartbeat, and the whole idle 256 MiB migration command) next
// to the figures QEMU reports, and the harness's own resident memory, over a few repetitions.
// Figures go to a file; nothing here asserts a speed (machines are shared and noisy).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { migrate, type MigrateResult } from '../api.js';
import { AbortedError } from '../errors.js';
import { withTeardown } from '../util/teardown.js';
import type { Progress } from '../progress/progress.js';
import { fmtMs, markdown } from '../report/markdown.js';
import { median } from '../stats/index.js';
import { spreadCase, spreadSection, type SpreadCase } from './spread.js';

export interface FoundationBenchOptions {
  readonly outDir: string;
  readonly repetitions?: number;
  readonly progress?: Progress;
  /** Ctrl-C: the run in progress stops and cleans up, and the bench ends. */
  readonly signal?: AbortSignal;
}

export interface FoundationBenchRow {
  readonly repetition: number;
  readonly commandWallMs: number;
  readonly migrateStartToHeartbeatMs: number;
  readonly pairBootMs: number;
  readonly qemuTotalTimeMs?: number;
  readonly qemuDowntimeMs?: number;
  readonly qemuSetupTimeMs?: number;
  readonly transferredMiB?: number;
  readonly ok: boolean;
  readonly runDir: string;
}

export async function runFoundationBench(opts: FoundationBenchOptions) {
  await mkdir(opts.outDir, { recursive: true });
  const rows: FoundationBenchRow[] = [];
  let peakRssBytes = 0;
  const rssTimer = setInterval(() => (peakRssBytes = Math.max(peakRssBytes, process.memoryUsage().rss)), 50);
  try {
    // Ctrl-C ends the bench, not only the run in progress (each run stops and cleans up on it).
    await withTeardown(async (_td, signal) => {
      for (let i = 1; i <= (opts.repetitions ?? 3); i++) {
        const t0 = Date.now();
        let heartbeatAt = 0;
        const note = (phase: string, detail?: string) => {
          if (phase === 'boot' && detail?.startsWith('guest up') && !heartbeatAt) heartbeatAt = Date.now();
          opts.progress?.(phase, detail);
        };
        // Live figures pass through as they are.
        const progress: Progress = Object.assign(note, { live: opts.progress?.live });
        const res: MigrateResult = await migrate({ scenario: { guest: { memoryMiB: 256 }, timeoutMs: 60000 }, resultsRoot: join(opts.outDir, 'runs'), progress, signal });
        // The run stopped and cleaned up on a Ctrl-C; the bench ends with it.
        if (signal.aborted) throw new AbortedError('the foundation bench', signal.reason);
        const o = res.report.outputs;
        rows.push({
          repetition: i,
          commandWallMs: Date.now() - t0,
          migrateStartToHeartbeatMs: heartbeatAt - t0,
          pairBootMs: res.report.phases.bootToHeartbeatMs ?? NaN,
          qemuTotalTimeMs: o.totalTimeMs,
          qemuDowntimeMs: o.downtimeMs,
          qemuSetupTimeMs: o.setupTimeMs,
          transferredMiB: o.transferredBytes === undefined ? undefined : o.transferredBytes / 1024 / 1024,
          ok: res.report.ok,
          runDir: res.dir,
        });
      }
    }, opts.signal);
  } finally {
    clearInterval(rssTimer);
  }
  const ok = rows.filter((r) => r.ok);
  const result = {
    benchmark: 'foundation: idle 256 MiB guest, embedded lab, TCG unless KVM is usable',
    measuredAt: new Date().toISOString(),
    aims: { pairBootMs: 5000, commandWallMs: 15000, harnessPeakRssMiB: 150 },
    // Over the runs that completed: a failed one is in `rows` and the spread's count, not here.
    medians: {
      commandWallMs: median(ok.map((r) => r.commandWallMs)),
      migrateStartToHeartbeatMs: median(ok.map((r) => r.migrateStartToHeartbeatMs)),
      pairBootMs: median(ok.map((r) => r.pairBootMs)),
      qemuTotalTimeMs: median(ok.map((r) => r.qemuTotalTimeMs)),
      qemuDowntimeMs: median(ok.map((r) => r.qemuDowntimeMs)),
    },
    harnessPeakRssMiB: peakRssBytes / 1024 / 1024,
    spread: [spreadCase('idle 256 MiB', rows.map((r) => ({ ok: r.ok, totalTimeMs: r.qemuTotalTimeMs, downtimeMs: r.qemuDowntimeMs })))],
    rows,
  };
  const file = join(opts.outDir, 'foundation.json');
  await writeFile(file, JSON.stringify(result, null, 2) + '\n');
  await writeFile(join(opts.outDir, 'foundation.md'), foundationMarkdown(result));
  return { file, result };
}

function foundationMarkdown(r: { benchmark: string; measuredAt: string; medians: Record<string, number | undefined>; harnessPeakRssMiB: number; rows: readonly FoundationBenchRow[]; spread: readonly SpreadCase[] }): string {
  const doc = markdown()
    .heading(1, 'Benchmark: foundation')
    .paragraph(`${r.benchmark}. Measured ${r.measuredAt}, ${r.rows.length} repetitions; harness peak RSS ${r.harnessPeakRssMiB.toFixed(0)} MiB.`)
    .table<{ figure: string; median: number | undefined }>(
      [
        { key: 'figure', title: 'figure' },
        { key: 'median', title: 'median', format: (v) => fmtMs(v) },
      ],
      Object.entries(r.medians).map(([figure, median]) => ({ figure, median })),
    );
  return spreadSection(doc, r.spread).render();
}
