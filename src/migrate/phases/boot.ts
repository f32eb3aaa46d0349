// The run's first phases: a guest slot of the lab (address, MAC, tap, port), the accelerator and,
// once both are decided, the boot: the data disk on NFS, both QEMUs with the watchers that end
// the run when one of them, its guest or the lab goes wrong, and the guest's first heartbeat.
import type { FaultRunner } from '../../fault/runner.js';
import { createDataDisk, type ImageInfo } from '../../image/build.js';
import type { Lab, LabHost } from '../../lab/index.js';
import type { AccelDecision } from '../../machine/accel.js';
import { decideLabAccel } from '../../machine/lab-accel.js';
import { startLabGuest, type LabGuestOptions } from '../../machine/lab-guest.js';
import { parseMachineSpec, type MachineSpec } from '../../machine/spec.js';
import { VmLaunchError, type Vm } from '../../machine/vm.js';
import { checkPortFree } from '../../preflight.js';
import { versionOf } from '../../qemu/build.js';
import { qemuCacheDir } from '../../qemu/fetch.js';
import { pairRecord, resolveQemuPair, type QemuPair } from '../../qemu/pair.js';
import { DOWNTIME_CHECKPOINT, migrationOffers, missingOffers } from '../../qemu/offers.js';
import type { Host } from '../../host/host.js';
import { UsageError } from '../../errors.js';
import { qmpParameters } from '../monitor.js';
import { deferIncoming, scenarioCapabilities } from '../scenario.js';
import { Teardown } from '../../util/teardown.js';
import { checkThenRemoveDisk } from '../../workload/run.js';
import type { EngineContext } from '../engine.js';
import { mark, switchedOver, type Run } from '../run-state.js';
import { startFromState, warmConfig, warmState } from './warm.js';
import { makePrivateDir } from '../../util/private.js';
import { join } from 'node:path';
import { resultsWriteError, watchConsole, watchLab, watchQemuExit, type Side } from '../watch.js';

const BOOT_TIMEOUT_MS = 60000;
/** Dirty-ring entries per vCPU when dirty-limit is on (QEMU's documented example; a power of two from 1024 to 65536). */
const KVM_DIRTY_RING_SIZE = 4096;

/** The guest slot a run holds and what follows from it. */
export interface Slot {
  readonly index: number;
  /** The guest's address (its slot's), as the lab's client host reaches it. */
  readonly guestIp: string;
  /** The destination's address, where the migration goes (and its TLS certificate's name). */
  readonly dstAddress: string;
  /** tcp:DST:PORT, the port shifted with the slot. */
  readonly uri: string;
  readonly hmpTelnetPort?: number;
  readonly machine: MachineSpec;
}

/** Both QEMUs are up, watched, and the guest beats on the source. */
export interface Booted {
  readonly slot: Slot;
  readonly accel: AccelDecision;
  readonly src: Vm;
  readonly dst: Vm;
  /** The data disk's file name in the lab's NFS export. */
  readonly diskFile: string;
}

/** Starts one side's QEMU: the lab's (labGuests), or a test's own. */
export type GuestLauncher = (o: Omit<LabGuestOptions, 'lab'>) => Promise<Vm>;

/** Guests started on the lab's hosts, each on a tap of its own. */
export function labGuests(lab: Lab): GuestLauncher {
  return (o) => startLabGuest({ ...o, lab });
}

/** What the boot uses of the lab: the NFS export, its source host, its TLS certificates, whether it is still up. */
export interface BootLab extends Pick<Lab, 'nfs' | 'stillUp' | 'nfsServerState' | 'tlsCredentials'> {
  readonly hosts: { readonly src: Pick<LabHost, 'netns' | 'where' | 'host'> };
}

