// SSH hosts made from an embedded lab that is up, for `--hosts` mode without machines of one's
// own (the integration tests' hosts, and `miglab bench --which hosts`): one sshd in each of its
// src, dst and client namespaces, each in a mount namespace of its own where /tmp and /run are
// fresh tmpfs mounts. Code that wrongly uses a controller path on a "remote" host (the lab's state
// in /run/miglab, a socket or file under /tmp) thus fails here as it would on a real machine. The
// controller reaches each host only over SSH, through a proxy argv that carries the connection
// into the namespace (the namespaces have no route from the root one), and a hosts file names them
// as a user would name their own machines. Stopping the hosts stops every process in their mount
// namespaces: sshd, its sessions and whatever those started (QEMU, probes).
// ssh2 and yaml load with this module: only the commands that start such hosts import it.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import { Document, type YAMLSeq } from 'yaml';
import { TimeoutError } from '../errors.js';
import { findRepoDir } from '../util/repo.js';
import type { Lab } from './handle.js';
import { isOwnedAlive, procParentPid, procStartTime, type OwnedProcess } from './proc.js';
import { isInside } from './up.js';
import { HOST_ROLES, maxGuestIndex, type HostRole } from './spec.js';
import { pollUntil, withDeadline, type WaitOptions } from '../util/deadline.js';
import { commandText } from '../host/local.js';

/** Where the fixture keeps keys, configs and the lab's export: a directory the hosts share with
 *  the controller (not /tmp or /run, which each host has of its own). */
export const SSH_HOSTS_PARENT = '/var/tmp';
/** sshd's port inside each namespace: each namespace has its own ports, so the usual one. */
export const SSH_PORT = 22;
/** How long a stopped host's processes get after SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 3000;

// Run by `unshare --mount` inside the host's network namespace, with the sshd config as $1 and the
// directories to hide as the rest. The new mount namespace is private, so these mounts are seen by
// this host only; /run/sshd is sshd's privilege separation directory, which the fresh /run lacks.
// `exec` keeps the pid we spawned as sshd's own.
const HOST_SCRIPT = [
  'set -e',
  'config=$1',
  'shift',
  'mount -t tmpfs -o mode=1777 tmpfs /tmp',
  'mount -t tmpfs -o mode=0755 tmpfs /run',
  'mkdir -m 0755 /run/sshd',
  // A directory under /tmp or /run (a checkout there) is hidden already: it is gone with them.
  'for dir in "$@"; do if [ -d "$dir" ]; then mount -t tmpfs -o mode=0700 tmpfs "$dir"; fi; done',
  'exec /usr/sbin/sshd -D -e -f "$config"',
].join('\n');

/**
 * Controller directories a host does not see besides /tmp and /run: root's home (a host has its
 * own; this machine's root shell startup files also cost each SSH command most of a second), and
 * the miglab checkout (its image, probe tool and caches are the controller's: a host gets copies).
 */
export function hiddenFromHosts(): string[] {
  // The account's home as the password database has it (what sshd uses), not $HOME.
  return [userInfo().homedir, findRepoDir()].filter((dir) => dir !== '/');
}

export interface LabSshHost {
  readonly role: HostRole;
  /** The network namespace the host is. */
  readonly netns: string;
  /** The host's address on the lab network (what the hosts file calls it). */
  readonly address: string;
  readonly port: number;
  readonly user: string;
  /** The client's private key (the same for every host). */
  readonly keyPath: string;
  /** Run on the controller, its stdin/stdout carry the SSH connection (like OpenSSH's ProxyCommand). */
  readonly proxy: readonly string[];
  /** The sshd's host key as ssh2's hostHash 'sha256' gives it: hex of the raw key blob. */
  readonly hostKeySha256: string;
  readonly sshd: OwnedProcess;
  /** The host's mount namespace (`mnt:[INODE]`): every process in it is the host's. */
  readonly mountNs: string;
  /** sshd's own log (-e), for when it misbehaves. */
  readonly logFile: string;
}

/** The raw key blob's sha256 in hex, from an OpenSSH public key file ("TYPE BASE64 COMMENT"). */
export function hostKeySha256(publicKeyText: string): string {
  const blob = publicKeyText.trim().split(/\s+/)[1];
  if (!blob) throw new Error(`not an OpenSSH public key: "${publicKeyText.slice(0, 40)}"`);
  return createHash('sha256').update(Buffer.from(blob, 'base64')).digest('hex');
}

