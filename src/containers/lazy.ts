// The lazy strategy (post-copy for containers): `criu dump --lazy-pages` on chost-src writes every
// image but the memory and then serves the pages; on chost-dst `criu lazy-pages` (a userfaultfd
// daemon) and `criu restore --lazy-pages` bring the tree back without its memory, and each page is
// fetched from the source when first touched, the rest in the background. The container runs on
// the destination long before its memory has arrived; the source's dump ends (and the tree there
// is killed) once every page has been sent. If chost-src dies before that, the container is lost.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { MiglabError } from '../errors.js';
import type { GuestExit, GuestProcess } from '../guest/control-client.js';
import { pollUntil, withDeadline } from '../util/deadline.js';
import type { ExplainedCommand } from '../util/explained-command.js';
import { criuDump, criuLazyPages, criuRestore } from './criu-argv.js';
import type { ContainerHost } from './hosts.js';
import { criuLogErrors, runCriu } from './transfer.js';

/** The port the source's lazy dump serves its pages on. */
export const LAZY_PORT = 27090;
/** The line dump.log has once the images are written and the pages are being served (criu/cr-dump.c cr_lazy_mem_dump). */
const SERVING = 'Starting lazy pages server';

export interface LazyContext {
  readonly src: ContainerHost;
  readonly dst: ContainerHost;
  readonly runId: string;
  /** The run's directory on the export, as the guests and the lab host see it. */
  readonly guestDir: string;
  readonly hostDir: string;
  readonly signal: AbortSignal;
}

export interface LazyDump {
  readonly command: ExplainedCommand;
  /** From the dump's start until it served the pages (the images other than memory written). */
  readonly readyMs: number;
  /** The dump, still running until every page is sent. */
  readonly process: GuestProcess;
}

/** Start the lazy dump and wait until it serves the pages. */
export async function startLazyDump(x: LazyContext, rootPid: number): Promise<LazyDump> {
  await mkdir(join(x.hostDir, 'final'), { recursive: true });
  const command = criuDump({ pid: rootPid, imagesDir: `${x.guestDir}/final`, logFile: 'dump.log', preDump: false, lazyPages: { address: x.src.ip, port: LAZY_PORT } });
  const started = Date.now();
  // Spawned, not run: it lasts until the last page has gone, long after the restore.
  const proc = await x.src.ctl.spawn(command.argv, { signal: x.signal });
  const waiting = new AbortController();
  const serving = pollUntil(
    'the lazy dump to serve its pages',
    async () => ((await x.src.ctl.exec(['grep', '-q', SERVING, `${x.guestDir}/final/dump.log`], { reject: false, signal: x.signal })).exitCode === 0 ? true : undefined),
    { timeoutMs: 120_000, intervalMs: 25, signal: AbortSignal.any([x.signal, waiting.signal]) },
  );
  const first = await Promise.race([serving.then(() => undefined), proc.exited]);
  if (first !== undefined) {
    waiting.abort();
    await serving.catch(() => undefined);
    throw new MiglabError('COMMAND_FAILED', `criu dump --lazy-pages on ${x.src.name} exited ${exitText(first)}: ${(await criuLogErrors(join(x.hostDir, 'final', 'dump.log'))) || 'no error in its log'}`);
  }
  return { command, readyMs: Date.now() - started, process: proc };
}

function exitText(e: GuestExit): string {
  return e.signal ? `on signal ${e.signal}` : String(e.exitCode);
}

/** The pages `criu lazy-pages` moved, from its log's last "UFFD transferred pages: (N/M)" line. */
export function lazyPagesTransferred(log: string): number | null {
  const all = [...log.matchAll(/UFFD transferred pages: \((\d+)\/(\d+)\)/g)];
  const last = all.at(-1);
  return last ? Number(last[1]) : null;
}

/** The destination's work dir: lazy-pages and the restore meet on lazy-pages.socket there (its own memory, not NFS). */
function localWorkDir(x: LazyContext): string {
  return `/run/miglab-ck/${x.runId}/lazy`;
}

/** `criu lazy-pages` as a daemon on chost-dst (returns once it listens), then the restore without memory. */
export async function lazyRestore(x: LazyContext): Promise<{ daemon: ExplainedCommand; restore: ExplainedCommand; result: Awaited<ReturnType<typeof runCriu>> }> {
  const work = localWorkDir(x);
  const finalDir = `${x.guestDir}/final`;
  await x.dst.ctl.exec(['mkdir', '-p', work], { signal: x.signal });
  const daemon = criuLazyPages({ imagesDir: finalDir, workDir: work, logFile: `${finalDir}/lazy-pages.log`, source: { address: x.src.ip, port: LAZY_PORT }, daemon: { pidFile: 'lazy-pages.pid' } });
  await runCriu(x.dst, daemon, join(x.hostDir, 'final', 'lazy-pages.log'), x.signal);
  const restore = criuRestore({ imagesDir: finalDir, workDir: work, logFile: `${finalDir}/restore.log`, pidFile: 'restored.pid', detach: true, lazyPages: true });
  const result = await runCriu(x.dst, restore, join(x.hostDir, 'final', 'restore.log'), x.signal);
  // stats-restore is written to the work dir: copied to the export, where the host reads it.
  await x.dst.ctl.exec(['cp', `${work}/stats-restore`, `${finalDir}/`], { reject: false, signal: x.signal });
  return { daemon, restore, result };
}

/** Until the source has sent its last page and its dump ended: how long the container depended on chost-src. */
export async function lazyTransferDone(x: LazyContext, dump: LazyDump, timeoutMs = 300_000): Promise<GuestExit> {
  const exit = await withDeadline(`the lazy dump on ${x.src.name} sending its last page`, dump.process.exited, { timeoutMs, signal: x.signal });
  if (exit.exitCode !== 0) {
    throw new MiglabError('COMMAND_FAILED', `criu dump --lazy-pages on ${x.src.name} ended ${exitText(exit)} before every page was sent: ${(await criuLogErrors(join(x.hostDir, 'final', 'dump.log'))) || 'no error in its log'}`);
  }
  return exit;
}
