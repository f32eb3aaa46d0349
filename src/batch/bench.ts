// The batch benchmark (`make bench-batch`): the largest N that naive parallel migrates without a
// stall against the scheduler at the same N, for idle guests and for busy (dirtying) ones, and
// the scheduler's time on the migration link against its lower bound (the bytes sent at the
// link's rate). The uplinks are shaped so that bound is a real figure: on an unshaped veth the
// "link" is a memcpy and the CPU is the only limit. Bounded: N grows 1..6 and each batch has a
// deadline. Figures go to a JSON file; nothing asserts a speed (the machine is shared and noisy).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Progress } from '../progress/progress.js';
import type { StepDiagnosis } from './diagnose.js';
import { runBatch } from './run.js';
import type { BatchSpecInput } from './spec.js';

export const BENCH_MAX_N = 6;
/** Shaped rate of each migration uplink in the benchmark, Mbit/s. */
export const BENCH_LINK_MBIT = 200;

export interface BatchBenchCase {
  readonly name: 'idle' | 'busy';
  readonly skipped?: string;
  readonly stop?: string;
  /** Largest N where naive parallel migrated every guest without a stall. */
  readonly largestNaiveN?: number;
  /** Largest N where the scheduler migrated every guest without a stall. */
  readonly largestScheduledN?: number;
  readonly steps?: readonly {
    readonly n: number;
    readonly how: string;
    readonly migrated: number;
    readonly wallMs: number;
    readonly worstDowntimeMs?: number;
    readonly medianTotalTimeMs?: number;
    readonly migratingMs?: number;
    readonly transferredMiB?: number;
    readonly lowerBoundMs?: number;
    readonly vsLowerBound?: number;
    readonly stalled?: string;
    readonly saturated: string;
    readonly concurrency?: number;
  }[];
  readonly reportPath?: string;
}

function largest(ds: readonly StepDiagnosis[], naive: boolean): number | undefined {
  const ok = ds.filter((d) => (d.variant === 'naive-parallel') === naive && !d.stall && d.migrated === d.n).map((d) => d.n);
  return ok.length ? Math.max(...ok) : undefined;
}

export async function runBatchBench(outDir: string, opts: { progress?: Progress; signal?: AbortSignal } = {}): Promise<{ file: string; cases: BatchBenchCase[] }> {
  await mkdir(outDir, { recursive: true });
  const base: BatchSpecInput = {
    mode: 'scheduled',
    compare: true,
    steps: { start: 1, add: 1, max: BENCH_MAX_N },
    timeoutMs: 60000,
    deadlineMs: 25 * 60000,
    memoryReserveMiB: 2048,
    shaping: { bandwidthMbit: BENCH_LINK_MBIT },
  };
  const cases: { name: 'idle' | 'busy'; guests: BatchSpecInput['guests'] }[] = [
    { name: 'idle', guests: { memoryMiB: 256 } },
    // 8 MiB/s against a 23.8 MiB/s link: one migration at a time converges in a few passes;
    // several sharing the link each get about the dirty rate and stop converging.
    { name: 'busy', guests: { memoryMiB: 256, workload: { kind: 'dirty', wssMiB: 32, rateMiBps: 8, pattern: 'sequential' }, dirtyRateMiBps: 8 } },
  ];
  const out: BatchBenchCase[] = [];
  for (const c of cases) {
    const r = await runBatch({ ...base, guests: c.guests }, { resultsRoot: join(outDir, 'batch'), progress: opts.progress, signal: opts.signal });
    out.push({
      name: c.name,
      stop: `${r.record.stop.kind}: ${r.record.stop.detail}`,
      largestNaiveN: largest(r.diagnoses, true),
      largestScheduledN: largest(r.diagnoses, false),
      steps: r.diagnoses.map((d) => ({
        n: d.n,
        how: d.variant === 'naive-parallel' ? 'naive parallel' : d.mode,
        migrated: d.migrated,
        wallMs: d.wallMs,
        worstDowntimeMs: d.downtimeMs?.max,
        medianTotalTimeMs: d.totalTimeMs?.median,
        migratingMs: d.migratingMs,
        transferredMiB: d.transferredMiB,
        lowerBoundMs: d.lowerBoundMs,
        vsLowerBound: d.vsLowerBound,
        stalled: d.stall?.symptom,
        saturated: d.saturation.resource,
        concurrency: d.concurrency,
      })),
      reportPath: r.markdownPath,
    });
  }
  const file = join(outDir, 'batch-bench.json');
  await writeFile(file, JSON.stringify({ at: new Date().toISOString(), maxN: BENCH_MAX_N, linkMbit: BENCH_LINK_MBIT, cases: out }, null, 2) + '\n');
  return { file, cases: out };
}