/** What the boot uses of the run. */
export type BootRun = Pick<Run, 'scenario' | 'qemu' | 'traceDowntime' | 'guard' | 'td' | 'progress' | 'out' | 'phases' | 'steps' | 'started' | 'held' | 'final' | 'sourceCompletedAtMs'> & {
  readonly ctx: Pick<EngineContext, 'runId' | 'runDir' | 'hooks' | 'cacheDir'> & { readonly image: Pick<ImageInfo, 'kernelPath' | 'initrdPath' | 'hash'> };
  readonly lab: BootLab;
  readonly faults: Pick<FaultRunner, 'records'>;
  readonly record: Pick<Run['record'], 'failedLaunch'>;
};

/** Take a guest slot of the lab (IP, MAC, tap, port offset) so concurrent runs never collide. */
export async function claimSlot(run: Run): Promise<Slot> {
  const preferred = run.ctx.guestIndex ?? 0;
  const lease = await run.ctx.lab.acquireSlot({ preferred, runId: run.ctx.runId, signal: run.guard.signal });
  run.held.slot = lease;
  run.td.defer(`release guest slot g${lease.index}`, () => lease.release());
  const lab = lease.lab;
  run.lab = lab;
  run.out.slot = lease.index;
  if (lease.reclaimed.length > 0) {
    run.out.reclaimed = lease.reclaimed;
    run.progress('slot', `reclaimed ${lease.reclaimed.join('; ')}`);
  }
  const { scenario } = run;
  const shift = lease.index - preferred;
  const port = scenario.port + shift;
  const hmpTelnetPort = scenario.hmpTelnetPort === undefined ? undefined : scenario.hmpTelnetPort + shift;
  if (shift !== 0) run.progress('slot', `guest slot g${preferred} is taken by another run on this lab: using g${lease.index} (port ${port})`);
  const dstAddress = lab.hosts.dst.ip;
  const uri = `tcp:${dstAddress}:${port}`;
  run.record.uri = uri;
  await checkPortFree(lab.hosts.dst.host, port, 'migration');
  if (hmpTelnetPort !== undefined) await checkPortFree(lab.hosts.src.host, hmpTelnetPort, 'hmp');
  const idx = lease.index;
  const machine = parseMachineSpec({
    name: `g${idx}`,
    accel: scenario.guest.accel,
    cpuModel: scenario.guest.cpuModel,
    memoryMiB: scenario.guest.memoryMiB,
    vcpus: scenario.guest.vcpus,
    nicModel: scenario.guest.nicModel,
    diskInterface: scenario.guest.diskInterface,
    machineType: run.qemu?.machineType ?? 'pc',
    mac: lab.guestMac(idx),
    ip: `${lab.guestIp(idx)}/${lab.prefixLength}`,
    // The net workload needs the guest's iperf3 server.
    iperfServer: scenario.guest.iperfServer || scenario.workload.kind === 'net',
  });
  run.record.machine = machine;
  return { index: idx, guestIp: lab.guestIp(idx), dstAddress, uri, hmpTelnetPort, machine };
}

/**
 * The QEMU builds of both sides (a named one fetched the first time) and the machine type they
 * share: the user's to fix when it cannot be had, so decided before anything starts.
 */
export async function chooseQemu(run: Run): Promise<QemuPair> {
  const { scenario, ctx, guard } = run;
  const req = { source: scenario.qemu.source, destination: scenario.qemu.destination ?? scenario.qemu.source, machineType: scenario.guest.machineType };
  const pair = await resolveQemuPair(run.lab.hosts, req, { cacheDir: qemuCacheDir(ctx.cacheDir), signal: guard.signal, log: (line) => run.progress('qemu', line) });
  run.qemu = pair;
  run.record.qemu = { ...run.record.qemu, ...pairRecord(pair) };
  await refuseUnoffered(run, pair);
  // The breakdown needs both sides' trace points; a build that cannot say has none (an extra figure never fails a run).
  const traces = (build: QemuPair['source'], host: Host) =>
    migrationOffers(host, build).then(
      (o) => o.downtimeTracePoints.includes(DOWNTIME_CHECKPOINT),
      () => false,
    );
  run.traceDowntime = (await traces(pair.source, run.lab.hosts.src.host)) && (await traces(pair.destination, run.lab.hosts.dst.host));
  if (req.source !== 'system' || req.destination !== 'system') {
    run.progress('qemu', `source QEMU ${versionOf(pair.source)} (${pair.source.choice}), destination QEMU ${versionOf(pair.destination)} (${pair.destination.choice}); machine type ${pair.machineTypeWhy}`);
  }
  return pair;
}

