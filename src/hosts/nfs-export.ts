// The NFS export miglab serves itself from one host of a hosts file (`storage: { serve: ganesha |
// kernel, server: ROLE, dir: PATH }`), for users without an export of their own. It lives from the
// first command that needs it (`lab up --hosts`, or the first run) until `lab down --hosts`, as
// the embedded lab's NFS server does, so it must outlive the SSH session that started it:
//  - ganesha: the embedded lab's own server (nfs-server.sh: rpcbind with its TCP sockets from
//    socket-activate.pl + nfs-ganesha, both bound to the server host's address, with a private
//    /run) started detached in a session of its own and a mount namespace of its own (setsid +
//    unshare --mount), recorded by pid and start time, stopped by pid after checking both;
//  - kernel: the host's kernel NFS server told to export the directory (exportfs), and told to
//    stop at down (exportfs -u). Where the host has none, this is said plainly, never faked.
// Only src's and dst's addresses may mount it; nothing listens on a wildcard address. What miglab
// did is recorded in a state file under the lab's runDir on the server host; the export directory
// is made when missing and removed at down only when miglab made it and it is empty (a user's
// file in it is never deleted). Concurrent miglab commands serialise on a flock on that host.
import { posix } from 'node:path';
import { MiglabError } from '../errors.js';
import type { Host, HostProcess } from '../host/host.js';
import { ganeshaConfig, nfsUrl } from '../lab/ganesha.js';
import { FSAL_VFS_PATHS, firstExisting, installLine, missingPrograms, type Missing } from '../lab/deps.js';
import { nfsServerScript, serverLogTail } from '../lab/nfs.js';
import { parseProcStat } from '../lab/proc.js';
import type { HostRole } from '../lab/spec.js';
import { pollUntil, type WaitOptions } from '../util/deadline.js';
import type { HostsSpec, ServeKind } from './file.js';

/** The ports an export served by ganesha needs on the server's address: NFS, mountd, rpcbind. */
export const GANESHA_PORTS = [2049, 20048, 111] as const;
/** exportfs's options: what QEMU over libnfs needs (root's writes as root; libnfs uses a port above 1023). */
export const KERNEL_EXPORT_OPTIONS = 'rw,sync,no_root_squash,insecure,no_subtree_check';
/** How long a stopped server gets after SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 5000;
const STEP_MS = 15_000;

/** The programs serving with ganesha needs on the server host (the same as the embedded lab's). */
const GANESHA_PROGRAMS: readonly Missing[] = [
  ['ganesha.nfsd', 'nfs-ganesha'],
  ['rpcbind', 'rpcbind'],
  ['perl', 'perl-base'],
  ['setsid', 'util-linux'],
  ['unshare', 'util-linux'],
  ['flock', 'util-linux'],
];
/** What src and dst need to tell that the export answers. */
export const READER_PROGRAMS: readonly Missing[] = [['nfs-ls', 'libnfs-utils']];

/** One served export: where it is served from, to whom, and where miglab keeps its record. */
export interface ServedExport {
  readonly kind: ServeKind;
  readonly role: HostRole;
  /** The host it is served from. */
  readonly host: Host;
  /** The address it is served at (nfs://ADDRESS/DIR). */
  readonly address: string;
  readonly dir: string;
  /** The only addresses allowed to mount it: src's and dst's. */
  readonly clients: readonly string[];
  /** The lab's runDir on the server host (kept visible in the server's private /run). */
  readonly runDir: string;
  /** The hosts that open the export (src, dst): it is ready once each lists it. */
  readonly readers: ReadonlyArray<{ readonly role: HostRole; readonly host: Host }>;
}

/** The served export of a spec, or undefined when the export is the user's. */
export function servedExportOf(spec: HostsSpec, hosts: Readonly<Record<HostRole, Host>>, runDir: string): ServedExport | undefined {
  const { storage } = spec;
  if (storage.serve === undefined) return undefined;
  const readers = (['src', 'dst'] as const).filter((r, i, all) => all.findIndex((o) => hosts[o] === hosts[r]) === i).map((role) => ({ role, host: hosts[role] }));
  return {
    kind: storage.serve,
    role: storage.server,
    host: hosts[storage.server],
    address: storage.serverAddress,
    dir: storage.dir,
    clients: [...new Set([spec.hosts.src.address, spec.hosts.dst.address])],
    runDir,
    readers,
  };
}