function sshdConfig(hostKey: string, authorizedKeys: string): string {
  return [
    `ListenAddress 127.0.0.1:${SSH_PORT}`,
    `HostKey ${hostKey}`,
    `AuthorizedKeysFile ${authorizedKeys}`,
    'PidFile none',
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    // The keys live in the fixture's directory, not in a home directory sshd would check.
    'StrictModes no',
    // miglab reaches QEMU's QMP and HMP sockets on the host through the connection.
    'AllowStreamLocalForwarding yes',
    // miglab puts files on hosts with sftp; this config replaces the system's, which names the server.
    'Subsystem sftp internal-sftp',
    // miglab runs many commands at once on one connection (QEMU, samplers, probes, monitors).
    'MaxSessions 64',
    '',
  ].join('\n');
}

function mountNsOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/mnt`);
  } catch {
    // Gone, or a zombie (it has no namespaces left): not running in any.
    return undefined;
  }
}

/**
 * Every live process of the host: those in its mount namespace, and their descendants wherever
 * they are (a session may itself enter another namespace).
 */
export function hostProcesses(host: Pick<LabSshHost, 'mountNs'>): OwnedProcess[] {
  const pids = readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number);
  const ours = new Set(pids.filter((pid) => mountNsOf(pid) === host.mountNs));
  const parents = pids.map((pid) => [pid, procParentPid(pid)] as const);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, ppid] of parents) {
      if (!ours.has(pid) && ppid !== undefined && ours.has(ppid)) {
        ours.add(pid);
        grew = true;
      }
    }
  }
  return [...ours].flatMap((pid) => {
    const startTime = procStartTime(pid);
    const p = { pid, startTime: startTime ?? 0 };
    return startTime !== undefined && isOwnedAlive(p) ? [p] : [];
  });
}

function signalAll(procs: readonly OwnedProcess[], signal: NodeJS.Signals): void {
  for (const p of procs) {
    if (!isOwnedAlive(p)) continue;
    try {
      process.kill(p.pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      // It ended between the check and the signal, as wanted.
    }
  }
}

/** An ssh2 client connected to one of these hosts through its proxy. */
export interface ProxiedSsh {
  readonly client: ssh2.Client;
  /** End the connection and wait for the proxy process to exit (idempotent). */
  close(): Promise<void>;
}

/**
 * Connect to `host` the way miglab does: ssh2 over the stdin/stdout of its proxy argv, the host key
 * checked against the one the fixture made.
 */
export async function connectThroughProxy(host: Pick<LabSshHost, 'role' | 'proxy' | 'user' | 'keyPath' | 'hostKeySha256'>, opts: WaitOptions): Promise<ProxiedSsh> {
  const [program, ...args] = host.proxy;
  const proxy = spawn(program!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = once(proxy, 'close').then(() => undefined);
  let stderr = '';
  proxy.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  const sock = Duplex.from({ readable: proxy.stdout, writable: proxy.stdin });
  const client = new ssh2.Client();
  // Errors after the connection is up (the proxy dying) end it; the caller sees its channels fail.
  client.on('error', () => undefined);
  const ready = new Promise<void>((resolve, reject) => {
    client.once('ready', resolve);
    client.once('error', (err) => reject(new Error(`SSH to the ${host.role} host through \`${host.proxy.join(' ')}\` failed: ${err.message} ${stderr.trim()}`.trim())));
  });
  client.connect({
    sock,
    username: host.user,
    privateKey: readFileSync(host.keyPath),
    hostHash: 'sha256',
    hostVerifier: (hash: string) => hash === host.hostKeySha256,
    readyTimeout: opts.timeoutMs,
  });
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      client.end();
      sock.destroy();
      // socat ends on its stdin's EOF; should it not, it is ours to kill.
      await withDeadline('the SSH proxy to exit', exited, { timeoutMs: 2000 }).catch(() => proxy.kill('SIGKILL'));
      await exited;
    })());
  try {
    await withDeadline(`SSH connection to the ${host.role} host`, ready, opts);
  } catch (err) {
    await close();
    throw err;
  }
  return { client, close };
}

/** The three hosts, their hosts file, and how to stop them. */
export class LabSshHosts {
  private stopping: Promise<void> | undefined;

  constructor(
    /** The fixture's private directory: keys, sshd configs and logs, the hosts file. */
    readonly dir: string,
    /** A hosts file (the `--hosts` format) naming these hosts. */
    readonly hostsFile: string,
    readonly hosts: Readonly<Record<HostRole, LabSshHost>>,
    private readonly started: Started,
  ) {}

  /**
   * Stop every process of every host: SIGTERM (sshd first, so no session starts meanwhile), then
   * SIGKILL after a grace period, until none is left. Safe to call twice.
   */
  stop(opts: WaitOptions): Promise<void> {
    this.stopping ??= stopStarted(this.started, opts);
    return this.stopping;
  }
}

