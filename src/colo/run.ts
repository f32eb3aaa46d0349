// One COLO run on the lab: the primary QEMU on `src`, the secondary on `dst` (QEMU's
// docs/system/qemu-colo.rst), lock-step reached and held with a client workload through the
// comparator, the primary killed, failover on the secondary, and the guest checked there: the
// same boot, its heartbeat going on, every disk record it wrote in place, the client answered
// again. What it measured goes to colo.json and report.md (record.ts); everything it starts it
// stops, on success, failure and Ctrl-C.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AbortedError, describeError, MiglabError } from '../errors.js';
import { AgentClient } from '../guest/agent-client.js';
import { startProbe, type ProbeHandle, type ProbeRow } from '../guest/probe.js';
import { ensureProbeTool } from '../guest/probe-tool.js';
import type { ImageInfo } from '../image/build.js';
import { createDataDisk } from '../image/disk.js';
import type { Lab } from '../lab/index.js';
import { startLabGuest } from '../machine/lab-guest.js';
import { parseMachineSpec } from '../machine/spec.js';
import type { Vm } from '../machine/vm.js';
import { checkPortFree } from '../preflight.js';
import { versionOf, type QemuBuild } from '../qemu/build.js';
import type { Progress } from '../progress/progress.js';
import { sleep, withDeadline } from '../util/deadline.js';
import { PRIVATE } from '../util/private.js';
import type { Teardown } from '../util/teardown.js';
import { reconnectOption } from './argv.js';
import type { ColoSettings } from './options.js';
import { checkpointFigures, coloMarkdown, spread, type ColoRecord, type IperfFigures, type ProbeWindow } from './record.js';
import { runIperf } from '../measure/iperf.js';
import type { Host } from '../host/host.js';
import { announce, awaitLockStep, failOver, prepareSecondary, StepLog, startPrimary, watchRunState, type ColoAddresses } from './steps.js';
import { readPrimaryTrace, readSecondaryTrace } from './trace.js';


/** The data disk's size: room for the disk workload's records over the run. */
const DISK_MIB = 64;
/** How long the probe goes on after the guest answered from the secondary: the same guest without COLO. */
const AFTER_MS = 3000;
/** Probe answers this long after a change (lock-step reached, service back) are left out of its window. */
const SETTLE_MS = 500;

export interface ColoContext {
  readonly lab: Lab;
  readonly image: Pick<ImageInfo, 'kernelPath' | 'initrdPath'>;
  readonly build: QemuBuild;
  readonly runId: string;
  readonly runDir: string;
  readonly cacheDir: string;
  readonly td: Teardown;
  readonly signal: AbortSignal;
  readonly progress?: Progress;
}

const STEP = (signal: AbortSignal) => ({ timeoutMs: 15000, signal });