/**
 * A capability or parameter the run sets must be one both QEMUs know (asked from each, never
 * decided by version): refused in one line, before anything starts, naming the side that lacks it.
 */
async function refuseUnoffered(run: Run, pair: QemuPair): Promise<void> {
  const { scenario } = run;
  const want = {
    capabilities: Object.entries(scenarioCapabilities(scenario)).filter(([, on]) => on).map(([c]) => c),
    parameters: Object.keys(qmpParameters(scenario.parameters)),
  };
  if (want.capabilities.length === 0 && want.parameters.length === 0) return;
  for (const [side, build, host] of [['source', pair.source, run.lab.hosts.src.host], ['destination', pair.destination, run.lab.hosts.dst.host]] as const) {
    const missing = missingOffers(await migrationOffers(host, build), want);
    const what = [...missing.capabilities.map((c) => `capability ${c}`), ...missing.parameters.map((p) => `parameter ${p}`)];
    if (what.length > 0) {
      throw new UsageError(
        `the ${side}'s QEMU ${versionOf(build)} (${build.choice}) does not offer migration ${what.join(', ')}`,
        `drop it, or give the ${side} a QEMU build that has it (${side === 'destination' ? '--qemu-dst' : '--qemu'}; miglab qemu list shows the builds)`,
      );
    }
  }
}

/** The accelerator the scenario asked for, or what this host can do instead (and why). */
export async function chooseAccel(run: Run): Promise<AccelDecision> {
  const { ctx, scenario, guard } = run;
  const t = Date.now();
  run.progress('accel', `requested ${scenario.guest.accel}`);
  const accel = await decideLabAccel(run.lab, scenario.guest.accel, { image: ctx.image, cacheDir: ctx.cacheDir, signal: guard.signal });
  run.record.accel = accel;
  mark(run, 'accelDecisionMs', t);
  run.progress('accel', `${accel.used}: ${accel.reason}`);
  // QEMU refuses dirty-limit without KVM's dirty ring: said now, before anything boots.
  if (scenarioCapabilities(scenario)['dirty-limit'] && accel.used !== 'kvm') {
    throw new UsageError(`dirty-limit needs KVM with its dirty ring, and this run uses ${accel.used} (${accel.reason})`, 'drop it (--switchover, --capability), or run where KVM works');
  }
  return accel;
}

/** The data disk on NFS, both QEMUs with their watchers, and the guest's first heartbeat. */
export async function boot(run: BootRun, slot: Slot, accel: AccelDecision, launch: GuestLauncher): Promise<Booted> {
  try {
    return await bootGuest(run, slot, accel, launch);
  } finally {
    // The boot's live figure goes when it ends, however it ended.
    run.progress.live?.({ topic: 'run' });
  }
}

/** Show a boot stage live: how long it has taken against its own deadline. */
function stage(run: BootRun, what: string): void {
  const startedAt = Date.now();
  run.progress.live?.({ topic: 'run', status: { kind: 'boot', stage: what, startedAt, deadlineAt: startedAt + BOOT_TIMEOUT_MS } });
}