/** What startSshHosts started: the processes it spawned, and the sshds among them that run. */
interface Started {
  readonly children: ChildProcess[];
  readonly running: Running[];
}

async function stopStarted(started: Started, opts: WaitOptions): Promise<void> {
  const remaining = () => started.running.flatMap((h) => hostProcesses(h));
  const allGone = (timeoutMs: number) => pollUntil('the SSH hosts to stop', () => (remaining().length === 0 ? true : undefined), { ...opts, timeoutMs, intervalMs: 25 });
  signalAll(
    started.running.map((h) => h.sshd),
    'SIGTERM',
  );
  signalAll(remaining(), 'SIGTERM');
  // A child that never became sshd (it failed on the way) has started nothing yet.
  for (const c of started.children) if (!started.running.some((h) => h.sshd.pid === c.pid)) c.kill('SIGKILL');
  const grace = Math.min(STOP_GRACE_MS, opts.timeoutMs);
  try {
    await allGone(grace);
  } catch (err) {
    if (!(err instanceof TimeoutError)) throw err;
    // Something ignored SIGTERM for the whole grace period: kill what is left.
    signalAll(remaining(), 'SIGKILL');
    await allGone(Math.max(1000, opts.timeoutMs - grace));
  }
  // The sshds are this process's children: wait until they are reaped, not just dead.
  await Promise.all(started.children.map((c) => (c.exitCode === null && c.signalCode === null ? once(c, 'exit') : undefined)));
}

async function run(argv: readonly string[]): Promise<void> {
  const [program, ...args] = argv;
  const child = spawn(program!, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`${commandText(argv)} failed (exit ${code}): ${stderr.trim()}`);
}

function logTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-5).join(' | ');
  } catch {
    return '(no log)';
  }
}

/** A started sshd: enough to stop it and everything its sessions started. */
type Running = Pick<LabSshHost, 'sshd' | 'mountNs'>;

/** The processes whose parent is `pid` (each of its threads' children file in /proc, which the kernel keeps). */
function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) => readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
  } catch {
    // Gone already: the caller's next check says why.
    return [];
  }
}

function exePath(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    // Gone already: the caller's next check says why.
    return undefined;
  }
}

async function startHost(lab: Lab, role: HostRole, dir: string, client: { keyPath: string; authorizedKeys: string }, started: Started, opts: WaitOptions): Promise<LabSshHost> {
  const netns = lab.names.ns[role];
  const hostDir = join(dir, role);
  mkdirSync(hostDir, { mode: 0o700 });
  const hostKey = join(hostDir, 'ssh_host_ed25519_key');
  await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `miglab lab host ${role}`, '-f', hostKey]);
  const config = join(hostDir, 'sshd_config');
  writeFileSync(config, sshdConfig(hostKey, client.authorizedKeys));
  const logFile = join(hostDir, 'sshd.log');
  const log = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    // A PID namespace of its own too (sshd is its init, with a /proc of its own): a host sees only
    // its own processes, as a real machine does, so `pgrep` there (lab status, lab down) finds
    // what runs on that host and not on its neighbours; and when sshd ends, so does everything in it.
    child = spawn('ip', ['netns', 'exec', netns, 'unshare', '--mount', '--propagation', 'private', '--pid', '--fork', '--mount-proc', '--', 'sh', '-c', HOST_SCRIPT, 'sh', config, ...hiddenFromHosts()], {
      stdio: ['ignore', log, log],
    });
  } finally {
    closeSync(log);
  }
  started.children.push(child);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`cannot start sshd in ${netns}: ${logTail(logFile)}`);
  const exitedEarly = () => {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`sshd in ${netns} exited (${child.exitCode ?? child.signalCode}): ${logTail(logFile)}`);
  };
  // The pid is `ip`'s, then unshare's (each execs the next), which forks the new PID namespace's
  // first process: the script, which execs sshd. Only then is sshd up in the host's namespaces.
  const sshdPid = await pollUntil(
    `sshd in ${netns} to start`,
    () => {
      exitedEarly();
      return childrenOf(pid).find((c) => exePath(c) === '/usr/sbin/sshd');
    },
    { ...opts, intervalMs: 20 },
  );
  const sshd = { pid: sshdPid, startTime: procStartTime(sshdPid) ?? 0 };
  const mountNs = mountNsOf(sshdPid);
  if (!mountNs) throw new Error(`sshd in ${netns} exited while starting: ${logTail(logFile)}`);
  started.running.push({ sshd, mountNs });
  const host: LabSshHost = {
    role,
    netns,
    address: lab.hosts[role].ip,
    port: SSH_PORT,
    user: 'root',
    keyPath: client.keyPath,
    proxy: ['ip', 'netns', 'exec', netns, 'socat', 'STDIO', `TCP:127.0.0.1:${SSH_PORT}`],
    hostKeySha256: hostKeySha256(readFileSync(`${hostKey}.pub`, 'utf8')),
    sshd,
    mountNs,
    logFile,
  };
  // Up when a connection through the proxy, the way miglab will come, succeeds.
  const ssh = await pollUntil(
    `sshd in ${netns} to accept an SSH connection through its proxy`,
    async () => {
      exitedEarly();
      return connectThroughProxy(host, { timeoutMs: 2000 }).catch(() => undefined);
    },
    { ...opts, intervalMs: 50 },
  );
  await ssh.close();
  return host;
}

