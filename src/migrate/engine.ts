// The migration engine: runs one scenario on a lab and returns its report, in named phases:
// claim a guest slot, decide the accelerator, boot the source in `src` and the destination
// (`-incoming`) in `dst`, prepare (capabilities, parameters, workload, probe), migrate (sample,
// inject faults, cancel a migration that stalls or does not converge), conclude (QEMU's final
// figures, then the guest on the destination or, if it never switched over, on the source), and
// clean up, recording what each side looked like and anything left behind. Watchers (watch.ts)
// end a run at once when something outside the migration breaks it; Ctrl-C ends it as
// `interrupted` with what had been measured. Everything it starts it also stops.
import { readFile, rm, stat } from 'node:fs/promises';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { describeError, MiglabError } from '../errors.js';
import { injectFault } from '../fault/inject.js';
import { FaultRunner } from '../fault/runner.js';
import { AgentClient } from '../guest/agent-client.js';
import { startProbe, type ProbeHandle } from '../guest/probe.js';
import { ensureProbeTool } from '../guest/probe-tool.js';
import { HmpClient } from '../hmp/client.js';
import { createDataDisk, type ImageInfo } from '../image/build.js';
import type { Lab, SlotLease } from '../lab/index.js';
import { decideAccel, type AccelDecision } from '../machine/accel.js';
import type { ExplainedCommand } from '../machine/argv.js';
import { heartbeatContinuity } from '../machine/heartbeat.js';
import { processCpuMs } from '../measure/host-sampler.js';
import { startLabGuest } from '../machine/lab-guest.js';
import { parseMachineSpec, type MachineSpec } from '../machine/spec.js';
import type { Vm } from '../machine/vm.js';
import type { MigrationInfo } from '../migration/info.js';
import { checkPortFree } from '../preflight.js';
import { makePrivateDir } from '../util/private.js';
import { eventTimeMs } from '../qmp/types.js';
import { pollUntil, sleep, withDeadline } from '../util/deadline.js';
import { Teardown } from '../util/teardown.js';
import { formatWorkload } from '../workload/spec.js';
import { qemuImgCheck, startWorkload, stopWorkload, verifyIntegrity, workloadStatus } from '../workload/run.js';
import { driveMigration, type DriveResult } from './drive.js';
import { headlineFigures, lastActiveSample, settleCompleted, switchoverMs } from './figures.js';
import { RunGuard } from './guard.js';
import { HmpMigrationDriver, QmpMigrationDriver, tlsParameters, type MigrationDriver } from './monitor.js';
import { derivePasses, RUN_SCHEMA, type EventRecord, type HostFacts, type RunOutputs, type RunReport, type Sample, type SideAfter, type Verdict } from './report.js';
import { scenarioName, type Scenario } from './scenario.js';
import { resultsWriteError, watchConsole, watchLab, watchQemuExit, type Side } from './watch.js';

export type Progress = (phase: string, detail?: string) => void;

/**
 * Points where a caller can run its own measurements around a migration (iperf through the
 * guest's NIC, perf on the source QEMU...). A hook that throws fails the run like any step.
 */
export interface MigrationHooks {
  /** Both QEMUs are up and the guest's agent is ready on the source (at `guestIp`, its slot's address). */
  afterBoot?(p: { src: Vm; dst: Vm; machine: MachineSpec; lab: Lab; guestIp: string }): Promise<void>;
  /** The migration has ended (any final status), before the destination is checked. */
  afterMigrate?(final: MigrationInfo): Promise<void>;
}

export interface EngineContext {
  readonly lab: Lab;
  readonly image: ImageInfo;
  /** Run files go to `<runDir>` (created). */
  readonly runDir: string;
  readonly runId: string;
  /** Where the KVM probe verdict is cached. */
  readonly cacheDir: string;
  readonly signal?: AbortSignal;
  readonly progress?: Progress;
  /** The guest slot this run prefers (its IP/MAC/tap/port); a busy one moves it to a free slot. */
  readonly guestIndex?: number;
  readonly hooks?: MigrationHooks;
}

const BOOT_TIMEOUT_MS = 60000;
/** Monitor calls outside the migration loop. */
const CALL = { timeoutMs: 10000 };
/** How long a completed record may lack its figures before miglab falls back to events. */
const FIGURES_SETTLE_MS = 2000;
/** Looking at a side after the run: a QEMU that does not answer in this long is reported as such. */
const AFTER_CALL_MS = 3000;

