// A lab made of machines the user already has, reached over SSH (the hosts file): the same `Lab`
// the engine runs on, so a migration between two real hosts takes the path the embedded lab's
// does. What the hosts file does not hand over to miglab stays the user's: guests join the
// user's bridge, disks go to the user's NFS export, and nothing of the hosts' own network is
// changed (no shaping, no link cuts: on a real host those could cut miglab's own SSH connection).
// miglab's own state for this lab (slots, TLS certificates) lives on the controller, under the
// same state root as embedded labs, named by the hosts file; what QEMU needs on a host (kernel,
// initrd, probe tool, certificates, monitor sockets) is put under the hosts file's `runDir` there.
import { createHash } from 'node:crypto';
import { rm, rmdir } from 'node:fs/promises';
import { realpathSync } from 'node:fs';
import { basename, join, posix, resolve } from 'node:path';
import { hostsSampling, type BatchSampling } from '../batch/sampling.js';
import { MiglabError } from '../errors.js';
import type { Host } from '../host/host.js';
import type { LineSession } from '../host/line-session.js';
import { sha256File } from '../host/local.js';
import type { ClockOffset, Lab, LabHost, LabNfs, NfsServerState, SlotLease, StepOptions, TapOptions } from '../lab/handle.js';
import { SlotTable, type SlotHolder, type SlotRequest } from '../lab/slots.js';
import { DEFAULT_STATE_ROOT, ipToNumber, isEmptyShaping, labNames, labPaths, networkOf, numberToIp, parseShaping, type GuestHostRole, type HostRole, type LabSpec, type ShapingInput } from '../lab/spec.js';
import { addTapOn, bridgeTapOn, removeTapOn, tapExistsOn, tapsPresentOn } from '../lab/taps.js';
import { ensureTlsCredentials, TLS_FILES } from '../lab/tls.js';
import type { RecordedProcess } from '../lab/procs.js';
import { bridgeMembers, bridgeStatus, ensureBridge, removeBridge, type BridgeLab } from './bridge.js';
import { CLOCK_READER, readClockOffset } from './clock.js';
import { sshLoginArgv, type HostsSpec } from './file.js';
import type { HandPlace } from '../guests/instructions.js';
import { ensureServedExport, removeMadeDir, servedExportOf, servedExportStatus, takeDownServedExport, type ServedExport } from './nfs-export.js';
import { selfExcludingPattern } from '../util/regex.js';

/** Round trips per clock measurement: the best of them (the shortest) bounds the offset tightest. */
const CLOCK_ROUND_TRIPS = 5;

/** The guests' network as a subnet (`a.b.c.d/len`), from their first address and prefix length. */
function guestSubnet(spec: HostsSpec): string {
  const len = spec.guests.prefixLength;
  return `${numberToIp(networkOf(ipToNumber(spec.guests.first), len))}/${len}`;
}

/**
 * A short, stable name for the lab of one hosts file: `h` + 7 hex digits of the hash of its real
 * path, so `..`, a relative path or a symlink to the same file is the same lab (a copy is another
 * file, and another lab: what that lab made on the hosts carries its own name).
 */
export function hostsLabPrefix(hostsFile: string): string {
  let path = resolve(hostsFile);
  try {
    path = realpathSync(path);
  } catch {
    // Not there (any more): its path as given names it, as it did when it was there.
  }
  return `h${createHash('sha256').update(path).digest('hex').slice(0, 7)}`;
}

/** Why a fault or setting that needs the embedded lab cannot run here, in one line. */
function notOnHosts(what: string, why: string): MiglabError {
  return new MiglabError('BAD_INPUT', `${what} is not available on hosts from a hosts file: ${why}; run it on the embedded lab (without --hosts)`);
}

export interface HostsLabParts {
  /** The hosts file's absolute path (names the lab's state on the controller). */
  readonly file: string;
  readonly spec: HostsSpec;
  /** Connected hosts per role (a role without its own host is given the source's). */
  readonly hosts: Readonly<Record<HostRole, Host>>;
  /** Where miglab keeps its state on the controller; default /run/miglab. */
  readonly stateRoot?: string;
  /** A problem when a host's SSH connection is lost; else undefined. */
  readonly connectionLost?: () => string | undefined;
}

