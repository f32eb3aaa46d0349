// The batch benchmark (`make bench`): the largest N that naive parallel migrates without a stall
// against the scheduler at the same N, for idle guests and, when this build can run a guest
// workload, for busy ones. Bounded: N grows 1..6 and the batch has a deadline. Figures go to a
// JSON file; nothing asserts a speed (the machine is shared and noisy). Never run in tests.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Progress } from '../migrate/engine.js';
import type { StepDiagnosis } from './diagnose.js';
import { runBatch } from './run.js';
import { scenarioHasWorkload, type BatchSpecInput } from './spec.js';

export const BENCH_MAX_N = 6;

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
  };
  const cases: { name: 'idle' | 'busy'; guests: BatchSpecInput['guests'] }[] = [
    { name: 'idle', guests: { memoryMiB: 256 } },
    { name: 'busy', guests: { memoryMiB: 256, workload: { kind: 'dirty', wssMiB: 128, rateMiBps: 64, pattern: 'sequential' }, dirtyRateMiBps: 64 } },
  ];
  const out: BatchBenchCase[] = [];
  for (const c of cases) {
    if (c.name === 'busy' && !scenarioHasWorkload()) {
      out.push({ name: c.name, skipped: 'this build has no guest workload in the migration Scenario yet' });
      continue;
    }
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
        stalled: d.stall?.symptom,
        saturated: d.saturation.resource,
        concurrency: d.concurrency,
      })),
      reportPath: r.markdownPath,
    });
  }
  const file = join(outDir, 'batch-bench.json');
  await writeFile(file, JSON.stringify({ at: new Date().toISOString(), maxN: BENCH_MAX_N, cases: out }, null, 2) + '\n');
  return { file, cases: out };
}
