// Warm starts: a run's source QEMU begins from the saved state of a guest that has already booted,
// instead of booting the kernel again (about 2 s under TCG). The state is QEMU's own: a migration
// of a freshly booted guest into a file (through a unix socket miglab listens on), loaded by a QEMU
// started with `-incoming defer` and `migrate-incoming unix:...` (miglab streams the file into it).
// Loading it is an incoming migration like any other: QEMU announces the guest's MAC when it
// resumes, so the lab's bridges learn its port at once.
//
// A state fits only the QEMU configuration it was saved from: the key covers what shapes the
// guest's devices and RAM (machine spec, image, both QEMU builds, accelerator, RAM pad, disk size).
// The guest in it has booted, printed its first heartbeat and talked to nobody yet.
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { describeError, MiglabError } from '../errors.js';
import { pollUntil, withDeadline, type WaitOptions } from '../util/deadline.js';
import { canonicalJson, sha256 } from '../image/inputs.js';
import type { Vm } from './vm.js';

export const GUEST_STARTS = ['cold', 'warm'] as const;
/** The socket a restoring QEMU listens on for its state, in its monitor folder. */
export const WARM_SOCKET = 'warm.sock';
export type GuestStart = (typeof GUEST_STARTS)[number];

const WarmMetaSchema = z.object({
  key: z.string(),
  /** The state's file in the folder: a name of its own per save, so two saves of one key never mix. */
  file: z.string().regex(/^[0-9A-Za-z_-]+\.[0-9a-f]{8}\.state$/),
  createdAt: z.string(),
  bytes: z.number().int(),
  saveMs: z.number(),
  /** The guest's boot id and last heartbeat when it was saved: a loaded guest beats on from there. */
  bootId: z.string(),
  seq: z.number().int(),
  /** What the key was made of, for a person looking in the cache. */
  config: z.record(z.string(), z.unknown()),
});
export type WarmMeta = z.infer<typeof WarmMetaSchema>;

export interface WarmState {
  readonly path: string;
  readonly meta: WarmMeta;
}

/** The cache's folder of saved states. */
export function warmDir(cacheDir: string): string {
  return join(cacheDir, 'warm');
}

/** The key of a configuration: 16 hex digits of the sha256 of its canonical JSON (as an image's hash). */
export function warmKey(config: Readonly<Record<string, unknown>>): string {
  return sha256(canonicalJson(config)).slice(0, 16);
}

/** The saved state for `key`, if the cache has a complete one (its record, and its file of the size recorded). */
export async function findWarmState(cacheDir: string, key: string): Promise<WarmState | undefined> {
  const dir = warmDir(cacheDir);
  let meta: WarmMeta;
  try {
    meta = WarmMetaSchema.parse(JSON.parse(await readFile(join(dir, `${key}.json`), 'utf8')));
  } catch {
    return undefined;
  }
  if (meta.key !== key) return undefined;
  const path = join(dir, meta.file);
  const size = await stat(path).then((st) => st.size, () => undefined);
  return size === meta.bytes ? { path, meta } : undefined;
}

/** Forget the state of `key` (one that QEMU could not load): the next warm run makes it again. */
export async function forgetWarmState(cacheDir: string, key: string): Promise<void> {
  const dir = warmDir(cacheDir);
  const names = await readdir(dir).catch(() => [] as string[]);
  await Promise.all(names.filter((n) => n.startsWith(`${key}.`)).map((n) => rm(join(dir, n), { force: true })));
}

/**
 * Save `vm`'s guest (booted, its first heartbeat seen) into the cache under `key`: QEMU migrates
 * into a unix socket miglab listens on in a private folder of this machine, the stream goes to a
 * temporary file renamed into place once QEMU says completed. The guest is left paused
 * (postmigrate); the caller stops this QEMU.
 */