export class HostsLab implements Lab {
  readonly spec: LabSpec;
  readonly names;
  readonly paths;
  readonly prefixLength: number;
  readonly hosts: Lab['hosts'];
  readonly nfs: LabNfs;
  readonly shaping = undefined;
  private readonly slots: SlotTable;
  private readonly placed = new Map<string, Promise<string>>();
  private bridgeMade?: Promise<string[]>;
  /** The export miglab serves itself (storage: serve:), or undefined when it is the user's. */
  readonly served: ServedExport | undefined;
  private serving: Promise<string> | undefined;
  /** A clock reader on each host, by host name (clockOffset). */
  private readonly clockReaders = new Map<string, Promise<LineSession>>();

  constructor(private readonly parts: HostsLabParts) {
    const { spec } = parts;
    const prefix = hostsLabPrefix(parts.file);
    this.spec = { prefix, subnet: guestSubnet(spec), stateRoot: parts.stateRoot ?? DEFAULT_STATE_ROOT, exportDir: spec.storage.dir };
    this.names = labNames(prefix);
    this.paths = labPaths(this.spec);
    this.prefixLength = spec.guests.prefixLength;
    this.slots = new SlotTable(this.paths.slotsDir, spec.guests.count - 1);
    const mk = (role: HostRole): LabHost => {
      const t = spec.hosts[role];
      const host = parts.hosts[role];
      // The destination's address is where the migration stream goes (it may be another network's).
      const ip = role === 'dst' ? spec.migration.address : t.address;
      return { role, ip, where: host.name, runDir: posix.join(spec.runDir, prefix), host };
    };
    this.hosts = { src: mk('src'), dst: mk('dst'), client: mk('client') };
    const server = this.hosts[spec.storage.server];
    const url = new URL(spec.storage.nfs);
    this.nfs = {
      serverIp: url.hostname,
      exportDir: spec.storage.dir,
      host: server.host,
      url: (fileName) => `${spec.storage.nfs.replace(/\/+$/, '')}/${fileName}`,
      path: (fileName) => posix.join(spec.storage.dir, fileName),
    };
    this.served = servedExportOf(spec, parts.hosts, server.runDir);
  }

  /**
   * The export served, when miglab serves it: started by the first command that needs it (a live
   * one recorded on the server host is used as it is), once per lab object. Returns what serves it.
   */
  ensureStorage(opts: StepOptions = {}): Promise<string | undefined> {
    if (!this.served) return Promise.resolve(undefined);
    this.serving ??= ensureServedExport(this.served, { timeoutMs: opts.timeoutMs ?? 60_000, signal: opts.signal }).then((r) => r.line);
    this.serving.catch(() => (this.serving = undefined));
    return this.serving;
  }

  /** What serves the export now, when miglab serves it (for `lab status`). */
  storageStatus(): Promise<string | undefined> {
    return this.served ? servedExportStatus(this.served) : Promise.resolve(undefined);
  }

  guestIp(index: number): string {
    const { guests } = this.parts.spec;
    if (!Number.isInteger(index) || index < 0 || index >= guests.count) {
      throw new MiglabError('BAD_INPUT', `guest slot ${index} has no address in ${this.parts.spec.source} (guests.addresses gives ${guests.count}: ${guests.first}-${guests.last})`);
    }
    return numberToIp(ipToNumber(guests.first) + index);
  }

  /** 52:54:00:78:XX:YY from the guest's address (its last two bytes): on a shared bridge it is as unique as the address. */
  guestMac(index: number): string {
    const n = ipToNumber(this.guestIp(index));
    const hex = (b: number) => b.toString(16).padStart(2, '0');
    return `52:54:00:78:${hex((n >>> 8) & 255)}:${hex(n & 255)}`;
  }

  /** On the bridge miglab made (useHostsLab made it before the run started) or on the user's. */
  async addTap(role: GuestHostRole, name: string, opts?: TapOptions): Promise<void> {
    return addTapOn(this.hosts[role], opts?.bridged === false ? undefined : this.parts.spec.bridge, name, opts);
  }

