// The two-host lab on one machine: network namespaces src, dst and client joined by a switch
// namespace, an NFS export of the guests' disks served from src, link shaping of the migration
// path, and taps for guests. `labUp` builds it (undoing everything on failure or Ctrl-C) and
// records it in a state file; `labDown`, `labStatus` and `attachLab` read that file, so they work
// from any later miglab process and only ever touch what the file lists. See docs/lab.md.
import { existsSync, mkdirSync, readdirSync, rmSync, rmdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { AbortedError, MiglabError, TimeoutError, describeError } from '../errors.js';
import type { RunResult } from '../host/host.js';
import { CommandError, LocalHost, NetnsHost } from '../host/local.js';
import type { WaitOptions } from '../util/deadline.js';
import { Teardown } from '../util/teardown.js';
import { checkLabDependencies, checkRoot } from './deps.js';
import { nfsUrl } from './ganesha.js';
import { startNfsServer, waitNfsReady } from './nfs.js';
import { isOwnedAlive, procStartTime, stopOwnedGroup } from './proc.js';
import {
  checkExportFileName,
  checkPrefix,
  checkTapName,
  DEFAULT_PREFIX,
  DEFAULT_STATE_ROOT,
  guestIp,
  guestMac,
  HOST_ROLES,
  isEmptyShaping,
  labNames,
  labNamespaces,
  labPaths,
  parseLabSpec,
  parseShaping,
  parseSubnet,
  roleIp,
  type GuestHostRole,
  type HostRole,
  type LabNames,
  type LabPaths,
  type LabSpec,
  type LabSpecInput,
  type Shaping,
  type ShapingInput,
} from './spec.js';
import { readLabState, updateLabState, writeLabState, type LabState } from './state.js';
import { clearArgv, isNoQdiscError, isUnknownQdiscError, shapingArgv } from './tc.js';

/** Time allowed to each undo step and to small lab commands when the caller gives none. */
const STEP_TIMEOUT_MS = 10_000;

/** A locally administered, fixed MAC for the lab's bridge number `n` (0 = the switch). */
export function bridgeMac(n: number): string {
  return `02:6d:6c:62:00:${n.toString(16).padStart(2, '0')}`;
}

export interface LabHost {
  readonly role: HostRole;
  readonly netns: string;
  /** The host's own lab address (no prefix length). */
  readonly ip: string;
  /** Runs commands inside the namespace. */
  readonly host: NetnsHost;
}

export interface LabNfs {
  readonly serverIp: string;
  /** The exported directory on this machine (guest disks are created here). */
  readonly exportDir: string;
  /** `nfs://SERVER/EXPORT_DIR/fileName`, as QEMU (libnfs) opens it from src or dst. */
  url(fileName: string): string;
  /** The same file as a local path (for qemu-img create, or cleaning up). */
  localPath(fileName: string): string;
}

export interface StepOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface Lab {
  readonly spec: LabSpec;
  readonly names: LabNames;
  readonly paths: LabPaths;
  /** Prefix length of the lab subnet (guests use it with their address). */
  readonly prefixLength: number;
  readonly hosts: { readonly src: LabHost; readonly dst: LabHost; readonly client: LabHost };
  readonly nfs: LabNfs;
  /** The shaping in force on the uplinks now (from the state file), or undefined for none. */
  readonly shaping: Shaping | undefined;
  /** Address of guest `index` (0 -> .100); the same on src and dst, since the guest keeps it. */
  guestIp(index: number): string;
  /** MAC of guest `index`: 52:54:00:77:00:XX. */
  guestMac(index: number): string;
  /** Create a persistent tap `name` on br0 of `host`, up. QEMU opens it by name in that namespace. */
  addTap(host: GuestHostRole, name: string, opts?: StepOptions): Promise<void>;
  /** Remove the tap; nothing to do if it is gone already. */
  removeTap(host: GuestHostRole, name: string, opts?: StepOptions): Promise<void>;
  /** Shape the src and dst uplinks (the migration path); an empty shaping clears it. */
  shapeLinks(shaping: ShapingInput, opts?: StepOptions): Promise<void>;
  clearShaping(opts?: StepOptions): Promise<void>;
}

export interface LabLocation {
  /** Root of miglab's state (default /run/miglab); the lab's files are in STATE_ROOT/PREFIX. */
  readonly stateRoot?: string;
}

const local = new LocalHost('local');

function stepOpts(opts: StepOptions = {}): { timeoutMs: number; signal?: AbortSignal } {
  return { timeoutMs: opts.timeoutMs ?? STEP_TIMEOUT_MS, signal: opts.signal };
}

/** Names of the network namespaces that exist on this machine. */
export async function listNetns(): Promise<string[]> {
  const r = await local.run(['ip', 'netns', 'list'], { timeoutMs: STEP_TIMEOUT_MS });
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

async function linkExists(host: NetnsHost, name: string, opts: StepOptions): Promise<boolean> {
  const r = await host.run(['ip', 'link', 'show', 'dev', name], { ...stepOpts(opts), reject: false });
  return r.exitCode === 0;
}

class LabImpl implements Lab {
  readonly names: LabNames;
  readonly paths: LabPaths;
  readonly prefixLength: number;
  readonly hosts: Lab['hosts'];
  readonly nfs: LabNfs;

  constructor(
    readonly spec: LabSpec,
    exportDir: string,
  ) {
    this.names = labNames(spec.prefix);
    this.paths = { ...labPaths(spec), exportDir };
    this.prefixLength = parseSubnet(spec.subnet).prefixLength;
    const mk = (role: HostRole): LabHost => {
      const netns = this.names.ns[role];
      return { role, netns, ip: roleIp(spec, role), host: new NetnsHost(role, netns) };
    };
    this.hosts = { src: mk('src'), dst: mk('dst'), client: mk('client') };
    const serverIp = this.hosts.src.ip;
    this.nfs = {
      serverIp,
      exportDir,
      url: (fileName) => nfsUrl(serverIp, exportDir, checkExportFileName(fileName)),
      localPath: (fileName) => join(exportDir, checkExportFileName(fileName)),
    };
  }

  get shaping(): Shaping | undefined {
    return readLabState(this.paths.stateFile)?.shaping;
  }

  guestIp(index: number): string {
    return guestIp(this.spec, index);
  }

  guestMac(index: number): string {
    return guestMac(this.spec, index);
  }

  async addTap(role: GuestHostRole, name: string, opts?: StepOptions): Promise<void> {
    checkTapName(name);
    const { host, netns } = this.guestHost(role);
    if (await linkExists(host, name, opts ?? {})) {
      throw new MiglabError('LAB_STATE', `a link named ${name} already exists on ${role} (namespace ${netns})`, { context: { host: role, tap: name } });
    }
    await host.run(['ip', 'tuntap', 'add', 'dev', name, 'mode', 'tap'], stepOpts(opts));
    try {
      await host.run(['ip', 'link', 'set', 'dev', name, 'master', this.names.hostBridge, 'up'], stepOpts(opts));
    } catch (err) {
      await host.run(['ip', 'link', 'del', 'dev', name], { timeoutMs: STEP_TIMEOUT_MS, reject: false });
      throw err;
    }
  }

  async removeTap(role: GuestHostRole, name: string, opts?: StepOptions): Promise<void> {
    checkTapName(name);
    const { host } = this.guestHost(role);
    const r = await host.run(['ip', 'link', 'del', 'dev', name], { ...stepOpts(opts), reject: false });
    if (r.exitCode !== 0 && (await linkExists(host, name, opts ?? {}))) throw new CommandError(host.name, r);
  }

  async shapeLinks(input: ShapingInput, opts?: StepOptions): Promise<void> {
    const shaping = parseShaping(input);
    if (isEmptyShaping(shaping)) return this.clearShaping(opts);
    const before = this.shaping;
    try {
      for (const role of ['src', 'dst'] as const) await this.applyShaping(role, shaping, opts);
    } catch (err) {
      // Put back what was in force so src and dst never disagree; the error says what failed.
      await Promise.allSettled((['src', 'dst'] as const).map((role) => this.applyShaping(role, before, { timeoutMs: STEP_TIMEOUT_MS })));
      throw err;
    }
    this.recordShaping(shaping);
  }

  async clearShaping(opts?: StepOptions): Promise<void> {
    for (const role of ['src', 'dst'] as const) await this.applyShaping(role, undefined, opts);
    this.recordShaping(undefined);
  }

  /** Set (or, for none, clear) the root qdisc of one uplink. */
  private async applyShaping(role: GuestHostRole, shaping: Shaping | undefined, opts?: StepOptions): Promise<void> {
    const { host } = this.hosts[role];
    if (!shaping || isEmptyShaping(shaping)) {
      const r = await host.run(clearArgv(this.names.uplink), { ...stepOpts(opts), reject: false });
      if (r.exitCode !== 0 && !isNoQdiscError(r.stderr)) throw new CommandError(host.name, r);
      return;
    }
    const r = await host.run(shapingArgv(this.names.uplink, shaping), { ...stepOpts(opts), reject: false });
    if (r.exitCode === 0) return;
    if (isUnknownQdiscError(r.stderr)) {
      throw new MiglabError(
        'MISSING_DEPENDENCY',
        'this kernel has no netem qdisc (sch_netem), so delay, jitter and loss cannot be emulated here; a bandwidth limit alone works (tbf)',
        { cause: new CommandError(host.name, r), context: { shaping } },
      );
    }
    throw new CommandError(host.name, r);
  }

  private recordShaping(shaping: Shaping | undefined): void {
    updateLabState(this.paths.stateFile, (st) => {
      const { shaping: _old, ...rest } = st;
      return shaping ? { ...rest, shaping } : rest;
    });
  }

  private guestHost(role: GuestHostRole): LabHost {
    if (role !== 'src' && role !== 'dst') throw new MiglabError('BAD_INPUT', `guests run on src or dst, not "${String(role)}"`);
    return this.hosts[role];
  }
}

// ---- up --------------------------------------------------------------------------------------

export interface LabUpOptions extends WaitOptions {
  /**
   * Brought up for one run of this process (which takes it down itself): `lab down` from
   * elsewhere refuses while this process lives, so it cannot pull the lab from under the run.
   */
  readonly ephemeral?: boolean;
}

async function refuseIfUp(spec: LabSpec): Promise<void> {
  const paths = labPaths(spec);
  if (existsSync(paths.stateFile)) {
    throw new MiglabError(
      'LAB_STATE',
      `a lab with prefix "${spec.prefix}" is already up (state in ${paths.stateFile}); use it, or take it down first with \`miglab lab down --prefix ${spec.prefix}\``,
      { context: { prefix: spec.prefix } },
    );
  }
  const existing = new Set(await listNetns());
  const taken = labNamespaces(spec.prefix).filter((ns) => existing.has(ns));
  if (taken.length > 0) {
    throw new MiglabError(
      'LAB_STATE',
      `network namespace(s) ${taken.join(', ')} already exist but no miglab state records them; miglab never reuses or removes namespaces it did not make: choose another prefix, or remove them yourself (ip netns del NAME)`,
      { context: { prefix: spec.prefix, namespaces: taken } },
    );
  }
}

function isInside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith('..') && !rel.startsWith('/'));
}