export async function saveWarmState(vm: Vm, o: { cacheDir: string; key: string; config: Record<string, unknown> } & WaitOptions): Promise<WarmState> {
  const dir = warmDir(o.cacheDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // The socket in a private folder of its own under /tmp: the cache may lie too deep for the
  // 107 bytes of a socket path.
  const sockDir = await mkdtemp(join(tmpdir(), 'miglab-save-'));
  const socket = join(sockDir, 's');
  const file = `${o.key}.${randomUUID().slice(0, 8)}.state`;
  const tmp = join(dir, `.${file}.part`);
  const started = Date.now();
  let server: Server | undefined;
  try {
    const received = new Promise<void>((resolve, reject) => {
      server = createServer((conn: Socket) => {
        server?.close();
        pipeline(conn, createWriteStream(tmp, { mode: 0o600 })).then(resolve, reject);
      });
      server.on('error', reject);
      server.listen(socket);
    });
    // Awaited once QEMU says completed; a failure before that (no room for the file) must not
    // go unhandled meanwhile: it is seen there, or QEMU reports the save failed.
    received.catch(() => undefined);
    await new Promise<void>((resolve, reject) => {
      server!.once('listening', resolve);
      server!.once('error', reject);
    });
    const last = vm.console.last;
    if (!last) throw new MiglabError('INTERNAL', 'a warm state is saved only after the guest\'s first heartbeat');
    await vm.qmp.migrate(`unix:${socket}`, { timeoutMs: 10_000, signal: o.signal });
    const info = await pollUntil(
      'saving the booted guest for warm starts',
      async () => {
        const i = await vm.qmp.migrationInfo({ timeoutMs: 5000, signal: o.signal });
        return i.status === 'completed' || i.status === 'failed' || i.status === 'cancelled' ? i : undefined;
      },
      { timeoutMs: o.timeoutMs, signal: o.signal, intervalMs: 50 },
    );
    if (info.status !== 'completed') throw new MiglabError('MIGRATION_FAILED', `saving the booted guest for warm starts: QEMU says ${info.status}${info.errorDesc ? ` (${info.errorDesc})` : ''}`);
    await withDeadline('the saved state to be written', received, { timeoutMs: o.timeoutMs, signal: o.signal });
    const bytes = (await stat(tmp)).size;
    const path = join(dir, file);
    const meta: WarmMeta = { key: o.key, file, createdAt: new Date().toISOString(), bytes, saveMs: Date.now() - started, bootId: last.bootId, seq: last.seq, config: o.config };
    await rename(tmp, path);
    // The record names its own file and is renamed into place whole: two processes saving the
    // same key at once leave one consistent pair (the last record and the file it names).
    const record = join(dir, `.${file}.json.part`);
    await writeFile(record, `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o600 });
    await rename(record, join(dir, `${o.key}.json`));
    // Older states of this key (remade after a failed load, or saved beside this one) are no
    // longer named by any record. A run loading one at this moment keeps reading its open file.
    const others = (await readdir(dir)).filter((n) => n.startsWith(`${o.key}.`) && n.endsWith('.state') && n !== file);
    await Promise.all(others.map((n) => rm(join(dir, n), { force: true })));
    return { path, meta };
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  } finally {
    server?.close();
    await rm(sockDir, { recursive: true, force: true });
  }
}

/**
 * Load `state` into `vm` (started with `-incoming defer`): QEMU listens on a unix socket in its
 * monitor folder, miglab streams the file into it, and QEMU runs the guest once it has all of it.
 * Resolves when the guest runs again (QEMU's status), with the time it took.
 */
export async function loadWarmState(vm: Vm, state: WarmState, o: WaitOptions): Promise<number> {
  const started = Date.now();
  const socket = join(vm.plan.qmpSocket, '..', WARM_SOCKET);
  await vm.qmp.execute('migrate-incoming', { uri: `unix:${socket}` }, { timeoutMs: 10_000, signal: o.signal });
  const conn = await pollUntil(
    'the source QEMU to listen for the saved state',
    () => vm.host.connectUnix(socket).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? undefined : Promise.reject(err))),
    { timeoutMs: 10_000, signal: o.signal, intervalMs: 10 },
  );
  try {
    await withDeadline('loading the saved state', pipeline(createReadStream(state.path), conn), { timeoutMs: o.timeoutMs, signal: o.signal });
  } catch (err) {
    conn.destroy();
    throw new MiglabError('MIGRATION_FAILED', `loading the warm state ${state.path} into the source QEMU: ${describeError(err)}`, { cause: err });
  }
  const status = await pollUntil(
    'the source QEMU to run the loaded guest',
    async () => {
      const s = await vm.qmp.queryStatus({ timeoutMs: 5000, signal: o.signal });
      return s.status === 'inmigrate' ? undefined : s.status;
    },
    { timeoutMs: o.timeoutMs, signal: o.signal, intervalMs: 10 },
  );
  if (status !== 'running') throw new MiglabError('MIGRATION_FAILED', `the source QEMU is ${status}, not running, after loading the warm state ${state.path}`);
  return Date.now() - started;
}