async function bootGuest(run: BootRun, slot: Slot, accel: AccelDecision, launch: GuestLauncher): Promise<Booted> {
  const { ctx, scenario, guard, td, lab } = run;
  const { machine } = slot;

  const watch = watchLab(lab, guard);
  td.defer('stop watching the lab', () => watch.stop());

  // The data disk lives in the NFS export; both QEMUs open it by nfs:// URL.
  const diskFile = `${ctx.runId}-${machine.name}.qcow2`;
  run.held.diskFile = diskFile;
  await createDataDisk(lab.nfs.host, lab.nfs.path(diskFile), scenario.guest.diskSizeMiB, { signal: guard.signal });
  // Each side's guest (its QEMU, monitor sockets, tap) is taken away by a teardown of its own, and
  // the data disk by a third, all at once: the hosts need not wait for each other. The shared
  // qcow2 must be consistent once nobody has it open: checked once every QEMU that started has
  // stopped (their own parts stop them; waited for here; one whose launch failed is stopped
  // already), then removed, in one step on its host.
  const parts = { source: new Teardown(), destination: new Teardown(), disk: new Teardown() };
  const launched: Vm[] = [];
  parts.disk.defer(`qemu-img check ${diskFile}, then remove it`, async () => {
    await Promise.all(launched.map((vm) => vm.shutdown()));
    const check = await checkThenRemoveDisk(lab.nfs.host, lab.nfs.path(diskFile));
    run.out.qemuImgCheck = { ok: check.ok, exitCode: check.exitCode, meaning: check.meaning };
  });
  td.deferTogether('stop and remove the source and destination guests and their data disk', [parts.source, parts.destination, parts.disk]);

  run.progress('boot', `source and destination QEMU (${machine.memoryMiB} MiB, ${machine.nicModel}, ${machine.diskInterface}, ${accel.used}, slot g${slot.index})`);
  const t = Date.now();
  stage(run, 'starting both QEMUs');
  const tlsDir = scenario.tls ? await lab.tlsCredentials({ signal: guard.signal }) : undefined;
  const onLogError = resultsWriteError(guard);
  const kvmDirtyRingSize = scenarioCapabilities(scenario)['dirty-limit'] ? KVM_DIRTY_RING_SIZE : undefined;
  // A warm start's own guest (booted once to be saved) takes the source's place for a moment: its
  // own disk, teardown and folder for its logs.
  const start = (side: Side, own?: { teardown: Teardown; diskFile: string; restoring?: boolean; runDir?: string }) =>
    launch({
      side: side === 'source' ? 'src' : 'dst',
      spec: machine,
      accel: accel.used,
      media: { kernelPath: ctx.image.kernelPath, initrdPath: ctx.image.initrdPath, diskUrl: lab.nfs.url(own?.diskFile ?? diskFile) },
      runDir: own?.runDir ?? ctx.runDir,
      teardown: own?.teardown ?? parts[side],
      role: side,
      restoring: own?.restoring,
      incomingUri: side === 'destination' ? slot.uri : undefined,
      incomingDeferred: side === 'destination' && deferIncoming(scenario),
      kvmDirtyRingSize,
      qemu: run.qemu ? (side === 'source' ? { build: run.qemu.source, peer: run.qemu.destination } : { build: run.qemu.destination, peer: run.qemu.source }) : undefined,
      hmpTelnetPort: side === 'source' ? slot.hmpTelnetPort : undefined,
      downtimeTrace: run.traceDowntime,
      // A person who migrates by hand may prefer QMP: a socket of their own (miglab holds the first).
      personQmp: side === 'source' && ctx.hooks?.byHand !== undefined,
      tls: tlsDir ? { dir: tlsDir, endpoint: side === 'source' ? 'client' : 'server' } : undefined,
      timeoutMs: BOOT_TIMEOUT_MS,
      signal: guard.signal,
      onLogError,
      onRelaunch: (where) => {
        run.progress('boot', `${side} QEMU hung while starting and is launched again: ${where}`);
        stage(run, `starting the ${side} QEMU again`);
        run.out.relaunched = [...(run.out.relaunched ?? []), { side, where }];
      },
    });
  const warm =
    scenario.guest.start === 'warm'
      ? await warmState(
          run,
          await warmConfig(run, machine, accel.used, kvmDirtyRingSize),
          async () => {
            const own = { teardown: new Teardown(), diskFile: `${ctx.runId}-${machine.name}-warm.qcow2`, runDir: join(ctx.runDir, 'warm-save') };
            const stop = async () => {
              const problems = await own.teardown.run();
              if (problems.length > 0) run.out.teardownProblems = [...(run.out.teardownProblems ?? []), ...problems];
            };
            // Its removal first: an interrupted creation leaves nothing either.
            own.teardown.defer(`remove ${own.diskFile}`, () => lab.nfs.host.remove(lab.nfs.path(own.diskFile)));
            try {
              await makePrivateDir(own.runDir);
              await createDataDisk(lab.nfs.host, lab.nfs.path(own.diskFile), scenario.guest.diskSizeMiB, { signal: guard.signal });
              return { vm: await start('source', own), stop };
            } catch (err) {
              await stop();
              throw err;
            }
          },
          BOOT_TIMEOUT_MS,
        )
      : undefined;
  if (!warm) run.out.start = { kind: 'cold' };
  // A QEMU that could not start keeps its command line in the report: it is what to look at first.
  const started = (side: Side) =>
    start(side, side === 'source' && warm ? { teardown: parts.source, diskFile, restoring: true } : undefined).then(
      (vm) => {
        launched.push(vm);
        return vm;
      },
      (err: unknown) => {
        if (err instanceof VmLaunchError) run.record.failedLaunch[side] = err.command;
        throw err;
      },
    );
  const [src, dst] = await Promise.all([started('source'), started('destination')]);
  run.held.src = src;
  run.held.dst = dst;
  for (const [side, vm] of [['source', src], ['destination', dst]] as const) {
    watchConsole(vm, side, guard, (t) => (run.out.guestTrouble = t));
    watchQemuExit(vm, side, guard, {
      // The side that holds the guest matters: the source until a switchover, the destination
      // after it (and before the migration starts, since the run needs it). A destination that
      // dies mid-migration is QEMU's to report: the migration fails and the source is checked.
      fatal: () => (side === 'source' ? !switchedOver(run) : !guard.migrateSentAt || switchedOver(run)),
      cause: () => faultCause(run, side) ?? run.lab.stillUp(),
    });
  }
  mark(run, 'qemuStartMs', t);
  // The homework's monitor: say where it is, so a person can follow the run with `info migrate`.
  if (slot.hmpTelnetPort !== undefined) {
    // The telnet port listens on the source host's loopback: reached inside its namespace, or on that host.
    const { netns, where } = lab.hosts.src;
    const telnet = `telnet 127.0.0.1 ${slot.hmpTelnetPort}`;
    run.progress('monitor', `source's HMP: ${netns ? `ip netns exec ${netns} ${telnet}` : `${telnet} on ${where}`}   (then: info migrate)`);
  }
  if (warm) {
    stage(run, 'loading the saved guest');
    await startFromState(run, src, warm, BOOT_TIMEOUT_MS);
  } else {
    stage(run, "the guest's kernel and agent");
    const ready = await src.console.waitReady({ timeoutMs: BOOT_TIMEOUT_MS, signal: guard.signal });
    stage(run, "the guest's first heartbeat");
    await src.console.waitBeat((hb) => hb.bootId === ready.bootId, { timeoutMs: BOOT_TIMEOUT_MS, signal: guard.signal });
  }
  mark(run, 'bootToHeartbeatMs', t);
  run.progress.live?.({ topic: 'run' });
  run.progress('boot', `guest up at ${slot.guestIp} after ${run.phases.bootToHeartbeatMs} ms (${warm ? `warm: loaded in ${run.out.start?.loadMs} ms` : 'cold boot'})`);
  return { slot, accel, src, dst, diskFile };
}

/** The fault that explains a side's QEMU going away, if one fired against it. */
function faultCause(run: BootRun, side: Side): string | undefined {
  const hit = run.faults.records.find((r) => r.fired && r.spec.kind === (side === 'source' ? 'kill-src' : 'kill-dst'));
  return hit ? `the ${hit.fault} fault` : undefined;
}
