// Where the client's silence in a switchover went: the probe's longest gap cut at the moments
// that happen inside it, each measured on the one clock of the embedded lab:
// - the source's STOP and the destination's RESUME (QEMU's events): before STOP the probe's last
//   answer was still on its way; between them the guest is paused;
// - QEMU's first self-announce at the switch's port to the destination (a RARP with the guest's
//   MAC: the switch learns the new port from it);
// - the guest's own first frame from the destination (its gratuitous ARP, or its first answer);
// - the probe's first answer after the gap.
// A moment not seen (no capture, QEMU's announce off) leaves its segment to the next one, so the
// segments always add up to the silence. Pure: the caller gathers the moments.
import type { SwitchFrame } from '../measure/switch-capture.js';

export const SILENCE_SEGMENTS = [
  { key: 'beforeStop', label: "the probe's last answer to the source's STOP" },
  { key: 'paused', label: "QEMU's pause: STOP to RESUME" },
  { key: 'announce', label: "RESUME to QEMU's first announce at the switch" },
  { key: 'guestFirst', label: "to the guest's first frame from the destination" },
  { key: 'reply', label: "to the probe's first answer" },
] as const;

export type SilenceSegmentKey = (typeof SILENCE_SEGMENTS)[number]['key'];

export interface SilenceSegment {
  readonly key: SilenceSegmentKey;
  readonly label: string;
  readonly ms: number;
}

/** The moments, in ms from the source's STOP (negative: before it). */
export interface SilenceMoments {
  /**
   * The probe's last answer before the gap. It may come after STOP (up to about 10 ms seen on a
   * busy host): the probe stamps an answer when it reads it, and one sent before the pause may be
   * read late; the pause stretch then starts at it, and is that much shorter than STOP->RESUME.
   */
  readonly lastReplyMs: number;
  readonly resumeMs: number;
  /** QEMU's first RARP at the switch's port; undefined: none seen. */
  readonly announceMs?: number;
  /** How many RARPs the capture saw from RESUME to its end (QEMU's announce rounds, as far as seen). */
  readonly announces: number;
  /** How long after RESUME the capture went on (its last frame): the window `announces` counts in. */
  readonly capturedAfterResumeMs?: number;
  /** The first request the switch forwarded to the destination's port after RESUME: it had learned. */
  readonly forwardedMs?: number;
  /** The guest's first frame of its own (not QEMU's RARP) from the destination. */
  readonly guestFirstMs?: number;
  readonly firstReplyMs: number;
}

export interface ClientSilence {
  /** The probe's longest gap, which the segments add up to. */
  readonly totalMs: number;
  readonly segments: readonly SilenceSegment[];
  readonly moments: SilenceMoments;
  /** Where the frames were seen, or why there were none. */
  readonly capture: { readonly port: string } | { readonly none: string };
}

export interface SilenceInput {
  /** Epoch ms: the probe's reply before and after its longest gap. */
  readonly gapStartMs: number;
  readonly gapEndMs: number;
  /** Epoch ms of the source's STOP and the destination's RESUME. */
  readonly stopMs: number;
  readonly resumeMs: number;
  readonly frames?: readonly SwitchFrame[];
  readonly capture: ClientSilence['capture'];
}

/** Cut the probe's silence at the moments inside it; undefined when the gap is not the switchover's (it must hold RESUME). */
export function clientSilence(i: SilenceInput): ClientSilence | undefined {
  if (!(i.gapEndMs > i.gapStartMs) || i.resumeMs < i.stopMs || i.gapEndMs < i.resumeMs || i.gapStartMs > i.resumeMs) return undefined;
  // The direction comes from the MACs (the guest's as source: from it). The source's guest is
  // stopped from STOP on, so a frame with its MAC after RESUME is the destination's, never one the
  // switch flooded from the source's port: only frames after RESUME are looked at.
  const after = (f: SwitchFrame) => f.tMs >= i.resumeMs && f.tMs <= i.gapEndMs;
  const frames = i.frames ?? [];
  const rarps = frames.filter((f) => f.direction === 'from-guest' && f.kind === 'rarp' && f.tMs >= i.resumeMs);
  const announce = rarps.find(after);
  const guestFirst = frames.find((f) => after(f) && f.direction === 'from-guest' && f.kind !== 'rarp');
  const forwarded = frames.find((f) => after(f) && f.direction === 'to-guest');
  const ends: Record<SilenceSegmentKey, number | undefined> = {
    beforeStop: i.stopMs,
    paused: i.resumeMs,
    announce: announce?.tMs,
    guestFirst: guestFirst?.tMs,
    reply: i.gapEndMs,
  };
  const segments: SilenceSegment[] = [];
  let from = i.gapStartMs;
  for (const s of SILENCE_SEGMENTS) {
    const end = ends[s.key];
    if (end === undefined) continue;
    // A moment before the last one (a reply already on its way when the guest stopped) adds nothing.
    const to = Math.min(Math.max(end, from), i.gapEndMs);
    segments.push({ key: s.key, label: s.label, ms: round3(to - from) });
    from = to;
  }
  const rel = (t: number | undefined) => (t === undefined ? undefined : round3(t - i.stopMs));
  return {
    totalMs: round3(i.gapEndMs - i.gapStartMs),
    segments,
    moments: {
      lastReplyMs: rel(i.gapStartMs)!,
      resumeMs: rel(i.resumeMs)!,
      announceMs: rel(announce?.tMs),
      announces: rarps.length,
      // A loop, not Math.max(...frames): up to 20,000 frames as arguments can overflow the stack.
      capturedAfterResumeMs: frames.length > 0 ? round3(frames.reduce((m, f) => Math.max(m, f.tMs), -Infinity) - i.resumeMs) : undefined,
      forwardedMs: rel(forwarded?.tMs),
      guestFirstMs: rel(guestFirst?.tMs),
      firstReplyMs: rel(i.gapEndMs)!,
    },
    capture: i.capture,
  };
}

function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** One line: "181.8 ms = 1.0 before STOP + 48.1 paused + 0.1 to the announce + ...". */
export function silenceLine(s: ClientSilence): string {
  const short: Record<SilenceSegmentKey, string> = {
    beforeStop: 'before STOP',
    paused: 'paused (STOP->RESUME)',
    announce: "to QEMU's announce",
    guestFirst: "to the guest's first frame",
    reply: 'to the first answer',
  };
  // The probe read its last answer after STOP: the pause stretch is from it, not from STOP.
  if (s.moments.lastReplyMs > 0) short.paused = `paused (the last answer, ${s.moments.lastReplyMs.toFixed(1)} after STOP, to RESUME)`;
  return `${s.totalMs.toFixed(1)} ms = ${s.segments.filter((g) => !(g.key === 'beforeStop' && s.moments.lastReplyMs > 0)).map((g) => `${g.ms.toFixed(1)} ${short[g.key]}`).join(' + ')}`;
}