/** What miglab did on the server host, as its state file keeps it. */
export interface ServedRecord {
  readonly kind: ServeKind;
  readonly address: string;
  readonly dir: string;
  readonly clients: readonly string[];
  /** miglab made `dir` (it was missing): removed at down if empty. */
  readonly madeDir: boolean;
  /** ganesha: nfs-server.sh's pid (its process group's id) and start time (/proc/PID/stat field 22). */
  readonly pid?: number;
  readonly startTime?: number;
}

export interface ServerFiles {
  readonly stateDir: string;
  readonly record: string;
  readonly lock: string;
  readonly configFile: string;
  readonly logFile: string;
  readonly ganeshaLogFile: string;
  readonly recoveryRoot: string;
  /** nfs-server.sh and socket-activate.pl, side by side as the script expects. */
  readonly script: string;
  readonly activator: string;
}

export function serverFiles(runDir: string): ServerFiles {
  const stateDir = posix.join(runDir, 'nfs');
  return {
    stateDir,
    record: posix.join(stateDir, 'server.json'),
    lock: posix.join(runDir, 'nfs.lock'),
    configFile: posix.join(stateDir, 'ganesha.conf'),
    logFile: posix.join(stateDir, 'server.log'),
    ganeshaLogFile: posix.join(stateDir, 'ganesha.log'),
    recoveryRoot: posix.join(stateDir, 'recov'),
    script: posix.join(stateDir, 'bin', 'nfs-server.sh'),
    activator: posix.join(stateDir, 'bin', 'socket-activate.pl'),
  };
}

/** exportfs's argv that exports `dir` to one client (kernel NFS), and the one that stops it. */
export function kernelExportArgv(dir: string, client: string): string[] {
  return ['exportfs', '-o', KERNEL_EXPORT_OPTIONS, `${client}:${dir}`];
}

export function kernelUnexportArgv(dir: string, client: string): string[] {
  return ['exportfs', '-u', `${client}:${dir}`];
}

/**
 * Runs `"$@"` (after the log file, $1) in a session of its own, detached: the background child of
 * a shell without job control is no group leader, so setsid makes the session in place (no fork)
 * and `$!` is the server's own pid, which it keeps through each exec. Outside the SSH command's
 * process group, the session-bound wrapper (src/host/ssh.ts) does not end it with the session.
 */
const DETACH_SCRIPT = 'log=$1; shift; setsid "$@" </dev/null >>"$log" 2>&1 & echo $!';

/** The argv that starts the ganesha server detached on the server host; prints its pid. */
export function ganeshaStartArgv(x: Pick<ServedExport, 'address' | 'dir' | 'runDir'>, files: ServerFiles): string[] {
  return [
    'sh', '-c', DETACH_SCRIPT, 'miglab-nfs', files.logFile,
    // A mount namespace of its own (slave: the host's later mounts still reach it), where
    // nfs-server.sh mounts its private /run, as `ip netns exec` gives it on the embedded lab.
    'unshare', '--mount', '--propagation', 'slave', '--',
    'sh', files.script, x.address, files.configFile, files.ganeshaLogFile, x.runDir, x.dir,
  ];
}

/** The config of a served export: the embedded lab's, bound to the server's address, for src and dst only. */
export function servedGaneshaConfig(x: Pick<ServedExport, 'address' | 'dir' | 'clients'>, files: ServerFiles): string {
  return ganeshaConfig({ serverIp: x.address, clients: x.clients.join(', '), exportDir: x.dir, recoveryRoot: files.recoveryRoot });
}

/**
 * Sockets (`ss -Htulnp` lines) on `ports` that an export at `address` could not bind past: on that
 * address, or on a wildcard one. Each as "PORT/PROTO on LOCAL (PROGRAM pid N)".
 */
export function portHolders(ssText: string, address: string, ports: readonly number[]): string[] {
  const found: string[] = [];
  for (const line of ssText.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6) continue;
    const local = f[4]!;
    const at = local.lastIndexOf(':');
    // [::ffff:A.B.C.D] is an IPv6 socket bound to an IPv4 address (ganesha's UDP one).
    const host = local.slice(0, at).replace(/%.*$/, '').replace(/^\[|\]$/g, '').replace(/^::ffff:(?=\d)/, '');
    const port = Number(local.slice(at + 1));
    if (!ports.includes(port)) continue;
    if (!['0.0.0.0', '*', '::', address].includes(host)) continue;
    const user = /users:\(\("([^"]+)",pid=(\d+)/.exec(line);
    found.push(`${port}/${f[0]} on ${local}${user ? ` (${user[1]} pid ${user[2]})` : ''}`);
  }
  return found;
}

