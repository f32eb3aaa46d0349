// How a container's images travel from chost-src to chost-dst, one CRIU dump step at a time:
// through the lab's checkpoint export (NFS), or with the pages streamed to `criu page-server` in
// chost-dst's own memory. Also the helpers every CRIU step shares: running it in a guest with its
// log as the error, and reading its stats and image sizes from the export.
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MiglabError } from '../errors.js';
import type { GuestExecResult } from '../guest/control-client.js';
import type { Lab } from '../lab/index.js';
import { pollUntil } from '../util/deadline.js';
import type { ExplainedCommand } from '../util/explained-command.js';
import { criuPageServer, criuRoundPort } from './criu-argv.js';
import { decodeCriuStats, type DumpStats } from './criu-stats.js';
import type { ContainerHost } from './hosts.js';

/**
 * How the images get to chost-dst. nfs: every image on the checkpoint export, read back by the
 * restore over NFS. page-server: the pages go straight to `criu page-server` in chost-dst, into its
 * own memory (tmpfs); the other images (small) still cross on the export.
 */
export const TRANSFERS = ['nfs', 'page-server'] as const;
export type TransferMode = (typeof TRANSFERS)[number];

/** Port of the first round's page server in chost-dst; round k listens on the next (criuRoundPort). */
const PAGE_SERVER_BASE_PORT = 27100;
/** Where the page server keeps the pages in chost-dst: its own memory, not the export. */
const DST_LOCAL_DIR = '/run/miglab-ck';

export interface DumpTarget {
  readonly imagesDir: string;
  readonly pageServer?: { readonly address: string; readonly port: number };
}

/** One dump step's outcome, whichever way the pages went. */
export interface Dumped {
  readonly result: GuestExecResult;
  readonly command: ExplainedCommand;
  readonly stats: DumpStats | undefined;
  readonly imageBytes: number;
}

/** The images' way to chost-dst (TransferMode), one dump step at a time. */
export class Transfer {
  waitedMs = 0;
  constructor(
    readonly mode: TransferMode,
    private readonly x: { src: ContainerHost; dst: ContainerHost; guestDir: string; hostDir: string; runId: string; signal: AbortSignal },
  ) {}

  private local(name: string): string {
    return `${DST_LOCAL_DIR}/${this.x.runId}/${name}`;
  }

  /** Run one dump or pre-dump into step `name` (the export's <run>/<name>; with a page server, its pages into dst's own). */
  async dump(name: string, index: number, build: (to: DumpTarget) => ExplainedCommand): Promise<Dumped> {
    const { src, dst, guestDir, hostDir, signal } = this.x;
    await mkdir(join(hostDir, name), { recursive: true });
    const logOf = (f: string) => join(hostDir, name, f);
    if (this.mode === 'nfs') {
      const command = build({ imagesDir: `${guestDir}/${name}` });
      const result = await runCriu(src, command, logOf(command.argv.includes('pre-dump') ? 'criu.log' : 'dump.log'), signal);
      return { result, command, stats: (await readStats(logOf('stats-dump')))?.dump, imageBytes: await dirBytes(join(hostDir, name)) };
    }
    // One page server per step, as criu's own tests run it: it returns once listening (--daemon)
    // and exits when the dump disconnects. Its log and pid file go to the export, where the host reads them.
    const port = criuRoundPort(PAGE_SERVER_BASE_PORT, index);
    const prev = index > 1 ? `../r${index - 1}` : undefined;
    await dst.ctl.exec(['mkdir', '-p', this.local(name)], { signal });
    const server = criuPageServer({ imagesDir: this.local(name), workDir: `${guestDir}/${name}`, logFile: 'page-server.log', address: dst.ip, port, prevImagesDir: prev, autoDedup: true, daemon: { pidFile: 'page-server.pid' } });
    await runCriu(dst, server, logOf('page-server.log'), signal);
    const command = build({ imagesDir: `${guestDir}/${name}`, pageServer: { address: dst.ip, port } });
    const result = await runCriu(src, command, logOf(command.argv.includes('pre-dump') ? 'criu.log' : 'dump.log'), signal);
    // The dump has sent its last page; the server has them written once it exits.
    const waitStart = Date.now();
    const pid = Number((await readFile(logOf('page-server.pid'), 'utf8')).trim());
    await pollUntil(
      `the page server of ${name} (pid ${pid} in ${dst.name}) to finish`,
      async () => ((await dst.ctl.exec(['test', '-e', `/proc/${pid}`], { reject: false, signal })).exitCode !== 0 ? true : undefined),
      { timeoutMs: 60_000, signal, intervalMs: 20 },
    );
    this.waitedMs += Date.now() - waitStart;
    const du = await dst.ctl.exec(['du', '-sk', this.local(name)], { signal });
    const kib = Number(du.stdout.trim().split(/\s+/)[0]);
    return { result, command, stats: (await readStats(logOf('stats-dump')))?.dump, imageBytes: (Number.isFinite(kib) ? kib * 1024 : 0) + (await dirBytes(join(hostDir, name))) };
  }