/**
 * Bring a lab up. Validates `specInput`, checks root and the programs needed, refuses if a lab
 * with that prefix (or any of its namespaces) exists, then builds it; on any failure, timeout or
 * abort, everything made so far is removed before the error is thrown.
 */
export async function labUp(specInput: LabSpecInput, opts: LabUpOptions): Promise<Lab> {
  const spec = parseLabSpec(specInput);
  checkRoot();
  await checkLabDependencies(local);
  await refuseIfUp(spec);

  const started = Date.now();
  const left = () => {
    const ms = opts.timeoutMs - (Date.now() - started);
    if (ms <= 0) throw new TimeoutError('lab up', opts.timeoutMs, { prefix: spec.prefix });
    return ms;
  };
  const names = labNames(spec.prefix);
  const paths = labPaths(spec);
  const td = new Teardown();
  const undoOpts = { timeoutMs: STEP_TIMEOUT_MS };
  const run = (host: LocalHost, argv: string[]): Promise<RunResult> => host.run(argv, { timeoutMs: left(), signal: opts.signal });

  try {
    // The lab directory is made without `recursive`: a concurrent `lab up` with the same prefix
    // fails here rather than sharing it.
    const stateRootCreated = !existsSync(spec.stateRoot);
    mkdirSync(spec.stateRoot, { recursive: true, mode: 0o755 });
    if (stateRootCreated) td.defer(`remove ${spec.stateRoot}`, () => removeDirIfEmpty(spec.stateRoot));
    try {
      mkdirSync(paths.labDir, { mode: 0o755 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      throw new MiglabError('LAB_STATE', `${paths.labDir} exists: another lab with prefix "${spec.prefix}" is being set up, or one was interrupted; run \`miglab lab down --prefix ${spec.prefix}\``, {
        cause: err,
      });
    }
    td.defer(`remove ${paths.labDir}`, () => rmSync(paths.labDir, { recursive: true, force: true }));

    const state: LabState = {
      version: 1,
      phase: 'creating',
      spec,
      createdAt: new Date().toISOString(),
      ownerPid: process.pid,
      ownerStartTime: procStartTime(process.pid),
      ephemeral: opts.ephemeral ?? false,
      labDir: paths.labDir,
      stateRootCreated,
      // Listed before they exist so a `lab up` killed half-way can still be taken down.
      netns: labNamespaces(spec.prefix),
      exportDir: paths.exportDir,
      exportDirCreated: false,
    };
    writeLabState(paths.stateFile, state);

    // Namespaces, each with lo up.
    for (const ns of state.netns) {
      await run(local, ['ip', 'netns', 'add', ns]);
      td.defer(`delete namespace ${ns}`, async () => void (await local.run(['ip', 'netns', 'del', ns], undoOpts)));
      await run(local, ['ip', '-n', ns, 'link', 'set', 'dev', 'lo', 'up']);
    }
    const sw = new NetnsHost('switch', names.switchNs);
    // Each bridge gets a fixed address. A bridge left to itself takes the lowest address of its
    // ports and changes it whenever a QEMU's tap (random address) joins or leaves: the host's IP
    // then moves to a new MAC, the other hosts' ARP caches point at the old one, and their packets
    // to it are dropped until ARP re-resolves, tens of seconds later. Seen as QEMUs hanging in the
    // NFS mount with a SYN to the server's rpcbind unanswered (docs/batch.md).
    const bridge = (host: NetnsHost, name: string, mac: string) =>
      run(host, ['ip', 'link', 'add', 'name', name, 'address', mac, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
    await bridge(sw, names.switchBridge, bridgeMac(0));
    await run(sw, ['ip', 'link', 'set', 'dev', names.switchBridge, 'up']);

    const lab = new LabImpl(spec, paths.exportDir);
    for (const role of HOST_ROLES) {
      const h = lab.hosts[role];
      const port = names.switchPort[role];
      // Both ends are created inside their namespaces, so nothing appears in the root namespace.
      await run(local, ['ip', 'link', 'add', 'name', names.uplink, 'netns', h.netns, 'type', 'veth', 'peer', 'name', port, 'netns', names.switchNs]);
      await run(sw, ['ip', 'link', 'set', 'dev', port, 'master', names.switchBridge, 'up']);
      const cidr = `${h.ip}/${lab.prefixLength}`;
      if (role === 'client') {
        await run(h.host, ['ip', 'addr', 'add', cidr, 'dev', names.uplink]);
        await run(h.host, ['ip', 'link', 'set', 'dev', names.uplink, 'up']);
      } else {
        await bridge(h.host, names.hostBridge, bridgeMac(HOST_ROLES.indexOf(role) + 1));
        await run(h.host, ['ip', 'link', 'set', 'dev', names.uplink, 'master', names.hostBridge, 'up']);
        await run(h.host, ['ip', 'addr', 'add', cidr, 'dev', names.hostBridge]);
        await run(h.host, ['ip', 'link', 'set', 'dev', names.hostBridge, 'up']);
      }
    }

    // The export directory and the NFS server.
    if (existsSync(paths.exportDir)) {
      if (!statSync(paths.exportDir).isDirectory()) {
        throw new MiglabError('BAD_INPUT', `the export directory ${paths.exportDir} exists and is not a directory`, { context: { exportDir: paths.exportDir } });
      }
    } else {
      mkdirSync(paths.exportDir, { recursive: true, mode: 0o755 });
      state.exportDirCreated = true;
      if (!isInside(paths.labDir, paths.exportDir)) td.defer(`remove ${paths.exportDir}`, () => removeDirIfEmpty(paths.exportDir));
    }
    mkdirSync(paths.nfsDir, { recursive: true });
    const server = await startNfsServer(lab.hosts.src.host, {
      serverIp: lab.nfs.serverIp,
      subnet: spec.subnet,
      labDir: paths.labDir,
      nfsDir: paths.nfsDir,
      exportDir: paths.exportDir,
    });
    td.defer('stop the NFS server', async () => void (await stopOwnedGroup(server, undoOpts)));
    state.nfs = {
      server: { pid: server.pid, startTime: server.startTime },
      serverIp: lab.nfs.serverIp,
      configFile: server.configFile,
      logFile: server.logFile,
      ganeshaLogFile: server.ganeshaLogFile,
    };
    writeLabState(paths.stateFile, state);
    await waitNfsReady(lab.hosts.dst.host, server, lab.nfs.serverIp, paths.exportDir, { timeoutMs: left(), signal: opts.signal });

    if (spec.shaping && !isEmptyShaping(spec.shaping)) {
      await lab.shapeLinks(spec.shaping, { timeoutMs: left(), signal: opts.signal });
      state.shaping = spec.shaping;
    }

    state.phase = 'up';
    writeLabState(paths.stateFile, state);
    return lab;
  } catch (caught) {
    // Ctrl-C may surface as a cancelled command; say what happened.
    const err = opts.signal?.aborted && !(caught instanceof AbortedError) ? new AbortedError('lab up', caught) : caught;
    const problems = await td.run();
    if (problems.length === 0) throw err;
    throw new MiglabError(
      err instanceof MiglabError ? err.code : 'INTERNAL',
      `${describeError(err)}; cleaning up after it also failed: ${problems.join('; ')}`,
      { cause: err, context: { prefix: spec.prefix, cleanupProblems: problems } },
    );
  }
}

function removeDirIfEmpty(dir: string): void {
  try {
    if (readdirSync(dir).length === 0) rmdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    // Gone already: nothing to remove.
  }
}

// ---- attach, down ----------------------------------------------------------------------------

function stateFileOf(prefix: string, where: LabLocation): string {
  return labPaths({ prefix: checkPrefix(prefix), stateRoot: where.stateRoot ?? DEFAULT_STATE_ROOT }).stateFile;
}

/** The lab with `prefix` if it is up (from its state file, its namespaces checked), else undefined. */
export async function attachLab(prefix: string = DEFAULT_PREFIX, where: LabLocation = {}): Promise<Lab | undefined> {
  const file = stateFileOf(prefix, where);
  const state = readLabState(file);
  if (!state) return undefined;
  if (state.phase !== 'up') {
    throw new MiglabError('LAB_STATE', `the lab "${prefix}" is not fully up (its \`lab up\` was interrupted or is still running); run \`miglab lab down --prefix ${prefix}\``);
  }
  const existing = new Set(await listNetns());
  const missing = state.netns.filter((ns) => !existing.has(ns));
  if (missing.length > 0) {
    throw new MiglabError('LAB_STATE', `the lab "${prefix}" is broken: namespace(s) ${missing.join(', ')} are gone; run \`miglab lab down --prefix ${prefix}\` and bring it up again`);
  }
  return new LabImpl(state.spec, state.exportDir);
}

export interface LabDownReport {
  readonly prefix: string;
  /** False when no lab was up (a second `down`): nothing was done. */
  readonly wasUp: boolean;
  /** What was removed or stopped, in order. */
  readonly removed: readonly string[];
  /** One line for the user. */
  readonly message: string;
}

/**
 * Take the lab down: stop its NFS server (that exact process), delete its namespaces (which
 * removes their veths, bridges and taps), remove its state directory. Things already gone are
 * fine. If something cannot be removed, the state file is kept (so `down` can be retried) and
 * the error lists what is left.
 */
export async function labDown(prefix: string = DEFAULT_PREFIX, opts: WaitOptions & LabLocation & { force?: boolean } = { timeoutMs: 30_000 }): Promise<LabDownReport> {
  const file = stateFileOf(prefix, opts);
  const state = readLabState(file);
  if (!state) {
    const stray = labNamespaces(prefix).filter((ns) => existsSync(join('/run/netns', ns)));
    const note = stray.length > 0 ? ` (namespaces ${stray.join(', ')} exist but no state file records them, so miglab leaves them alone)` : '';
    return { prefix, wasUp: false, removed: [], message: `no lab "${prefix}" is up${note}` };
  }
  if (state.ephemeral && state.ownerPid !== process.pid && !opts.force && isOwnedAlive({ pid: state.ownerPid, startTime: state.ownerStartTime ?? 0 })) {
    throw new MiglabError(
      'LAB_STATE',
      `lab "${prefix}" was brought up by a running miglab (pid ${state.ownerPid}) for its own run, which takes it down when it ends; wait for it, or use --force`,
    );
  }
  checkRoot();
  const removed: string[] = [];
  const problems: string[] = [];
  const attempt = async (what: string, fn: () => Promise<boolean>) => {
    try {
      if (await fn()) removed.push(what);
    } catch (err) {
      problems.push(`${what}: ${describeError(err)}`);
    }
  };
  const waits = { timeoutMs: Math.max(1000, opts.timeoutMs), signal: opts.signal };

  const nfs = state.nfs;
  if (nfs) await attempt(`NFS server (pid ${nfs.server.pid})`, () => stopOwnedGroup(nfs.server, waits));
  const existing = new Set(await listNetns());
  for (const ns of [...state.netns].reverse()) {
    if (!existing.has(ns)) continue;
    await attempt(`namespace ${ns}`, async () => {
      const r = await local.run(['ip', 'netns', 'del', ns], { ...waits, reject: false });
      if (r.exitCode !== 0 && (await listNetns()).includes(ns)) throw new CommandError(local.name, r);
      return true;
    });
  }
  if (problems.length > 0) {
    throw new MiglabError('LAB_STATE', `lab "${prefix}" is only partly down (state kept in ${file}; retry \`miglab lab down\`): ${problems.join('; ')}`, {
      context: { prefix, removed, problems },
    });
  }
  if (state.exportDirCreated && !isInside(state.labDir, state.exportDir)) {
    await attempt(`export directory ${state.exportDir}`, async () => {
      removeDirIfEmpty(state.exportDir);
      return !existsSync(state.exportDir);
    });
  }
  await attempt(`state directory ${state.labDir}`, async () => {
    rmSync(state.labDir, { recursive: true, force: true });
    return true;
  });
  if (state.stateRootCreated) {
    await attempt(`state root ${state.spec.stateRoot}`, async () => {
      removeDirIfEmpty(state.spec.stateRoot);
      return !existsSync(state.spec.stateRoot);
    });
  }
  if (problems.length > 0) throw new MiglabError('LAB_STATE', `lab "${prefix}" is down but some files remain: ${problems.join('; ')}`, { context: { prefix, removed, problems } });
  return { prefix, wasUp: true, removed, message: `lab "${prefix}" is down (${removed.length} things removed)` };
}

// ---- with ------------------------------------------------------------------------------------

function isLab(x: LabSpecInput | Lab): x is Lab {
  return typeof (x as Lab).addTap === 'function';
}

/**
 * Run `body` in a lab: the given one, else the one already up with that prefix, else an ephemeral
 * one brought up now and always taken down afterwards (registered on `opts.teardown` too, so
 * Ctrl-C handled by the caller's Teardown removes it). A lab found up is used as it is (its
 * spec may differ from `specOrLab`; read `lab.spec`) and left up.
 */
export async function withLab<T>(specOrLab: LabSpecInput | Lab, opts: WaitOptions & { teardown?: Teardown }, body: (lab: Lab) => Promise<T>): Promise<T> {
  if (isLab(specOrLab)) return body(specOrLab);
  const spec = parseLabSpec(specOrLab);
  const existing = await attachLab(spec.prefix, { stateRoot: spec.stateRoot });
  if (existing) return body(existing);
  const lab = await labUp(spec, opts);
  const td = opts.teardown ?? new Teardown();
  const down = td.defer(`take down lab "${spec.prefix}"`, async () => void (await labDown(spec.prefix, { timeoutMs: 30_000, stateRoot: spec.stateRoot })));
  try {
    return await body(lab);
  } finally {
    await down();
  }
}
