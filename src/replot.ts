// `miglab plot DIR`: draw a results folder's report again, with the renderer of the folder's own
// kind (a run, a sweep, the homework, a batch: told apart by their marker file, plot/folder.ts)
// and from its saved results alone. It never writes a different kind of report over the one a
// folder has; a folder that is none of these is refused before anything is written. Sits at the
// top beside api.ts because it reaches the report writers of every kind.
import { batchFile, renderBatchReport } from './batch/report.js';
import { renderHomeworkReport } from './homework/report.js';
import { BATCH_CONTRACT } from './results/batch.js';
import { readResultIn } from './results/contract.js';
import { HOMEWORK_CONTRACT } from './results/homework.js';
import { folderKind, type FolderKind } from './plot/folder.js';
import { type RenderedReport } from './report/html.js';
import { renderRunReport } from './report/run-report.js';
import { RUN_CONTRACT } from './results/run.js';
import { plotResults } from './sweep/plots.js';

export interface ReplotResult extends RenderedReport {
  readonly kind: FolderKind;
  readonly dir: string;
}

/** Re-render the report of the results folder `dir` with its own kind's renderer. */
export async function replot(dir: string): Promise<ReplotResult> {
  const kind = folderKind(dir);
  // Read through their schemas (src/results/): an older or damaged file is refused in one line.
  if (kind === 'run') return { kind, dir, ...(await renderRunReport(dir, await readResultIn(RUN_CONTRACT, dir), { figures: true })) };
  if (kind === 'sweep') {
    const p = await plotResults(dir);
    return { kind, dir, figures: p.charts.map((c) => c.pngPath), ...p.report };
  }
  if (kind === 'homework') return { kind, dir, ...(await renderHomeworkReport(dir, await readResultIn(HOMEWORK_CONTRACT, dir))) };
  // batch.json also holds the diagnosis it was written with; the report is drawn from a fresh one,
  // made as the batch made it (batchFile).
  const { diagnoses: _saved, ...record } = await readResultIn(BATCH_CONTRACT, dir);
  return { kind, dir, ...(await renderBatchReport(dir, batchFile(record))) };
}
