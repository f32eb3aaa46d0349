// The batch benchmark (`make bench-batch`): the largest N that naive parallel migrates without a
// stall against the scheduler at the same N, for idle guests and for busy (dirtying) ones, and
// the scheduler's time on the migration link against its lower bound (the bytes sent at the
// link's rate). The uplinks are shaped so that bound is a real figure: on an unshaped veth the
// "link" is a memcpy and the CPU is the only limit. N steps up until the scheduler itself stalls,
// up to BENCH_STEPS' last (naive parallel is compared until its own first stall); each batch has
// a deadline. Figures go to a JSON file and a Markdown table; nothing asserts a speed.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Progress } from '../progress/progress.js';
import type { StepDiagnosis } from './diagnose.js';
import { runBatch } from './run.js';
import type { BatchSpecInput } from './spec.js';
import { fmtMs, markdown } from '../report/markdown.js';
import { spreadSection } from '../bench/spread.js';

/** The values of N: one by one while naive parallel may still keep up, then growing. */
export const BENCH_STEPS = [1, 2, 3, 4, 6, 8, 12, 16] as const;
export const BENCH_MAX_N = BENCH_STEPS[BENCH_STEPS.length - 1];
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
  /** Where the scheduler itself stopped: its first stall (N and why), or the bench's last N reached. */
  readonly schedulerLimit?: string;
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

export async function runBatchBench(outDir: string, opts: { progress?: Progress; signal?: AbortSignal } = {}): Promise<{ file: string; markdown: string; cases: BatchBenchCase[] }> {
  await mkdir(outDir, { recursive: true });
  const base: BatchSpecInput = {
    mode: 'scheduled',
    compare: true,
    steps: [...BENCH_STEPS],
    timeoutMs: 60000,
    deadlineMs: 30 * 60000,
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
      schedulerLimit:
        r.record.stop.kind === 'stall'
          ? `stalled at N=${r.record.stop.n}: ${r.record.stop.detail}`
          : r.record.stop.kind === 'finished'
            ? `no stall up to N=${BENCH_MAX_N}, the bench's last step`
            : `${r.record.stop.kind}: ${r.record.stop.detail}`,
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
  await writeFile(file, JSON.stringify({ at: new Date().toISOString(), steps: BENCH_STEPS, linkMbit: BENCH_LINK_MBIT, cases: out }, null, 2) + '\n');
  const markdown = join(outDir, 'batch-bench.md');
  await writeFile(markdown, batchBenchMarkdown(out));
  return { file, markdown, cases: out };
}

type BenchStep = NonNullable<BatchBenchCase['steps']>[number];

/** The bench's table: each case's steps, the scheduler's time on the link against its bound, and where it stopped. */
export function batchBenchMarkdown(cases: readonly BatchBenchCase[]): string {
  const doc = markdown()
    .heading(1, 'Batch: naive parallel against the scheduler')
    .paragraph(
      `256 MiB guests, uplinks shaped to ${BENCH_LINK_MBIT} Mbit/s; N = ${BENCH_STEPS.join(', ')} until the scheduler itself stalls (naive parallel is compared until its first stall). "x bound": the scheduler's time on the link (first migrate to last end) over the bytes it sent at the link's rate; the aim is under 1.25.`,
    );
  for (const c of cases) {
    doc.heading(2, c.name).paragraph(
      c.skipped ?? `Naive parallel kept up to N=${c.largestNaiveN ?? 'none'}, the scheduler to N=${c.largestScheduledN ?? 'none'}; the scheduler: ${c.schedulerLimit ?? c.stop ?? '?'}.`,
    );
    if (c.steps?.length) {
      doc.table<BenchStep>(
        [
          { key: 'n', title: 'N' },
          { key: 'how', title: 'how' },
          { key: 'concurrency', title: 'at once', format: (v) => (v === undefined ? '–' : String(v)) },
          { key: 'migrated', title: 'migrated' },
          { key: 'wallMs', title: 'wall', format: (v) => fmtMs(v as number) },
          { key: 'migratingMs', title: 'on the link', format: (v) => fmtMs(v as number | undefined) },
          { key: 'lowerBoundMs', title: 'bound', format: (v) => fmtMs(v as number | undefined) },
          { key: 'vsLowerBound', title: 'x bound', format: (v) => (v === undefined ? '–' : (v as number).toFixed(2)) },
          { key: 'worstDowntimeMs', title: 'worst downtime', format: (v) => fmtMs(v as number | undefined) },
          { key: 'stalled', title: 'stall', format: (v) => (v as string | undefined) ?? 'no' },
          { key: 'saturated', title: 'saturated' },
        ],
        c.steps,
      );
    }
  }
  // Each N is one batch (the ladder alone takes about half an hour): its figures have no repetitions.
  return spreadSection(doc, [], { note: 'Each N here runs once; the spread of single migrations is in the other benches (runs.md, downtime.md, qemu.md).' }).render();
}