export async function hostFacts(): Promise<HostFacts> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  return {
    kernel: release(),
    cpuModel: /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown',
    cpus: cpus().length,
    memTotalMiB: Math.round(totalmem() / 1024 / 1024),
    nodeVersion: process.version,
  };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Everything a run accumulates; the phases fill it in and buildReport reads it. */
interface Run {
  readonly ctx: EngineContext;
  readonly scenario: Scenario;
  readonly guard: RunGuard;
  readonly td: Teardown;
  readonly progress: Progress;
  readonly started: number;
  readonly out: Mutable<RunOutputs>;
  readonly phases: Record<string, number>;
  readonly timeline: Sample[];
  readonly events: EventRecord[];
  readonly faults: FaultRunner;
  /** The lab as this run sees it: processes it starts are recorded with its run id and slot. */
  lab: Lab;
  phase: string;
  slot?: SlotLease;
  port: number;
  hmpTelnetPort?: number;
  uri: string;
  machine?: MachineSpec;
  accel?: AccelDecision;
  diskFile?: string;
  src?: Vm;
  dst?: Vm;
  agent?: AgentClient;
  driver?: MigrationDriver;
  probe?: ProbeHandle;
  qemu: { version: string; package?: string };
  parametersInForce: Record<string, unknown>;
  capabilitiesInForce: Record<string, boolean>;
  migrateCommand: string;
  monitorCommands: string[];
  final?: MigrationInfo;
  verdict: Verdict;
  failure?: string;
}

function mark(run: Run, name: string, since: number): void {
  run.phases[name] = Date.now() - since;
}

export async function runMigration(ctx: EngineContext, scenario: Scenario): Promise<RunReport> {
  await makePrivateDir(ctx.runDir);
  const guard = new RunGuard(ctx.signal);
  const td = new Teardown();
  const run: Run = {
    ctx,
    scenario,
    guard,
    td,
    progress: ctx.progress ?? (() => undefined),
    started: Date.now(),
    out: {},
    phases: {},
    timeline: [],
    events: [],
    faults: new FaultRunner(scenario.faults, {
      inject: (f) => injectFault(f, { lab: run.lab, src: run.src!, dst: run.dst!, agent: run.agent! }),
      teardown: td,
      onFired: (r) => {
        guard.note('fault', `${r.fault}: ${r.detail ?? ''} (${r.trigger ?? ''})`);
        run.progress('fault', `${r.fault} fired ${r.trigger ?? ''}: ${r.detail ?? ''}`);
      },
      onError: (r, err) => guard.trip('fault', new MiglabError('MIGRATION_FAILED', r.error ?? `fault ${r.fault}: ${describeError(err)}`, { cause: err })),
    }),
    lab: ctx.lab,
    phase: 'setup',
    port: scenario.port,
    uri: '',
    qemu: { version: 'unknown' },
    parametersInForce: {},
    capabilitiesInForce: {},
    migrateCommand: '',
    monitorCommands: [],
    verdict: 'failed',
  };

  // What must hold before anything runs (a guest slot and its port, the accelerator): a problem
  // here is the user's to fix and is thrown, as bad input is, once the slot is given back.
  try {
    await claimSlot(run);
    const t = Date.now();
    run.progress('accel', `requested ${scenario.guest.accel}`);
    const media = { kernelPath: ctx.image.kernelPath, initrdPath: ctx.image.initrdPath };
    run.accel = await decideAccel(scenario.guest.accel, { host: run.lab.hosts.src.host, media, imageHash: ctx.image.hash, cacheDir: ctx.cacheDir, signal: guard.signal });
    mark(run, 'accelDecisionMs', t);
    run.progress('accel', `${run.accel.used}: ${run.accel.reason}`);
  } catch (err) {
    await td.run();
    throw err;
  }

  try {
    run.phase = 'boot';
    let t: number;
    await boot(run);
    run.phase = 'prepare';
    await prepare(run);
    run.phase = 'migrate';
    t = Date.now();
    const drive = await migrate(run);
    mark(run, 'migrationMs', t);
    run.phase = 'conclude';
    t = Date.now();
    await conclude(run, drive);
    mark(run, 'verifyMs', t);
  } catch (err) {
    await fail(run, err);
  } finally {
    run.faults.finish(run.verdict === 'completed' ? 'the migration completed first' : `the run ended first (${run.phase})`);
    await run.faults.settle().catch(() => undefined);
    run.faults.dispose();
    if (run.src || run.dst) run.out.after = await observeAfter(run);
    const t = Date.now();
    run.phase = 'cleanup';
    run.progress('cleanup', 'stopping QEMU, removing taps and the data disk');
    const problems = await td.run();
    if (problems.length > 0) run.out.teardownProblems = problems;
    run.out.leftovers = await leftovers(run);
    mark(run, 'cleanupMs', t);
  }
  return buildReport(run, await hostFacts());
}