/** Why a host cannot serve, and what to do about it. */
export interface ServeProblem {
  readonly problem: string;
  readonly fix: string;
}

/** Why the server host cannot serve the export this way; undefined when it can. */
export async function serveProblem(x: Pick<ServedExport, 'kind' | 'role' | 'host'>): Promise<ServeProblem | undefined> {
  if (x.kind === 'kernel') return kernelNfsProblem(x.role, x.host);
  const missing = await missingPrograms(x.host, GANESHA_PROGRAMS);
  if ((await firstExisting(x.host, FSAL_VFS_PATHS)) === undefined) missing.push(["nfs-ganesha's VFS backend (libfsalvfs.so)", 'nfs-ganesha-vfs']);
  if (missing.length === 0) return undefined;
  return { problem: `serving with ganesha needs ${missing.map(([what]) => what).join(', ')} on ${x.role}, missing there`, fix: installLine(missing) };
}

/** The kernel NFS server: exportfs to tell it, and nfsd running (its threads started) to serve. */
async function kernelNfsProblem(role: HostRole, host: Host): Promise<ServeProblem | undefined> {
  const fix = 'use serve: ganesha (miglab starts its own), or install and start the kernel NFS server there (apt-get install -y nfs-kernel-server; systemctl start nfs-server)';
  if ((await host.which('exportfs')) === undefined) return { problem: `no kernel NFS server on ${role}: exportfs is missing`, fix };
  const threads = (await host.readText('/proc/fs/nfsd/threads').catch(() => undefined))?.trim();
  if (!threads || threads === '0') return { problem: `no kernel NFS server on ${role}: nfsd is not running (${threads === undefined ? '/proc/fs/nfsd is not mounted' : '/proc/fs/nfsd/threads is 0'})`, fix };
  return undefined;
}

/** The sockets on the server host that would keep ganesha and rpcbind from binding the address. */
export async function ganeshaPortHolders(x: Pick<ServedExport, 'host' | 'address'>, opts: WaitOptions): Promise<string[]> {
  const r = await x.host.run(['ss', '-Htulnp'], { reject: false, timeoutMs: Math.min(STEP_MS, opts.timeoutMs), signal: opts.signal });
  return portHolders(r.stdout, x.address, GANESHA_PORTS);
}

async function readRecord(x: ServedExport, files: ServerFiles): Promise<ServedRecord | undefined> {
  const text = await x.host.readText(files.record);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as ServedRecord;
  } catch {
    // A record cut short (the host lost power as it was written): nothing it says can be trusted.
    return undefined;
  }
}

/** The recorded server still runs: the same pid with the same start time (not a reused pid). */
async function recordedAlive(host: Host, rec: ServedRecord): Promise<boolean> {
  if (rec.pid === undefined) return false;
  const stat = await host.readText(`/proc/${rec.pid}/stat`).catch(() => undefined);
  const st = stat === undefined ? undefined : parseProcStat(stat);
  return st !== undefined && st.startTime === rec.startTime && st.state !== 'Z' && st.state !== 'X';
}

/** A text file on a host (parents made), written through one command's stdin. */
async function writeRemote(host: Host, path: string, text: string, opts: WaitOptions): Promise<void> {
  await host.run(['sh', '-c', 'mkdir -p -- "$(dirname -- "$1")" && cat > "$1"', 'miglab-write', path], { input: text, timeoutMs: Math.min(STEP_MS, opts.timeoutMs), signal: opts.signal });
}

/**
 * Hold a flock on `path` on the host while `fn` runs: two miglab commands starting the export at
 * once would otherwise both find none and start two. The holder is a session-bound process, so a
 * miglab killed meanwhile releases the lock with its SSH session.
 */
async function withRemoteLock<T>(host: Host, path: string, opts: WaitOptions, fn: () => Promise<T>): Promise<T> {
  await host.run(['mkdir', '-p', '--', posix.dirname(path)], { timeoutMs: STEP_MS, signal: opts.signal });
  const holder: HostProcess = host.spawn(['flock', path, 'sh', '-c', 'echo locked; exec sleep 3600']);
  try {
    let out = '';
    holder.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    await pollUntil(`the lock ${path} on ${host.name}`, () => {
      if (out.includes('locked')) return true;
      if (holder.hasExited) throw new MiglabError('COMMAND_FAILED', `flock ${path} on ${host.name} failed: ${holder.tail(3) || 'it exited'}`);
      return undefined;
    }, { ...opts, intervalMs: 50 });
    return await fn();
  } finally {
    await holder.stop(1000).catch(() => undefined);
  }
}