  /** The bridge miglab makes (bridge.create), when the file asks for one. */
  private bridgeLab(): BridgeLab | undefined {
    const made = this.parts.spec.bridgeMade;
    return made && { prefix: this.spec.prefix, spec: this.parts.spec, made, hosts: this.parts.hosts, runDir: this.hosts.src.runDir };
  }

  /**
   * Make the bridge of bridge.create on the hosts, once per command (it stays until `lab down
   * --hosts`); what was made, one line each (nothing when it was there). A no-op for the user's bridge.
   */
  ensureBridge(signal?: AbortSignal): Promise<string[]> {
    const lab = this.bridgeLab();
    if (!lab) return Promise.resolve([]);
    if (!this.bridgeMade) {
      this.bridgeMade = ensureBridge(lab, signal);
      this.bridgeMade.catch(() => (this.bridgeMade = undefined));
    }
    return this.bridgeMade;
  }

  /** The made bridge on each host that has it, one line each; nothing for the user's bridge. */
  async bridgeStatus(): Promise<string[]> {
    const lab = this.bridgeLab();
    if (!lab) return [];
    const members = bridgeMembers(lab.spec, lab.made, lab.hosts);
    return Promise.all(members.map(async (m) => `${m.roles.join('+')} (${m.host.name}): ${await bridgeStatus(lab, m)}`));
  }

  removeTap(role: GuestHostRole, name: string, opts?: StepOptions): Promise<void> {
    return removeTapOn(this.hosts[role], name, opts);
  }

  bridgeTap(role: GuestHostRole, name: string, bridged: boolean, opts?: StepOptions): Promise<void> {
    return bridgeTapOn(this.hosts[role], bridged ? this.parts.spec.bridge : undefined, name, opts);
  }

  tapExists(role: GuestHostRole, name: string, opts?: StepOptions): Promise<boolean> {
    return tapExistsOn(this.hosts[role], name, opts);
  }

  async shapeLinks(input: ShapingInput): Promise<void> {
    if (isEmptyShaping(parseShaping(input))) return;
    throw notOnHosts('link shaping', "miglab shapes only links it owns, and the hosts' interfaces are yours");
  }

  async clearShaping(): Promise<void> {
    // Nothing was shaped on these hosts.
  }

  async acquireSlot(req: SlotRequest): Promise<SlotLease> {
    const held = await this.slots.acquire(req, (index, holder) => this.reclaimSlot(index, holder));
    // A run whose connection to a host was lost could not remove its taps there; the slot is free
    // on this machine, so taps of its name on the hosts are that run's: taken away first.
    let stale: string[];
    try {
      stale = (await this.removeSlotTaps(held.index)).map((done) => `${done}, left by a run that lost its connection to the host`);
    } catch (err) {
      held.release();
      throw err;
    }
    return { index: held.index, reclaimed: [...held.reclaimed, ...stale], lab: this, release: async () => held.release() };
  }

  /**
   * A slot whose run died on the controller: its remote processes ended with their SSH sessions;
   * what may remain are its taps and its data disk.
   */
  private async reclaimSlot(index: number, holder: SlotHolder | undefined): Promise<string[]> {
    const done = await this.removeSlotTaps(index);
    if (holder) {
      const r = await this.nfs.host.run(['find', this.nfs.exportDir, '-maxdepth', '1', '-type', 'f', '-name', `${holder.runId}*`], { reject: false, timeoutMs: 10_000 });
      for (const path of r.stdout.split('\n').filter(Boolean)) {
        await this.nfs.host.remove(path);
        done.push(`removed data disk ${basename(path)}`);
      }
    }
    return done;
  }

  /**
   * The taps of a guest slot (tap-gN, tap-hwN) that are on src and dst, removed: each host asked
   * in one step, both at once. Says what it removed.
   */
  private async removeSlotTaps(index: number): Promise<string[]> {
    const taps = [`tap-g${index}`, `tap-hw${index}`];
    const removed = await Promise.all(
      (['src', 'dst'] as const).map(async (role) => {
        const found = await tapsPresentOn(this.hosts[role], taps);
        for (const tap of found) await this.removeTap(role, tap);
        return found.map((tap) => `removed ${tap} on ${role}`);
      }),
    );
    return removed.flat();
  }