/** A run that threw: say why in the run's own words (interrupted, a watcher's alarm, the error). */
async function fail(run: Run, err: unknown): Promise<void> {
  const { guard } = run;
  // A monitor connection that broke is how a dying QEMU is often noticed first; its exit (and the
  // watcher that names it) follows within moments, and is the reason to give.
  if (!guard.tripped && err instanceof MiglabError && err.code === 'QMP_DISCONNECTED') {
    const exits = [run.src, run.dst].filter((vm): vm is Vm => vm !== undefined).map((vm) => vm.process.exited);
    await withDeadline('a QEMU to exit', Promise.race(exits), { timeoutMs: 2000 }).catch(() => undefined);
    await sleep(10);
  }
  if (guard.interrupted) {
    run.verdict = 'interrupted';
    run.out.interruptedBy = guard.interruptedBy;
    run.failure = `interrupted by ${guard.interruptedBy} during ${run.phase}`;
    return;
  }
  run.verdict = 'failed';
  // A watcher's alarm is the cause; the error that surfaced is only how the run noticed.
  run.failure = guard.tripped ? guard.tripped.error.message : describeError(err);
  if (!guard.tripped) {
    // Name what the lab looked like when a step hung: a frozen NFS server explains a silent QEMU.
    const nfs = run.lab.nfsServerState();
    if (nfs.state !== 'running' && nfs.state !== 'none') run.failure += `; the lab's NFS server (pid ${nfs.pid}) is ${nfs.state === 'stopped' ? 'stopped (SIGSTOP)' : 'gone'}`;
  }
}

/** Take a guest slot of the lab (IP, MAC, tap, port offset) so concurrent runs never collide. */
async function claimSlot(run: Run): Promise<void> {
  const preferred = run.ctx.guestIndex ?? 0;
  const lease = await run.ctx.lab.acquireSlot({ preferred, runId: run.ctx.runId, signal: run.guard.signal });
  run.slot = lease;
  run.td.defer(`release guest slot g${lease.index}`, () => lease.release());
  run.lab = lease.lab;
  run.out.slot = lease.index;
  const shift = lease.index - preferred;
  run.port = run.scenario.port + shift;
  run.hmpTelnetPort = run.scenario.hmpTelnetPort === undefined ? undefined : run.scenario.hmpTelnetPort + shift;
  if (shift !== 0) run.progress('slot', `guest slot g${preferred} is taken by another run on this lab: using g${lease.index} (port ${run.port})`);
  run.uri = `tcp:${run.lab.hosts.dst.ip}:${run.port}`;
  await checkPortFree(run.lab.hosts.dst.host, run.port, 'migration');
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
async function boot(run: Run): Promise<void> {
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
      tls: tlsDir ? { dir: tlsDir, endpoint: side === 'source' ? 'client' : 'server' } : undefined,
      timeoutMs: BOOT_TIMEOUT_MS,
      signal: guard.signal,
      onLogError,
      onRelaunch: (where) => {
        run.progress('boot', `${side} QEMU hung while starting and is launched again: ${where}`);
        run.out.relaunched = [...(run.out.relaunched ?? []), { side, where }];
      },
    });
  const [src, dst] = await Promise.all([launch('source'), launch('destination')]);
  run.src = src;
  run.dst = dst;
  for (const [side, vm] of [['source', src], ['destination', dst]] as const) {
    watchConsole(vm, side, guard, (t) => (run.out.guestTrouble = t));
    watchQemuExit(vm, side, guard, {
      // Only the side that holds the guest matters: the source until a switchover, the
      // destination after it. A destination that dies mid-migration is QEMU's to report (the
      // migration fails, and the guest is checked on the source).
      fatal: () => (side === 'source' ? run.final?.status !== 'completed' : run.phase !== 'migrate' && (run.final === undefined || run.final.status === 'completed')),
      cause: () => faultCause(run, side) ?? run.lab.stillUp(),
    });
  }
  mark(run, 'qemuStartMs', t);
  const ready = await src.console.waitReady({ timeoutMs: BOOT_TIMEOUT_MS, signal: guard.signal });
  await src.console.waitBeat((hb) => hb.bootId === ready.bootId, { timeoutMs: BOOT_TIMEOUT_MS, signal: guard.signal });
  mark(run, 'bootToHeartbeatMs', t);
  run.progress('boot', `guest up at ${ready.ip} after ${run.phases.bootToHeartbeatMs} ms`);
}

