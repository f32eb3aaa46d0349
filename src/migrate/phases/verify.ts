// Verify (recorded as the `conclude` phase): QEMU's final figures, then the guest where it must be:
// on the destination after a switchover (running, its heartbeat continuing, its workload intact),
// else on the source, the same. The verdict and, for a run that did not complete, why and where.
import { MiB } from '../../util/units.js';
import { describeError, MiglabError } from '../../errors.js';
import { heartbeatContinuity } from '../../machine/heartbeat.js';
import type { MigrationInfo } from '../../migration/info.js';
import { pollUntil, sleep, withDeadline } from '../../util/deadline.js';
import { stopWorkload, verifyIntegrity } from '../../workload/run.js';
import { measureOffsets, sideOffsetMs, uncorrectedSwitchoverMs } from '../clocks.js';
import { downtimeBreakdown, parseDowntimeTrace } from '../../qemu/downtime-trace.js';
import { readClientSilence } from './silence.js';
import { clientDowntimeWindow, destinationResumed, switchoverMs } from '../downtimes.js';
import { dirtyRateText, lastActiveSample, settleCompleted } from '../figures.js';
import { QmpMigrationDriver } from '../monitor.js';
import type { Verdict } from '../report.js';
import { CALL, failRun, type FailedIn, type Run } from '../run-state.js';
import type { Booted } from './boot.js';
import type { Instrumented } from './instrument.js';
import type { Migrated } from './migrate.js';

/** How long a completed record may lack its figures before miglab falls back to events. */
const FIGURES_SETTLE_MS = 2000;

/** What the checks after the migration found. */
export interface Verified {
  readonly verdict: Verdict;
  readonly failure?: string;
  readonly failedIn?: FailedIn;
  /** QEMU's final record, its figures settled. */
  readonly final: MigrationInfo;
  /** Where the guest was checked: the destination after a switchover, else the source. */
  readonly checkedOn: 'destination' | 'source';
}

export type VerifyRun = Pick<Run, 'scenario' | 'guard' | 'record' | 'out' | 'timeline' | 'events' | 'phase' | 'verdict' | 'failure' | 'failedIn' | 'final'> & { readonly lab: Pick<Run['lab'], 'clockOffset'> };

/** QEMU's final figures, then the guest: on the destination after a switchover, else on the source. */
export async function verify(run: VerifyRun, booted: Booted, instrumented: Instrumented, migrated: Migrated): Promise<Verified> {
  await conclude(run, booted, instrumented, migrated);
  return { verdict: run.verdict, failure: run.failure, failedIn: run.failedIn, final: run.final ?? migrated.drive.final, checkedOn: migrated.drive.final.status === 'completed' ? 'destination' : 'source' };
}

async function conclude(run: VerifyRun, booted: Booted, instrumented: Instrumented, { drive }: Migrated): Promise<void> {
  const { scenario, guard } = run;
  const { src } = booted;
  let final = drive.final;
  if (final.status === 'completed') {
    // The figures are read over QMP whatever the monitor (HMP prints them truncated).
    const qmp = new QmpMigrationDriver(src.qmp);
    // A source that died after completing has no figures left to ask for: the events stand in.
    if (!src.process.hasExited) {
      const settled = await settleCompleted(final, () => withDeadline('query-migrate', qmp.info(), { ...CALL, signal: guard.signal }), {
        timeoutMs: FIGURES_SETTLE_MS,
        signal: guard.signal,
      }).catch((err: unknown) => {
        if (guard.signal.aborted || !src.process.hasExited) throw err;
        return { info: final, requeries: 0 };
      });
      final = settled.info;
      run.out.figureRequeries = settled.requeries;
    }
    run.final = final;
    await readPostcopy(run, booted);
    await verifyDestination(run, booted, instrumented);
    await readDowntimeTrace(run, booted);
    run.verdict = run.failure ? 'failed' : 'completed';
    return;
  }
  run.out.lastActive = lastActiveSample(run.timeline);
  if (drive.end === 'postcopy-lost' || guestWasMoved(run)) {
    // Past post-copy's start the guest was the destination's, its memory partly still on the
    // source: no side holds it whole, so there is no source to fall back to.
    await readPostcopy(run, booted);
    run.verdict = 'failed';
    const last = run.out.postcopy?.recoveries.at(-1);
    const why = drive.end === 'postcopy-lost' && last ? `post-copy broke (${last.trigger}) and was not recovered: ${last.detail}` : `QEMU reports the post-copy migration ${final.status}${final.errorDesc ? `: ${final.errorDesc}` : ''}`;
    failRun(run, 'POSTCOPY_LOST', `${why}; the guest is lost: its memory is split between the source and the destination`);
    return;
  }
  if (drive.end === 'stall') {
    run.verdict = 'stalled';
    run.out.stall = drive.stall;
    const stall = drive.stall;
    failRun(run, 'STALLED', `stalled: no byte moved for ${stall?.forMs} ms (since ${stall?.sinceMs} ms after migrate, transferred stuck at ${stall?.transferredBytes} bytes, status ${stall?.status}); cancelled`);
  } else if (drive.end === 'deadline') {
    run.verdict = 'did-not-converge';
    const a = run.out.lastActive;
    failRun(run, 'NOT_CONVERGED', `did not converge within ${scenario.timeoutMs} ms (last active sample at ${a?.tMs ?? '?'} ms: remaining ${a?.remainingBytes === undefined ? '?' : (a.remainingBytes / MiB).toFixed(1)} MiB, ${dirtyRateText(a?.dirtyPagesRate)}); cancelled`);
  } else {
    run.verdict = 'failed';
    const exits = guard.incidents.filter((i) => i.source === 'qemu-exit').map((i) => i.what);
    failRun(run, 'QEMU_FAILED', `QEMU reports the migration ${final.status}${final.errorDesc ? `: ${final.errorDesc}` : ''}${exits.length ? `; ${exits.join('; ')}` : ''}`);
  }
  await verifySource(run, booted, instrumented);
}

