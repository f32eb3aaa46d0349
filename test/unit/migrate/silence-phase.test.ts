// readClientSilence: the client's silence that holds QEMU's RESUME is cut at STOP and RESUME, even
// when a busy host's later hiccup in the window is longer (the incidents then say which is which);
// a run whose silence cannot be cut gets no breakdown, and its incidents say why, with the times.
import { describe, expect, it } from '@jest/globals';
import { analyzeProbe, type ProbeRow } from '../../../src/guest/probe.js';
import { RunGuard } from '../../../src/migrate/guard.js';
import { readClientSilence } from '../../../src/migrate/phases/silence.js';
import type { EventRecord } from '../../../src/migrate/report.js';

const BASE = 1_700_000_000_000;
const events = [
  { tMs: 600, side: 'source', event: 'STOP' },
  { tMs: 640, side: 'destination', event: 'RESUME' },
] as EventRecord[];
const noCapture = { none: 'no capture in this test' };
const ns = (ms: number) => BigInt(BASE + ms) * 1_000_000n;

/** A probe every 20 ms from 0 to 1000 ms after the migrate command, answered 1 ms later except in the `silent` spans. */
function probe(...silent: [number, number][]) {
  const rows: ProbeRow[] = [];
  for (let t = 0, seq = 0; t <= 1000; t += 20, seq++) {
    const lost = silent.some(([a, b]) => t >= a && t < b);
    rows.push({ seq, sentNs: ns(t), recvNs: lost ? undefined : ns(t + 1), guestMonoNs: undefined });
  }
  return { ...analyzeProbe(rows, { within: { fromMs: BASE + 550, toMs: BASE + 1000 } }), rows };
}

describe('readClientSilence', () => {
  it('cuts the silence that holds RESUME: from the last reply before it to the first after', async () => {
    const guard = new RunGuard();
    const s = await readClientSilence({ guard, events }, noCapture, probe([600, 700]), BASE);
    expect(s?.totalMs).toBeCloseTo(120, 6);
    expect(s?.segments.map((x) => [x.key, x.ms])).toEqual([
      ['beforeStop', 19],
      ['paused', 40],
      ['reply', 61],
    ]);
    expect(guard.incidents).toEqual([]);
  });

  it("cuts the switchover's silence when a later hiccup in the window is longer, and says so", async () => {
    const guard = new RunGuard();
    const p = probe([600, 700], [720, 900]);
    expect(p.longestGapMs).toBeCloseTo(200, 6);
    const s = await readClientSilence({ guard, events }, noCapture, p, BASE);
    expect(s?.totalMs).toBeCloseTo(120, 6);
    expect(guard.incidents.map((i) => i.what)).toEqual([
      "the probe's longest silence in the switchover's window (200.0 ms from 701.0 ms after the migrate command) is not the one that holds QEMU's RESUME (120.0 ms from 581.0 ms): the breakdown is of the second",
    ]);
  });

  it('says why when no reply came after RESUME, or an event is missing', async () => {
    const guard = new RunGuard();
    expect(await readClientSilence({ guard, events }, noCapture, probe([600, 2000]), BASE)).toBeUndefined();
    expect(await readClientSilence({ guard, events: events.slice(0, 1) }, noCapture, probe([600, 700]), BASE)).toBeUndefined();
    expect(guard.incidents.map((i) => i.what)).toEqual([
      "the client's silence was not broken down: the probe had no reply after QEMU's RESUME",
      "the client's silence was not broken down: no RESUME event from the destination",
    ]);
  });
});
