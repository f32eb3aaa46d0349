// The run's last phases: QEMU's final figures, then the guest where it must be (on the destination
// after a switchover: running, its heartbeat continuing, its workload intact; else on the source,
// the same), each side as the run left it, and what the run started that is still there after
// cleaning up.
import { stat } from 'node:fs/promises';
import { describeError, MiglabError } from '../errors.js';
import { heartbeatContinuity } from '../machine/heartbeat.js';
import type { Vm } from '../machine/vm.js';
import { pollUntil, sleep, withDeadline } from '../util/deadline.js';
import { stopWorkload, verifyIntegrity } from '../workload/run.js';
import type { DriveResult } from './drive.js';
import { clientDowntimeWindow, switchoverMs } from './downtimes.js';
import { dirtyRateText, lastActiveSample, settleCompleted } from './figures.js';
import { QmpMigrationDriver } from './monitor.js';
import type { SideAfter } from './report.js';
import { CALL, failRun, switchedOver, type Run } from './run-state.js';

/** How long a completed record may lack its figures before miglab falls back to events. */
const FIGURES_SETTLE_MS = 2000;
/** Looking at a side after the run: a QEMU that does not answer in this long is reported as such. */
const AFTER_CALL_MS = 3000;

/** QEMU's final figures, then the guest: on the destination after a switchover, else on the source. */
export async function conclude(run: Run, drive: DriveResult): Promise<void> {
  const { scenario, guard } = run;
  let final = drive.final;
  if (final.status === 'completed') {
    // The figures are read over QMP whatever the monitor (HMP prints them truncated).
    const qmp = new QmpMigrationDriver(run.src!.qmp);
    // A source that died after completing has no figures left to ask for: the events stand in.
    if (!run.src!.process.hasExited) {
      const settled = await settleCompleted(final, () => withDeadline('query-migrate', qmp.info(), { ...CALL, signal: guard.signal }), {
        timeoutMs: FIGURES_SETTLE_MS,
        signal: guard.signal,
      }).catch((err: unknown) => {
        if (guard.signal.aborted || !run.src!.process.hasExited) throw err;
        return { info: final, requeries: 0 };
      });
      final = settled.info;
      run.out.figureRequeries = settled.requeries;
    }
    run.final = final;
    await verifyDestination(run);
    run.verdict = run.failure ? 'failed' : 'completed';
    return;
  }
  run.out.lastActive = lastActiveSample(run.timeline);
  if (drive.end === 'stall') {
    run.verdict = 'stalled';
    run.out.stall = drive.stall;
    failRun(run, 'STALLED', `stalled: no byte moved for ${drive.stall!.forMs} ms (since ${drive.stall!.sinceMs} ms after migrate, transferred stuck at ${drive.stall!.transferredBytes} bytes, status ${drive.stall!.status}); cancelled`);
  } else if (drive.end === 'deadline') {
    run.verdict = 'did-not-converge';
    const a = run.out.lastActive;
    failRun(run, 'NOT_CONVERGED', `did not converge within ${scenario.timeoutMs} ms (last active sample at ${a?.tMs ?? '?'} ms: remaining ${a?.remainingBytes ?? '?'} bytes, ${dirtyRateText(a?.dirtyPagesRate)}); cancelled`);
  } else {
    run.verdict = 'failed';
    const exits = guard.incidents.filter((i) => i.source === 'qemu-exit').map((i) => i.what);
    failRun(run, 'QEMU_FAILED', `QEMU reports the migration ${final.status}${final.errorDesc ? `: ${final.errorDesc}` : ''}${exits.length ? `; ${exits.join('; ')}` : ''}`);
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
  if (!src.process.hasExited) run.out.sourceStatusAfter = (await src.qmp.queryStatus({ ...CALL, signal: guard.signal })).status;
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
    // The silence of the switchover, not any other hiccup of a busy host (downtimes.ts).
    const within = clientDowntimeWindow(run.events, guard.migrateSentAt);
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
    if (!integrity.ok) failRun(run, 'INTEGRITY', `integrity check failed on the destination: ${integrity.detail}`);
  }
  // The first problem found is the reason given (an integrity failure is set above).
  if (!run.failure && dstStatus.status !== 'running') failRun(run, 'DESTINATION_NOT_RUNNING', `the destination is ${dstStatus.status}, not running, after the migration completed`);
  if (!run.failure && !hb.continuous) {
    failRun(run, 'HEARTBEAT', `the guest's heartbeat did not continue on the destination (source last seq ${hb.sourceLastSeq}, destination first seq ${hb.destinationFirstSeq}, same boot: ${hb.sameBoot})`);
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
    failRun(run, 'SOURCE_CHECK', `${run.failure ?? 'the migration did not complete'}; ${problems.join('; ')}`);
  } else {
    run.failure = `${run.failure ?? 'the migration did not complete'}; the source kept running (${status}) with its heartbeat going on`;
  }
}

