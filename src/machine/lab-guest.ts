// A guest started on one host of the lab: its tap on that host's bridge, and QEMU with its
// monitors in the run directory. The engine starts two of these per migration (the destination
// with -incoming); benchmarks start one. Whatever is created is registered on the teardown.
import { join } from 'node:path';
import { createDataDisk } from '../image/disk.js';
import type { GuestHostRole, Lab } from '../lab/index.js';
import type { WaitOptions } from '../util/deadline.js';
import type { Teardown } from '../util/teardown.js';
import type { LaunchPlan, ResolvedAccel } from './argv.js';
import type { MachineMedia, MachineSpec } from './spec.js';
import { ramPadFor } from './quirks.js';
import { WARM_SOCKET } from './warm-start.js';
import { systemBuild, type QemuBuild } from '../qemu/build.js';
import { Vm, VmLaunchError } from './vm.js';
import type { ColoPlan, ColoPrimaryPlan, ColoSecondaryPlan } from '../colo/argv.js';

export interface LabGuestOptions extends WaitOptions {
  readonly lab: Lab;
  readonly side: GuestHostRole;
  readonly spec: MachineSpec;
  readonly accel: ResolvedAccel;
  readonly media: MachineMedia;
  readonly runDir: string;
  readonly teardown: Teardown;
  readonly role: LaunchPlan['role'];
  readonly incomingUri?: string;
  /** Start the destination not listening yet (`-incoming defer`; see LaunchPlan). */
  readonly incomingDeferred?: boolean;
  /** A warm start: `-incoming defer`, the saved state loaded by the caller (warm-start.ts). */
  readonly restoring?: boolean;
  readonly hmpTelnetPort?: number;
  /** Also open a QMP socket for a person (LaunchPlan.personQmpSocket). */
  readonly personQmp?: boolean;
  /** TLS credentials for the migration stream (server on the destination, client on the source). */
  readonly tls?: LaunchPlan['tls'];
  /** Give the guest a control port (a container host: see vm-images/agent/control.c); its socket is `Vm.controlSocket`. */
  readonly controlPort?: boolean;
  /** Trace the switchover's downtime (a build with the vmstate_downtime_* trace points). */
  readonly downtimeTrace?: boolean;
  /**
   * The QEMU build this side runs, and the other side's (their guests' RAM sizes must agree, and
   * the TCG work-around below changes it); none: the host's own on both.
   */
  readonly qemu?: { readonly build: QemuBuild; readonly peer: QemuBuild };
  /** Under KVM, a dirty ring of this size (the dirty-limit capability needs one). */
  readonly kvmDirtyRingSize?: number;
  /** Told when QEMU hung while starting and is launched once more (the message says where it hung). */
  readonly onRelaunch?: (why: string) => void;
  /** A file of this guest (serial log, QMP transcript) cannot be written. */
  readonly onLogError?: (file: string, err: Error) => void;
  /**
   * One half of a COLO pair (src/colo): its disk and NIC are COLO's. The primary's socket loops
   * and both sides' trace files go in the monitors' folder; the secondary's tap is kept off the
   * bridge (it sees only what the primary mirrors) until failover puts it there.
   */
  readonly colo?: Omit<ColoPrimaryPlan, 'loopDir' | 'traceFile'> | Omit<ColoSecondaryPlan, 'traceFile'>;
}

/**
 * How long a QEMU may take to greet on its monitor before it counts as hung. Measured here over
 * 145 runs (source and destination started together, batches of up to 6 included): median 305 ms,
 * 95th percentile 590 ms, worst 2.5 s. The hang seen here was its main thread blocked
 * in libnfs's synchronous mount while the server's MAC had moved (fixed in the lab: bridges have
 * fixed MACs); the guard stays for whatever else can block a QEMU before it greets.
 */
export const LAUNCH_HANG_MS = 20000;

/** The person's QMP socket in a monitor directory (the longest name there). */
const PERSON_QMP = 'hand.qmp';
/** Unix socket paths are limited to 107 bytes; the longest name put in a monitor directory. */
const SOCKET_PATH_MAX = 107 - Math.max(PERSON_QMP.length, WARM_SOCKET.length) - 1;

/**
 * A private directory for a guest's monitor sockets (mode 0700) on the host that runs it: inside
 * the host's run directory, so that `lab down` (or the next run in the slot) removes what a
 * killed miglab left; in /tmp when the run directory lies too deep for a socket path.
 */
function monitorDir(lab: Lab, side: GuestHostRole, prefix: string): Promise<string> {
  const { host, runDir } = lab.hosts[side];
  if (join(runDir, `${prefix}XXXXXX`).length <= SOCKET_PATH_MAX) return host.makeTempDir(runDir, prefix);
  return host.makeTempDir('/tmp', `miglab-${prefix}`);
}

