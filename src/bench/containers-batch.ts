// `miglab bench --which containers-batch`: issue 11's batch benchmark. The same ladder of counter
// containers (1, 10, 100, 400) between two 2 GiB container-host guests, moved naively (all at once,
// the homework's "in a batch") and by the scheduler, the containers' files in the guests' memory;
// and the scheduler once more with the files on the shared export, the bottleneck the first
// batches hit. Per case, the containers migrated intact before a guest halted, and where and how
// it halted. The aim: the scheduler moves at least 400 with no halt (the reference report's VM
// froze at about 139), and more than the naive batch at the same guest memory.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useLab } from '../api.js';
import { containersBatch } from '../containers/batch/run.js';
import type { BatchMode, BatchVerdict, ContainerFiles } from '../containers/batch/types.js';
import { describeError } from '../errors.js';
import type { Progress } from '../progress/progress.js';
import { withTeardown } from '../util/teardown.js';
import { markdown } from '../report/markdown.js';
import { spreadSection } from './spread.js';

export const BATCH_BENCH_COUNTS = [1, 10, 100, 400] as const;
export const BATCH_BENCH_MEMORY_MIB = 2048;
/** The aim: this many counters moved by the scheduler with no halt. */
export const BATCH_AIM = 400;

/** The cases, in the order they run: the naive batch, the fix, and the fix on the shared export. */
export const BATCH_BENCH_CASES: readonly { readonly mode: BatchMode; readonly files: ContainerFiles }[] = [
  { mode: 'all-at-once', files: 'guest' },
  { mode: 'scheduled', files: 'guest' },
  { mode: 'scheduled', files: 'export' },
];

export interface BatchBenchCase {
  readonly mode: BatchMode;
  readonly files: ContainerFiles;
  readonly batchId?: string;
  readonly dir?: string;
  /** Per step: N, migrated, intact, failures, seconds, halted. */
  readonly steps: readonly { n: number; migrated: number; intact: number; dumpFailures: number; restoreFailures: number; seconds: number; halted?: string }[];
  readonly verdict?: BatchVerdict;
  readonly failure?: string;
}

const caseName = (c: { mode: BatchMode; files: ContainerFiles }) => `${c.mode}, files in ${c.files === 'guest' ? 'the guest' : 'the export'}`;

/** The most containers a case moved intact in one step that ended without a halt. */
const bestOf = (c: BatchBenchCase | undefined) => c?.verdict?.bestIntact ?? 0;

export function batchBenchMarkdown(cases: readonly BatchBenchCase[], when: string): string {
  const row = (c: BatchBenchCase) =>
    c.steps.map((s) => `| ${c.mode} | ${c.files} | ${s.n} | ${s.migrated} | ${s.intact} | ${s.dumpFailures} | ${s.restoreFailures} | ${s.seconds.toFixed(1)} | ${s.halted ?? ''} |`);
  const sched = cases.find((c) => c.mode === 'scheduled' && c.files === 'guest');
  const naive = cases.find((c) => c.mode === 'all-at-once' && c.files === 'guest');
  const best = bestOf(sched);
  const noHalt = sched !== undefined && !sched.failure && sched.verdict?.haltedAt === undefined;
  const met = best >= BATCH_AIM && noHalt;
  return [
    `# Container batch bench (${when})`,
    '',
    `Counter containers (one value a second) between two ${BATCH_BENCH_MEMORY_MIB} MiB TCG container-host guests (1 vCPU each), ladder ${BATCH_BENCH_COUNTS.join(', ')}; the ladder stops at a guest's halt, a step that moved none, or a step that stopped early. files: where each container's log lives while it runs (guest: the guest's memory, copied with its images; export: the shared NFS export). Aim: the scheduler (files in the guest) moves at least ${BATCH_AIM} intact with no halt, and more than the naive batch.`,
    '',
    '| mode | files | N | migrated | intact | dump failures | restore failures | seconds | halted |',
    '|---|---|---|---|---|---|---|---|---|',
    ...cases.flatMap(row),
    '',
    ...cases.map((c) => `- **${caseName(c)}**: ${c.failure ? `the batch failed: ${c.failure}` : `${c.verdict?.when ?? ''} ${c.verdict?.haltedAt !== undefined ? `How: ${c.verdict.how} Why: ${c.verdict.why}` : ''}`} ${c.dir ? `(${c.dir})` : ''}`),
    '',
    `Aim (>= ${BATCH_AIM} by the scheduler, no halt): ${met ? `met (${best} intact)` : `NOT met (${best} intact${sched?.verdict?.haltedAt !== undefined ? `, halted at N=${sched.verdict.haltedAt}` : ''})`}.`,
    ...(naive ? [`Scheduler against the naive batch (most intact in one step without a halt): ${best} against ${bestOf(naive)}: ${best > bestOf(naive) ? 'the scheduler moved more' : 'the scheduler did NOT move more'}.`] : []),
    '',
    spreadSection(markdown(), [], { figures: "the moves' total and frozen times", note: 'Each N here runs once; the spread of single moves is in containers.md.' }).render(),
  ].join('\n');
}

export async function runContainersBatchBench(opts: { outDir: string; progress?: Progress; lab?: string; counts?: readonly number[] }): Promise<{ files: { json: string; markdown: string }; cases: BatchBenchCase[] }> {
  const prefix = opts.lab ?? 'mlab';
  const counts = opts.counts ?? BATCH_BENCH_COUNTS;
  const cases: BatchBenchCase[] = [];
  await withTeardown(async (td, signal) => {
    await useLab(td, { lab: { prefix } }, signal);
    for (const { mode, files } of BATCH_BENCH_CASES) {
      opts.progress?.('bench', `container batch: ${caseName({ mode, files })}, ladder ${counts.join(',')}`);
      try {
        const r = await containersBatch({ counts: [...counts], mode, files, memoryMiB: BATCH_BENCH_MEMORY_MIB, lab: { prefix }, resultsRoot: join(opts.outDir, 'containers-batch-runs'), signal, progress: opts.progress });
        cases.push({
          mode,
          files,
          batchId: r.batchId,
          dir: r.dir,
          steps: r.record.steps.map((s) => ({ n: s.count, migrated: s.migrated, intact: s.intact, dumpFailures: s.dumpFailures, restoreFailures: s.restoreFailures, seconds: s.durationMs / 1000, ...(s.halt && { halted: `${s.halt.guest}: ${s.halt.how}` }) })),
          verdict: r.record.verdict,
        });
      } catch (err) {
        if (signal.aborted) throw err;
        cases.push({ mode, files, steps: [], failure: describeError(err) });
      }
    }
  });
  await mkdir(opts.outDir, { recursive: true });
  const when = new Date().toISOString();
  const json = join(opts.outDir, 'containers-batch.json');
  const markdown = join(opts.outDir, 'containers-batch.md');
  await writeFile(json, `${JSON.stringify({ when, counts, memoryMiB: BATCH_BENCH_MEMORY_MIB, cases }, null, 2)}\n`);
  await writeFile(markdown, batchBenchMarkdown(cases, when));
  return { files: { json, markdown }, cases };
}