/** The lab's guest slots (first and last index) whose addresses the hosts file gives its guests. */
export interface GuestSlotRange {
  readonly first: number;
  readonly last: number;
}

/** An export miglab serves from one of the hosts (`storage: { serve, server, dir }`), instead of the lab's. */
export interface ServedStorage {
  readonly serve: 'ganesha' | 'kernel';
  readonly server: HostRole;
  readonly dir: string;
}

/**
 * The hosts file for `hosts` (the `--hosts` format of src/hosts/file.ts); its guests take `slots`'
 * addresses. Its storage is the embedded lab's export on src, or one miglab serves (`served`).
 */
export function hostsFileText(lab: Lab, hosts: Readonly<Record<HostRole, LabSshHost>>, slots: GuestSlotRange = { first: 0, last: maxGuestIndex(lab.spec) }, served?: ServedStorage): string {
  const exportDir = lab.nfs.exportDir;
  const doc = {
    hosts: Object.fromEntries(
      HOST_ROLES.map((role) => {
        const h = hosts[role];
        return [role, { address: h.address, user: h.user, port: h.port, key: h.keyPath, hostKey: h.hostKeySha256, proxy: [...h.proxy] }];
      }),
    ),
    bridge: lab.names.hostBridge,
    guests: { addresses: `${lab.guestIp(slots.first)}-${lab.guestIp(slots.last)}`, prefixLength: lab.prefixLength },
    storage: served ? { ...served } : { nfs: `nfs://${lab.nfs.serverIp}${exportDir}`, server: 'src', dir: exportDir },
  };
  const yaml = new Document(doc);
  // Each proxy argv on one line, as a person would write it.
  for (const role of HOST_ROLES) (yaml.getIn(['hosts', role, 'proxy'], true) as YAMLSeq).flow = true;
  return `# SSH hosts in the embedded lab "${lab.spec.prefix}" (src/lab/ssh-hosts.ts)\n${yaml.toString()}`;
}

export interface StartSshHostsOptions extends WaitOptions {
  /**
   * The lab's guest slots the hosts file gives to guests on the hosts (default: all of them).
   * Runs on the embedded lab beside runs on the hosts need slots of their own: a guest of the
   * other lab with the same address has another MAC, which the namespaces' neighbour caches keep
   * for up to a minute (the client then cannot reach the new guest).
   */
  readonly guestSlots?: GuestSlotRange;
}

/**
 * Start the three hosts in `lab`'s namespaces, with fresh keys in `dir` (a private directory
 * outside /tmp and /run), and write their hosts file there. On failure, whatever started is stopped.
 */
export async function startSshHosts(lab: Lab, dir: string, opts: StartSshHostsOptions): Promise<LabSshHosts> {
  const hiding = hiddenFromHosts().find((hidden) => isInside(hidden, dir));
  if (hiding) throw new Error(`the SSH hosts' directory ${dir} is inside ${hiding}, which the hosts do not see: use one under ${SSH_HOSTS_PARENT}`);
  const keyPath = join(dir, 'client_key');
  await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'miglab controller', '-f', keyPath]);
  const authorizedKeys = join(dir, 'authorized_keys');
  writeFileSync(authorizedKeys, readFileSync(`${keyPath}.pub`));
  const started: Started = { children: [], running: [] };
  const hosts: Partial<Record<HostRole, LabSshHost>> = {};
  const deadline = Date.now() + opts.timeoutMs;
  try {
    for (const role of HOST_ROLES) {
      hosts[role] = await startHost(lab, role, dir, { keyPath, authorizedKeys }, started, { ...opts, timeoutMs: Math.max(1, deadline - Date.now()) });
    }
  } catch (err) {
    await stopStarted(started, { timeoutMs: 10_000 });
    throw err;
  }
  const all = hosts as Record<HostRole, LabSshHost>;
  const hostsFile = join(dir, 'hosts.yaml');
  writeFileSync(hostsFile, hostsFileText(lab, all, opts.guestSlots), { mode: 0o600 });
  return new LabSshHosts(dir, hostsFile, all, started);
}
