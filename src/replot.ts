// `miglab plot DIR`: draw a results folder's report again, with the renderer of the folder's own
// kind (a run, a sweep, the homework, a batch: told apart by their marker file, plot/folder.ts)
// and from its saved results alone. It never writes a different kind of report over the one a
// folder has; a folder that is none of these is refused before anything is written. Sits at the
// top beside api.ts because it reaches the report writers of every kind.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { diagnoseBatch } from './batch/diagnose.js';
import { BATCH_SCHEMA, type BatchRecord } from './batch/record.js';
import { renderBatchReport } from './batch/report.js';
import { UsageError } from './errors.js';
import { renderHomeworkReport, type HomeworkResults } from './homework/report.js';
import { FOLDER_MARKERS, folderKind, type FolderKind } from './plot/folder.js';
import { plotResults } from './sweep/plots.js';

export interface ReplotResult {
  readonly kind: FolderKind;
  readonly dir: string;
  /** PNG files of the figures drawn (each has an SVG beside it). */
  readonly figures: readonly string[];
  readonly markdownPath: string;
  readonly htmlPath: string;
}

async function readMarker(dir: string, kind: FolderKind): Promise<Record<string, unknown>> {
  const file = join(dir, FOLDER_MARKERS[kind]);
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`${file} cannot be read as JSON (${(err as Error).message})`, 'it may be truncated: run the command that wrote it again');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new UsageError(`${file} does not hold a miglab ${kind} record`, 'give a folder miglab wrote');
  return parsed as Record<string, unknown>;
}

function requireFields(file: string, o: Record<string, unknown>, fields: readonly string[]): void {
  const missing = fields.filter((f) => o[f] === undefined);
  if (missing.length > 0) throw new UsageError(`${file} lacks ${missing.join(', ')}: it is not a complete record`, 'run the command that wrote it again');
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
  const o = await readMarker(dir, kind);
  const file = join(dir, FOLDER_MARKERS[kind]);
  if (kind === 'homework') {
    requireFields(file, o, ['runId', 'environment', 'accel', 'devices', 'during', 'commands']);
    const written = await renderHomeworkReport(dir, o as unknown as HomeworkResults);
    return { kind, dir, figures: HOMEWORK_FIGURES.map((f) => join(dir, 'plots', `${f}.png`)), ...written };
  }
  if (o.schema !== BATCH_SCHEMA) throw new UsageError(`${file} is a batch record of schema ${String(o.schema)}, not ${BATCH_SCHEMA}`, 'draw it with the miglab that wrote it');
  requireFields(file, o, ['batchId', 'startedAt', 'spec', 'host', 'steps', 'stop', 'samples']);
  // batch.json also holds the diagnosis it was written with; the report is drawn from a fresh one.
  const { diagnoses: _saved, ...record } = o as unknown as BatchRecord & { diagnoses?: unknown };
  const written = await renderBatchReport(dir, record, diagnoseBatch(record));
  const figures = record.samples.length > 0 ? BATCH_FIGURES.map((f) => join(dir, 'plots', `${f}.png`)) : [];
  return { kind, dir, figures, ...written };
}