/** The fault that explains a side's QEMU going away, if one fired against it. */
function faultCause(run: Run, side: Side): string | undefined {
  const hit = run.faults.records.find((r) => r.fired && r.spec.kind === (side === 'source' ? 'kill-src' : 'kill-dst'));
  return hit ? `the ${hit.fault} fault` : undefined;
}

/** Monitors, capabilities and parameters, the hook, the guest's agent, workload and probe. */
async function prepare(run: Run): Promise<void> {
  const { ctx, scenario, guard, td, lab } = run;
  const src = run.src!;
  const dst = run.dst!;
  const v = await src.qmp.queryVersion({ ...CALL, signal: guard.signal });
  run.qemu = { version: `${v.major}.${v.minor}.${v.micro}`, package: v.package || undefined };

  // Record events on both sides, timed from the migrate command (QEMU stamps each event when it
  // happens; Node may read a burst of them later). The source's tell the faults where it is.
  for (const [side, vm] of [['source', src], ['destination', dst]] as const) {
    vm.qmp.onEvent((e) => {
      const tMs = guard.migrateSentAt ? eventTimeMs(e) - guard.migrateSentAt : 0;
      run.events.push({ tMs, side, event: e.event, data: e.data });
      if (side !== 'source') return;
      if (e.event === 'MIGRATION') run.faults.observe({ tMs, status: String((e.data as { status?: unknown }).status) });
      if (e.event === 'MIGRATION_PASS') run.faults.observe({ tMs, pass: Number((e.data as { pass?: unknown }).pass) });
    });
  }

  const driver: MigrationDriver = scenario.monitor === 'qmp' ? new QmpMigrationDriver(src.qmp) : new HmpMigrationDriver(await connectHmp(src, td, guard.signal));
  run.driver = driver;
  const dstDriver = new QmpMigrationDriver(dst.qmp);
  // `events` makes QEMU send MIGRATION and MIGRATION_PASS; capabilities such as multifd and
  // postcopy-ram must be set on both sides.
  const caps = { events: true, ...scenario.capabilities };
  await driver.setCapabilities(caps);
  await dstDriver.setCapabilities(caps);
  await driver.setParameters(scenario.parameters);
  if (scenario.parameters.multifdChannels !== undefined) await dstDriver.setParameters({ multifdChannels: scenario.parameters.multifdChannels });
  if (scenario.tls) {
    await driver.setTls(tlsParameters('source', lab.hosts.dst.ip));
    await dstDriver.setTls(tlsParameters('destination', lab.hosts.dst.ip));
  }
  run.monitorCommands = driver.sent;
  run.parametersInForce = await src.qmp.queryMigrateParameters({ ...CALL, signal: guard.signal });
  run.capabilitiesInForce = await src.qmp.queryMigrateCapabilities({ ...CALL, signal: guard.signal });

  await ctx.hooks?.afterBoot?.({ src, dst, machine: run.machine!, lab, guestIp: lab.guestIp(run.slot!.index) });
  const toolPath = await ensureProbeTool({ cacheDir: ctx.cacheDir, signal: guard.signal });
  const idx = run.slot!.index;
  const agent = new AgentClient({ host: lab.hosts.client.host, guestIp: lab.guestIp(idx), toolPath });
  run.agent = agent;
  const needsAgent = scenario.clientProbe || scenario.workload.kind !== 'idle' || scenario.faults.some((f) => f.kind === 'guest-oom');
  // The agent must answer before the probe starts, or its first silence is not the migration's.
  if (needsAgent) await agent.waitReachable({ timeoutMs: 30000, signal: guard.signal });
  const onLogError = resultsWriteError(guard);
  if (scenario.workload.kind !== 'idle') {
    run.progress('workload', `starting ${formatWorkload(scenario.workload)} in the guest`);
    const logFile = join(ctx.runDir, 'workload.log');
    await startWorkload(agent, scenario.workload, { signal: guard.signal, logFile, onLogError: (err) => onLogError(logFile, err) });
    td.defer('stop the guest workload', () => stopWorkload(agent, scenario.workload).then(() => undefined));
    // Let it reach its rate before the migration measures it.
    await sleep(1000, guard.signal);
    run.out.workloadBefore = await workloadStatus(agent, scenario.workload, { signal: guard.signal });
  }
  if (scenario.clientProbe) {
    const logFile = join(ctx.runDir, 'probe.csv');
    const handle = startProbe({
      host: lab.hosts.client.host,
      guestIp: lab.guestIp(idx),
      intervalUs: scenario.probeIntervalUs,
      maxDurationMs: scenario.timeoutMs + 120000,
      toolPath,
      logFile,
      onLogError: (err) => onLogError(logFile, err),
    });
    run.probe = handle;
    td.defer(`stop the downtime probe (pid ${handle.pid})`, () => handle.stop().then(() => undefined));
    run.progress('probe', `UDP probe every ${scenario.probeIntervalUs / 1000} ms from ${lab.hosts.client.netns}`);
  }
}

