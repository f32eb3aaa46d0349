// Which `miglab guests up` holds guests on a lab: one small file per holding process under
// STATE_ROOT/PREFIX/guests/, naming it by pid and start time (as the lab's process records do),
// so `guests down`, run later from another terminal, signals exactly that process and never one
// that reused its pid. The holder removes its file when it ends; a file whose holder is gone
// (killed with SIGKILL) names nobody alive and is removed by the next `guests down`.
import { mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { selfProcess } from '../lab/proc.js';

export const HolderRecordSchema = z.object({
  pid: z.number().int().positive(),
  startTime: z.number().int().nonnegative(),
  prefix: z.string(),
  since: z.string(),
});
export type HolderRecord = z.infer<typeof HolderRecordSchema>;

export function holdersDir(labDir: string): string {
  return join(labDir, 'guests');
}

/** Record this process as holding guests on the lab; returns how to remove the record. */
export function recordHolder(labDir: string, prefix: string): { remove: () => void } {
  const dir = holdersDir(labDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const me = selfProcess();
  const file = join(dir, `${me.pid}.json`);
  const record: HolderRecord = { ...me, prefix, since: new Date().toISOString() };
  writeFileSync(file, `${JSON.stringify(record)}\n`, { mode: 0o600 });
  return {
    remove: () => {
      rmSync(file, { force: true });
      // The directory too once no holder is left: a hosts file's lab keeps no state here after a run.
      try {
        rmdirSync(dir);
      } catch {
        // Another guests up still holds guests on this lab (or it is gone already).
      }
    },
  };
}

/** Every holder recorded on the lab (alive or not), and the files that are not records. */
export function readHolders(labDir: string): { holders: { file: string; record: HolderRecord }[]; unreadable: string[] } {
  const dir = holdersDir(labDir);
  const holders: { file: string; record: HolderRecord }[] = [];
  const unreadable: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json'));
  } catch {
    // No directory: nobody ever held guests on this lab.
    return { holders, unreadable };
  }
  for (const n of names) {
    const file = join(dir, n);
    try {
      holders.push({ file, record: HolderRecordSchema.parse(JSON.parse(readFileSync(file, 'utf8'))) });
    } catch {
      // Torn by a crash mid-write: it names nobody for sure.
      unreadable.push(file);
    }
  }
  return { holders, unreadable };
}
