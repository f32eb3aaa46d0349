// What a program on this machine says about itself (QEMU's version, its CPU models, what it
// offers for migration) changes only when the program file does. Asking costs 0.1-0.2 s a time
// (QEMU starts and quits; measured 0.6 s of every `miglab migrate`), so the answers are kept on
// disk, keyed by the file's identity (path, size, mtime, ctime, inode): an upgrade or a rebuild
// of the program asks again. Only for this machine and its namespaces, which share its files;
// a host over SSH is asked once per process, as before.
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { defaultCacheDir } from '../image/inputs.js';
import type { Host } from './host.js';

/** Where the answers are kept (beside the guest images: a cache, safe to delete). */
export function programFactsFile(): string {
  return join(defaultCacheDir(), 'program-facts.json');
}

/** The program file's identity, or undefined when it cannot be kept (a remote host, no such file). */
export async function programIdentity(host: Host, program: string): Promise<string | undefined> {
  if (!host.sharesLocalFiles) return undefined;
  const path = isAbsolute(program) ? program : await host.which(program);
  if (!path) return undefined;
  try {
    const st = await stat(path);
    return `${path}|${st.size}|${st.mtimeMs}|${st.ctimeMs}|${st.ino}`;
  } catch {
    return undefined;
  }
}

async function readFacts(file: string): Promise<Record<string, unknown>> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as unknown;
    return parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** The last write to a facts file in this process (writes go one at a time: rememberedFact). */
let writing: Promise<void> = Promise.resolve();

/**
 * `ask(host, ...)` whose answer about `program` is kept on disk under `question` (a name that
 * changes when what is asked or how it is parsed changes). A failed ask is not kept; a file that
 * cannot be read or written only costs the ask.
 */
export async function rememberedFact<T>(question: string, host: Host, program: string, ask: () => Promise<T>, file = programFactsFile()): Promise<T> {
  const id = await programIdentity(host, program);
  if (id === undefined) return ask();
  const key = `${question}|${id}`;
  const known = (await readFacts(file))[key];
  if (known !== undefined) return known as T;
  const answer = await ask();
  // One write at a time in this process: two answers asked side by side would otherwise each
  // rewrite the file from what it held before either, and one would be lost.
  const write = writing.then(async () => {
    // Read again just before writing: another process may have added its own answers meanwhile.
    // Written whole to a temporary file and renamed, so a reader never sees half a file.
    const tmp = `${file}.${randomUUID()}`;
    try {
      await mkdir(dirname(file), { recursive: true });
      await writeFile(tmp, JSON.stringify({ ...(await readFacts(file)), [key]: answer }), { mode: 0o600 });
      await rename(tmp, file);
    } catch {
      // A read-only cache, or no room: asked again next time (and no partial file left).
      await rm(tmp, { force: true }).catch(() => undefined);
    }
  });
  // A write never rejects today; were one to, the next would still go ahead.
  writing = write.catch(() => undefined);
  await write;
  return answer;
}
