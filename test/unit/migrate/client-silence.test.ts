// The client's silence cut into stretches (pure): the moments found among the frames, the stretches
// adding up to the gap, and a moment not seen leaving its stretch to the next.
import { clientSilence, silenceLine } from '../../../src/migrate/client-silence.js';
import type { SwitchFrame } from '../../../src/measure/switch-capture.js';

const T0 = 1_796_357_000_000;
const at = (ms: number, direction: SwitchFrame['direction'], kind: SwitchFrame['kind']): SwitchFrame => ({ tMs: T0 + ms, direction, kind });
const base = { gapStartMs: T0 - 2, gapEndMs: T0 + 95, stopMs: T0, resumeMs: T0 + 30, capture: { port: 'sw-dst' } };

describe('clientSilence', () => {
  test('the gap cut at STOP, RESUME, the announce, the guest\'s first frame and the first answer', () => {
    const frames = [
      at(-300, 'from-guest', 'ipv4'), // the source's guest, before the move: not the destination's
      at(30.1, 'from-guest', 'rarp'),
      at(30.6, 'to-guest', 'ipv4'),
      at(80.1, 'from-guest', 'rarp'),
      at(70, 'from-guest', 'arp'),
      at(95, 'from-guest', 'ipv4'),
      at(1500, 'from-guest', 'rarp'), // after the gap: counted among the announces, not a moment
    ];
    const s = clientSilence({ ...base, frames })!;
    expect(s.segments.map((g) => [g.key, g.ms])).toEqual([
      ['beforeStop', 2],
      ['paused', 30],
      ['announce', 0.1],
      ['guestFirst', 39.9],
      ['reply', 25],
    ]);
    expect(s.segments.reduce((a, g) => a + g.ms, 0)).toBeCloseTo(s.totalMs, 6);
    // Announces counted as far as the capture went (its last frame, 1470 ms after RESUME).
    expect(s.moments).toMatchObject({ lastReplyMs: -2, resumeMs: 30, announceMs: 30.1, announces: 3, capturedAfterResumeMs: 1470, forwardedMs: 30.6, guestFirstMs: 70, firstReplyMs: 95 });
    expect(silenceLine(s)).toBe("97.0 ms = 2.0 before STOP + 30.0 paused (STOP->RESUME) + 0.1 to QEMU's announce + 39.9 to the guest's first frame + 25.0 to the first answer");
  });

  test('without a capture the time after RESUME is one stretch, and the capture says why', () => {
    const s = clientSilence({ ...base, capture: { none: 'no switch' } })!;
    expect(s.segments.map((g) => g.key)).toEqual(['beforeStop', 'paused', 'reply']);
    expect(s.segments[2]!.ms).toBe(65);
    expect(s.capture).toEqual({ none: 'no switch' });
  });

  test('an answer the probe read after STOP starts the gap: nothing before STOP, the pause stretch from it, and the line says so', () => {
    const s = clientSilence({ ...base, gapStartMs: T0 + 2.5 })!;
    expect(s.segments[0]).toMatchObject({ key: 'beforeStop', ms: 0 });
    expect(s.segments[1]).toMatchObject({ key: 'paused', ms: 27.5 });
    expect(s.moments.lastReplyMs).toBe(2.5);
    expect(silenceLine(s)).toMatch(/^92\.5 ms = 27\.5 paused \(the last answer, 2\.5 after STOP, to RESUME\) \+ 65\.0 to the first answer$/);
  });

  test('a gap that ends before RESUME, or starts after it, is not the switchover\'s', () => {
    expect(clientSilence({ ...base, gapEndMs: T0 + 10 })).toBeUndefined();
    expect(clientSilence({ ...base, gapStartMs: T0 + 200, gapEndMs: T0 + 900 })).toBeUndefined();
  });
});