export async function runColo(ctx: ColoContext, s: ColoSettings): Promise<ColoRecord> {
  const started = new Date();
  const log = new StepLog();
  const phasesMs: Record<string, number> = {};
  const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const t = Date.now();
    try {
      return await fn();
    } finally {
      phasesMs[name] = Date.now() - t;
    }
  };
  const progress = (phase: string, detail: string) => ctx.progress?.(phase, detail);
  const { basePort: _ports, ...asked } = s;
  const inputs: ColoRecord['inputs'] = {
    ...asked,
    qemu: { choice: ctx.build.choice, version: versionOf(ctx.build), origin: ctx.build.origin },
    failure: 'kill-primary',
    commands: {},
  };
  const out: { -readonly [K in keyof ColoRecord['outputs']]: ColoRecord['outputs'][K] } = {};
  let primary: Vm | undefined;
  let secondary: Vm | undefined;
  let probe: ProbeHandle | undefined;
  let capabilities: ColoRecord['inputs']['capabilities'];
  const marks: { lockStepEndMs?: number; afterEndMs?: number } = {};
  const record = (verdict: ColoRecord['verdict'], failure?: string): ColoRecord => ({
    kind: 'colo',
    runId: ctx.runId,
    verdict,
    failure,
    startedAt: started.toISOString(),
    inputs: { ...inputs, capabilities, commands: { primary: primary?.command, secondary: secondary?.command } },
    steps: log.steps,
    outputs: out,
    phasesMs,
  });

  try {
    const lease = await ctx.lab.acquireSlot({ preferred: 0, runId: ctx.runId, signal: ctx.signal });
    ctx.td.defer(`release guest slot g${lease.index}`, () => lease.release());
    const lab = lease.lab;
    const { src, dst, client } = lab.hosts;
    const base = s.basePort + 4 * lease.index;
    const addr: ColoAddresses = { secondaryIp: dst.ip, migrationPort: base, nbdPort: base + 1 };
    const net = { primaryIp: src.ip, mirrorPort: base + 2, comparePort: base + 3 };
    await Promise.all([
      checkPortFree(dst.host, addr.migrationPort, 'migration'),
      checkPortFree(dst.host, addr.nbdPort, 'NBD'),
      checkPortFree(src.host, net.mirrorPort, 'COLO mirror'),
      checkPortFree(src.host, net.comparePort, 'COLO compare'),
    ]);

    // COLO shares no storage: each side has its own image, the same content (blank) at the start.
    const [srcDir, dstDir] = await Promise.all([src.host.makeTempDir(src.runDir, 'colo-'), dst.host.makeTempDir(dst.runDir, 'colo-')]);
    ctx.td.defer('remove the COLO disk images', async () => {
      await Promise.all([src.host.remove(srcDir), dst.host.remove(dstDir)]);
    });
    const disks = { image: join(srcDir, 'primary.qcow2'), parent: join(dstDir, 'parent.qcow2'), active: join(dstDir, 'active.qcow2'), hidden: join(dstDir, 'hidden.qcow2') };
    await timed('disks', () =>
      Promise.all([createDataDisk(src.host, disks.image, DISK_MIB, { signal: ctx.signal }), ...[disks.parent, disks.active, disks.hidden].map((p) => createDataDisk(dst.host, p, DISK_MIB, { signal: ctx.signal }))]),
    );

    const idx = lease.index;
    const guestIp = lab.guestIp(idx);
    const spec = parseMachineSpec({ name: `g${idx}`, accel: 'tcg', memoryMiB: s.memoryMiB, mac: lab.guestMac(idx), ip: `${guestIp}/${lab.prefixLength}`, iperfServer: s.iperfS > 0 });
    const qemu = { build: ctx.build, peer: ctx.build };
    const common = { lab, spec, accel: 'tcg' as const, media: { kernelPath: ctx.image.kernelPath, initrdPath: ctx.image.initrdPath }, runDir: ctx.runDir, teardown: ctx.td, qemu, signal: ctx.signal, timeoutMs: 30000 };
    progress('boot', `primary on src, secondary on dst (QEMU ${versionOf(ctx.build)})`);
    // Together: the primary starts only once the secondary has connected to its comparator (wait=on).
    await timed('boot', async () => {
      const [p, q] = await Promise.allSettled([
        startLabGuest({ ...common, side: 'src', role: 'source', colo: { role: 'primary', imagePath: disks.image, ...net } }),
        startLabGuest({ ...common, side: 'dst', role: 'destination', incomingUri: `tcp:${addr.secondaryIp}:${addr.migrationPort}`, colo: { role: 'secondary', parentPath: disks.parent, activePath: disks.active, hiddenPath: disks.hidden, reconnect: reconnectOption(ctx.build.release), ...net } }),
      ]);
      if (p.status === 'fulfilled') primary = p.value;
      if (q.status === 'fulfilled') secondary = q.value;
      if (p.status === 'rejected') throw p.reason;
      if (q.status === 'rejected') throw q.reason;
      await primary!.console.waitReady({ timeoutMs: 60000, signal: ctx.signal });
    });
    const pvm = primary!;
    const svm = secondary!;

    progress('colo', `entering lock-step, a checkpoint every ${s.checkpointMs} ms at the latest`);
    const sentAt = await timed('enterColo', async () => {
      const secondaryCaps = await prepareSecondary(log, svm.qmp, addr, STEP(ctx.signal));
      const primaryCaps = await startPrimary(log, pvm.qmp, addr, s.checkpointMs, STEP(ctx.signal));
      capabilities = { primary: primaryCaps, secondary: secondaryCaps };
      return log.steps[log.steps.length - 1]!.atMs;
    });
    const lockStep = await timed('lockStep', () => awaitLockStep(pvm.qmp, sentAt, { timeoutMs: 60000, signal: ctx.signal, what: `QEMU ${versionOf(ctx.build)}` }));
    out.lockStepAfterMs = lockStep.afterMs;

    // The client: the agent (through colo-compare: each answer differs between the guests, so each forces a checkpoint).
    const toolPath = await lab.placeFile('client', await ensureProbeTool({ cacheDir: ctx.cacheDir, signal: ctx.signal }));
    const agent = new AgentClient({ host: client.host, guestIp, toolPath });
    agent.keepOpen();
    ctx.td.defer('end the guest agent session', () => agent.close());
    const reach = await timed('agentReachable', () => agent.waitReachable({ timeoutMs: 30000, signal: ctx.signal }));
    void reach;
    const before = await agent.info({ signal: ctx.signal });
    out.guestBefore = { bootId: before.bootId, seq: before.hbSeq };
    if (s.diskRateKiBps > 0) await agent.diskStart({ rateKiBps: s.diskRateKiBps }, { signal: ctx.signal });
    probe = startProbe({ host: client.host, guestIp, intervalUs: s.probeIntervalMs * 1000, maxDurationMs: (s.lockStepS + 2 * s.iperfS + 120) * 1000, toolPath, logFile: join(ctx.runDir, 'probe.csv') });
    const running = probe;
    ctx.td.defer('stop the client probe', () => running.stop().then(() => undefined, () => undefined));

    progress('colo', `in lock-step; the primary is killed in ${s.lockStepS} s`);
    await timed('inLockStep', () => holdLockStep(pvm, s.lockStepS * 1000, ctx.signal));
    // TCP from the client into the guest through colo-compare (the guest's ACKs are compared), then
    // the same after the failover: the same guest without COLO. The probe's windows leave these out.
    if (s.iperfS > 0) {
      marks.lockStepEndMs = Date.now();
      progress('colo', `iperf3 into the guest for ${s.iperfS} s, through colo-compare`);
      out.iperfInLockStep = await timed('iperfInLockStep', () => iperfInto(client.host, guestIp, s.iperfS, ctx.signal));
    }

    // The failure: the primary's QEMU killed, as a host would die.
    const runState = watchRunState(svm.qmp);
    ctx.td.defer('stop watching the secondary', () => runState.stop());
    out.primaryKilledAtMs = Date.now();
    progress('failover', `killing the primary's QEMU (pid ${pvm.process.pid})`);
    await pvm.process.sendSignal('SIGKILL');
    await withDeadline('the primary QEMU to exit', pvm.process.exited, { timeoutMs: 10000, signal: ctx.signal });
    const lastBeat = pvm.console.last;
    const fo = await timed('failover', () => failOver(log, svm.qmp, runState, STEP(ctx.signal)));
    out.failover = { ...fo, pausedMs: fo.stopAtMs !== undefined && fo.resumeAtMs !== undefined ? Math.round((fo.resumeAtMs - fo.stopAtMs) * 10) / 10 : undefined };
    await lab.bridgeTap('dst', `tap-${spec.name}`, true, { signal: ctx.signal });
    await announce(log, svm.qmp, STEP(ctx.signal));
    await timed('serviceBack', () => agent.waitReachable({ timeoutMs: 30000, signal: ctx.signal }));
    const after = await agent.info({ signal: ctx.signal });
    out.guestAfter = { bootId: after.bootId, seq: after.hbSeq };
    out.sameBoot = after.bootId === before.bootId && after.hbSeq >= before.hbSeq;
    // The secondary's console: its first heartbeat after the failover goes on from the primary's last
    // (at most one checkpoint period back: the secondary resumes from the last checkpoint).
    const nextBeat = svm.console.beats.find((b) => b.hostMs > fo.commandAtMs);
    out.heartbeat = {
      primaryLast: lastBeat ? { seq: lastBeat.seq, bootId: lastBeat.bootId } : undefined,
      secondaryFirst: nextBeat ? { seq: nextBeat.seq, bootId: nextBeat.bootId } : undefined,
    };
    await sleep(AFTER_MS, ctx.signal);
    if (s.iperfS > 0) {
      marks.afterEndMs = Date.now();
      out.iperfWithoutColo = await timed('iperfWithoutColo', () => iperfInto(client.host, guestIp, s.iperfS, ctx.signal));
    }
    const rows = (await probe.stop()).rows;
    Object.assign(out, clientFigures(rows, { ...marks, lockStepAtMs: lockStep.atMs, killedAtMs: out.primaryKilledAtMs }));
    if (s.diskRateKiBps > 0) {
      await agent.diskStop({ signal: ctx.signal });
      const v = await agent.diskVerify({ signal: ctx.signal });
      out.disk = { records: v.records, bad: v.bad, gaps: v.gaps, lastSeq: v.lastSeq };
    }
    const problems = verdictProblems(out);
    return finish(ctx, svm, pvm, out, record(problems.length === 0 ? 'failed-over' : 'failed', problems.join('; ') || undefined));
  } catch (err) {
    // A step that timed out in lock-step is often the primary's deadlock seen from outside: say so.
    const hung = !ctx.signal.aborted && out.lockStepAfterMs !== undefined && out.primaryKilledAtMs === undefined && primary ? await primaryHung(primary) : undefined;
    const why = hung ? `${hung} (the step that noticed: ${describeError(err)})` : describeError(err);
    if (probe) await probe.stop().then((p) => Object.assign(out, clientFigures(p.rows, { ...marks, killedAtMs: out.primaryKilledAtMs })), () => undefined);
    const interrupted = ctx.signal.aborted || err instanceof AbortedError;
    return finish(ctx, secondary, primary, out, record(interrupted ? 'interrupted' : 'failed', interrupted ? 'interrupted by the user (Ctrl-C)' : why));
  }
}

