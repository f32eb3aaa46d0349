// `miglab plot DIR`: draw a results folder's report again, with the renderer of the folder's own
// kind (a run, a sweep, the homework, a batch: told apart by their marker file, plot/folder.ts)
// and from its saved results alone. It never writes a different kind of report over the one a
// folder has; a folder that is none of these is refused before anything is written. Sits at the
// top beside api.ts because it reaches the report writers of every kind.
import { join } from 'node:path';
import { batchFile, renderBatchReport } from './batch/report.js';
import { renderHomeworkReport } from './homework/report.js';
import { BATCH_CONTRACT } from './results/batch.js';
import { readResultIn } from './results/contract.js';
import { HOMEWORK_CONTRACT } from './results/homework.js';
import { folderKind, type FolderKind } from './plot/folder.js';
import { plotResults } from './sweep/plots.js';

export interface ReplotResult {
  readonly kind: FolderKind;
  readonly dir: string;
  /** PNG files of the figures drawn (each has an SVG beside it). */
  readonly figures: readonly string[];
  readonly markdownPath: string;
  readonly htmlPath: string;
}

/** Where the figures of a homework report are (the same names renderHomeworkReport writes). */
const HOMEWORK_FIGURES = ['accel', 'nic-throughput', 'disk', 'during-migration', 'cpu-during-migration'];
const BATCH_FIGURES = ['cpu', 'memory', 'link'];

/** Re-render the report of the results folder `dir` with its own kind's renderer. */
export async function replot(dir: string): Promise<ReplotResult> {
  const kind = folderKind(dir);
  if (kind === 'run' || kind === 'sweep') {
    const p = await plotResults(dir);
    return { kind, dir, figures: p.charts.map((c) => c.pngPath), ...p.report };
  }
  // Read through their schemas (src/results/): an older or damaged file is refused in one line.
  if (kind === 'homework') {
    const written = await renderHomeworkReport(dir, await readResultIn(HOMEWORK_CONTRACT, dir));
    return { kind, dir, figures: HOMEWORK_FIGURES.map((f) => join(dir, 'plots', `${f}.png`)), ...written };
  }
  // batch.json also holds the diagnosis it was written with; the report is drawn from a fresh one,
  // made as the batch made it (batchFile).
  const { diagnoses: _saved, ...record } = await readResultIn(BATCH_CONTRACT, dir);
  const written = await renderBatchReport(dir, batchFile(record));
  const figures = record.samples.length > 0 ? BATCH_FIGURES.map((f) => join(dir, 'plots', `${f}.png`)) : [];
  return { kind, dir, figures, ...written };
}