  /** Page server: copy the final dump's other images from the export to the pages in dst (ms taken; 0 for nfs). */
  async gatherFinal(): Promise<number> {
    if (this.mode === 'nfs') return 0;
    const { dst, guestDir, hostDir, signal } = this.x;
    const started = Date.now();
    const files = (await readdir(join(hostDir, 'final'), { withFileTypes: true }))
      // The page server wrote the pagemap and pages itself; the rest was written by the dump on the export.
      .filter((e) => e.isFile() && e.name.endsWith('.img') && !/^(pagemap|pages)-/.test(e.name))
      .map((e) => `${guestDir}/final/${e.name}`);
    await dst.ctl.exec(['cp', ...files, `${this.local('final')}/`], { signal, timeoutMs: 60_000 });
    return Date.now() - started;
  }

  /** Where the restore reads the images, and where it writes its log and stats (always the export). */
  restoreDirs(name: string): { imagesDir: string; workDir: string } {
    const onExport = `${this.x.guestDir}/${name}`;
    return { imagesDir: this.mode === 'nfs' ? onExport : this.local(name), workDir: onExport };
  }
}

/** The run's directory on the lab's checkpoint export, as the lab host sees it. */
export function checkpointDirOf(lab: Pick<Lab, 'paths'>, runId: string): string {
  return join(lab.paths.ckptDir, runId);
}

export async function dirBytes(dir: string): Promise<number> {
  if (!existsSync(dir)) return 0;
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) if (e.isFile()) total += (await stat(join(dir, e.name))).size;
  return total;
}

export async function readStats(file: string): Promise<ReturnType<typeof decodeCriuStats> | undefined> {
  return existsSync(file) ? decodeCriuStats(await readFile(file), file) : undefined;
}

/** Microseconds (CRIU's stats) as milliseconds; null when CRIU gave none. */
export const ms = (us: number | undefined): number | null => (us === undefined ? null : us / 1000);

/** The last error lines of a CRIU log on the export, timestamps cut: a failure in CRIU's own words ('' if none). */
export async function criuLogErrors(logOnHost: string): Promise<string> {
  const log = existsSync(logOnHost) ? await readFile(logOnHost, 'utf8') : '';
  return log
    .split('\n')
    .filter((l) => /Error|FAILED/.test(l))
    .slice(-3)
    .map((l) => l.replace(/^\(\s*[\d.]+\)\s*/, ''))
    .join(' | ');
}

/** Run a CRIU command in a guest; on failure, the tail of its log (CRIU's own words) is the error. */
export async function runCriu(h: ContainerHost, cmd: ExplainedCommand, logOnHost: string, signal: AbortSignal): Promise<GuestExecResult> {
  const r = await h.ctl.exec(cmd.argv, { reject: false, timeoutMs: 120_000, signal });
  if (r.exitCode === 0) return r;
  const errors = await criuLogErrors(logOnHost);
  throw new MiglabError('COMMAND_FAILED', `${cmd.argv.slice(0, 2).join(' ')} on ${h.name} exited ${r.exitCode}: ${errors || r.stderr.trim() || 'no error in its log'}`, {
    context: { argv: cmd.argv, log: logOnHost },
  });
}
