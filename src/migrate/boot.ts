// The run's first phases: a guest slot of the lab (address, MAC, tap, port) and, once the
// accelerator is decided, the boot: the data disk on NFS, both QEMUs with the watchers that end
// the run when one of them, its guest or the lab goes wrong, and the guest's first heartbeat.
import { rm } from 'node:fs/promises';
import { createDataDisk } from '../image/build.js';
import { startLabGuest } from '../machine/lab-guest.js';
import { parseMachineSpec } from '../machine/spec.js';
import { checkPortFree } from '../preflight.js';
import { qemuImgCheck } from '../workload/run.js';
import { mark, switchedOver, type Run } from './run-state.js';
import { resultsWriteError, watchConsole, watchLab, watchQemuExit, type Side } from './watch.js';

const BOOT_TIMEOUT_MS = 60000;

/** Take a guest slot of the lab (IP, MAC, tap, port offset) so concurrent runs never collide. */
export async function claimSlot(run: Run): Promise<void> {
  const preferred = run.ctx.guestIndex ?? 0;
  const lease = await run.ctx.lab.acquireSlot({ preferred, runId: run.ctx.runId, signal: run.guard.signal });
  run.slot = lease;
  run.td.defer(`release guest slot g${lease.index}`, () => lease.release());
  run.lab = lease.lab;
  run.out.slot = lease.index;
  if (lease.reclaimed.length > 0) {
    run.out.reclaimed = lease.reclaimed;
    run.progress('slot', `reclaimed ${lease.reclaimed.join('; ')}`);
  }
  const shift = lease.index - preferred;
  const port = run.scenario.port + shift;
  run.hmpTelnetPort = run.scenario.hmpTelnetPort === undefined ? undefined : run.scenario.hmpTelnetPort + shift;
  if (shift !== 0) run.progress('slot', `guest slot g${preferred} is taken by another run on this lab: using g${lease.index} (port ${port})`);
  run.uri = `tcp:${run.lab.hosts.dst.ip}:${port}`;
  await checkPortFree(run.lab.hosts.dst.host, port, 'migration');
  if (run.hmpTelnetPort !== undefined) await checkPortFree(run.lab.hosts.src.host, run.hmpTelnetPort, 'hmp');
  const { scenario, lab } = run;
  const idx = lease.index;
  run.machine = parseMachineSpec({
    name: `g${idx}`,
    accel: scenario.guest.accel,
    cpuModel: scenario.guest.cpuModel,
    memoryMiB: scenario.guest.memoryMiB,
    vcpus: scenario.guest.vcpus,
    nicModel: scenario.guest.nicModel,
    diskInterface: scenario.guest.diskInterface,
    mac: lab.guestMac(idx),
    ip: `${lab.guestIp(idx)}/${lab.prefixLength}`,
    // The net workload needs the guest's iperf3 server.
    iperfServer: scenario.guest.iperfServer || scenario.workload.kind === 'net',
  });
}

/** The data disk on NFS, both QEMUs with their watchers, and the guest's first heartbeat. */
export async function boot(run: Run): Promise<void> {
  try {
    await bootGuest(run);
  } finally {
    // The boot's live figure goes when it ends, however it ended.
    run.progress.live?.({ topic: 'run' });
  }
}

/** Show a boot stage live: how long it has taken against its own deadline. */
function stage(run: Run, what: string): void {
  const startedAt = Date.now();
  run.progress.live?.({ topic: 'run', status: { kind: 'boot', stage: what, startedAt, deadlineAt: startedAt + BOOT_TIMEOUT_MS } });
}

async function bootGuest(run: Run): Promise<void> {
  const { ctx, scenario, guard, td, lab } = run;
  const machine = run.machine!;
  const idx = run.slot!.index;
  const name = machine.name;

  // The data disk lives in the NFS export; both QEMUs open it by nfs:// URL.
  const diskFile = `${ctx.runId}-${name}.qcow2`;
  run.diskFile = diskFile;
  await createDataDisk(lab.hosts.src.host, lab.nfs.localPath(diskFile), scenario.guest.diskSizeMiB, { signal: guard.signal });
  td.defer(`remove data disk ${diskFile}`, () => rm(lab.nfs.localPath(diskFile), { force: true }));
  // Runs after both QEMUs are stopped (teardown is last-in, first-out): the shared qcow2 must
  // be consistent once nobody has it open.
  td.defer(`qemu-img check ${diskFile}`, async () => {
    const check = await qemuImgCheck(lab.hosts.src.host, lab.nfs.localPath(diskFile));
    run.out.qemuImgCheck = { ok: check.ok, exitCode: check.exitCode, meaning: check.meaning };
  });
  const watch = watchLab(lab, guard);
  td.defer('stop watching the lab', () => watch.stop());

  run.progress('boot', `source and destination QEMU (${machine.memoryMiB} MiB, ${machine.nicModel}, ${machine.diskInterface}, ${run.accel!.used}, slot g${idx})`);
  const t = Date.now();
  stage(run, 'starting both QEMUs');
  const tlsDir = scenario.tls ? await lab.tlsCredentials({ signal: guard.signal }) : undefined;
  const onLogError = resultsWriteError(guard);
  const launch = (side: Side) =>
    startLabGuest({
      lab,
      side: side === 'source' ? 'src' : 'dst',
      spec: machine,
      accel: run.accel!.used,
      media: { kernelPath: ctx.image.kernelPath, initrdPath: ctx.image.initrdPath, diskUrl: lab.nfs.url(diskFile) },
      runDir: ctx.runDir,
      teardown: td,
      role: side,
      incomingUri: side === 'destination' ? run.uri : undefined,
      hmpTelnetPort: side === 'source' ? run.hmpTelnetPort : undefined,
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
  const [src, dst] = await Promise.all([launch('source'), launch('destination')]);
  run.src = src;
  run.dst = dst;
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
  if (run.hmpTelnetPort !== undefined) run.progress('monitor', `source's HMP: ip netns exec ${lab.hosts.src.netns} telnet 127.0.0.1 ${run.hmpTelnetPort}   (then: info migrate)`);
  stage(run, "the guest's kernel and agent");
  const ready = await src.console.waitReady({ timeoutMs: BOOT_TIMEOUT_MS, signal: guard.signal });
  stage(run, "the guest's first heartbeat");
  await src.console.waitBeat((hb) => hb.bootId === ready.bootId, { timeoutMs: BOOT_TIMEOUT_MS, signal: guard.signal });
  mark(run, 'bootToHeartbeatMs', t);
  run.progress.live?.({ topic: 'run' });
  run.progress('boot', `guest up at ${ready.ip} after ${run.phases.bootToHeartbeatMs} ms`);
}

/** The fault that explains a side's QEMU going away, if one fired against it. */
function faultCause(run: Run, side: Side): string | undefined {
  const hit = run.faults.records.find((r) => r.fired && r.spec.kind === (side === 'source' ? 'kill-src' : 'kill-dst'));
  return hit ? `the ${hit.fault} fault` : undefined;
}