  /** Remote processes end with the SSH session that started them, so none outlives its run. */
  liveProcesses(): RecordedProcess[] {
    return [];
  }

  stillUp(): string | undefined {
    return this.parts.connectionLost?.();
  }

  async setUplink(): Promise<void> {
    throw notOnHosts('cutting a host\'s link', "on a real host it could cut miglab's own SSH connection");
  }

  switchPort(): { none: string } {
    return { none: "the hosts' network is not one miglab made: it has no switch port of miglab's to watch" };
  }

  nfsServerState(): NfsServerState {
    return { state: 'none' };
  }

  async signalNfsServer(): Promise<number> {
    throw notOnHosts('a fault of the NFS server', 'the NFS server is yours, not started by miglab');
  }

  async restartNfsServer(): Promise<void> {
    throw notOnHosts('restarting the NFS server', 'the NFS server is yours, not started by miglab');
  }

  /** The certificates are made on the controller and put on both guest hosts at the same path. */
  async tlsCredentials(opts?: StepOptions): Promise<string> {
    const set = await ensureTlsCredentials(this.paths.tlsDir, { serverAddress: this.parts.spec.migration.address, label: this.spec.prefix, ...opts });
    const remoteDir = posix.join(this.hosts.src.runDir, 'tls');
    for (const role of ['src', 'dst'] as const) {
      for (const name of Object.values(TLS_FILES)) await this.hosts[role].host.putFile(join(set.dir, name), posix.join(remoteDir, name));
    }
    return remoteDir;
  }

  /** The source host's /proc over SSH, one command a tick; the link at both ends. */
  batchSampling(): BatchSampling {
    return hostsSampling(this);
  }

  /** The person logs in to the source host as the hosts file says; the lab is named by the file. */
  byHandPlace(): HandPlace {
    return { atSource: sshLoginArgv(this.parts.spec.hosts.src), onThisMachine: false, lab: ['--hosts', this.parts.file] };
  }

  /**
   * Each host has a clock of its own: its offset from miglab's, measured over SSH now, through a
   * clock reader kept running on the host for the lab's life (it ends with the connection): a
   * run measures before and after its migration, and starting the reader each time would cost a
   * command's round trip. A reader that failed is dropped; the next measurement starts another.
   */
  async clockOffset(role: HostRole): Promise<ClockOffset> {
    const { host } = this.hosts[role];
    let session = this.clockReaders.get(host.name);
    if (!session) {
      session = host.converse(CLOCK_READER);
      this.clockReaders.set(host.name, session);
    }
    try {
      const m = await readClockOffset(await session, host, CLOCK_ROUND_TRIPS);
      return { ...m, method: 'ssh-round-trip' };
    } catch (err) {
      if (this.clockReaders.get(host.name) === session) this.clockReaders.delete(host.name);
      void session.then((s) => s.close()).catch(() => undefined);
      throw err;
    }
  }

  /** A controller file on a host, put there once per content (under the lab's runDir/files/HASH/, kept until `lab down`). */
  placeFile(role: HostRole, localPath: string): Promise<string> {
    const key = `${role}:${localPath}`;
    let placed = this.placed.get(key);
    if (!placed) {
      placed = (async () => {
        const hash = await sha256File(localPath);
        const path = posix.join(this.hosts[role].runDir, 'files', hash.slice(0, 16), basename(localPath));
        await this.hosts[role].host.putFile(localPath, path);
        return path;
      })();
      this.placed.set(key, placed);
      placed.catch(() => this.placed.delete(key));
    }
    return placed;
  }