async function connectHmp(vm: Vm, td: Teardown, signal?: AbortSignal): Promise<HmpClient> {
  const hmp = await HmpClient.connectUnix(vm.plan.hmpSocket!, { timeoutMs: 10000, signal });
  td.defer(`close HMP of ${vm.label}`, () => hmp.close());
  return hmp;
}

/** Send the migrate command, arm the faults, and drive the migration to its end. */
async function migrate(run: Run): Promise<DriveResult> {
  const { scenario, guard } = run;
  const driver = run.driver!;
  run.progress('migrate', `${scenario.monitor.toUpperCase()}: migrating to ${run.uri}`);
  const cpuBefore = await Promise.all([run.src!, run.dst!].map((vm) => processCpuMs(vm.process.pid)));
  guard.migrateSentAt = Date.now();
  run.migrateCommand = await withDeadline('the migrate command', driver.start(run.uri), { timeoutMs: CALL.timeoutMs, signal: guard.signal });
  run.monitorCommands = driver.sent;
  run.faults.arm(guard.migrateSentAt);
  const drive = await driveMigration({ driver, scenario, guard, faults: run.faults, timeline: run.timeline, progress: run.progress, sentAt: guard.migrateSentAt });
  run.final = drive.final;
  // What the migration cost each QEMU in CPU (TLS, compression and multifd show here).
  const cpuAfter = await Promise.all([run.src!, run.dst!].map((vm) => processCpuMs(vm.process.pid)));
  const used = (i: number) => (cpuBefore[i] !== undefined && cpuAfter[i] !== undefined ? cpuAfter[i]! - cpuBefore[i]! : undefined);
  run.out.qemuCpuMs = { source: used(0), destination: used(1) };
  guard.note('migration', `QEMU reports ${drive.final.status}${drive.final.errorDesc ? `: ${drive.final.errorDesc}` : ''}`);
  await run.ctx.hooks?.afterMigrate?.(drive.final);
  return drive;
}

