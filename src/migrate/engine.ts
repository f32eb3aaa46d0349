// The migration engine: runs one scenario on a lab and returns its report. It boots the source
// in the `src` host and the destination (`-incoming`) in `dst`, waits for the guest's heartbeat,
// sets parameters and capabilities, starts the migration through the chosen monitor, samples it
// until it ends (or cancels it at the deadline: the source keeps running), then checks that the
// guest carries on at the destination with no reset. Everything it starts it also stops.
import { mkdir, readFile, rm } from 'node:fs/promises';
import { cpus, release, totalmem } from 'node:os';
import { describeError, MiglabError } from '../errors.js';
import { HmpClient } from '../hmp/client.js';
import { createDataDisk, type ImageInfo } from '../image/build.js';
import type { Lab } from '../lab/lab.js';
import { decideAccel, type AccelDecision } from '../machine/accel.js';
import { heartbeatContinuity } from '../machine/heartbeat.js';
import { parseMachineSpec, type MachineSpec } from '../machine/spec.js';
import { startLabGuest } from '../machine/lab-guest.js';
import { eventTimeMs } from '../qmp/types.js';
import type { Vm } from '../machine/vm.js';
import { isFinalMigrationStatus, type MigrationInfo } from '../migration/info.js';
import { pollUntil, sleep, withDeadline } from '../util/deadline.js';
import { AgentClient } from '../guest/agent-client.js';
import { startProbe, type ProbeHandle } from '../guest/probe.js';
import { ensureProbeTool } from '../guest/probe-tool.js';
import { join } from 'node:path';
import { formatWorkload } from '../workload/spec.js';
import { qemuImgCheck, startWorkload, stopWorkload, verifyIntegrity, workloadStatus } from '../workload/run.js';
import { Teardown } from '../util/teardown.js';
import { HmpMigrationDriver, QmpMigrationDriver, type MigrationDriver } from './monitor.js';
import { derivePasses, RUN_SCHEMA, sampleOf, type EventRecord, type HostFacts, type RunReport, type Sample, type Verdict } from './report.js';
import { scenarioName, type Scenario } from './scenario.js';

export type Progress = (phase: string, detail?: string) => void;

/**
 * Points where a caller can run its own measurements around a migration (iperf through the
 * guest's NIC, perf on the source QEMU...). A hook that throws fails the run like any step.
 */
export interface MigrationHooks {
  /** Both QEMUs are up and the guest's agent is ready on the source. */
  afterBoot?(p: { src: Vm; dst: Vm; machine: MachineSpec; lab: Lab }): Promise<void>;
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
  /** Which guest slot of the lab (IP/MAC/tap); lets several runs share a lab. */
  readonly guestIndex?: number;
  readonly hooks?: MigrationHooks;
}

