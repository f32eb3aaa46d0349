// The migration engine: runs one scenario on a lab and returns its report, in named phases:
// claim a guest slot, decide the accelerator, boot the source in `src` and the destination
// (`-incoming`) in `dst`, prepare (capabilities, parameters, workload, probe), migrate (sample,
// inject faults, cancel a migration that stalls or does not converge), conclude (QEMU's final
// figures, then the guest on the destination or, if it never switched over, on the source), and
// clean up, recording what each side looked like and anything left behind. Watchers (watch.ts)
// end a run at once when something outside the migration breaks it; Ctrl-C ends it as
// `interrupted` with what had been measured. Everything it starts it also stops.
import { readFile } from 'node:fs/promises';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { describeError, MiglabError } from '../errors.js';
import { injectFault } from '../fault/inject.js';
import { FaultRunner } from '../fault/runner.js';
import { AgentClient } from '../guest/agent-client.js';
import { startProbe } from '../guest/probe.js';
import { ensureProbeTool } from '../guest/probe-tool.js';
import { HmpClient } from '../hmp/client.js';
import type { ImageInfo } from '../image/build.js';
import type { Lab } from '../lab/index.js';
import { decideAccel } from '../machine/accel.js';
import type { ExplainedCommand } from '../util/explained-command.js';
import { processCpuMs } from '../measure/host-sampler.js';
import type { MachineSpec } from '../machine/spec.js';
import type { Vm } from '../machine/vm.js';
import type { MigrationInfo } from '../migration/info.js';
import { eventTimeMs } from '../qmp/types.js';
import { sleep, withDeadline } from '../util/deadline.js';
import { makePrivateDir } from '../util/private.js';
import { Teardown } from '../util/teardown.js';
import type { Progress } from '../progress/progress.js';
import { formatWorkload } from '../workload/spec.js';
import { startWorkload, stopWorkload, workloadStatus } from '../workload/run.js';
import { boot, claimSlot } from './boot.js';
import { conclude, leftovers, observeAfter } from './conclude.js';
import { driveMigration, type DriveResult } from './drive.js';
import { headlineFigures, lastActiveSample } from './figures.js';
import { RunGuard, trippedError } from './guard.js';
import { HmpMigrationDriver, QmpMigrationDriver, tlsParameters, type MigrationDriver } from './monitor.js';
import { derivePasses, RUN_SCHEMA, type HostFacts, type RunOutputs, type RunReport } from './report.js';
import { CALL, failRun, mark, switchedOver, type Run } from './run-state.js';
import { scenarioName, type Scenario } from './scenario.js';
import { resultsWriteError } from './watch.js';

/**
 * Points where a caller can run its own measurements around a migration (iperf through the
 * guest's NIC, perf on the source QEMU...). A hook that throws fails the run like any step.
 */
export interface MigrationHooks {
  /** Both QEMUs are up and the guest's agent is ready on the source (at `guestIp`, its slot's address). */
  afterBoot?(p: { src: Vm; dst: Vm; machine: MachineSpec; lab: Lab; guestIp: string }): Promise<void>;
  /** The migration has ended (any final status), before the destination is checked. */
  afterMigrate?(final: MigrationInfo): Promise<void>;
  /** A person sends the migrate command, not miglab (`miglab guests up`). */
  byHand?: ByHand;
  /**
   * The run has concluded (any verdict) and nothing is stopped yet. `report()` is the record so
   * far (without what cleaning up finds: each side afterwards, qemu-img check, leftovers); a hook
   * may write it and hold the guests. The run then cleans up and returns its final report.
   */
  afterConclude?(p: { report: () => Promise<RunReport>; runDir: string; signal: AbortSignal }): Promise<void>;
}

/**
 * The migration is started by a person at the source's monitor; the engine does everything else
 * as for any run (boot, capabilities, probe, sampling, deadlines, checks, record).
 */
export interface ByHand {
  /** The longest the person may take to start the migration (the client probe must outlast it). */
  readonly waitMs: number;
  /**
   * Everything is ready: tell the person, and resolve once their migration has begun, with what
   * the report should say was sent. `began` takes QEMU's time of the start (epoch ms) as soon as
   * it is known, so that the events after it are timed from it.
   */
  awaitMigrate(p: { src: Vm; dst: Vm; uri: string; signal: AbortSignal; began: (atMs: number) => void }): Promise<string>;
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
    const hook = ctx.hooks?.afterConclude;
    if (hook) await hook({ report: async () => buildReport(run, await hostFacts()), runDir: ctx.runDir, signal: guard.signal });
  } catch (err) {
    await fail(run, err);
  } finally {
    if (guard.migrateSentAt) {
      // A run a watcher (or the user) ended mid-migration keeps what its samples said.
      run.phases.migrationMs ??= Date.now() - guard.migrateSentAt;
      if (!switchedOver(run)) run.out.lastActive ??= lastActiveSample(run.timeline);
    }
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
  // watcher that names it, registered on the same promise earlier, so run before this wait ends)
  // follows within moments, and is the reason to give.
  if (!guard.tripped && err instanceof MiglabError && err.code === 'QMP_DISCONNECTED') {
    const exits = [run.src, run.dst].filter((vm): vm is Vm => vm !== undefined).map((vm) => vm.process.exited);
    await withDeadline('a QEMU to exit', Promise.race(exits), { timeoutMs: 2000 }).catch(() => undefined);
  }
  // `lab down --force` marks the lab going down before it stops the run's QEMUs; the lab watcher
  // polls, so the broken monitor may surface first. The lab going is then the reason to give.
  if (!guard.tripped && !guard.interrupted) {
    const gone = labGone(run);
    if (gone) guard.trip('lab', trippedError('lab', `${gone} during the run`));
  }
  if (guard.interrupted) {
    run.verdict = 'interrupted';
    run.out.interruptedBy = guard.interruptedBy;
    failRun(run, 'ABORTED', `interrupted by ${guard.interruptedBy} during ${run.phase}`);
    return;
  }
  run.verdict = 'failed';
  // A watcher's alarm is the cause; the error that surfaced is only how the run noticed.
  if (guard.tripped) failRun(run, guard.tripped.error.code, guard.tripped.error.message, guard.tripped.source);
  else failRun(run, err instanceof MiglabError ? err.code : 'INTERNAL', describeError(err));
  if (!guard.tripped) {
    // Name what the lab looked like when a step hung: a frozen NFS server explains a silent QEMU.
    const nfs = run.lab.nfsServerState();
    if (nfs.state !== 'running' && nfs.state !== 'none') run.failure += `; the lab's NFS server (pid ${nfs.pid}) is ${nfs.state === 'stopped' ? 'stopped (SIGSTOP)' : 'gone'}`;
  }
}