/**
 * Wait out the lock-step, asking the primary how it is every second: a QEMU that stops answering
 * (7.2's and 10.0.13's primaries deadlock after a checkpoint under TCG) ends the run with that said.
 */
async function holdLockStep(pvm: Vm, ms: number, signal: AbortSignal): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    await sleep(Math.min(1000, Math.max(0, until - Date.now())), signal);
    let status: string;
    try {
      status = String((await pvm.qmp.queryMigrate({ timeoutMs: HUNG_MS, signal })).status ?? '');
    } catch (err) {
      if (signal.aborted) throw err;
      throw new MiglabError('COLO', `${HUNG} (${describeError(err)})`);
    }
    if (status !== 'colo') throw new MiglabError('COLO', `the primary left lock-step: query-migrate says "${status}"`);
  }
}

/** iperf3 from the client into the guest: what arrived, in Mbit/s, and TCP's retransmits. */
async function iperfInto(client: Host, guestIp: string, seconds: number, signal: AbortSignal): Promise<IperfFigures> {
  const r = await runIperf(client, { server: guestIp, durationS: seconds }, { timeoutMs: (seconds + 20) * 1000, signal });
  return { mbps: Math.round(r.summary.receivedBps / 1e5) / 10, retransmits: r.summary.retransmits, seconds };
}