/**
 * Whether the guest had become the destination's: QEMU was in post-copy and the destination had
 * started it (its RESUME). QEMU says postcopy-active before it stops the source and sends the
 * device state; a failure before the destination runs leaves the whole guest on the source.
 */
function guestWasMoved(run: Pick<VerifyRun, 'out' | 'events'>): boolean {
  return run.out.postcopy?.enteredAtMs !== undefined && destinationResumed(run.events);
}

/**
 * Post-copy's figures: the pages the destination faulted on and the bytes sent after the switch
 * (the source's record), and how long its vCPUs waited for them (the destination's, with
 * postcopy-blocktime). A destination that is gone gives none of its own.
 */
async function readPostcopy(run: VerifyRun, { dst }: Booted): Promise<void> {
  const ram = run.final?.ram;
  if (!run.out.postcopy && !(ram?.postcopyBytes ?? 0)) return;
  const pc = (run.out.postcopy ??= { preempt: run.record.capabilitiesInForce?.['postcopy-preempt'] === true, recoveries: [] });
  const d = dst.process.hasExited ? undefined : await dst.qmp.migrationInfo({ ...CALL, signal: run.guard.signal }).catch(() => undefined);
  run.out.postcopy = { ...pc, requests: ram?.postcopyRequests, bytes: ram?.postcopyBytes, blocktimeMs: d?.postcopyBlocktimeMs, vcpuBlocktimeMs: d?.postcopyVcpuBlocktimeMs };
}

/**
 * Where the switchover's downtime went, from both QEMUs' trace files (builds with the trace
 * points): read once the destination runs the guest, so it has written its last checkpoint.
 */
async function readDowntimeTrace(run: VerifyRun, { src, dst }: Booted): Promise<void> {
  const files = [src, dst].map((vm) => vm.plan.downtimeTraceFile);
  if (!files[0] || !files[1]) return;
  // A figure on top of the run's own: a host that cannot give its file leaves it out (noted), never fails the run.
  const read = withDeadline('reading the downtime trace files', Promise.all([src.host.readText(files[0]), dst.host.readText(files[1])]), { ...CALL, signal: run.guard.signal });
  const texts = await read.catch((err: unknown) => {
    if (run.guard.signal.aborted) throw err;
    run.guard.note('migration', `the downtime trace was not read: ${describeError(err)}`);
    return undefined;
  });
  const [s, d] = texts ?? [];
  if (s === undefined || d === undefined) return;
  // The two files are stamped by two hosts' clocks: the destination's offset from the source's is removed.
  const offset = sideOffsetMs(run.out.clocks?.before, 'destination') - sideOffsetMs(run.out.clocks?.before, 'source');
  const b = downtimeBreakdown(parseDowntimeTrace(s), parseDowntimeTrace(d), offset);
  if (b) run.out.downtimeTrace = b;
}

/** After a switchover: the destination runs, the guest's heartbeat goes on, its workload is intact. */
async function verifyDestination(run: VerifyRun, { src, dst, slot }: Booted, { agent, probe, capture }: Instrumented): Promise<void> {
  const { scenario, guard } = run;
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
  await sleep(3 * slot.machine.heartbeatMs, guard.signal);
  const hb = heartbeatContinuity(src.console.beats, dst.console.beats);
  run.out.heartbeat = hb;
  run.out.eventDowntimeMs = switchoverMs(run.events);
  const clocks = run.out.clocks;
  if (clocks && clocks.method !== 'one-clock') {
    clocks.after = (await measureOffsets(run.lab, guard.signal)).offsets;
    if (run.out.eventDowntimeMs !== undefined) run.out.eventDowntimeUncorrectedMs = uncorrectedSwitchoverMs(run.out.eventDowntimeMs, clocks.before);
  }
  if (probe) {
    // The silence of the switchover, not any other hiccup of a busy host (downtimes.ts); the
    // probe's times are the client host's clock.
    const clientBase = guard.migrateSentAt + (clocks?.before.clientOffsetMs ?? 0);
    const within = clientDowntimeWindow(run.events, clientBase);
    const probeRun = await probe.stop({ within, timeoutMs: 15000, signal: guard.signal });
    const { rows: _rows, meta: _meta, ...figures } = probeRun;
    run.out.clientProbe = figures;
    // A silence still going on when probing stopped has no length to give: the client lost the
    // guest (summary and report say so); its longest closed gap would understate it.
    const lost = figures.silentAtEndMs !== null && figures.silentAtEndMs > (figures.longestGapMs ?? 0);
    run.out.clientDowntimeMs = lost ? undefined : (figures.longestGapMs ?? undefined);
    if (!lost && capture) run.out.clientSilence = await readClientSilence(run, capture, probeRun, clientBase);
  }
  if (scenario.workload.kind !== 'idle') {
    // The workload ran on across the switchover: its state moved with the guest's memory.
    run.out.workloadAfter = await stopWorkload(agent, scenario.workload, { signal: guard.signal });
    const integrity = await verifyIntegrity(agent, scenario.workload, { signal: guard.signal });
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
async function verifySource(run: VerifyRun, { src }: Booted, { agent }: Instrumented): Promise<void> {
  const { scenario, guard } = run;
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
  if (scenario.workload.kind !== 'idle' && beat) {
    run.out.workloadAfter = await stopWorkload(agent, scenario.workload, { signal: guard.signal });
    const integrity = await verifyIntegrity(agent, scenario.workload, { signal: guard.signal });
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
