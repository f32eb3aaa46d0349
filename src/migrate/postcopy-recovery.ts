// Recovering a post-copy migration whose stream broke. Once post-copy has begun the guest runs on
// the destination while part of its memory is still on the source, so the migration cannot be
// cancelled (neither side holds the whole guest): QEMU instead pauses it, and a person (or
// libvirt's --postcopy-resume) recovers it once the network is back. miglab does what they do,
// as QEMU's docs/devel/migration/postcopy.rst describes:
//   1. pause: `migrate-pause` on the source shuts its sockets; the destination notices the broken
//      stream and pauses itself, or is paused the same way when the cut link hides the close;
//   2. `migrate-recover URI` on the destination: it listens again;
//   3. `migrate` with `resume: true` on the source (HMP `migrate -d -r URI`): it reconnects, the
//      two compare which pages the destination already has, and post-copy goes on.
// A resume sent while the link is still down fails (or waits out the outage, when the peer's
// address is still known); one that has not got through after a while is sent again.
import { describeError } from '../errors.js';
import type { MigrationInfo, MigrationStatus } from '../migration/info.js';
import { sleep, withDeadline } from '../util/deadline.js';
import type { MigrationDriver } from './monitor.js';

/** A monitor call that hangs this long is given up (a frozen QEMU), and tried again later. */
const CALL_MS = 5000;
/** How often both sides are looked at while recovering. */
const POLL_MS = 100;
/** The destination gets this long to notice the source's closed stream before it is paused too. */
const NOTICE_MS = 1000;
/** A side that has not paused is asked again after this long. */
const PAUSE_AGAIN_MS = 1000;
/**
 * A resume still paused this long after it was sent, with no connect of the source's still
 * pending, has failed (one that got through was back in postcopy-active 0.11 s after it was sent,
 * measured). While a connect is pending (7.2 stays in postcopy-paused then; 9.1 on says
 * postcopy-recover-setup) nothing is sent again: measured, a 12 s cut was bridged by the one
 * connect, through 1 s after the link returned; and by QEMU 7.2's source (its asserts in
 * migrate_fd_error and migrate_fd_connect; not tried here) a second resume beside a pending one
 * aborts the source once both connect.
 */
const ATTEMPT_MS = 10_000;
/** Between a failed resume and the next. */
const RETRY_MS = 1000;

/** One post-copy recovery, as the record keeps it (times in ms since the migrate command). */
export interface PostcopyRecovery {
  /** Why it was needed. */
  readonly trigger: string;
  /** When post-copy stopped moving (or QEMU paused it): the recovery window counts from here. */
  readonly atMs: number;
  /** Both sides were postcopy-paused. */
  pausedAtMs?: number;
  /** Each resume sent to the source, and what came of it. */
  readonly attempts: { atMs: number; outcome: string }[];
  /** The source was back in postcopy-active (or done). */
  recoveredAtMs?: number;
  ok: boolean;
  /** In words: how it went, or why it did not. */
  detail: string;
}

export interface RecoveryParts {
  /** The source's driver over the run's monitor (pause, resume). */
  readonly source: Pick<MigrationDriver, 'pause' | 'resume' | 'info'>;
  /** The destination's, over QMP. */
  readonly destination: { pause(): Promise<void>; recover(uri: string): Promise<void>; info(): Promise<MigrationInfo> };
  /** Where the destination listens again: the run's migration URI. */
  readonly uri: string;
  /** Give up this long after the trigger. */
  readonly withinMs: number;
  /** Ms since the migrate command. */
  readonly now: () => number;
  /** Each source record read while recovering (the run's timeline keeps them). */
  readonly onSample?: (info: MigrationInfo) => void;
  readonly progress?: (line: string) => void;
  readonly signal?: AbortSignal;
  /** A resume still paused this long after it was sent is sent again (default ATTEMPT_MS; tests shorten it). */
  readonly attemptMs?: number;
  /** Whether the source still has a connect to the destination pending (a SYN-SENT socket): then its resume has not failed yet. */
  readonly connectPending?: () => Promise<boolean>;
  /** The destination runs the guest: only then may it be paused (before, a pause fails it). */
  readonly destinationRuns?: () => boolean;
  /** Says so when a side's QEMU has exited: nothing can be recovered then. */
  readonly gone?: () => string | undefined;
}

const PAUSED = 'postcopy-paused';
/** The source is moving pages again, or finished. */
const BACK: ReadonlySet<MigrationStatus> = new Set(['postcopy-active', 'completed']);

/**
 * Pause (where QEMU has not already), then recover and resume until the source is back in
 * post-copy or `withinMs` from `stalledAtMs` has passed. Never throws for QEMU's refusals: they go
 * in the record.
 */
