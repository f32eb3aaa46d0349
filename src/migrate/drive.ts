// The migration phase of a run: sample the migration through the chosen monitor until it ends,
// show each sample as the run's live figure, feed every sample to the run's faults, switch to
// post-copy when asked, and end it when it will not. In pre-copy: no byte moving for the stall
// limit (stalled) or not converged by the deadline (did-not-converge), and miglab cancels it: the
// source keeps running. In post-copy nothing can be cancelled: a stall is paused and recovered
// (postcopy-recovery.ts), or the guest is lost (postcopy-lost). Every wait uses the run's guard,
// so a watcher's alarm ends this loop at once.
import { MiglabError } from '../errors.js';
import type { FaultRunner } from '../fault/runner.js';
import { isFinalMigrationStatus, type MigrationInfo } from '../migration/info.js';
import type { MigrationLive, Progress } from '../progress/progress.js';
import { sleep, withDeadline } from '../util/deadline.js';
import { detectStall, type StallEvidence } from './figures.js';
import type { RunGuard } from './guard.js';
import type { MigrationDriver } from './monitor.js';
import { sampleOf, type Sample } from './report.js';
import type { Scenario } from './scenario.js';
import type { PolicyRun, SwitchoverDecision } from '../switchover/policies.js';
import { recoverPostcopy, type PostcopyRecovery, type RecoveryParts } from './postcopy-recovery.js';

/** A monitor call that hangs this long names the hang (QEMU's main loop is blocked). */
export const CALL_MS = 12000;
/** How long QEMU may take to reach `cancelled` after migrate_cancel. */
const CANCEL_MS = 30000;
/** The send rate shown live is taken over about this much of the newest samples. */
const RATE_WINDOW_MS = 1000;

/** A run recovers a broken post-copy at most this often (a link that keeps failing is not waited out for ever). */
const MAX_RECOVERIES = 5;
/** Statuses of a migration in post-copy: it can no longer be cancelled, only paused and recovered. */
const POSTCOPY: ReadonlySet<string> = new Set(['postcopy-device', 'postcopy-active', 'postcopy-paused', 'postcopy-recover', 'postcopy-recover-setup']);

/** final: QEMU ended it; deadline, stall: miglab cancelled it; postcopy-lost: a broken post-copy was not recovered (the guest is split between the hosts). */
export type DriveEnd = 'final' | 'deadline' | 'stall' | 'postcopy-lost';

export interface DriveResult {
  /** QEMU's last record: completed, failed or cancelled; after postcopy-lost, the post-copy status it was left in. */
  readonly final: MigrationInfo;
  /** Why the loop ended: QEMU reached a final status by itself, or miglab cancelled it. */
  readonly end: DriveEnd;
  readonly stall?: StallEvidence;
  readonly postcopyAtMs?: number;
  /** Each time a broken post-copy was paused and recovered (or not). */
  readonly recoveries?: readonly PostcopyRecovery[];
}

export interface DriveOptions {
  readonly driver: MigrationDriver;
  readonly scenario: Scenario;
  readonly guard: RunGuard;
  readonly faults: FaultRunner;
  /** Samples are appended here as they come, so a run that ends early keeps them. */
  readonly timeline: Sample[];
  readonly progress: Progress;
  /** Epoch ms when the migrate command was sent: t = 0 of every sample. */
  readonly sentAt: number;
  /** The source's MIGRATION event already said completed (its monitor may be gone since). */
  readonly completedByEvent: () => boolean;
  /** The switchover policy: fed every sample; what it decides is done here and recorded through onDecision. */
  readonly policy?: PolicyRun;
  readonly onDecision?: (d: SwitchoverDecision) => void;
  /** When pass `pass` began (the source's MIGRATION_PASS event, ms since the migrate command), if its event has come. */
  readonly passStartedAt?: (pass: number) => number | undefined;
  /** What recovering a broken post-copy needs beyond the source's driver. */
  readonly recovery?: Pick<RecoveryParts, 'destination' | 'uri' | 'gone' | 'connectPending'> & {
    /** The destination has started the guest (its RESUME event): only then can QEMU recover. */
    readonly destinationRuns: () => boolean;
  };
  /** miglab asked for post-copy (migrate-start-postcopy; ms since the migrate command). */
  readonly onPostcopy?: (atMs: number) => void;
  /** QEMU was first seen in post-copy (a sample's status). */
  readonly onPostcopyEntered?: (atMs: number) => void;
  /** Each recovery as it ends (the run's record keeps it). */
  readonly onRecovery?: (r: PostcopyRecovery) => void;
}