const HUNG_MS = 5000;
const HUNG = 'the primary QEMU stopped answering its monitor in lock-step; QEMU 7.2 and 10.0.13 deadlock this way under TCG after a checkpoint (docs/colo-spike.md): use --qemu 11.1';

/** Why the primary is of no more use, when it no longer answers its monitor; undefined while it does. */
async function primaryHung(pvm: Vm): Promise<string | undefined> {
  if (pvm.process.hasExited) return undefined;
  try {
    await pvm.qmp.queryStatus({ timeoutMs: HUNG_MS });
    return undefined;
  } catch {
    return HUNG;
  }
}

/** When things happened, as the probe's windows need them (epoch ms). */
export interface ProbeMarks {
  readonly lockStepAtMs?: number;
  /** iperf3 began in lock-step: the lock-step window ends here (else at the kill). */
  readonly lockStepEndMs?: number;
  readonly killedAtMs?: number;
  /** iperf3 began after the failover: the window without COLO ends here. */
  readonly afterEndMs?: number;
}

/** What the client's probe saw: round trips in lock-step and after, the silence around the kill. */
export function clientFigures(rows: readonly ProbeRow[], m: ProbeMarks): Partial<ColoRecord['outputs']> {
  const { lockStepAtMs, killedAtMs } = m;
  const ms = (ns: bigint) => Number(ns / 1000n) / 1000;
  const window = (from: number, to: number): ProbeWindow => {
    const w = rows.filter((r) => ms(r.sentNs) >= from && ms(r.sentNs) < to);
    const rtts = w.filter((r) => r.recvNs !== undefined).map((r) => ms(r.recvNs! - r.sentNs));
    return { sent: w.length, received: rtts.length, rttMs: spread(rtts) };
  };
  const o: { -readonly [K in keyof ColoRecord['outputs']]: ColoRecord['outputs'][K] } = {};
  if (lockStepAtMs !== undefined && killedAtMs !== undefined) o.probeInLockStep = window(lockStepAtMs + SETTLE_MS, m.lockStepEndMs ?? killedAtMs);
  if (killedAtMs === undefined) return o;
  const answered = rows.filter((r) => r.recvNs !== undefined);
  const lastBefore = answered.filter((r) => ms(r.recvNs!) <= killedAtMs).at(-1);
  const firstAfter = answered.find((r) => ms(r.recvNs!) > killedAtMs);
  if (firstAfter) {
    o.serviceBackAfterKillMs = Math.round(ms(firstAfter.recvNs!) - killedAtMs);
    o.probeAfter = window(ms(firstAfter.recvNs!) + SETTLE_MS, m.afterEndMs ?? Number.POSITIVE_INFINITY);
  }
  if (lastBefore && firstAfter) {
    o.clientSilenceMs = Math.round(ms(firstAfter.recvNs!) - ms(lastBefore.recvNs!));
    o.probesLost = rows.filter((r) => r.recvNs === undefined && r.sentNs > lastBefore.sentNs && r.sentNs < firstAfter.sentNs).length;
  }
  return o;
}

