// readClientSilence: a run whose probe gap cannot be cut at QEMU's STOP and RESUME gets no
// breakdown, and its incidents say why, with the times, so that a missing figure is explained.
import { describe, expect, it } from '@jest/globals';
import type { ProbeResult } from '../../../src/guest/probe.js';
import { RunGuard } from '../../../src/migrate/guard.js';
import { readClientSilence } from '../../../src/migrate/phases/silence.js';
import type { EventRecord } from '../../../src/migrate/report.js';

const BASE = 1_700_000_000_000;
const events = [
  { tMs: 600, side: 'source', event: 'STOP' },
  { tMs: 640, side: 'destination', event: 'RESUME' },
] as EventRecord[];
const probe = (startMs: number, endMs: number) => ({ longestGapStartMs: BASE + startMs, longestGapEndMs: BASE + endMs }) as ProbeResult;
const noCapture = { none: 'no capture in this test' };

describe('readClientSilence', () => {
  it('cuts a gap that holds RESUME', async () => {
    const guard = new RunGuard();
    const s = await readClientSilence({ guard, events }, noCapture, probe(598, 700), BASE);
    expect(s?.totalMs).toBeCloseTo(102, 6);
    expect(guard.incidents).toEqual([]);
  });

  it("says why when the probe's longest gap does not hold QEMU's RESUME, or an event is missing", async () => {
    const guard = new RunGuard();
    expect(await readClientSilence({ guard, events }, noCapture, probe(700, 900), BASE)).toBeUndefined();
    expect(await readClientSilence({ guard, events: events.slice(0, 1) }, noCapture, probe(598, 700), BASE)).toBeUndefined();
    expect(guard.incidents.map((i) => i.what)).toEqual([
      "the client's silence was not broken down: the probe's longest gap (700.0 ms to 900.0 ms after the migrate command) does not hold QEMU's RESUME (640.0 ms; STOP 600.0 ms)",
      "the client's silence was not broken down: no RESUME event from the destination",
    ]);
  });
});