export async function startLabGuest(o: LabGuestOptions): Promise<Vm> {
  const tap = `tap-${o.spec.name}`;
  const host = o.lab.hosts[o.side].host;
  // The tap and the monitors' directory are made side by side, and taken away together (after
  // QEMU has stopped: teardown is last-in, first-out), whichever of them was made.
  const [tapMade, dirMade] = await Promise.allSettled([o.lab.addTap(o.side, tap, { bridged: o.colo?.role !== 'secondary' }), monitorDir(o.lab, o.side, `${o.spec.name}-${o.side}-`)]);
  const sockDir = dirMade.status === 'fulfilled' ? dirMade.value : undefined;
  o.teardown.defer(`remove ${[tapMade.status === 'fulfilled' ? `tap ${tap}` : undefined, sockDir ? 'the monitor sockets' : undefined].filter(Boolean).join(' and ')} on ${o.side}`, async () => {
    await Promise.all([tapMade.status === 'fulfilled' ? o.lab.removeTap(o.side, tap) : undefined, sockDir ? host.remove(sockDir) : undefined]);
  });
  if (tapMade.status === 'rejected') throw tapMade.reason;
  if (dirMade.status === 'rejected') throw dirMade.reason;
  const first = o.timeoutMs === undefined ? LAUNCH_HANG_MS : Math.min(o.timeoutMs, LAUNCH_HANG_MS);
  try {
    return await launchOnTap(o, tap, sockDir!, first);
  } catch (err) {
    // One relaunch for a QEMU that hung while starting (it has been stopped, its sockets removed);
    // the hang and where it was stuck are reported to the caller, which records them with the run.
    if (!(err instanceof VmLaunchError) || !err.hung || o.signal?.aborted) throw err;
    o.onRelaunch?.(err.message);
    return launchOnTap(o, tap, sockDir!, o.timeoutMs ?? LAUNCH_HANG_MS);
  }
}

/** QEMU on its tap, its monitors in `sockDir` (short and private: see monitorDir). */
async function launchOnTap(o: LabGuestOptions, tap: string, sockDir: string, timeoutMs: number): Promise<Vm> {
  const host = o.lab.hosts[o.side].host;
  // The kernel and initrd as that host sees them (put there first when it is another machine).
  const media = { ...o.media, kernelPath: await o.lab.placeFile(o.side, o.media.kernelPath), initrdPath: await o.lab.placeFile(o.side, o.media.initrdPath) };
  // Both sides of a migration decide this the same way (from both builds), so their RAM sizes match.
  const builds = o.qemu ? [o.qemu.build, o.qemu.peer] : [await systemBuild(host)];
  const ramPadKiB = ramPadFor(o.accel, builds.map((b) => b.release));
  return Vm.launch({
    host,
    spec: o.spec,
    plan: {
      role: o.role,
      accel: o.accel,
      qmpSocket: join(sockDir, `${o.side}.qmp`),
      hmpSocket: join(sockDir, `${o.side}.hmp`),
      hmpTelnetPort: o.hmpTelnetPort,
      personQmpSocket: o.personQmp ? join(sockDir, PERSON_QMP) : undefined,
      tap,
      incomingUri: o.incomingUri,
      incomingDeferred: o.incomingDeferred,
      restoring: o.restoring,
      tls: o.tls,
      media,
      ramPadKiB,
      qemu: o.qemu?.build,
      kvmDirtyRingSize: o.kvmDirtyRingSize,
      controlSocket: o.controlPort ? join(sockDir, `${o.side}.ctl`) : undefined,
      downtimeTraceFile: o.downtimeTrace ? join(sockDir, `${o.side}.trace`) : undefined,
      colo: coloPlanIn(o.colo, sockDir, o.side),
    },
    runDir: o.runDir,
    label: o.side,
    onLogError: o.onLogError,
    teardown: o.teardown,
    // Removed with their directory, after QEMU (startLabGuest).
    socketsRemovedByCaller: true,
    timeoutMs,
    signal: o.signal,
  });
}

export interface SingleGuestOptions extends WaitOptions {
  readonly lab: Lab;
  readonly media: Pick<MachineMedia, 'kernelPath' | 'initrdPath'>;
  readonly spec: MachineSpec;
  readonly accel: ResolvedAccel;
  readonly runDir: string;
  readonly teardown: Teardown;
  /** The data disk's file name in the NFS export (created, and removed at teardown). */
  readonly diskFile: string;
  readonly diskSizeMiB: number;
}

/**
 * One guest on the source host that is not going anywhere (benchmarks, workload checks): its
 * data disk on the NFS export, QEMU, and a wait until its agent reports ready.
 */
export async function startSingleGuest(o: SingleGuestOptions): Promise<Vm> {
  const { nfs } = o.lab;
  const path = nfs.path(o.diskFile);
  await createDataDisk(nfs.host, path, o.diskSizeMiB, { overwrite: true, signal: o.signal });
  o.teardown.defer(`remove data disk ${o.diskFile}`, () => nfs.host.remove(path));
  const vm = await startLabGuest({
    lab: o.lab,
    side: 'src',
    spec: o.spec,
    accel: o.accel,
    media: { ...o.media, diskUrl: o.lab.nfs.url(o.diskFile) },
    runDir: o.runDir,
    teardown: o.teardown,
    role: 'single',
    timeoutMs: o.timeoutMs,
    signal: o.signal,
  });
  await vm.console.waitReady({ timeoutMs: o.timeoutMs, signal: o.signal });
  return vm;
}

/** The COLO half's plan with its files in the monitors' folder (short paths: the loops are unix sockets). */
function coloPlanIn(colo: LabGuestOptions['colo'], sockDir: string, side: GuestHostRole): ColoPlan | undefined {
  if (!colo) return undefined;
  const traceFile = join(sockDir, `${side}.colo.trace`);
  return colo.role === 'primary' ? { ...colo, loopDir: sockDir, traceFile } : { ...colo, traceFile };
}
