// Which kind of results folder a path is, told by the marker file each kind writes at its top:
// run.json (one migration), sweep.json (a sweep), homework.json (the homework), batch.json (a
// batch). `miglab plot` re-renders a folder with its own kind's renderer, so it must never guess:
// a folder without exactly one marker is refused before anything is written.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../errors.js';

export const FOLDER_MARKERS = { run: 'run.json', sweep: 'sweep.json', homework: 'homework.json', batch: 'batch.json' } as const;
export type FolderKind = keyof typeof FOLDER_MARKERS;

const KINDS = Object.keys(FOLDER_MARKERS) as FolderKind[];
const HINT = 'give the folder of one run, sweep, homework or batch (e.g. results/sweep-NAME/)';

/** The kind of results folder `dir` is; a UsageError (one line, how to fix) when it is none or unclear. */
export function folderKind(dir: string): FolderKind {
  if (!existsSync(dir)) throw new UsageError(`no results folder at ${dir}`, HINT);
  if (!statSync(dir).isDirectory()) throw new UsageError(`${dir} is a file, not a results folder`, HINT);
  const found = KINDS.filter((k) => existsSync(join(dir, FOLDER_MARKERS[k])));
  // A COLO run or series writes its own report.md with the run and has no figure to redraw or compare.
  const colo = found.length === 0 ? ['colo.json', 'series.json'].find((f) => existsSync(join(dir, f))) : undefined;
  if (colo) throw new UsageError(`${dir} is a COLO ${colo === 'colo.json' ? 'run' : 'series'} (${colo}): its report.md was written with it`, 'plot and compare take the folder of a migration run, sweep, homework or batch');
  if (found.length === 0) throw new UsageError(`${dir} is not a miglab results folder: it holds no ${Object.values(FOLDER_MARKERS).join(', ').replace(/, ([^,]+)$/, ' or $1')}`, HINT);
  if (found.length > 1) throw new UsageError(`${dir} holds ${found.map((k) => FOLDER_MARKERS[k]).join(' and ')}: it is not clear which report to draw`, 'give the folder of one run, sweep, homework or batch');
  return found[0]!;
}