/** QEMU's final figures, then the guest: on the destination after a switchover, else on the source. */
async function conclude(run: Run, drive: DriveResult): Promise<void> {
  const { scenario, guard } = run;
  let final = drive.final;
  if (final.status === 'completed') {
    // The figures are read over QMP whatever the monitor (HMP prints them truncated).
    const qmp = new QmpMigrationDriver(run.src!.qmp);
    const settled = await settleCompleted(final, () => withDeadline('query-migrate', qmp.info(), { ...CALL, signal: guard.signal }), {
      timeoutMs: FIGURES_SETTLE_MS,
      signal: guard.signal,
    });
    final = settled.info;
    run.out.figureRequeries = settled.requeries;
    run.final = final;
    await verifyDestination(run);
    run.verdict = run.failure ? 'failed' : 'completed';
    return;
  }
  run.out.lastActive = lastActiveSample(run.timeline);
  if (drive.end === 'stall') {
    run.verdict = 'stalled';
    run.out.stall = drive.stall;
    run.failure = `stalled: no byte moved for ${drive.stall!.forMs} ms (since ${drive.stall!.sinceMs} ms after migrate, transferred stuck at ${drive.stall!.transferredBytes} bytes, status ${drive.stall!.status}); cancelled`;
  } else if (drive.end === 'deadline') {
    run.verdict = 'did-not-converge';
    const a = run.out.lastActive;
    run.failure = `did not converge within ${scenario.timeoutMs} ms (last active sample at ${a?.tMs ?? '?'} ms: remaining ${a?.remainingBytes ?? '?'} bytes, dirty rate ${a?.dirtyPagesRate ?? '?'} pages/s); cancelled`;
  } else {
    run.verdict = 'failed';
    const exits = guard.incidents.filter((i) => i.source === 'qemu-exit').map((i) => i.what);
    run.failure = `QEMU reports the migration ${final.status}${final.errorDesc ? `: ${final.errorDesc}` : ''}${exits.length ? `; ${exits.join('; ')}` : ''}`;
  }
  await verifySource(run);
}

/** After a switchover: the destination runs, the guest's heartbeat goes on, its workload is intact. */
async function verifyDestination(run: Run): Promise<void> {
  const { scenario, guard } = run;
  const src = run.src!;
  const dst = run.dst!;
  // The source reports completed once it has sent everything; the destination may still be
  // loading device state (status inmigrate). Wait for it to run, under a deadline.
  const dstStatus = await pollUntil(
    'waiting for the destination to resume the guest',
    async () => {
      const s = await dst.qmp.queryStatus({ ...CALL, signal: guard.signal });
      return s.status === 'inmigrate' ? undefined : s;
    },
    { timeoutMs: 30000, signal: guard.signal, intervalMs: 20 },
  );
  run.out.destinationStatus = dstStatus.status;
  run.out.sourceStatusAfter = (await src.qmp.queryStatus({ ...CALL, signal: guard.signal })).status;
  const lastSrc = src.console.last;
  try {
    await dst.console.waitBeat((hb) => !lastSrc || hb.seq > lastSrc.seq, { timeoutMs: 15000, signal: guard.signal });
  } catch (err) {
    if (guard.signal.aborted) throw err;
    throw new MiglabError('MIGRATION_FAILED', `after the switchover the guest did not carry on at the destination: ${describeError(err)}`, { cause: err });
  }
  // A few more beats so continuity is judged on a run of them, not on one line.
  await sleep(3 * run.machine!.heartbeatMs, guard.signal);
  const hb = heartbeatContinuity(src.console.beats, dst.console.beats);
  run.out.heartbeat = hb;
  run.out.eventDowntimeMs = switchoverMs(run.events);
  if (run.probe) {
    // Judge the silence of the switchover: from the source's STOP until a while after the
    // destination's RESUME (the switch must relearn where the guest's MAC is), not any other
    // hiccup of a busy host.
    const stop = run.events.find((e) => e.side === 'source' && e.event === 'STOP');
    const resume = run.events.find((e) => e.side === 'destination' && e.event === 'RESUME');
    const within = stop && resume ? { fromMs: guard.migrateSentAt + stop.tMs - 50, toMs: guard.migrateSentAt + resume.tMs + 2000 } : undefined;
    const probeRun = await run.probe.stop({ within, timeoutMs: 15000, signal: guard.signal });
    const { rows: _rows, meta: _meta, ...figures } = probeRun;
    run.out.clientProbe = figures;
    run.out.clientDowntimeMs = figures.longestGapMs ?? undefined;
  }
  if (scenario.workload.kind !== 'idle') {
    // The workload ran on across the switchover: its state moved with the guest's memory.
    run.out.workloadAfter = await stopWorkload(run.agent!, scenario.workload, { signal: guard.signal });
    const integrity = await verifyIntegrity(run.agent!, scenario.workload, { signal: guard.signal });
    run.out.integrity = integrity;
    run.out.integrityCheckedOn = 'destination';
    if (!integrity.ok) run.failure = `integrity check failed on the destination: ${integrity.detail}`;
  }
  // The first problem found is the reason given (an integrity failure is set above).
  if (!run.failure && dstStatus.status !== 'running') run.failure = `the destination is ${dstStatus.status}, not running, after the migration completed`;
  if (!run.failure && !hb.continuous) {
    run.failure = `the guest's heartbeat did not continue on the destination (source last seq ${hb.sourceLastSeq}, destination first seq ${hb.destinationFirstSeq}, same boot: ${hb.sameBoot})`;
  }
}