function query(o: DriveOptions, what = 'query-migrate'): Promise<MigrationInfo> {
  return withDeadline(`${what} on the source's ${o.driver.kind.toUpperCase()} monitor`, o.driver.info(), { timeoutMs: CALL_MS, signal: o.guard.signal });
}

function mib(bytes: number | undefined): string {
  return bytes === undefined ? '?' : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * The live figure of a migration, from the samples the loop keeps anyway (no extra monitor
 * call): status, pass, what is left, the send rate over the last second of samples, and the
 * dirty rate once QEMU has measured it (the sample leaves it out before).
 */
export function migrationLive(timeline: readonly Sample[], info: MigrationInfo, deadlineAt: number): MigrationLive {
  const last = timeline[timeline.length - 1];
  let sentBytesPerS: number | undefined;
  if (last?.transferredBytes !== undefined) {
    // The newest sample at least a window older, else the oldest there is (walking back only that far).
    let from: Sample | undefined;
    for (let i = timeline.length - 2; i >= 0; i--) {
      const s = timeline[i]!;
      if (s.transferredBytes === undefined) continue;
      from = s;
      if (s.tMs <= last.tMs - RATE_WINDOW_MS) break;
    }
    if (from?.transferredBytes !== undefined && from.tMs < last.tMs) sentBytesPerS = ((last.transferredBytes - from.transferredBytes) * 1000) / (last.tMs - from.tMs);
  }
  return {
    kind: 'migration',
    status: info.status,
    pass: last?.dirtySyncCount,
    remainingBytes: last?.remainingBytes,
    sentBytesPerS,
    dirtyPagesPerS: last?.dirtyPagesRate,
    pageSizeBytes: info.ram?.pageSizeBytes,
    deadlineAt,
  };
}

export async function driveMigration(o: DriveOptions): Promise<DriveResult> {
  try {
    return await drive(o);
  } finally {
    // The migration's live figure goes with it, however the loop ended.
    o.progress.live?.({ topic: 'run' });
  }
}

async function drive(o: DriveOptions): Promise<DriveResult> {
  const { scenario, guard } = o;
  let postcopyAtMs: number | undefined;
  let lastSync: number | undefined;
  const recoveries: PostcopyRecovery[] = [];
  // Stalls are looked for from here on: after a recovery, not in the pause it ended.
  let stallFromMs = 0;
  let waitedFor: string | undefined;
  let enteredAtMs: number | undefined;
  // When the current trouble in post-copy began (a stall, or QEMU's pause); cleared when bytes move.
  let troubleSinceMs: number | undefined;
  const deadlineAt = o.sentAt + scenario.timeoutMs;
  const lost = async (info: MigrationInfo, rec: PostcopyRecovery): Promise<DriveResult> => {
    recoveries.push(rec);
    o.onRecovery?.(rec);
    guard.note('migration', `post-copy not recovered: ${rec.detail}`);
    o.progress('migrate', `post-copy not recovered: ${rec.detail}`);
    return { final: await query(o).catch(() => info), end: 'postcopy-lost', postcopyAtMs, recoveries };
  };

  /**
   * One sample in post-copy, past the point of no return: a stall or QEMU's own pause is
   * recovered, never cancelled. Where QEMU cannot recover it is waited for, up to the window; and
   * post-copy as a whole gets --timeout from its start. A result ends the loop.
   */
  const postcopyStep = async (info: MigrationInfo, tMs: number, since: number): Promise<DriveResult | undefined> => {
    if (tMs - since > scenario.timeoutMs) {
      return lost(info, { trigger: `post-copy not done ${scenario.timeoutMs} ms after it began`, atMs: tMs, attempts: [], ok: false, detail: `still ${info.status} at the deadline (--timeout counts post-copy from its start)` });
    }
    const paused = info.status === 'postcopy-paused';
    const stall = paused ? undefined : detectStall(o.timeline, scenario.postcopyStallMs, stallFromMs);
    if (!paused && !stall) {
      troubleSinceMs = undefined;
      return undefined;
    }
    const trigger = paused ? `QEMU paused post-copy${info.errorDesc ? `: ${info.errorDesc}` : ''}` : `no byte moved for ${stall!.forMs} ms in post-copy (${info.status})`;
    // The window counts from the first sign of trouble (a stall that became QEMU's pause is one).
    troubleSinceMs ??= stall?.sinceMs ?? tMs;
    const stalledAtMs = troubleSinceMs;
    const gone = o.recovery?.gone?.();
    if (gone) return lost(info, { trigger, atMs: stalledAtMs, attempts: [], ok: false, detail: gone });
    // Out of recoveries, a paused post-copy stays paused (lost now); a stalled one may still move by itself (waited for).
    const exhausted = !o.recovery ? 'no recovery possible here' : recoveries.length >= MAX_RECOVERIES ? `recovered ${recoveries.length} times already` : undefined;
    if (exhausted && paused) return lost(info, { trigger, atMs: stalledAtMs, attempts: [], ok: false, detail: exhausted });
    const notYet = exhausted ?? notRecoverable(info, o.recovery!);
    if (notYet) {
      // QEMU cannot be paused here without losing the guest; the stream may come back by itself
      // (TCP retries), so it is waited for, up to the window.
      if (waitedFor !== notYet) {
        guard.note('migration', `${trigger}, ${notYet}: waiting for the stream`);
        o.progress('migrate', `${trigger}, ${notYet}: waiting for the stream`);
        waitedFor = notYet;
      }
      if (tMs - stalledAtMs < scenario.postcopyRecoverWithinMs) return undefined;
      return lost(info, { trigger, atMs: stalledAtMs, attempts: [], ok: false, detail: `the stream did not come back within ${scenario.postcopyRecoverWithinMs} ms (${notYet})` });
    }
    guard.note('migration', trigger);
    o.progress('migrate', `${trigger}: pausing and recovering it`);
    const rec = await recoverPostcopy(trigger, stalledAtMs, {
      ...o.recovery!,
      source: o.driver,
      withinMs: scenario.postcopyRecoverWithinMs,
      now: () => Date.now() - o.sentAt,
      onSample: (i) => o.timeline.push(sampleOf(Date.now() - o.sentAt, i)),
      progress: (line) => o.progress('migrate', line),
      signal: guard.signal,
    });
    if (!rec.ok) return lost(info, rec);
    recoveries.push(rec);
    o.onRecovery?.(rec);
    guard.note('migration', `post-copy recovered: ${rec.detail}`);
    o.progress('migrate', `post-copy recovered: ${rec.detail}`);
    stallFromMs = Date.now() - o.sentAt;
    troubleSinceMs = undefined;
    return undefined;
  };

  for (;;) {
    let info: MigrationInfo;
    try {
      info = await query(o);
    } catch (err) {
      // The source QEMU went away after telling, by its own event, that it had completed: the
      // guest runs on the destination. QEMU's figures are gone with it; the events remain.
      if (o.completedByEvent() && err instanceof MiglabError && err.code === 'QMP_DISCONNECTED') return { final: { status: 'completed' }, end: 'final', postcopyAtMs, recoveries };
      throw err;
    }
    const tMs = Date.now() - o.sentAt;
    const sample = sampleOf(tMs, info);
    o.timeline.push(sample);
    o.progress.live?.({ topic: 'run', status: migrationLive(o.timeline, info, deadlineAt) });
    o.faults.observe({ tMs, status: info.status, pass: info.ram?.dirtySyncCount, totalBytes: info.ram?.totalBytes, remainingBytes: info.ram?.remainingBytes });
    if (isFinalMigrationStatus(info.status)) return { final: info, end: 'final', postcopyAtMs, recoveries };
    if (POSTCOPY.has(info.status)) {
      if (enteredAtMs === undefined) {
        enteredAtMs = tMs;
        // Pre-copy's flat samples are no post-copy stall.
        stallFromMs = Math.max(stallFromMs, tMs);
        o.onPostcopyEntered?.(tMs);
      }
      const step = await postcopyStep(info, tMs, enteredAtMs);
      if (step) return step;
      await sleep(scenario.sampleIntervalMs, guard.signal);
      continue;
    }

    // When the sample's pass began matters only on the first sample of a pass (the events are not
    // searched on every sample).
    const newPass = sample.dirtySyncCount !== undefined && sample.dirtySyncCount !== lastSync;
    lastSync = sample.dirtySyncCount;
    const decision = o.policy?.observe(sample, newPass ? o.passStartedAt?.(sample.dirtySyncCount!) : undefined);
    if (decision) {
      o.onDecision?.(decision);
      if (decision.action === 'set-downtime-limit') {
        await withDeadline('setting downtime-limit', o.driver.setParameters({ downtimeLimitMs: decision.downtimeLimitMs }), { timeoutMs: CALL_MS, signal: guard.signal });
        o.progress('switchover', `downtime-limit ${decision.downtimeLimitMs} ms: ${decision.why}`);
      }
    }
    const postcopyNow = decision?.action === 'start-postcopy' || (scenario.postcopyAfterMs !== undefined && tMs >= scenario.postcopyAfterMs);
    if (postcopyNow && postcopyAtMs === undefined && info.status === 'active') {
      await withDeadline('migrate-start-postcopy', o.driver.startPostcopy(), { timeoutMs: CALL_MS, signal: guard.signal });
      postcopyAtMs = tMs;
      o.onPostcopy?.(tMs);
      o.progress('migrate', `switched to post-copy after ${tMs} ms${decision?.action === 'start-postcopy' ? `: ${decision.why}` : ''}`);
    }
    const stall = detectStall(o.timeline, scenario.stallAfterMs);
    if (stall) {
      const why = `no byte moved for ${stall.forMs} ms (transferred stuck at ${mib(stall.transferredBytes)}, status ${stall.status})`;
      guard.note('stall', why);
      o.progress('migrate', `stalled: ${why}; cancelling, the source keeps running`);
      return { final: await cancel(o), end: 'stall', stall, postcopyAtMs, recoveries };
    }
    if (tMs > scenario.timeoutMs) {
      guard.note('migration', `not converged within ${scenario.timeoutMs} ms`);
      o.progress('migrate', `no convergence within ${scenario.timeoutMs} ms: cancelling, the source keeps running`);
      return { final: await cancel(o), end: 'deadline', postcopyAtMs, recoveries };
    }
    await sleep(scenario.sampleIntervalMs, guard.signal);
  }
}

/**
 * Why a stalled post-copy must not be paused now, if it must not. Measured: a pause before the
 * destination has started the guest fails the destination (its device state was still in flight:
 * 7.2 exits "loadvm failed: -5"); a pause once the source has sent its last page hangs 7.2's
 * source in postcopy-active, and fails 10.0's migration with the guest left running on both sides.
 */
function notRecoverable(info: MigrationInfo, recovery: NonNullable<DriveOptions['recovery']>): string | undefined {
  // QEMU's own pause is what recovery starts from; the rest is about pausing it ourselves.
  if (info.status === 'postcopy-paused') return undefined;
  if (info.status !== 'postcopy-active') return `QEMU is in ${info.status}, where it cannot be paused`;
  if (!recovery.destinationRuns()) return 'before the destination started the guest (QEMU cannot recover that)';
  if (info.ram?.remainingBytes === 0) return 'after the source sent its last page (QEMU cannot recover its completion)';
  return undefined;
}

/** Cancel, then sample until QEMU reports a final state (the samples go on the timeline). */
async function cancel(o: DriveOptions): Promise<MigrationInfo> {
  await withDeadline('migrate_cancel', o.driver.cancel(), { timeoutMs: CALL_MS, signal: o.guard.signal });
  return withDeadline(
    'waiting for the cancelled migration to stop',
    (async () => {
      for (;;) {
        const info = await query(o);
        o.timeline.push(sampleOf(Date.now() - o.sentAt, info));
        o.progress.live?.({ topic: 'run', status: migrationLive(o.timeline, info, o.sentAt + o.scenario.timeoutMs) });
        if (isFinalMigrationStatus(info.status)) return info;
        await sleep(50, o.guard.signal);
      }
    })(),
    { timeoutMs: CANCEL_MS, signal: o.guard.signal },
  );
}
