// The three downtimes of a run, defined in one place:
// - QEMU's: query-migrate's `downtime` on the source (figures.ts reads it; when QEMU's record is
//   gone or not filled in yet, its own event timestamps stand in, rounded as QEMU rounds);
// - the switchover as QEMU's events show it: from the source's STOP to the destination's RESUME,
//   both stamped by QEMU on this host's clock (a cross-check of QEMU's figure);
// - the client's: the longest silence of the 1 ms UDP probe inside the switchover window (from
//   just before STOP until a while after RESUME, since the switch must relearn where the guest's
//   MAC is), so another hiccup of a busy host is not counted as the migration's.
import type { EventRecord } from './report.js';

/** Before the source's STOP: the probe's last echo before the pause may be this much earlier. */
const WINDOW_BEFORE_STOP_MS = 50;
/** After the destination's RESUME: the guest's first packets after the switchover (ARP, the switch relearning). */
const WINDOW_AFTER_RESUME_MS = 2000;

function resumeOf(events: readonly EventRecord[]): EventRecord | undefined {
  return events.find((e) => e.side === 'destination' && e.event === 'RESUME');
}

/** The destination has started the guest (its RESUME): from then on the guest is the destination's. */
export function destinationResumed(events: readonly EventRecord[]): boolean {
  return resumeOf(events) !== undefined;
}

function stopAndResume(events: readonly EventRecord[]): { stop: EventRecord; resume: EventRecord } | undefined {
  const stop = events.find((e) => e.side === 'source' && e.event === 'STOP');
  const resume = resumeOf(events);
  return stop && resume && resume.tMs >= stop.tMs ? { stop, resume } : undefined;
}

/** The guest's pause as QEMU's events show it: source STOP to destination RESUME, in ms. */
export function switchoverMs(events: readonly EventRecord[]): number | undefined {
  const sr = stopAndResume(events);
  return sr ? sr.resume.tMs - sr.stop.tMs : undefined;
}

/** QEMU's downtime from its events, in whole ms as query-migrate gives it, when its figure is missing. */
export function downtimeFromEvents(events: readonly EventRecord[]): number | undefined {
  const ms = switchoverMs(events);
  return ms === undefined ? undefined : Math.round(ms);
}

/**
 * The window (epoch ms) in which the client probe's longest silence is the switchover's: from just
 * before the source's STOP to a while after the destination's RESUME. Undefined without both events.
 */
export function clientDowntimeWindow(events: readonly EventRecord[], migrateSentAtMs: number): { fromMs: number; toMs: number } | undefined {
  const sr = stopAndResume(events);
  if (!sr) return undefined;
  return { fromMs: migrateSentAtMs + sr.stop.tMs - WINDOW_BEFORE_STOP_MS, toMs: migrateSentAtMs + sr.resume.tMs + WINDOW_AFTER_RESUME_MS };
}
