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
// The source's connect waits out an outage by itself (TCP retries the SYN), so one resume usually
// suffices; it is sent again only when QEMU says the last one failed.
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

/** One post-copy recovery, as the record keeps it (times in ms since the migrate command). */
export interface PostcopyRecovery {
  /** Why it was needed. */
  readonly trigger: string;
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
  /** Says so when a side's QEMU has exited: nothing can be recovered then. */
  readonly gone?: () => string | undefined;
}

const PAUSED = 'postcopy-paused';
/** The source is moving pages again, or finished. */
const BACK: ReadonlySet<MigrationStatus> = new Set(['postcopy-active', 'completed']);

/**
 * Pause (where QEMU has not already), then recover and resume until the source is back in
 * post-copy or `withinMs` has passed. Never throws for QEMU's refusals: they go in the record.
 */
export async function recoverPostcopy(trigger: string, p: RecoveryParts): Promise<PostcopyRecovery> {
  const rec: PostcopyRecovery = { trigger, atMs: p.now(), attempts: [], ok: false, detail: '' };
  const deadline = rec.atMs + p.withinMs;
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

  // 1. Both sides paused.
  const first = await srcInfo();
  if (!(first instanceof Error) && first.status === 'postcopy-active') {
    const r = await call('migrate-pause on the source', () => p.source.pause());
    // Refused when QEMU paused it itself a moment before: what counts is the state below.
    if (r instanceof Error) p.progress?.(`migrate-pause on the source: ${r.message}`);
  }
  const pauseAsked = p.now();
  let dstPaused = false;
  let srcPaused = false;
  while (!(srcPaused && dstPaused)) {
    if (left() <= 0) return finish(rec, false, `not paused on both sides within ${p.withinMs} ms (source ${srcPaused ? 'paused' : 'not paused'}, destination ${dstPaused ? 'paused' : 'not paused'})`);
    const s = await srcInfo();
    const gone = p.gone?.();
    if (gone) return finish(rec, false, gone);
    if (!(s instanceof Error) && s.status === 'completed') return finish(rec, true, 'the migration completed before it could be paused');
    if (!(s instanceof Error) && (s.status === 'failed' || s.status === 'cancelled')) return finish(rec, false, `QEMU ended the migration ${s.status}${s.errorDesc ? `: ${s.errorDesc}` : ''}`);
    srcPaused = !(s instanceof Error) && s.status === PAUSED;
    const d = await dstStatus();
    dstPaused = d === PAUSED;
    // A cut link hides the source's close from the destination: pause it from its own monitor.
    if (d === 'postcopy-active' && p.now() - pauseAsked > NOTICE_MS) await call('migrate-pause on the destination', () => p.destination.pause());
    if (!(srcPaused && dstPaused)) await sleep(POLL_MS, p.signal);
  }
  rec.pausedAtMs = p.now();
  p.progress?.(`post-copy paused on both sides after ${rec.pausedAtMs - rec.atMs} ms; recovering over ${p.uri}`);

  // 2. The destination listens again (once: asking twice is refused while it listens).
  for (;;) {
    const r = await call('migrate-recover on the destination', () => p.destination.recover(p.uri));
    if (!(r instanceof Error)) break;
    const gone = p.gone?.();
    if (gone) return finish(rec, false, gone);
    if (left() <= 0) return finish(rec, false, `the destination refused migrate-recover: ${r.message}`);
    await sleep(1000, p.signal);
  }

  // 3. Resume the source; again only when QEMU says the last try failed.
  for (;;) {
    const before = await srcInfo();
    const errorBefore = before instanceof Error ? undefined : before.errorDesc;
    const sent = await call('migrate resume on the source', () => p.source.resume(p.uri));
    const attempt = { atMs: p.now(), outcome: sent instanceof Error ? `refused: ${sent.message}` : 'sent' };
    rec.attempts.push(attempt);
    let leftPaused = false;
    for (;;) {
      if (left() <= 0) return finish(rec, false, `post-copy did not resume within ${p.withinMs} ms of the stall (${rec.attempts.length} resume${rec.attempts.length === 1 ? '' : 's'} sent)`);
      await sleep(POLL_MS, p.signal);
      const gone = p.gone?.();
      if (gone) return finish(rec, false, gone);
      const s = await srcInfo();
      if (s instanceof Error) continue;
      if (BACK.has(s.status)) {
        attempt.outcome = `resumed (${s.status})`;
        rec.recoveredAtMs = p.now();
        return finish(rec, true, `paused ${rec.pausedAtMs - rec.atMs} ms after the trigger, back in ${s.status} ${rec.recoveredAtMs - rec.pausedAtMs} ms later`);
      }
      if (s.status === 'failed' || s.status === 'cancelled') return finish(rec, false, `QEMU ended the migration ${s.status} while recovering${s.errorDesc ? `: ${s.errorDesc}` : ''}`);
      if (s.status !== PAUSED) leftPaused = true;
      // Back in paused after trying, or a new error on the record: this resume failed.
      const failed = sent instanceof Error || (s.status === PAUSED && (leftPaused || (s.errorDesc !== undefined && s.errorDesc !== errorBefore)));
      if (failed) {
        if (!(sent instanceof Error)) attempt.outcome = `failed${s.errorDesc ? `: ${s.errorDesc}` : ''}`;
        break;
      }
    }
    await sleep(1000, p.signal);
  }
}

function finish(rec: PostcopyRecovery, ok: boolean, detail: string): PostcopyRecovery {
  rec.ok = ok;
  rec.detail = detail;
  return rec;
}
