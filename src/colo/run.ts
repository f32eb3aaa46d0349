// One COLO run on the lab: the primary QEMU on `src`, the secondary on `dst` (QEMU's
// docs/system/qemu-colo.rst), lock-step reached and held with a client workload through the
// comparator, the primary killed, failover on the secondary, and the guest checked there: the
// same boot, its heartbeat going on, every disk record it wrote in place, the client answered
// again. What it measured goes to colo.json and report.md (record.ts); everything it starts it
// stops, on success, failure and Ctrl-C.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AbortedError, describeError, MiglabError, UsageError } from '../errors.js';
import { AgentClient } from '../guest/agent-client.js';
import { nsToMs, repliesAround, startProbe, type ProbeHandle, type ProbeRow } from '../guest/probe.js';
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
import { diskMiB, type ColoSettings } from './options.js';
import { checkpointFigures, coloMarkdown, spread, type ColoRecord, type IperfFigures, type ProbeWindow } from './record.js';
import { runIperf } from '../measure/iperf.js';
import type { Host } from '../host/host.js';
import { announce, awaitLockStep, failOver, prepareSecondary, StepLog, startPrimary, type ColoAddresses } from './steps.js';
import { PairWatch, type PairLoss } from './watch.js';
import { COLO_CONTRACT, COLO_SCHEMA } from '../results/colo.js';
import { writeResult } from '../results/contract.js';
import { readPrimaryTrace, readSecondaryTrace } from './trace.js';
import { sampleStreams, streamWindow, withCheckpointSize, type StreamPorts } from './streams.js';