export interface EnsureResult {
  /** Whether this call started (or exported) it; false: a live one was recorded already. */
  readonly started: boolean;
  readonly line: string;
}

/** One line saying what serves the export now, for `lab up` and `lab status`. */
function describeServing(x: ServedExport, rec: ServedRecord): string {
  const how = rec.kind === 'ganesha' ? `nfs-ganesha (pid ${rec.pid})` : 'the kernel NFS server';
  return `${x.role}: serving ${rec.dir} at ${nfsUrl(rec.address, rec.dir)} with ${how} to ${rec.clients.join(', ')}${rec.madeDir ? ` (${rec.dir} made by miglab)` : ''}`;
}

/**
 * Serve the export unless a live server of this lab is recorded (then it is used as it is), and
 * wait until src and dst can list it. On failure, what was started is stopped and the reason thrown.
 */
export async function ensureServedExport(x: ServedExport, opts: WaitOptions): Promise<EnsureResult> {
  const files = serverFiles(x.runDir);
  // Without the lock first: with a live server (every command after the first) this is all.
  const live = await reusable(x, await readRecord(x, files));
  if (live) return live;
  // What serving needs, before anything is made on the host.
  const problem = await serveProblem(x);
  if (problem) throw new MiglabError('MISSING_DEPENDENCY', `${problem.problem}; ${problem.fix}`);
  for (const { role, host } of x.readers) {
    const missing = await missingPrograms(host, READER_PROGRAMS);
    if (missing.length) throw new MiglabError('MISSING_DEPENDENCY', `nfs-ls is missing on ${role} (miglab waits with it until the export it serves answers there); install with: ${installLine(missing)}`);
  }
  try {
    return await withRemoteLock(x.host, files.lock, opts, async () => {
      const old = await readRecord(x, files);
      // Another miglab command may have started it while this one waited for the lock.
      const started = await reusable(x, old);
      if (started) return started;
      if (x.kind === 'ganesha') {
        const held = await ganeshaPortHolders(x, opts);
        if (held.length) throw new MiglabError('LAB_STATE', `cannot serve the export on ${x.role} at ${x.address}: ${held.join('; ')} already; stop that server (its NFS/rpcbind), or use serve: kernel`);
      }
      // A directory of an earlier server that died keeps its `madeDir`: still miglab's to remove.
      const made = await x.host.run(['sh', '-c', '[ -d "$1" ] && exit 0; mkdir -p -- "$1" && echo made', 'miglab-mkdir', x.dir], { timeoutMs: STEP_MS, signal: opts.signal });
      const madeDir = made.stdout.trim() === 'made' || (old?.madeDir ?? false);
      const base = { kind: x.kind, address: x.address, dir: x.dir, clients: [...x.clients], madeDir };
      let rec: ServedRecord;
      try {
        rec = x.kind === 'ganesha' ? await startGanesha(x, files, base, opts) : await exportKernel(x, files, base, opts);
        await waitServed(x, files, rec, opts);
      } catch (err) {
        await stopServing(x, await readRecord(x, files)).catch(() => undefined);
        if (madeDir) await x.host.run(['rmdir', '--', x.dir], { reject: false, timeoutMs: STEP_MS });
        await x.host.remove(files.stateDir).catch(() => undefined);
        throw err;
      }
      return { started: true, line: describeServing(x, rec) };
    });
  } catch (err) {
    // Nothing serves: the lock's file goes, and the lab's runDir when nothing else is in it.
    if (!(await readRecord(x, files).catch(() => undefined))) {
      await x.host.remove(files.lock).catch(() => undefined);
      await x.host.run(['rmdir', '--', x.runDir], { reject: false, timeoutMs: STEP_MS }).catch(() => undefined);
    }
    throw err;
  }
}

/**
 * What a record on the host says of serving now: a live server of the export the file asks for
 * (used as it is), none (undefined), or one of another export, refused: a record names what
 * `lab down` stops, and only one export is recorded per lab.
 */
