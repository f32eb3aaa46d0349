// How far a host's clock is from the controller's, by Cristian's method: ask the host for its time
// (`date +%s%N`, in a conversation over its Host), and take the answer as read at the midpoint of sending and
// receiving. The truth lies within half the round trip of that, so the round trip with the
// smallest time bounds the offset best. `hosts check` reports it; runs measure it before and after
// to set STOP on one host against RESUME on another.
import type { Host } from '../host/host.js';
import type { LineSession } from '../host/line-session.js';
import { MiglabError } from '../errors.js';

export interface ClockOffset {
  /** The host's clock minus the controller's, in ms (positive: the host is ahead). */
  readonly offsetMs: number;
  /** The offset is within ± this of the truth. */
  readonly uncertaintyMs: number;
}

/** The controller's clocks: wall time to compare with, a monotonic one to time the round trip. */
export interface ControllerClock {
  wallMs(): number;
  monotonicMs(): number;
}

export const SYSTEM_CLOCK: ControllerClock = { wallMs: () => Date.now(), monotonicMs: () => performance.now() };

/** Date.now() counts whole ms: the true wall time is up to 1 ms after what it says. */
const WALL_STEP_MS = 1;

/** The host's wall clock as `date` prints it (ns since the epoch), in ms. */
function parseDateNs(stdout: string, host: Pick<Host, 'name'>): number {
  const text = stdout.trim();
  if (!/^\d{10,}$/.test(text)) throw new MiglabError('COMMAND_FAILED', `cannot read the clock of ${host.name}: date +%s%N printed "${text.slice(0, 40)}" (GNU date prints nanoseconds)`);
  // Split before converting: ns since the epoch do not fit a double exactly.
  return Number(text.slice(0, -6)) + Number(text.slice(-6)) / 1e6;
}

/**
 * The host answers each line with its clock: one program for all readings, so a reading costs a
 * round trip over an open channel (about a millisecond), not a new SSH command (tens of ms, most
 * of it before `date` even runs, which would widen the bound by as much).
 */
export const CLOCK_READER = ['sh', '-c', 'while read -r _; do date +%s%N; done'];

/** The best of `n` readings of `host`'s clock against the controller's (after one to warm up). */
export async function measureClockOffset(host: Host, n = 5, clock: ControllerClock = SYSTEM_CLOCK): Promise<ClockOffset> {
  const session = await host.converse(CLOCK_READER);
  try {
    return await readClockOffset(session, host, n, clock);
  } finally {
    await session.close();
  }
}

/**
 * The same over a clock reader already running on `host` (CLOCK_READER), which stays open: a
 * measurement then costs its readings only, not a new SSH command to start the reader.
 */
export async function readClockOffset(session: LineSession, host: Pick<Host, 'name'>, n = 5, clock: ControllerClock = SYSTEM_CLOCK): Promise<ClockOffset> {
  if (!Number.isInteger(n) || n < 1) throw new MiglabError('INTERNAL', `measureClockOffset needs at least one reading (got ${n})`);
  // The first answer pays for starting `date` the first time (page cache, dynamic linking).
  parseDateNs(await session.ask('t'), host);
  let best: ClockOffset | undefined;
  for (let i = 0; i < n; i++) {
    const sentWallMs = clock.wallMs();
    const sent = clock.monotonicMs();
    const answer = await session.ask('t');
    const roundTripMs = clock.monotonicMs() - sent;
    const hostMs = parseDateNs(answer, host);
    // The send time is known to a whole ms: take the middle of that ms and widen the bound by half of it.
    const midpointMs = sentWallMs + WALL_STEP_MS / 2 + roundTripMs / 2;
    const reading = { offsetMs: hostMs - midpointMs, uncertaintyMs: roundTripMs / 2 + WALL_STEP_MS / 2 };
    if (!best || reading.uncertaintyMs < best.uncertaintyMs) best = reading;
  }
  return best!;
}

/** `b`'s clock minus `a`'s, from each one's offset to the controller; the uncertainties add. */
export function offsetBetween(a: ClockOffset, b: ClockOffset): ClockOffset {
  return { offsetMs: b.offsetMs - a.offsetMs, uncertaintyMs: a.uncertaintyMs + b.uncertaintyMs };
}