/** How long the probe goes on after the guest answered from the secondary (the same guest without COLO): at least 5 probes. */
const afterMs = (s: Pick<ColoSettings, 'probeIntervalMs'>) => Math.max(3000, 5 * s.probeIntervalMs);
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
    commands: {},
  };
  const out: { -readonly [K in keyof ColoRecord['outputs']]: ColoRecord['outputs'][K] } = {};
  let primary: Vm | undefined;
  let secondary: Vm | undefined;
  let probe: ProbeHandle | undefined;
  let capabilities: ColoRecord['inputs']['capabilities'];
  const marks: { lockStepEndMs?: number; afterEndMs?: number } = {};
  const record = (verdict: ColoRecord['verdict'], failure?: string): ColoRecord => ({
    schema: COLO_SCHEMA,
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
    if (base + 3 > 65535) throw new UsageError(`--port ${s.basePort}: guest slot g${lease.index} would use ports ${base}-${base + 3}, past 65535`, 'give a lower --port');
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
      Promise.all([createDataDisk(src.host, disks.image, diskMiB(s), { signal: ctx.signal }), ...[disks.parent, disks.active, disks.hidden].map((p) => createDataDisk(dst.host, p, diskMiB(s), { signal: ctx.signal }))]),
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
    // The kernel's counters of the four connections, now and when the lock-step has held: what
    // each carried (a checkpoint's size among it: streams.ts). Unreadable (no ss): left out.
    const streamPorts: StreamPorts = {
      migration: { port: addr.migrationPort, primaryIs: 'client' },
      nbd: { port: addr.nbdPort, primaryIs: 'client' },
      mirror: { port: net.mirrorPort, primaryIs: 'server' },
      compare: { port: net.comparePort, primaryIs: 'server' },
    };
    const sample = () => sampleStreams(src.host, streamPorts, { signal: ctx.signal }).catch(() => undefined);
    const streamsFrom = await sample();
    const pair = new PairWatch(pvm, svm);
    ctx.td.defer('stop watching the pair', () => pair.close());

    // The client: the agent (through colo-compare: each answer differs between the guests, so each forces a checkpoint).
    const toolPath = await lab.placeFile('client', await ensureProbeTool({ cacheDir: ctx.cacheDir, signal: ctx.signal }));
    const agent = new AgentClient({ host: client.host, guestIp, toolPath });
    agent.keepOpen();
    ctx.td.defer('end the guest agent session', () => agent.close());
    await timed('agentReachable', () => agent.waitReachable({ timeoutMs: 30000, signal: ctx.signal }));
    const before = await agent.info({ signal: ctx.signal });
    out.guestBefore = { bootId: before.bootId, seq: before.hbSeq };
    if (s.diskRateKiBps > 0) await agent.diskStart({ rateKiBps: s.diskRateKiBps }, { signal: ctx.signal });
    probe = startProbe({ host: client.host, guestIp, intervalUs: s.probeIntervalMs * 1000, maxDurationMs: (s.lockStepS + 2 * s.iperfS + 120) * 1000, toolPath, logFile: join(ctx.runDir, 'probe.csv') });
    const running = probe;
    ctx.td.defer('stop the client probe', () => running.stop().then(() => undefined, () => undefined));

    progress('colo', `in lock-step; the primary is ${s.failure === 'kill' ? 'killed' : 'cut off'} in ${s.lockStepS} s`);
    // The lock-step runs against the pair's own fate: a secondary lost ends the run; a primary lost
    // before the planned failure is the failure, and the failover follows at once.
    const early = await raceLockStep(pair, ctx.signal, async (signal) => {
      await timed('inLockStep', () => holdLockStep(pvm, s.lockStepS * 1000, signal));
      const streamsTo = await sample();
      if (streamsFrom && streamsTo) out.streams = streamWindow(streamsFrom, streamsTo);
      // TCP from the client into the guest through colo-compare (the guest's ACKs are compared), then
      // the same after the failover: the same guest without COLO. The probe's windows leave these out.
      if (s.iperfS > 0) {
        marks.lockStepEndMs = Date.now();
        progress('colo', `iperf3 into the guest for ${s.iperfS} s, through colo-compare`);
        out.iperfInLockStep = await timed('iperfInLockStep', () => iperfInto(client.host, guestIp, s.iperfS, signal));
      }
    });
    if (early?.lost === 'secondary') {
      await pair.primaryColoExit(3000);
      out.coloExits = pair.coloExits;
      throw new MiglabError('COLO', pair.secondaryLost(early.how));
    }

    if (early) {
      out.primaryLostAtMs = early.atMs;
      out.primaryLostUnplanned = early.how;
      progress('failover', `${early.how} before the planned failure: failing over`);
    } else {
      // The failure: the primary's QEMU killed, as a host would die; or the primary's host cut off
      // the network (its QEMU runs on, unreachable: the secondary must be told, it cannot tell).
      // The moment of the loss is taken before the kill or the cut, and kept only once it is done:
      // a cut that was refused lost nothing, and no client figure is measured from it.
      const lostAtMs = Date.now();
      if (s.failure === 'kill') {
        progress('failover', `killing the primary's QEMU (pid ${pvm.process.pid})`);
        await pvm.process.sendSignal('SIGKILL');
        await withDeadline('the primary QEMU to exit', pvm.process.exited, { timeoutMs: 10000, signal: ctx.signal });
      } else {
        progress('failover', "cutting the primary's host (src) off the network");
        ctx.td.defer("plug src's link back in", () => lab.setUplink('src', true));
        await lab.setUplink('src', false, { signal: ctx.signal });
      }
      out.primaryLostAtMs = lostAtMs;
    }
    const lastBeat = pvm.console.beats.filter((b) => b.hostMs <= out.primaryLostAtMs!).at(-1);
    const fo = await timed('failover', () => failOver(log, svm.qmp, pair, STEP(ctx.signal)));
    out.coloExits = pair.coloExits;
    out.failover = { ...fo, pausedMs: fo.stopAtMs !== undefined && fo.resumeAtMs !== undefined ? Math.round((fo.resumeAtMs - fo.stopAtMs) * 10) / 10 : undefined };
    await lab.bridgeTap('dst', `tap-${spec.name}`, true, { signal: ctx.signal });
    await announce(log, svm.qmp, STEP(ctx.signal));
    await timed('serviceBack', () => agent.waitReachable({ timeoutMs: 30000, signal: ctx.signal }));
    const after = await agent.info({ signal: ctx.signal });
    out.guestAfter = { bootId: after.bootId, seq: after.hbSeq };
    out.sameBoot = after.bootId === before.bootId && after.hbSeq >= before.hbSeq;
    // Cut off, the primary still runs its copy of the guest (split brain, which a cluster prevents
    // by fencing the lost host): stopped now that the secondary serves.
    if (!pvm.process.hasExited) await pvm.shutdown({ timeoutMs: 3000 });
    // The secondary's console: its first heartbeat after the failover goes on from the primary's last
    // (at most one checkpoint period back: the secondary resumes from the last checkpoint). A
    // checkpoint can roll the secondary's guest back in the middle of a line, and the line then
    // ends with other output (QEMU's own message on the same console): such a torn line's boot id
    // is not the guest's, and it is not taken.
    const nextBeat = svm.console.beats.find((b) => b.hostMs > fo.commandAtMs && b.bootId === lastBeat?.bootId);
    out.heartbeat = {
      primaryLast: lastBeat ? { seq: lastBeat.seq, bootId: lastBeat.bootId } : undefined,
      secondaryFirst: nextBeat ? { seq: nextBeat.seq, bootId: nextBeat.bootId } : undefined,
    };
    await sleep(afterMs(s), ctx.signal);
    if (s.iperfS > 0) {
      marks.afterEndMs = Date.now();
      out.iperfWithoutColo = await timed('iperfWithoutColo', () => iperfInto(client.host, guestIp, s.iperfS, ctx.signal));
    }
    const rows = (await probe.stop()).rows;
    Object.assign(out, clientFigures(rows, { ...marks, lockStepAtMs: lockStep.atMs, killedAtMs: out.primaryLostAtMs, takeoverAtMs: fo.commandAtMs }));
    if (s.diskRateKiBps > 0) {
      await agent.diskStop({ signal: ctx.signal });
      const v = await agent.diskVerify({ signal: ctx.signal });
      out.disk = { records: v.records, bad: v.bad, gaps: v.gaps, lastSeq: v.lastSeq };
    }
    const problems = verdictProblems(out);
    return finish(ctx, svm, pvm, out, record(problems.length === 0 ? 'failed-over' : 'failed', problems.join('; ') || undefined));
  } catch (err) {
    // Refused before any QEMU started (a port in use, past 65535): bad input, not a failed run.
    if (err instanceof UsageError && !primary && !secondary) throw err;
    // A step that timed out in lock-step is often the primary's deadlock seen from outside: say so.
    const hung = !ctx.signal.aborted && out.lockStepAfterMs !== undefined && out.primaryLostAtMs === undefined && primary ? await primaryHung(primary) : undefined;
    const said = describeError(err);
    const why = hung && !said.includes(hung) ? `${hung} (the step that noticed: ${said})` : said;
    out.failedAtMs = Date.now();
    if (probe) await probe.stop().then((p) => Object.assign(out, clientFigures(p.rows, { ...marks, killedAtMs: out.primaryLostAtMs })), () => undefined);
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
      // A primary that exited is the pair watch's to report (raceLockStep): not a deadlock.
      if (await withDeadline('the primary to exit', pvm.process.exited, { timeoutMs: 1000 }).then(() => true, () => false)) return;
      throw new MiglabError('COLO', `${HUNG} (${describeError(err)})`);
    }
    if (status !== 'colo') throw new MiglabError('COLO', `the primary left lock-step: query-migrate says "${status}"`);
  }
}