/**
 * No switchover happened (failed, cancelled, stalled): the guest must still be the source's,
 * running, with its heartbeat going on and its workload intact there.
 */
async function verifySource(run: Run): Promise<void> {
  const { scenario, guard } = run;
  const src = run.src!;
  const status = (await src.qmp.queryStatus({ ...CALL, signal: guard.signal })).status;
  run.out.sourceStatusAfter = status;
  const lastSeq = src.console.last?.seq ?? -1;
  const beat = await src.console.waitBeat((hb) => hb.seq > lastSeq, { timeoutMs: 10000, signal: guard.signal }).catch((err: unknown) => {
    if (guard.signal.aborted) throw err;
    return undefined;
  });
  const problems: string[] = [];
  if (status !== 'running') problems.push(`the source is ${status}, not running`);
  if (!beat) problems.push("the guest's heartbeat did not go on on the source");
  if (scenario.workload.kind !== 'idle' && beat && run.agent) {
    run.out.workloadAfter = await stopWorkload(run.agent, scenario.workload, { signal: guard.signal });
    const integrity = await verifyIntegrity(run.agent, scenario.workload, { signal: guard.signal });
    run.out.integrity = integrity;
    run.out.integrityCheckedOn = 'source';
    if (!integrity.ok) problems.push(`integrity check failed on the source: ${integrity.detail}`);
  }
  if (problems.length > 0) {
    run.verdict = 'failed';
    run.failure = `${run.failure ?? 'the migration did not complete'}; ${problems.join('; ')}`;
  } else {
    run.failure = `${run.failure ?? 'the migration did not complete'}; the source kept running (${status}) with its heartbeat going on`;
  }
}

/** Each side as the run left it, before anything is stopped. */
async function observeAfter(run: Run): Promise<{ source: SideAfter; destination: SideAfter }> {
  const completed = run.final?.status === 'completed';
  // A destination whose source died mid-migration ends by itself a moment later: give it the moment.
  if (run.src?.process.hasExited && run.dst && !completed && !run.guard.interrupted) {
    await withDeadline('the destination to stop', run.dst.process.exited, { timeoutMs: 5000, signal: run.ctx.signal }).catch(() => undefined);
  }
  const endedAt = Date.now();
  const side = async (vm: Vm | undefined, expectBeats: boolean): Promise<SideAfter> => {
    if (!vm) return { process: 'not-started' };
    if (vm.process.hasExited) {
      const exit = await vm.process.exited;
      return { process: 'exited', exit, ...(expectBeats ? { heartbeat: 'silent' as const } : {}) };
    }
    // Interrupted: the user wants out; what the processes are is enough.
    if (run.guard.interrupted) return { process: 'running' };
    const asked = await vm.qmp.queryStatus({ timeoutMs: AFTER_CALL_MS, signal: run.ctx.signal }).then(
      (s) => ({ status: s.status }),
      (err: unknown) => ({ unanswered: describeError(err) }),
    );
    if (!expectBeats) return { process: 'running', ...asked, heartbeat: 'not-expected' };
    const last = vm.console.last;
    const fresh = last !== undefined && last.hostMs >= endedAt - 2 * (run.machine?.heartbeatMs ?? 100) - 1000;
    return { process: 'running', ...asked, heartbeat: fresh ? 'continuing' : 'silent' };
  };
  const source = await side(run.src, !completed);
  if (!run.final && run.src && !run.src.process.hasExited && run.guard.migrateSentAt && !run.guard.interrupted) {
    const m = await run.src.qmp.migrationInfo({ timeoutMs: AFTER_CALL_MS, signal: run.ctx.signal }).then(
      (i) => i.status,
      () => undefined, // not answering: already said by `unanswered`
    );
    return { source: m ? { ...source, migrationStatus: m } : source, destination: await side(run.dst, completed) };
  }
  return { source, destination: await side(run.dst, completed) };
}