/** What a failover must show: the same guest answering, every disk record there. */
function verdictProblems(o: ColoRecord['outputs']): string[] {
  const p: string[] = [];
  if (!o.sameBoot) p.push(`the guest after the failover is not the one before (before ${JSON.stringify(o.guestBefore)}, after ${JSON.stringify(o.guestAfter)})`);
  if (o.disk && (o.disk.bad > 0 || o.disk.gaps > 0)) p.push(`the disk records on the secondary are damaged: ${o.disk.bad} bad, ${o.disk.gaps} gaps of ${o.disk.records}`);
  return p;
}

/** The traces read (before teardown removes the monitors' folders), the figures from them, the files written. */
async function finish(ctx: ColoContext, svm: Vm | undefined, pvm: Vm | undefined, out: { -readonly [K in keyof ColoRecord['outputs']]: ColoRecord['outputs'][K] }, rec: ColoRecord): Promise<ColoRecord> {
  const read = async (vm: Vm | undefined) => (vm?.plan.colo ? ((await vm.host.readText(vm.plan.colo.traceFile).catch(() => undefined)) ?? '') : '');
  const [pt, st] = await Promise.all([read(pvm), read(svm)]);
  await Promise.all([
    pt ? writeFile(join(ctx.runDir, 'primary.colo.trace'), pt, PRIVATE) : undefined,
    st ? writeFile(join(ctx.runDir, 'secondary.colo.trace'), st, PRIVATE) : undefined,
  ]);
  const figures = pt ? checkpointFigures(readPrimaryTrace(pt), readSecondaryTrace(st), out.primaryKilledAtMs ?? Date.now()) : undefined;
  if (figures) out.checkpoints = figures;
  const final: ColoRecord = { ...rec, outputs: { ...out } };
  await writeFile(join(ctx.runDir, 'colo.json'), `${JSON.stringify(final, null, 2)}\n`, PRIVATE);
  await writeFile(join(ctx.runDir, 'report.md'), coloMarkdown(final), PRIVATE);
  return final;
}