/**
 * Run the lock-step `body` unless the pair breaks first: then the body is stopped and the loss is
 * returned (undefined: the body ran its course with both QEMUs alive).
 */
async function raceLockStep(pair: PairWatch, outer: AbortSignal, body: (signal: AbortSignal) => Promise<void>): Promise<PairLoss | undefined> {
  const stop = new AbortController();
  const ran = body(AbortSignal.any([outer, stop.signal])).then(() => undefined);
  const lost = await Promise.race([ran, pair.loss]);
  if (lost) {
    stop.abort(new Error(lost.how));
    await ran.catch(() => undefined);
    return lost;
  }
  // The body may have ended because a QEMU exited (holdLockStep returns then): that loss counts.
  return pair.primaryExited ? await pair.loss : undefined;
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
  /** The secondary was told to take over (x-colo-lost-heartbeat): an answer after this is the secondary's. */
  readonly takeoverAtMs?: number;
  /** iperf3 began after the failover: the window without COLO ends here. */
  readonly afterEndMs?: number;
}

/** What the client's probe saw: round trips in lock-step and after, the silence around the kill. */
export function clientFigures(rows: readonly ProbeRow[], m: ProbeMarks): Partial<ColoRecord['outputs']> {
  const { lockStepAtMs, killedAtMs } = m;
  const ms = nsToMs;
  const window = (from: number, to: number): ProbeWindow => {
    const w = rows.filter((r) => ms(r.sentNs) >= from && ms(r.sentNs) < to);
    const rtts = w.filter((r) => r.recvNs !== undefined).map((r) => ms(r.recvNs! - r.sentNs));
    return { sent: w.length, received: rtts.length, rttMs: spread(rtts) };
  };
  const o: { -readonly [K in keyof ColoRecord['outputs']]: ColoRecord['outputs'][K] } = {};
  if (lockStepAtMs !== undefined && killedAtMs !== undefined) o.probeInLockStep = window(lockStepAtMs + SETTLE_MS, m.lockStepEndMs ?? killedAtMs);
  if (killedAtMs === undefined) return o;
  // Answers the primary sent just before it was lost may arrive after: only an answer after the
  // takeover is the secondary's.
  const { before: lastBefore, after: firstAfter } = repliesAround(rows, m.takeoverAtMs ?? killedAtMs);
  if (firstAfter) {
    o.serviceBackAfterKillMs = Math.round(ms(firstAfter.recvNs) - killedAtMs);
    o.probeAfter = window(ms(firstAfter.recvNs) + SETTLE_MS, m.afterEndMs ?? Number.POSITIVE_INFINITY);
  }
  if (lastBefore && firstAfter) {
    o.clientSilenceMs = Math.round(ms(firstAfter.recvNs) - ms(lastBefore.recvNs));
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
  const primaryTrace = pt ? readPrimaryTrace(pt) : undefined;
  if (primaryTrace) out.checkpoints = checkpointFigures(primaryTrace, readSecondaryTrace(st), out.primaryLostAtMs ?? out.failedAtMs ?? Date.now());
  if (out.streams && primaryTrace) out.streams = withCheckpointSize(out.streams, primaryTrace);
  const final: ColoRecord = { ...rec, outputs: { ...out } };
  // Written through its schema (src/results/colo.ts): the record returned is the file's, as read back.
  const saved = await writeResult(COLO_CONTRACT, join(ctx.runDir, COLO_CONTRACT.file), final);
  await writeFile(join(ctx.runDir, 'report.md'), coloMarkdown(saved), PRIVATE);
  return saved;
}