/** What this run started that is still there after cleaning up (the aim is nothing). */
async function leftovers(run: Run): Promise<string[]> {
  const found: string[] = [];
  for (const vm of [run.src, run.dst]) if (vm && !vm.process.hasExited) found.push(`QEMU ${vm.label} (pid ${vm.process.pid}) still running`);
  if (run.probe && !run.probe.process.hasExited) found.push(`probe (pid ${run.probe.pid}) still running`);
  for (const p of run.lab.liveProcesses({ runId: run.ctx.runId })) found.push(`${p.what} (pid ${p.pid}) still running`);
  if (run.slot) {
    for (const role of ['src', 'dst'] as const) if (await run.lab.tapExists(role, `tap-g${run.slot.index}`)) found.push(`tap-g${run.slot.index} still on ${role}`);
  }
  if (run.diskFile) {
    const path = run.lab.nfs.localPath(run.diskFile);
    if (await stat(path).then(() => true, () => false)) found.push(`data disk ${path} still there`);
  }
  return [...new Set(found)];
}

function buildReport(run: Run, host: HostFacts): RunReport {
  const { ctx, scenario, out } = run;
  let { verdict, failure } = run;
  const imgCheck = out.qemuImgCheck;
  if (imgCheck && !imgCheck.ok && !failure) {
    failure = `qemu-img check found the shared disk inconsistent after the run: ${imgCheck.meaning}`;
    verdict = verdict === 'interrupted' ? verdict : 'failed';
  }
  const final = run.final;
  const figures = headlineFigures(final, run.events, out.figureRequeries ?? 0);
  const ram = final?.ram;
  const outputs: RunOutputs = {
    ...out,
    final,
    status: final?.status,
    totalTimeMs: figures.totalTimeMs,
    downtimeMs: figures.downtimeMs,
    setupTimeMs: figures.setupTimeMs,
    figureSources: figures.sources,
    transferredBytes: ram?.transferredBytes,
    totalBytes: ram?.totalBytes,
    remainingBytes: ram?.remainingBytes,
    throughputMbps: ram?.mbps,
    averageThroughputMiBps: ram?.transferredBytes !== undefined && figures.totalTimeMs ? ram.transferredBytes / 1024 / 1024 / (figures.totalTimeMs / 1000) : undefined,
    dirtySyncCount: ram?.dirtySyncCount,
    duplicatePages: ram?.duplicatePages,
    migrateSentAtMs: run.guard.migrateSentAt || undefined,
    normalPages: ram?.normalPages,
    ...(run.faults.any ? { faults: run.faults.records } : {}),
    incidents: run.guard.incidents,
  };
  const empty: ExplainedCommand = { argv: [], explained: [] };
  return {
    schema: RUN_SCHEMA,
    runId: ctx.runId,
    name: scenarioName(scenario),
    startedAt: new Date(run.started).toISOString(),
    finishedAt: new Date().toISOString(),
    wallMs: Date.now() - run.started,
    ok: verdict === 'completed' && !failure,
    verdict,
    failure,
    inputs: {
      scenario,
      machine: run.machine!,
      lab: run.lab.spec,
      shaping: run.lab.shaping,
      image: { hash: ctx.image.hash, kernelVersion: ctx.image.kernelVersion, inputs: ctx.image.inputs },
      qemu: run.qemu,
      host,
      accel: run.accel!,
      parametersInForce: run.parametersInForce,
      capabilitiesInForce: run.capabilitiesInForce,
      commands: { source: run.src?.command ?? empty, destination: run.dst?.command ?? empty },
      migrateCommand: run.migrateCommand,
      monitorCommands: run.monitorCommands,
      migrationUri: run.uri,
    },
    outputs,
    phases: run.phases,
    timeline: run.timeline,
    passes: derivePasses(run.timeline, run.events),
    events: run.events,
    files: {},
  };
}
