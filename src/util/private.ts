// Results are their owner's only: a guest's memory, disk and console can hold secrets, so every
// folder miglab makes for results is 0700 and every file it writes there 0600.
import { mkdir } from 'node:fs/promises';

/** writeFile's options for a result file: readable by its owner only. */
export const PRIVATE = { mode: 0o600 } as const;

/** A folder for results, made if needed with mode 0700 (existing ones are left as they are). */
export async function makePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
}