const BOOT_TIMEOUT_MS = 60000;
const CALL = { timeoutMs: 10000 };

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
  const started = Date.now();
  const progress = ctx.progress ?? (() => undefined);
  const signal = ctx.signal;
  const { lab } = ctx;
  const idx = ctx.guestIndex ?? 0;
  const td = new Teardown();
  const phases: Record<string, number> = {};
  const mark = (name: string, since: number) => (phases[name] = Date.now() - since);
  const timeline: Sample[] = [];
  const events: EventRecord[] = [];
  let migrateSentAt = 0;
  let probe: ProbeHandle | undefined;
  let failure: string | undefined;
  let verdict: Verdict = 'failed';
  let final: MigrationInfo | undefined;
  const outputs: Record<string, unknown> = {};

  await mkdir(ctx.runDir, { recursive: true });
  const name = `g${idx}`;
  const machine: MachineSpec = parseMachineSpec({
    name,
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
  const media = { kernelPath: ctx.image.kernelPath, initrdPath: ctx.image.initrdPath };

  let accel: AccelDecision | undefined;
  let src: Vm | undefined;
  let dst: Vm | undefined;
  let migrateCommand = '';
  let monitorCommands: string[] = [];
  const uri = `tcp:${lab.hosts.dst.ip}:${scenario.port}`;
  let qemuVersion = { version: 'unknown', package: undefined as string | undefined };
  let parametersInForce: Record<string, unknown> = {};
  let capabilitiesInForce: Record<string, boolean> = {};

  try {
    progress('accel', `requested ${scenario.guest.accel}`);
    let t = Date.now();
    accel = await decideAccel(scenario.guest.accel, { host: lab.hosts.src.host, media, imageHash: ctx.image.hash, cacheDir: ctx.cacheDir, signal });
    mark('accelDecisionMs', t);
    progress('accel', `${accel.used}: ${accel.reason}`);

    // The data disk lives in the NFS export; both QEMUs open it by nfs:// URL.
    const diskFile = `${ctx.runId}-${name}.qcow2`;
    await createDataDisk(lab.hosts.src.host, lab.nfs.localPath(diskFile), scenario.guest.diskSizeMiB);
    td.defer(`remove data disk ${diskFile}`, () => rm(lab.nfs.localPath(diskFile), { force: true }));
    const diskUrl = lab.nfs.url(diskFile);
    // Runs after both QEMUs are stopped (teardown is last-in, first-out): the shared qcow2 must
    // be consistent once nobody has it open.
    td.defer(`qemu-img check ${diskFile}`, async () => {
      const check = await qemuImgCheck(lab.hosts.src.host, lab.nfs.localPath(diskFile));
      outputs.qemuImgCheck = { ok: check.ok, exitCode: check.exitCode, meaning: check.meaning };
    });

    progress('boot', `source and destination QEMU (${machine.memoryMiB} MiB, ${machine.nicModel}, ${machine.diskInterface}, ${accel.used})`);
    t = Date.now();
    const relaunched: string[] = [];
    const launch = (role: 'source' | 'destination') =>
      startLabGuest({
        lab,
        side: role === 'source' ? 'src' : 'dst',
        spec: machine,
        accel: accel!.used,
        media: { ...media, diskUrl },
        runDir: ctx.runDir,
        teardown: td,
        role,
        incomingUri: role === 'destination' ? uri : undefined,
        hmpTelnetPort: role === 'source' ? scenario.hmpTelnetPort : undefined,
        timeoutMs: BOOT_TIMEOUT_MS,
        signal,
        onRelaunch: (why) => {
          progress('boot', `${role} QEMU hung while starting and is launched again: ${why}`);
          relaunched.push(`${role}: ${why}`);
          outputs.relaunched = relaunched;
        },
      });
    [src, dst] = await Promise.all([launch('source'), launch('destination')]);
    mark('qemuStartMs', t);
    const ready = await src.console.waitReady({ timeoutMs: BOOT_TIMEOUT_MS, signal });
    await src.console.waitBeat((hb) => hb.bootId === ready.bootId, { timeoutMs: BOOT_TIMEOUT_MS, signal });
    mark('bootToHeartbeatMs', t);
    progress('boot', `guest up at ${ready.ip} after ${phases.bootToHeartbeatMs} ms`);

    const v = await src.qmp.queryVersion(CALL);
    qemuVersion = { version: `${v.major}.${v.minor}.${v.micro}`, package: v.package || undefined };

    // Record events on both sides, timed from the migrate command.
    for (const [side, vm] of [['source', src], ['destination', dst]] as const) {
      // QEMU stamps each event when it happens; Node may read a burst of them later.
      vm.qmp.onEvent((e) => events.push({ tMs: migrateSentAt ? eventTimeMs(e) - migrateSentAt : 0, side, event: e.event, data: e.data }));
    }

    const driver: MigrationDriver =
      scenario.monitor === 'qmp' ? new QmpMigrationDriver(src.qmp) : new HmpMigrationDriver(await connectHmp(src, td, signal));
    const dstDriver = new QmpMigrationDriver(dst.qmp);
    // `events` makes QEMU send MIGRATION and MIGRATION_PASS; capabilities such as multifd and
    // postcopy-ram must be set on both sides.
    const caps = { events: true, ...scenario.capabilities };
    await driver.setCapabilities(caps);
    await dstDriver.setCapabilities(caps);
    await driver.setParameters(scenario.parameters);
    if (scenario.parameters.multifdChannels !== undefined) await dstDriver.setParameters({ multifdChannels: scenario.parameters.multifdChannels });
    monitorCommands = driver.sent;
    parametersInForce = await src.qmp.queryMigrateParameters(CALL);
    capabilitiesInForce = await src.qmp.queryMigrateCapabilities(CALL);

    await ctx.hooks?.afterBoot?.({ src, dst, machine, lab });
    const toolPath = await ensureProbeTool({ cacheDir: ctx.cacheDir, signal });
    const agent = new AgentClient({ host: lab.hosts.client.host, guestIp: lab.guestIp(idx), toolPath });
    if (scenario.clientProbe || scenario.workload.kind !== 'idle') {
      // The agent must answer before the probe starts, or its first silence is not the migration's.
      await agent.waitReachable({ timeoutMs: 30000, signal });
    }
    if (scenario.workload.kind !== 'idle') {
      progress('workload', `starting ${formatWorkload(scenario.workload)} in the guest`);
      await startWorkload(agent, scenario.workload, { signal, logFile: join(ctx.runDir, 'workload.log') });
      td.defer('stop the guest workload', () => stopWorkload(agent, scenario.workload).then(() => undefined));
      // Let it reach its rate before the migration measures it.
      await sleep(1000, signal);
      outputs.workloadBefore = await workloadStatus(agent, scenario.workload, { signal });
    }
    if (scenario.clientProbe) {
      const handle = startProbe({
        host: lab.hosts.client.host,
        guestIp: lab.guestIp(idx),
        intervalUs: scenario.probeIntervalUs,
        maxDurationMs: scenario.timeoutMs + 120000,
        toolPath,
        logFile: join(ctx.runDir, 'probe.csv'),
      });
      probe = handle;
      td.defer(`stop the downtime probe (pid ${handle.pid})`, () => handle.stop().then(() => undefined));
      progress('probe', `UDP probe every ${scenario.probeIntervalUs / 1000} ms from ${lab.hosts.client.netns}`);
    }
    progress('migrate', `${scenario.monitor.toUpperCase()}: migrating to ${uri}`);
    t = Date.now();
    migrateSentAt = Date.now();
    migrateCommand = await driver.start(uri);
    monitorCommands = driver.sent;
    let postcopyStarted = false;
    for (;;) {
      const info = await driver.info();
      const tMs = Date.now() - migrateSentAt;
      timeline.push(sampleOf(tMs, info));
      if (isFinalMigrationStatus(info.status)) {
        final = info;
        break;
      }
      if (scenario.postcopyAfterMs !== undefined && !postcopyStarted && tMs >= scenario.postcopyAfterMs && info.status === 'active') {
        await driver.startPostcopy();
        postcopyStarted = true;
        progress('migrate', `switched to post-copy after ${tMs} ms`);
      }
      if (tMs > scenario.timeoutMs) {
        progress('migrate', `no convergence within ${scenario.timeoutMs} ms: cancelling, the source keeps running`);
        await driver.cancel();
        final = await waitFinal(driver, timeline, migrateSentAt, signal);
        break;
      }
      await sleep(scenario.sampleIntervalMs, signal);
    }
    mark('migrationMs', t);
    await ctx.hooks?.afterMigrate?.(final);
    // QEMU's figures are final on the source once it reports completed.
    if (final.status === 'completed' && scenario.monitor === 'hmp') final = await new QmpMigrationDriver(src.qmp).info();

    if (final.status === 'completed') {
      t = Date.now();
      // The source reports completed once it has sent everything; the destination may still be
      // loading device state (status inmigrate). Wait for it to run, under a deadline.
      const dstQmp = dst.qmp;
      const dstStatus = await pollUntil(
        'waiting for the destination to resume the guest',
        async () => {
          const s = await dstQmp.queryStatus(CALL);
          return s.status === 'inmigrate' ? undefined : s;
        },
        { timeoutMs: 30000, signal, intervalMs: 20 },
      );
      outputs.destinationStatus = dstStatus.status;
      const srcStatus = await src.qmp.queryStatus(CALL);
      outputs.sourceStatusAfter = srcStatus.status;
      const lastSrc = src.console.last;
      try {
        await dst.console.waitBeat((hb) => !lastSrc || hb.seq > lastSrc.seq, { timeoutMs: 15000, signal });
      } catch (err) {
        throw new MiglabError('MIGRATION_FAILED', `after the switchover the guest did not carry on at the destination: ${describeError(err)}`, { cause: err });
      }
      // A few more beats so continuity is judged on a run of them, not on one line.
      await sleep(3 * machine.heartbeatMs, signal);
      const hb = heartbeatContinuity(src.console.beats, dst.console.beats);
      outputs.heartbeat = hb;
      outputs.eventDowntimeMs = switchoverMs(events);
      if (probe) {
        // Judge the silence of the switchover: from the source's STOP until a while after the
        // destination's RESUME (the switch must relearn where the guest's MAC is), not any other
        // hiccup of a busy host.
        const stop = events.find((e) => e.side === 'source' && e.event === 'STOP');
        const resume = events.find((e) => e.side === 'destination' && e.event === 'RESUME');
        const within = stop && resume ? { fromMs: migrateSentAt + stop.tMs - 50, toMs: migrateSentAt + resume.tMs + 2000 } : undefined;
        const run = await probe.stop({ within, timeoutMs: 15000 });
        const { rows: _rows, meta: _meta, ...figures } = run;
        outputs.clientProbe = figures;
        outputs.clientDowntimeMs = figures.longestGapMs ?? undefined;
      }
      if (scenario.workload.kind !== 'idle') {
        // The workload ran on across the switchover: its state moved with the guest's memory.
        outputs.workloadAfter = await stopWorkload(agent, scenario.workload, { signal });
        const integrity = await verifyIntegrity(agent, scenario.workload, { signal });
        outputs.integrity = integrity;
        if (!integrity.ok) failure = `integrity check failed on the destination: ${integrity.detail}`;
      }
      mark('verifyMs', t);
      // The first problem found is the reason given (an integrity failure is set above).
      if (!failure && dstStatus.status !== 'running') failure = `the destination is ${dstStatus.status}, not running, after the migration completed`;
      if (!failure && !hb.continuous) failure = `the guest's heartbeat did not continue on the destination (source last seq ${hb.sourceLastSeq}, destination first seq ${hb.destinationFirstSeq}, same boot: ${hb.sameBoot})`;
      verdict = failure ? 'failed' : 'completed';
    } else if (final.status === 'cancelled') {
      const srcStatus = await src.qmp.queryStatus(CALL);
      outputs.sourceStatusAfter = srcStatus.status;
      verdict = 'did-not-converge';
      failure = `did not converge within ${scenario.timeoutMs} ms (remaining ${final.ram?.remainingBytes ?? '?'} bytes, dirty rate ${final.ram?.dirtyPagesRate ?? '?'} pages/s); the source kept running (${srcStatus.status})`;
    } else {
      failure = `QEMU reports the migration ${final.status}${final.errorDesc ? `: ${final.errorDesc}` : ''}`;
    }
  } catch (err) {
    if (signal?.aborted) throw err;
    failure = describeError(err);
  } finally {
    const t = Date.now();
    progress('cleanup', 'stopping QEMU, removing taps and the data disk');
    await td.run();
    mark('cleanupMs', t);
  }

  if (!accel) throw new MiglabError('MIGRATION_FAILED', failure ?? 'the accelerator could not be decided');
  const imgCheck = outputs.qemuImgCheck as { ok: boolean; meaning: string } | undefined;
  if (imgCheck && !imgCheck.ok && !failure) {
    failure = `qemu-img check found the shared disk inconsistent after the run: ${imgCheck.meaning}`;
    verdict = 'failed';
  }
  const ram = final?.ram;
  const report: RunReport = {
    schema: RUN_SCHEMA,
    runId: ctx.runId,
    name: scenarioName(scenario),
    startedAt: new Date(started).toISOString(),
    finishedAt: new Date().toISOString(),
    wallMs: Date.now() - started,
    ok: verdict === 'completed' && !failure,
    verdict,
    failure,
    inputs: {
      scenario,
      machine,
      lab: lab.spec,
      shaping: lab.shaping,
      image: { hash: ctx.image.hash, kernelVersion: ctx.image.kernelVersion, inputs: ctx.image.inputs },
      qemu: qemuVersion,
      host: await hostFacts(),
      accel,
      parametersInForce,
      capabilitiesInForce,
      commands: { source: src?.command ?? { argv: [], explained: [] }, destination: dst?.command ?? { argv: [], explained: [] } },
      migrateCommand,
      monitorCommands,
      migrationUri: uri,
    },
    outputs: {
      ...outputs,
      final,
      status: final?.status,
      totalTimeMs: final?.totalTimeMs,
      downtimeMs: final?.downtimeMs,
      setupTimeMs: final?.setupTimeMs,
      transferredBytes: ram?.transferredBytes,
      totalBytes: ram?.totalBytes,
      remainingBytes: ram?.remainingBytes,
      throughputMbps: ram?.mbps,
      averageThroughputMiBps:
        ram?.transferredBytes !== undefined && final?.totalTimeMs ? ram.transferredBytes / 1024 / 1024 / (final.totalTimeMs / 1000) : undefined,
      dirtySyncCount: ram?.dirtySyncCount,
      duplicatePages: ram?.duplicatePages,
      migrateSentAtMs: migrateSentAt || undefined,
      normalPages: ram?.normalPages,
    },
    phases,
    timeline,
    passes: derivePasses(timeline, events),
    events,
    files: {},
  };
  return report;
}

/**
 * The guest's pause as QEMU's own events show it: from the source's STOP to the destination's
 * RESUME (both stamped by QEMU on this host's clock). A cross-check of QEMU's `downtime` figure.
 */
export function switchoverMs(events: readonly EventRecord[]): number | undefined {
  const stop = events.find((e) => e.side === 'source' && e.event === 'STOP');
  const resume = events.find((e) => e.side === 'destination' && e.event === 'RESUME');
  return stop && resume ? resume.tMs - stop.tMs : undefined;
}

async function connectHmp(vm: Vm, td: Teardown, signal?: AbortSignal): Promise<HmpClient> {
  const hmp = await HmpClient.connectUnix(vm.plan.hmpSocket!, { timeoutMs: 10000, signal });
  td.defer(`close HMP of ${vm.label}`, () => hmp.close());
  return hmp;
}

/** After a cancel: sample until QEMU reports a final state. */
async function waitFinal(driver: MigrationDriver, timeline: Sample[], since: number, signal?: AbortSignal): Promise<MigrationInfo> {
  return withDeadline(
    'waiting for the cancelled migration to stop',
    (async () => {
      for (;;) {
        const info = await driver.info();
        timeline.push(sampleOf(Date.now() - since, info));
        if (isFinalMigrationStatus(info.status)) return info;
        await sleep(50, signal);
      }
    })(),
    { timeoutMs: 30000, signal },
  );
}