/** Each side as the run left it, before anything is stopped. */
export async function observeAfter(run: Run): Promise<{ source: SideAfter; destination: SideAfter }> {
  const completed = switchedOver(run);
  // A destination whose source died mid-migration ends by itself a moment later: give it the moment.
  if (run.src?.process.hasExited && run.dst && !completed && !run.guard.interrupted) {
    await withDeadline('the destination to stop', run.dst.process.exited, { timeoutMs: 5000, signal: run.ctx.signal }).catch(() => undefined);
  }
  const hbMs = run.machine?.heartbeatMs ?? 100;
  const side = async (vm: Vm | undefined, role: 'source' | 'destination', expectBeats: boolean): Promise<SideAfter> => {
    if (!vm) return { process: 'not-started' };
    if (vm.process.hasExited) {
      const exit = await vm.process.exited;
      return { process: 'exited', exit, ...(expectBeats ? { heartbeat: 'silent' as const } : {}) };
    }
    // Interrupted: the user wants out; what the processes are is enough.
    if (run.guard.interrupted) return { process: 'running' };
    // A QEMU a fault froze cannot answer until the fault is undone (at teardown): say so, not a timeout.
    const frozen = run.faults.records.find((r) => r.fired && r.spec.kind === (role === 'source' ? 'freeze-src' : 'freeze-dst') && r.undoneAtMs === undefined);
    const asked = frozen
      ? { unanswered: `frozen by the ${frozen.fault} fault (SIGSTOP)` }
      : await vm.qmp.queryStatus({ timeoutMs: AFTER_CALL_MS, signal: run.ctx.signal }).then(
          (st) => ({ status: st.status }),
          (err: unknown) => ({ unanswered: describeError(err) }),
        );
    if (!expectBeats) return { process: 'running', ...asked, heartbeat: 'not-expected' };
    // Going on means a new beat from now on (a recent one could be the last of an agent the OOM killer just ended).
    const seq = vm.console.last?.seq ?? -1;
    const beat = await vm.console.waitBeat((hb) => hb.seq > seq, { timeoutMs: 3 * hbMs + 500, signal: run.ctx.signal }).then(
      () => true,
      () => false,
    );
    return { process: 'running', ...asked, heartbeat: beat ? 'continuing' : 'silent' };
  };
  const [source, destination] = await Promise.all([side(run.src, 'source', !completed), side(run.dst, 'destination', completed)]);
  if (!run.final && run.src && !run.src.process.hasExited && run.guard.migrateSentAt && !run.guard.interrupted && source.unanswered === undefined) {
    const m = await run.src.qmp.migrationInfo({ timeoutMs: AFTER_CALL_MS, signal: run.ctx.signal }).then(
      (i) => i.status,
      () => undefined, // not answering now: nothing to add
    );
    if (m) return { source: { ...source, migrationStatus: m }, destination };
  }
  return { source, destination };
}

/** What this run started that is still there after cleaning up (the aim is nothing). */
export async function leftovers(run: Run): Promise<string[]> {
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