async function reusable(x: ServedExport, rec: ServedRecord | undefined): Promise<EnsureResult | undefined> {
  if (!rec) return undefined;
  if (rec.kind !== x.kind || rec.dir !== x.dir || rec.address !== x.address) {
    throw new MiglabError('LAB_STATE', `${x.role} has ${rec.dir} served (${rec.kind}, at ${rec.address}) as the hosts file said before, not ${x.dir} (${x.kind}, at ${x.address}) as it says now; take it away first: miglab lab down --hosts FILE (it stops what the record names)`);
  }
  return rec.kind === 'kernel' || (await recordedAlive(x.host, rec)) ? { started: false, line: describeServing(x, rec) } : undefined;
}

async function startGanesha(x: ServedExport, files: ServerFiles, base: ServedRecord, opts: WaitOptions): Promise<ServedRecord> {
  // Side by side, as nfs-server.sh finds socket-activate.pl next to itself.
  const script = nfsServerScript();
  await x.host.putFile(script, files.script);
  await x.host.putFile(posix.join(posix.dirname(script), 'socket-activate.pl'), files.activator);
  await x.host.run(['mkdir', '-p', '--', files.recoveryRoot], { timeoutMs: STEP_MS, signal: opts.signal });
  await writeRemote(x.host, files.configFile, servedGaneshaConfig(x, files), opts);
  const r = await x.host.run(ganeshaStartArgv(x, files), { timeoutMs: STEP_MS, signal: opts.signal });
  const pid = Number(r.stdout.trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new MiglabError('COMMAND_FAILED', `the NFS server on ${x.role} did not report its pid: ${r.stdout.trim() || r.stderr.trim() || '(nothing)'}`);
  const stat = await x.host.readText(`/proc/${pid}/stat`).catch(() => undefined);
  const st = stat === undefined ? undefined : parseProcStat(stat);
  if (!st) throw new MiglabError('COMMAND_FAILED', `the NFS server on ${x.role} exited at once: ${await serverLog(x, files)}`);
  const rec: ServedRecord = { ...base, pid, startTime: st.startTime };
  // Recorded before waiting, so a failure from here on (or a later `lab down`) stops it by pid.
  await writeRemote(x.host, files.record, JSON.stringify(rec), opts);
  return rec;
}

async function exportKernel(x: ServedExport, files: ServerFiles, base: ServedRecord, opts: WaitOptions): Promise<ServedRecord> {
  // An export the user has already (/etc/exports) would be unexported at down: refused, pointed at instead.
  const listed = await x.host.run(['exportfs', '-v'], { reject: false, timeoutMs: STEP_MS, signal: opts.signal });
  if (listed.stdout.split('\n').some((l) => l.split(/\s+/)[0] === x.dir)) {
    throw new MiglabError('LAB_STATE', `${x.dir} is exported on ${x.role} already (exportfs -v lists it): give it as storage: { nfs: ${nfsUrl(x.address, x.dir)}, server: ${x.role} } instead of serve: kernel`);
  }
  // Recorded first: a failure half way unexports what was exported.
  await writeRemote(x.host, files.record, JSON.stringify(base), opts);
  for (const client of x.clients) await x.host.run(kernelExportArgv(x.dir, client), { timeoutMs: STEP_MS, signal: opts.signal });
  return base;
}

/** The last lines of the served server's logs on its host, for errors (ganesha's harmless noise left out). */
async function serverLog(x: ServedExport, files: ServerFiles): Promise<string> {
  const read = async (path: string) => (await x.host.readText(path).catch(() => undefined)) ?? '';
  return serverLogTail(await read(files.logFile), await read(files.ganeshaLogFile));
}

/** Until `nfs-ls` of the export answers on each reader (src, dst); at once an error if the server died. */
async function waitServed(x: ServedExport, files: ServerFiles, rec: ServedRecord, opts: WaitOptions): Promise<void> {
  const url = nfsUrl(x.address, x.dir);
  for (const { role, host } of x.readers) {
    let last = '';
    try {
      await pollUntil(`the NFS export ${url} to answer on ${role}`, async () => {
        if (rec.kind === 'ganesha' && !(await recordedAlive(x.host, rec))) {
          throw new MiglabError('COMMAND_FAILED', `the NFS server on ${x.role} stopped while starting: ${await serverLog(x, files)}`);
        }
        const r = await host.run(['nfs-ls', url], { reject: false, timeoutMs: 5000, signal: opts.signal });
        last = (r.stderr || r.stdout).trim();
        return r.exitCode === 0 ? true : undefined;
      }, { ...opts, intervalMs: 200 });
    } catch (err) {
      if (err instanceof MiglabError && err.code === 'TIMEOUT') {
        throw new MiglabError('TIMEOUT', `${err.message}; last nfs-ls said: ${last || '(nothing)'}${rec.kind === 'ganesha' ? `; server log: ${await serverLog(x, files)}` : ''}; let NFS (TCP 2049, 20048, 111) from ${role} through ${x.role}'s firewall`, { cause: err });
      }
      throw err;
    }
  }
}

/** Stop what the record says was started (ganesha by pid, checked against its start time; kernel: unexport). */
async function stopServing(x: ServedExport, rec: ServedRecord | undefined): Promise<string[]> {
  if (!rec) return [];
  if (rec.kind === 'kernel') {
    for (const client of rec.clients) await x.host.run(kernelUnexportArgv(rec.dir, client), { reject: false, timeoutMs: STEP_MS });
    return [`${x.role}: stopped exporting ${rec.dir} (exportfs -u for ${rec.clients.join(', ')})`];
  }
  if (!(await recordedAlive(x.host, rec))) return [`${x.role}: the NFS server recorded as pid ${rec.pid} had ended already`];
  // Its whole group: nfs-server.sh leads it (setsid), with rpcbind and ganesha in it.
  const group = (sig: string) => x.host.run(['sh', '-c', 'kill -s "$1" -- "-$2"', 'miglab-kill', sig, String(rec.pid)], { reject: false, timeoutMs: STEP_MS });
  const gone = () => pollUntil(`the NFS server (pid ${rec.pid}) on ${x.role} to stop`, async () => ((await group('0')).exitCode !== 0 ? true : undefined), { timeoutMs: STOP_GRACE_MS, intervalMs: 100 });
  await group('TERM');
  try {
    await gone();
  } catch {
    // It ignored SIGTERM for the whole grace period (its group still checked against the record's leader above).
    await group('KILL');
    await gone();
  }
  return [`${x.role}: stopped the NFS server (nfs-ganesha and rpcbind, pid ${rec.pid})`];
}

export interface TakenDown {
  readonly lines: string[];
  /** miglab made the export directory: the caller removes it once its disks are gone (removeMadeDir). */
  readonly madeDir: boolean;
  /** The directory served (as recorded). */
  readonly dir: string;
}

/** `lab down`: stop serving and remove the server's files; the export directory is left to removeMadeDir. */
export async function takeDownServedExport(x: ServedExport): Promise<TakenDown> {
  const files = serverFiles(x.runDir);
  const rec = await readRecord(x, files);
  const lines = await stopServing(x, rec);
  await x.host.remove(files.stateDir);
  await x.host.remove(files.lock);
  return { lines, madeDir: rec?.madeDir ?? false, dir: rec?.dir ?? x.dir };
}

/** The export directory miglab made, removed when empty; a directory holding anything else is left, and said. */
export async function removeMadeDir(x: ServedExport, dir: string): Promise<string> {
  const r = await x.host.run(['rmdir', '--', dir], { reject: false, timeoutMs: STEP_MS });
  if (r.exitCode === 0) return `${x.role}: removed ${dir} (made by miglab, now empty)`;
  if (/No such file/i.test(r.stderr)) return `${x.role}: ${dir} was gone already`;
  return `${x.role}: left ${dir}: it holds files that are not miglab's (${r.stderr.trim().split('\n')[0]})`;
}

/** The record of a server of this lab that serves now, or undefined. */
export async function liveServer(x: ServedExport): Promise<ServedRecord | undefined> {
  const rec = await readRecord(x, serverFiles(x.runDir));
  return rec && (rec.kind === 'kernel' || (await recordedAlive(x.host, rec))) ? rec : undefined;
}

/** `lab status`: what serves the export now, in one line. */
export async function servedExportStatus(x: ServedExport): Promise<string> {
  const files = serverFiles(x.runDir);
  const rec = await readRecord(x, files);
  if (!rec) return `${x.role}: not serving ${x.dir} yet (the first run, or lab up --hosts, starts it)`;
  if (rec.kind === 'ganesha' && !(await recordedAlive(x.host, rec))) return `${x.role}: the NFS server recorded as pid ${rec.pid} has ended (the next run starts it again)`;
  return describeServing(x, rec);
}