export async function recoverPostcopy(trigger: string, stalledAtMs: number, p: RecoveryParts): Promise<PostcopyRecovery> {
  const rec: PostcopyRecovery = { trigger, atMs: stalledAtMs, attempts: [], ok: false, detail: '' };
  const deadline = stalledAtMs + p.withinMs;
  const left = () => deadline - p.now();
  const call = async <T>(what: string, run: () => Promise<T>): Promise<T | Error> => {
    try {
      return await withDeadline(what, run(), { timeoutMs: Math.max(1, Math.min(CALL_MS, left())), signal: p.signal });
    } catch (err) {
      if (p.signal?.aborted) throw err;
      return err instanceof Error ? err : new Error(describeError(err));
    }
  };
  const srcInfo = async () => {
    const info = await call("the source's query-migrate", () => p.source.info());
    if (!(info instanceof Error)) p.onSample?.(info);
    return info;
  };
  const dstStatus = async () => {
    const info = await call("the destination's query-migrate", () => p.destination.info());
    return info instanceof Error ? undefined : info.status;
  };
  // A side still in postcopy-active is asked to pause at most once a second: a frozen monitor or a
  // close the cut link hides must not be asked every poll.
  const asked = { source: -Infinity, destination: -Infinity };
  const pause = async (side: 'source' | 'destination') => {
    if (p.now() - asked[side] < PAUSE_AGAIN_MS) return;
    asked[side] = p.now();
    const r = await call(`migrate-pause on the ${side}`, () => (side === 'source' ? p.source.pause() : p.destination.pause()));
    // Refused when QEMU paused it itself a moment before: what counts is the state read next.
    if (r instanceof Error) p.progress?.(`migrate-pause on the ${side}: ${r.message}`);
  };

  const pending = async () => {
    const r = p.connectPending ? await call("the source's pending connects", p.connectPending) : false;
    // Not known: taken as pending (a resume beside a pending one is the worse mistake).
    return r instanceof Error ? true : r;
  };

  // 1. Both sides paused. The destination first gets a moment to notice the source's close.
  let srcPaused = false;
  let dstPaused = false;
  const began = p.now();
  while (!(srcPaused && dstPaused)) {
    const gone = p.gone?.();
    if (gone) return finish(rec, false, gone);
    if (left() <= 0) return finish(rec, false, `not paused on both sides within ${p.withinMs} ms of the stall (source ${srcPaused ? 'paused' : 'not paused'}, destination ${dstPaused ? 'paused' : 'not paused'})`);
    const s = await srcInfo();
    if (!(s instanceof Error)) {
      if (s.status === 'completed') return finish(rec, true, 'the migration completed before it could be paused');
      if (s.status === 'failed' || s.status === 'cancelled') return finish(rec, false, `QEMU ended the migration ${s.status}${s.errorDesc ? `: ${s.errorDesc}` : ''}`);
      if (s.status === 'postcopy-active') await pause('source');
      srcPaused = s.status === PAUSED;
    }
    const d = await dstStatus();
    dstPaused = d === PAUSED;
    if (d === 'postcopy-active' && p.now() - began > NOTICE_MS && p.destinationRuns?.() !== false) await pause('destination');
    if (!(srcPaused && dstPaused)) await sleep(POLL_MS, p.signal);
  }
  rec.pausedAtMs = p.now();
  p.progress?.(`post-copy paused on both sides ${rec.pausedAtMs - rec.atMs} ms after it stalled; recovering over ${p.uri}`);

  // 2. and 3., until the source is back: the destination listens (again, if a resume that got
  // through broke once more: it paused again), then the source resumes. A resume counts as failed
  // when it is still paused ATTEMPT_MS later (7.2 leaves a failed connect in postcopy-paused, its
  // error text the same each time) or when QEMU says so sooner.
  for (;;) {
    const listening = await call('migrate-recover on the destination', () => p.destination.recover(p.uri));
    // Refused with "triggered already" while it still listens from the last try: that is fine.
    if (listening instanceof Error && !/already/i.test(listening.message)) p.progress?.(`migrate-recover on the destination: ${listening.message}`);
    const before = await srcInfo();
    const errorBefore = before instanceof Error ? undefined : before.errorDesc;
    const sent = await call('migrate resume on the source', () => p.source.resume(p.uri));
    const attempt = { atMs: p.now(), outcome: sent instanceof Error ? `refused: ${sent.message}` : 'sent' };
    rec.attempts.push(attempt);
    let leftPaused = false;
    for (;;) {
      const gone = p.gone?.();
      if (gone) return finish(rec, false, gone);
      if (left() <= 0) return finish(rec, false, `post-copy did not resume within ${p.withinMs} ms of the stall (${rec.attempts.length} resume${rec.attempts.length === 1 ? '' : 's'} sent; the last: ${attempt.outcome})`);
      await sleep(POLL_MS, p.signal);
      const s = await srcInfo();
      if (s instanceof Error) continue;
      if (BACK.has(s.status)) {
        attempt.outcome = `resumed (${s.status})`;
        rec.recoveredAtMs = p.now();
        return finish(rec, true, `paused ${rec.pausedAtMs - rec.atMs} ms after it stalled, running again ${rec.recoveredAtMs - rec.pausedAtMs} ms later`);
      }
      if (s.status === 'failed' || s.status === 'cancelled') return finish(rec, false, `QEMU ended the migration ${s.status} while recovering${s.errorDesc ? `: ${s.errorDesc}` : ''}`);
      if (s.status !== PAUSED) leftPaused = true;
      const said = s.errorDesc !== undefined && s.errorDesc !== errorBefore;
      const waitedOut = p.now() - attempt.atMs >= (p.attemptMs ?? ATTEMPT_MS) && !(await pending());
      const failed = sent instanceof Error || (s.status === PAUSED && (leftPaused || said || waitedOut));
      if (failed) {
        if (!(sent instanceof Error)) attempt.outcome = `failed${s.errorDesc ? `: ${s.errorDesc}` : ' (still paused)'}`;
        break;
      }
    }
    await sleep(RETRY_MS, p.signal);
  }
}

function finish(rec: PostcopyRecovery, ok: boolean, detail: string): PostcopyRecovery {
  rec.ok = ok;
  rec.detail = detail;
  return rec;
}
