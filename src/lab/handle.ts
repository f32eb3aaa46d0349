// A lab that is up, as runs use it: its hosts (Hosts whose long-lived processes are recorded,
// procs.ts), its NFS export, taps for guests, link shaping, guest slots (slots.ts), and the
// handles faults need (a host's cable to the switch, the NFS server). `Lab` is what runs use,
// whatever the hosts are; LabImpl is the embedded lab (network namespaces on this machine), built
// by labUp (up.ts) or attachLab (down.ts) from the lab's state file, the one truth about the lab.
import { existsSync, readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { embeddedPlace, type HandPlace } from '../guests/instructions.js';
import { embeddedSampling, type BatchSampling } from '../batch/sampling.js';
import { MiglabError } from '../errors.js';
import type { Host } from '../host/host.js';
import { CommandError } from '../host/local.js';
import { nfsUrl } from './ganesha.js';
import { THIS_MACHINE, type LabMachine } from './machine.js';
import { labNfsParams, startNfsServer, waitNfsReady } from './nfs.js';
import { ownedState, signalOwnedGroup, stopOwnedGroup } from './proc.js';
import { ProcessRegistry, RecordingHost, type RecordedProcess, type SpawnOwner } from './procs.js';
import { SlotTable, type SlotHolder, type SlotRequest } from './slots.js';
import {
  checkExportFileName,
  checkTapName,
  guestIp,
  guestMac,
  isEmptyShaping,
  labNames,
  labPaths,
  maxGuestIndex,
  parseShaping,
  parseSubnet,
  roleIp,
  type GuestHostRole,
  type HostRole,
  type LabNames,
  type LabPaths,
  type LabSpec,
  type Shaping,
  type ShapingInput,
} from './spec.js';
import { readLabState, updateLabState } from './state.js';
import { clearArgv, isNoQdiscError, isUnknownQdiscError, shapingArgv } from './tc.js';
import { ensureTlsCredentials } from './tls.js';
import { bridgeTapOn } from './taps.js';

/** Time allowed to small lab commands when the caller gives none. */
export const STEP_TIMEOUT_MS = 10_000;

export interface LabHost {
  readonly role: HostRole;
  /** The host's network namespace on this machine: the embedded lab only. */
  readonly netns?: string;
  /** Where the host is, for messages: "namespace mlab-src", "root@10.0.0.1". */
  readonly where: string;
  /** The host's own lab address (no prefix length). */
  readonly ip: string;
  /** Runs commands on the host; its long-lived processes are recorded in the lab's state. */
  readonly host: Host;
  /** A directory on that host for miglab's transient files (monitor sockets, inside it via makeTempDir). */
  readonly runDir: string;
}

/** A host's clock minus miglab's, within ± uncertaintyMs, and how that is known. */
export interface ClockOffset {
  readonly offsetMs: number;
  readonly uncertaintyMs: number;
  /** one-clock: the host is this machine (a namespace), so there is no offset; ssh-round-trip: measured. */
  readonly method: 'one-clock' | 'ssh-round-trip';
}

export interface LabNfs {
  readonly serverIp: string;
  /** The exported directory, on `host` (guest disks are created there). */
  readonly exportDir: string;
  /** `nfs://SERVER/EXPORT_DIR/fileName`, as QEMU (libnfs) opens it from src or dst. */
  url(fileName: string): string;
  /** The host on which the export is a directory (qemu-img create runs there; disks are removed there). */
  readonly host: Host;
  /** The same file as a path on `host`. */
  path(fileName: string): string;
}

export interface StepOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface TapOptions extends StepOptions {
  /** false: the tap is made on no bridge (a COLO secondary's, until failover); default true. */
  readonly bridged?: boolean;
}

/** The lab's NFS server as it is now. */
export interface NfsServerState {
  /** running; stopped (SIGSTOP, frozen); gone (died or was killed); none (the lab has no server). */
  readonly state: 'running' | 'stopped' | 'gone' | 'none';
  readonly pid?: number;
}

/** A guest slot held by a run, and the lab as that run sees it. */
export interface SlotLease {
  readonly index: number;
  /** What a dead run had left in the slot, cleaned before this run took it (empty: it was free). */
  readonly reclaimed: readonly string[];
  /** The lab whose hosts record every process they start as this run's, in this slot. */
  readonly lab: Lab;
  /** Give the slot back (idempotent). */
  release(): Promise<void>;
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
  /** Create a persistent tap `name` on br0 of `host` (off any bridge with `bridged: false`), up. QEMU opens it by name in that namespace. */
  addTap(host: GuestHostRole, name: string, opts?: TapOptions): Promise<void>;
  /** Remove the tap; nothing to do if it is gone already. */
  removeTap(host: GuestHostRole, name: string, opts?: StepOptions): Promise<void>;
  /** Put the tap on the host's bridge (true) or take it off (false): a COLO secondary's, until failover. */
  bridgeTap(host: GuestHostRole, name: string, bridged: boolean, opts?: StepOptions): Promise<void>;
  tapExists(host: GuestHostRole, name: string, opts?: StepOptions): Promise<boolean>;
  /** Shape the src and dst uplinks (the migration path); an empty shaping clears it. */
  shapeLinks(shaping: ShapingInput, opts?: StepOptions): Promise<void>;
  clearShaping(opts?: StepOptions): Promise<void>;
  /** Take a guest slot for a run: the preferred one, or the next free one (see slots.ts). */
  acquireSlot(req: SlotRequest): Promise<SlotLease>;
  /** Processes miglab started in this lab that still run (filtered to one run's or slot's). */
  liveProcesses(filter?: { runId?: string; slot?: number }): RecordedProcess[];
  /** A problem when the lab is no longer up (taken down, or being taken down); else undefined. */
  stillUp(): string | undefined;
  /** A host's cable to the switch: unplugged (down) or plugged in (up). For faults. */
  setUplink(role: HostRole, up: boolean, opts?: StepOptions): Promise<void>;
  /**
   * The switch's port toward a host, where a capture sees a guest arrive after a switchover (the
   * client's silence, src/migrate/client-silence.ts); or why there is none to watch.
   */
  switchPort(role: HostRole): { readonly host: Host; readonly iface: string } | { readonly none: string };
  nfsServerState(): NfsServerState;
  /** Send a signal to the NFS server's process group (faults); returns its pid. */
  signalNfsServer(signal: NodeJS.Signals): Promise<number>;
  /** Start the NFS server anew (after it died), wait until it answers, and record it. */
  restartNfsServer(opts?: StepOptions): Promise<void>;
  /** The lab's TLS certificates for the migration stream (made on first use); returns their directory. */
  tlsCredentials(opts?: StepOptions): Promise<string>;
  /**
   * Where a file of this machine (the guest's kernel and initrd, the probe tool) is on a host of
   * the lab: the same path where the host shares this machine's files (the embedded lab), else
   * put there once per content.
   */
  placeFile(role: HostRole, localPath: string): Promise<string>;
  /** The host's clock against miglab's: STOP and RESUME are stamped by the src and dst hosts' clocks. */
  clockOffset(role: HostRole, opts?: StepOptions): Promise<ClockOffset>;
  /** How a batch samples and judges this lab's source host and its migration link (batch/sampling.ts). */
  batchSampling(): BatchSampling;
  /** How a person reaches the source host's monitors by hand, and names this lab to `guests down`. */
  byHandPlace(): HandPlace;
}

function stepOpts(opts: StepOptions = {}): { timeoutMs: number; signal?: AbortSignal } {
  return { timeoutMs: opts.timeoutMs ?? STEP_TIMEOUT_MS, signal: opts.signal };
}

/** Names of the network namespaces that exist on `machine` (its root namespace's host). */
export async function listNetns(machine: Host = THIS_MACHINE.host): Promise<string[]> {
  const r = await machine.run(['ip', 'netns', 'list'], { timeoutMs: STEP_TIMEOUT_MS });
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

async function linkExists(host: Host, name: string, opts: StepOptions): Promise<boolean> {
  const r = await host.run(['ip', 'link', 'show', 'dev', name], { ...stepOpts(opts), reject: false });
  return r.exitCode === 0;
}

export class LabImpl implements Lab {
  readonly names: LabNames;
  readonly paths: LabPaths;
  readonly prefixLength: number;
  readonly hosts: Lab['hosts'];
  readonly nfs: LabNfs;
  private readonly registry: ProcessRegistry;
  private readonly slots: SlotTable;
  /** The switch's namespace, its processes recorded like the hosts' (a capture on a port). */
  private readonly switchHost: Host;

  constructor(
    readonly spec: LabSpec,
    exportDir: string,
    /** The machine whose namespaces are the lab's hosts (machine.ts). */
    private readonly machine: LabMachine,
    owner: SpawnOwner = {},
  ) {
    this.names = labNames(spec.prefix);
    this.paths = { ...labPaths(spec), exportDir };
    this.prefixLength = parseSubnet(spec.subnet).prefixLength;
    this.registry = new ProcessRegistry(this.paths.procsDir);
    this.slots = new SlotTable(this.paths.slotsDir, maxGuestIndex(spec));
    const runDir = join(this.paths.labDir, 'sock');
    const mk = (role: HostRole): LabHost => {
      const netns = this.names.ns[role];
      const host = new RecordingHost(machine.netns(role, netns), netns, this.registry, owner);
      return { role, netns, where: `namespace ${netns}`, ip: roleIp(spec, role), host, runDir };
    };
    this.hosts = { src: mk('src'), dst: mk('dst'), client: mk('client') };
    this.switchHost = new RecordingHost(machine.netns('switch', this.names.switchNs), this.names.switchNs, this.registry, owner);
    const serverIp = this.hosts.src.ip;
    this.nfs = {
      serverIp,
      exportDir,
      url: (fileName) => nfsUrl(serverIp, exportDir, checkExportFileName(fileName)),
      // The export is a directory of the machine, shared by all its namespaces.
      host: machine.host,
      path: (fileName) => join(exportDir, checkExportFileName(fileName)),
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

  async addTap(role: GuestHostRole, name: string, opts?: TapOptions): Promise<void> {
    checkTapName(name);
    const { host, where } = this.guestHost(role);
    if (await linkExists(host, name, opts ?? {})) {
      throw new MiglabError('LAB_STATE', `a link named ${name} already exists on ${role} (${where})`, { context: { host: role, tap: name } });
    }
    await host.run(['ip', 'tuntap', 'add', 'dev', name, 'mode', 'tap'], stepOpts(opts));
    try {
      await host.run(['ip', 'link', 'set', 'dev', name, ...(opts?.bridged === false ? [] : ['master', this.names.hostBridge]), 'up'], stepOpts(opts));
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

  bridgeTap(role: GuestHostRole, name: string, bridged: boolean, opts?: StepOptions): Promise<void> {
    return bridgeTapOn(this.guestHost(role), bridged ? this.names.hostBridge : undefined, name, opts);
  }

  tapExists(role: GuestHostRole, name: string, opts?: StepOptions): Promise<boolean> {
    return linkExists(this.guestHost(role).host, checkTapName(name), opts ?? {});
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

  async acquireSlot(req: SlotRequest): Promise<SlotLease> {
    const held = await this.slots.acquire(req, (index, holder) => this.reclaimSlot(index, holder));
    const lab = new LabImpl(this.spec, this.nfs.exportDir, this.machine, { runId: req.runId, slot: held.index });
    return { index: held.index, reclaimed: held.reclaimed, lab, release: async () => held.release() };
  }

  /** A slot whose run died: stop what it left running, remove its taps, monitor sockets and data disk. */
  private async reclaimSlot(index: number, holder: SlotHolder | undefined): Promise<string[]> {
    const done: string[] = [];
    const waits = { timeoutMs: STEP_TIMEOUT_MS };
    for (const p of this.registry.live({ slot: index })) if (await stopOwnedGroup(p, waits)) done.push(`stopped ${p.what} (pid ${p.pid})`);
    for (const tap of [`tap-g${index}`, `tap-hw${index}`]) {
      for (const role of ['src', 'dst'] as const) {
        if (!(await this.tapExists(role, tap))) continue;
        await this.removeTap(role, tap);
        done.push(`removed ${tap} on ${role}`);
      }
    }
    // The embedded lab's hosts share one run directory on this machine.
    const sockets = this.hosts.src.runDir;
    const mine = new RegExp(`^[a-z]+${index}-(src|dst)-`);
    for (const d of existsSync(sockets) ? readdirSync(sockets).filter((n) => mine.test(n)) : []) {
      await rm(join(sockets, d), { recursive: true, force: true });
      done.push(`removed monitor sockets ${d}`);
    }
    if (holder) {
      for (const f of existsSync(this.nfs.exportDir) ? readdirSync(this.nfs.exportDir).filter((n) => n.startsWith(holder.runId)) : []) {
        await rm(join(this.nfs.exportDir, f), { force: true });
        done.push(`removed data disk ${f}`);
      }
    }
    return done;
  }

  liveProcesses(filter: { runId?: string; slot?: number } = {}): RecordedProcess[] {
    return this.registry.live(filter);
  }

  stillUp(): string | undefined {
    const state = readLabState(this.paths.stateFile);
    if (!state) return `the lab "${this.spec.prefix}" was taken down`;
    if (state.phase === 'going-down') return `the lab "${this.spec.prefix}" is being taken down (\`miglab lab down --force\`)`;
    const missing = state.netns.filter((ns) => !existsSync(join('/run/netns', ns)));
    return missing.length > 0 ? `the lab "${this.spec.prefix}" lost its namespace(s) ${missing.join(', ')}` : undefined;
  }

  async setUplink(role: HostRole, up: boolean, opts?: StepOptions): Promise<void> {
    const sw = this.machine.netns('switch', this.names.switchNs);
    await sw.run(['ip', 'link', 'set', 'dev', this.names.switchPort[role], up ? 'up' : 'down'], stepOpts(opts));
  }

  switchPort(role: HostRole): { host: Host; iface: string } {
    return { host: this.switchHost, iface: this.names.switchPort[role] };
  }

  nfsServerState(): NfsServerState {
    const server = readLabState(this.paths.stateFile)?.nfs?.server;
    if (!server) return { state: 'none' };
    return { state: ownedState(server), pid: server.pid };
  }

  async signalNfsServer(signal: NodeJS.Signals): Promise<number> {
    const server = readLabState(this.paths.stateFile)?.nfs?.server;
    if (!server || !signalOwnedGroup(server, signal)) {
      throw new MiglabError('LAB_STATE', `the lab's NFS server is not running, so it cannot be sent ${signal}; \`miglab lab status\` shows the lab`);
    }
    return server.pid;
  }

  async restartNfsServer(opts?: StepOptions): Promise<void> {
    const state = readLabState(this.paths.stateFile);
    if (!state?.nfs) throw new MiglabError('LAB_STATE', `the lab "${this.spec.prefix}" has no NFS server to restart`);
    const waits = stepOpts(opts);
    // A frozen server holds its ports: let it run so it can stop, then stop what is left of it.
    signalOwnedGroup(state.nfs.server, 'SIGCONT');
    await stopOwnedGroup(state.nfs.server, waits);
    const server = await startNfsServer(this.names.ns.src, labNfsParams(this.spec, this.paths, state.nfs.serverIp, this.nfs.exportDir));
    updateLabState(this.paths.stateFile, (st) => ({ ...st, nfs: { ...st.nfs!, server: { pid: server.pid, startTime: server.startTime } } }));
    await waitNfsReady(this.hosts.dst.host, server, state.nfs.serverIp, this.nfs.exportDir, waits);
  }

  async tlsCredentials(opts?: StepOptions): Promise<string> {
    const set = await ensureTlsCredentials(this.paths.tlsDir, { serverAddress: this.hosts.dst.ip, label: this.spec.prefix, host: this.machine.host, ...opts });
    return set.dir;
  }

  /** The lab's hosts are namespaces of this machine: they see its files where they are. */
  async placeFile(_role: HostRole, localPath: string): Promise<string> {
    return localPath;
  }

  /** The lab's hosts are namespaces of this machine: one kernel, one clock. */
  async clockOffset(): Promise<ClockOffset> {
    return { offsetMs: 0, uncertaintyMs: 0, method: 'one-clock' };
  }

  /** This machine's /proc, the lab's QEMUs by namespace, the link on the lab's switch. */
  batchSampling(): BatchSampling {
    return embeddedSampling(this, this.machine);
  }

  /** A root shell on this machine enters the source's namespace. */
  byHandPlace(): HandPlace {
    return embeddedPlace(this.names.ns.src, this.spec.prefix);
  }
}
