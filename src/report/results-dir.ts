// Where results go, checked before anything starts: a results folder that cannot be written (a
// read-only mount) or has no room (a full disk) is one clear line naming the folder and the fix,
// instead of an ENOSPC crash with QEMUs left running. Results are private to their owner: a
// guest's memory, disk and console can hold secrets, so folders are 0700 and files 0600.
import { constants } from 'node:fs';
import { access, mkdir, rm, statfs, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { makePrivateDir } from '../util/private.js';


/**
 * Room a run needs. Measured over the 22 runs of the fault benchmark (256 MiB guests, 1 ms
 * probe): about 37 KB of probe.csv and 5-8 KB of QMP transcripts per second of run, so 0.16-1.2
 * MB for 8-25 s runs and about 6 MB for a run that waits out the default 120 s deadline. A sweep
 * or batch checks before each run; the rest is margin for reports and plots.
 */
export const MIN_FREE_MIB = 64;

const FIX = 'choose another folder with --results DIR';


/** statfs magic numbers of the kernel's own file systems (linux/magic.h). */
const KERNEL_FS: Readonly<Record<number, string>> = { 0x9fa0: '/proc (procfs)', 0x62656572: '/sys (sysfs)', 0x64626720: 'debugfs', 0x74726163: 'tracefs', 0x1cd1: 'devpts' };

/** The kernel file system the nearest existing folder of `abs` is on, if it is one. */
async function kernelFileSystem(abs: string): Promise<string | undefined> {
  for (let d = abs; ; d = dirname(d)) {
    const fs = await statfs(d).catch(() => undefined);
    if (fs) return KERNEL_FS[Number(fs.type)];
    if (dirname(d) === d) return undefined;
  }
}

function reason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ? `${e.code}: ${e.message.replace(/^[A-Z]+: /, '').replace(/, \w+ '.*'$/, '')}` : String(err);
}

/**
 * Check (and make) the results folder: it must be writable and have at least `minFreeMiB`
 * free. Returns its absolute path. Throws a UsageError before anything has started.
 */
export async function checkResultsDir(dir: string, minFreeMiB = MIN_FREE_MIB): Promise<string> {
  const abs = resolve(dir);
  // Node's recursive mkdir never returns under /proc (seen: `mkdirSync('/proc/x', {recursive})`
  // hangs), and neither /proc nor /sys can hold files: refused by the file system they are on.
  const kernelFs = await kernelFileSystem(abs);
  if (kernelFs) throw new UsageError(`the results folder ${abs} is on ${kernelFs}, which holds no files`, FIX);
  try {
    await makePrivateDir(abs);
  } catch (err) {
    // A recursive mkdir reports ENOENT for a parent it could not make; the last step says why.
    const last = await mkdir(abs, { mode: 0o700 }).then(
      () => err,
      (e: unknown) => e,
    );
    throw new UsageError(`the results folder ${abs} cannot be made (${reason(last)})`, FIX);
  }
  try {
    await access(abs, constants.W_OK);
    // access() says yes on a read-only mount for root: only a real write tells.
    const probe = join(abs, `.miglab-write-check-${process.pid}`);
    await writeFile(probe, 'miglab\n', { mode: 0o600 });
    await rm(probe, { force: true });
  } catch (err) {
    throw new UsageError(`the results folder ${abs} is not writable (${reason(err)})`, FIX);
  }
  const fs = await statfs(abs);
  const freeMiB = (fs.bavail * fs.bsize) / 1024 / 1024;
  if (freeMiB < minFreeMiB) {
    throw new UsageError(`the results folder ${abs} has ${freeMiB.toFixed(1)} MiB free; a run needs at least ${minFreeMiB} MiB`, `free some space or ${FIX}`);
  }
  return abs;
}