function labGone(run: Run): string | undefined {
  try {
    return run.lab.stillUp();
  } catch {
    return undefined;
  }
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
      if (e.event === 'MIGRATION') {
        const status = String((e.data as { status?: unknown }).status);
        if (status === 'completed') run.sourceCompletedAtMs ??= tMs;
        run.faults.observe({ tMs, status });
      }
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
    td.defer('stop the guest workload', async () => {
      // Nobody left to ask (the guest's QEMU or agent is gone, or the lab): asking would only time out.
      if (guestAgentGone(run)) return;
      await stopWorkload(agent, scenario.workload);
    });
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
      // A person may take a while to type the migrate command.
      maxDurationMs: scenario.timeoutMs + 120000 + (ctx.hooks?.byHand?.waitMs ?? 0),
      toolPath,
      logFile,
      onLogError: (err) => onLogError(logFile, err),
    });
    run.probe = handle;
    td.defer(`stop the downtime probe (pid ${handle.pid})`, () => handle.stop().then(() => undefined));
    run.progress('probe', `UDP probe every ${scenario.probeIntervalUs / 1000} ms from ${lab.hosts.client.netns}`);
  }
}

/** The guest's agent cannot answer any more: its QEMU, its kernel, itself or the lab is gone. */
function guestAgentGone(run: Run): boolean {
  const holder = switchedOver(run) ? run.dst : run.src;
  return !holder || holder.process.hasExited || run.out.guestTrouble !== undefined || run.lab.stillUp() !== undefined;
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
  run.progress('migrate', run.ctx.hooks?.byHand ? `waiting for a migration to ${run.uri} started by hand` : `${scenario.monitor.toUpperCase()}: migrating to ${run.uri}`);
  const cpuNow = () => Promise.all([run.src!, run.dst!].map((vm) => processCpuMs(vm.process.pid)));
  let cpuBefore = await cpuNow();
  const byHand = run.ctx.hooks?.byHand;
  if (byHand) {
    const began = (atMs: number) => (guard.migrateSentAt ||= atMs);
    run.migrateCommand = await byHand.awaitMigrate({ src: run.src!, dst: run.dst!, uri: run.uri, signal: guard.signal, began });
    began(Date.now());
    // Read as the migration begins, not while the guests waited for the person.
    cpuBefore = await cpuNow();
    // The person may have changed parameters or capabilities at the monitor before migrating.
    run.parametersInForce = await run.src!.qmp.queryMigrateParameters({ ...CALL, signal: guard.signal });
    run.capabilitiesInForce = await run.src!.qmp.queryMigrateCapabilities({ ...CALL, signal: guard.signal });
  } else {
    guard.migrateSentAt = Date.now();
    run.migrateCommand = await withDeadline('the migrate command', driver.start(run.uri), { timeoutMs: CALL.timeoutMs, signal: guard.signal });
  }
  run.monitorCommands = driver.sent;
  run.faults.arm(guard.migrateSentAt);
  const drive = await driveMigration({
    driver,
    scenario,
    guard,
    faults: run.faults,
    timeline: run.timeline,
    progress: run.progress,
    sentAt: guard.migrateSentAt,
    completedByEvent: () => run.sourceCompletedAtMs !== undefined,
  });
  run.final = drive.final;
  // What the migration cost each QEMU in CPU (TLS, compression and multifd show here).
  const cpuAfter = await cpuNow();
  const used = (i: number) => (cpuBefore[i] !== undefined && cpuAfter[i] !== undefined ? cpuAfter[i]! - cpuBefore[i]! : undefined);
  run.out.qemuCpuMs = { source: used(0), destination: used(1) };
  guard.note('migration', `QEMU reports ${drive.final.status}${drive.final.errorDesc ? `: ${drive.final.errorDesc}` : ''}`);
  await run.ctx.hooks?.afterMigrate?.(drive.final);
  return drive;
}

function buildReport(run: Run, host: HostFacts): RunReport {
  const { ctx, scenario, out } = run;
  let { verdict, failure, failedIn } = run;
  const imgCheck = out.qemuImgCheck;
  if (imgCheck && !imgCheck.ok && !failure) {
    failure = `qemu-img check found the shared disk inconsistent after the run: ${imgCheck.meaning}`;
    failedIn = { phase: 'cleanup', code: 'DISK_CHECK' };
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
    failedIn: failure ? failedIn : undefined,
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