  /**
   * Remove this lab's state directory on the controller when nothing is in it any more (no slot
   * held, no certificates made): a run on hosts leaves nothing here. rmdir refuses a directory
   * that is not empty, so a concurrent run's slot is never touched.
   */
  async tidyState(): Promise<void> {
    for (const dir of [this.paths.slotsDir, this.paths.labDir]) {
      await rmdir(dir).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT' && err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
      });
    }
  }

  /** miglab's guest taps (tap-gN, tap-hwN) on the bridge of a host, listed in one command. */
  private async guestTapsOn(role: GuestHostRole): Promise<string[]> {
    const r = await this.hosts[role].host.run(['ip', '-o', 'link', 'show', 'master', this.parts.spec.bridge], { reject: false, timeoutMs: 10_000 });
    return [...r.stdout.matchAll(/^\d+: (tap-(?:g|hw)\d+)[:@]/gm)].map((m) => m[1]!);
  }

  /** Slots held now, with whether the run holding each is alive. */
  heldSlots(): ReturnType<SlotTable['held']> {
    return this.slots.held();
  }

  /**
   * What miglab runs on a host now: every process it starts there names the lab's runDir in its
   * command line (QEMU's monitor sockets, the probe tool's path), so that finds exactly them.
   */
  async processesOn(role: HostRole): Promise<{ pid: number; command: string }[]> {
    const { host, runDir } = this.hosts[role];
    const r = await host.run(['pgrep', '-a', '-f', '--', selfExcludingPattern(`${runDir}/`)], { reject: false, timeoutMs: 10_000 });
    return r.stdout
      .split('\n')
      .map((l) => /^(\d+) (.*)$/.exec(l.trim()))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ pid: Number(m[1]), command: m[2]! }));
  }

  /**
   * Take what miglab left on the hosts away: its processes there (found by processesOn, stopped
   * by pid), its taps on the bridge, the data disks of runs that are gone, its runDir on each
   * host, and its state on the controller. Runs still in progress are refused unless `force`.
   */
  async takeDown(force: boolean): Promise<string[]> {
    const held = this.slots.held();
    const live = held.filter((h) => h.alive);
    if (live.length > 0 && !force) {
      throw new MiglabError('LAB_STATE', `runs are in progress on these hosts (${live.map((h) => `slot g${h.index}: run ${h.holder.runId}`).join('; ')}); wait for them, or use --force`);
    }
    const done: string[] = [];
    // The served export first: its server's command line names the runDir removed below.
    const served = this.served ? await takeDownServedExport(this.served) : undefined;
    if (served) done.push(...served.lines);
    for (const role of uniqueRoles(this.hosts)) {
      const { host, runDir } = this.hosts[role];
      for (const p of await this.processesOn(role)) {
        await host.run(['kill', '-TERM', String(p.pid)], { reject: false, timeoutMs: 10_000 });
        done.push(`stopped pid ${p.pid} on ${host.name} (${p.command.slice(0, 60)})`);
      }
      await host.remove(runDir);
      done.push(`removed ${runDir} on ${host.name}`);
    }
    for (const h of held) done.push(...(await this.reclaimSlot(h.index, h.holder)));
    // Data disks of runs that lost their connection to the storage's host (named RUNID-gN.qcow2).
    const disks = await this.nfs.host.run(['find', this.nfs.exportDir, '-maxdepth', '1', '-type', 'f', '-regextype', 'posix-extended', '-regex', '.*/[0-9]{8}-[0-9]{6}-.*-g[0-9]+\\.qcow2'], { reject: false, timeoutMs: 10_000 });
    for (const path of disks.stdout.split('\n').filter(Boolean)) {
      await this.nfs.host.remove(path);
      done.push(`removed data disk ${basename(path)}`);
    }
    // Once its disks are gone: the export's directory, when miglab made it and nothing else is in it.
    if (this.served && served?.madeDir) done.push(await removeMadeDir(this.served, served.dir));
    for (const role of ['src', 'dst'] as const) {
      for (const tap of await this.guestTapsOn(role)) {
        await this.removeTap(role, tap);
        done.push(`removed ${tap} on ${role}`);
      }
    }
    // After its taps: the bridge miglab made (its own links only; the user's bridge is kept).
    const bridge = this.bridgeLab();
    if (bridge) done.push(...(await removeBridge(bridge)));
    await rm(this.paths.labDir, { recursive: true, force: true });
    return done;
  }
}

/** Roles in order, each host once (the client is often the source host). */
function uniqueRoles(hosts: Lab['hosts']): HostRole[] {
  const seen = new Set<string>();
  return (['src', 'dst', 'client'] as const).filter((r) => {
    const name = hosts[r].host.name;
    if (seen.has(name)) return false;
    seen.add(name);
    return true;
  });
}


