import { analyzeProbe, parseProbeCsv, type ProbeRow } from '../../../src/guest/probe.js';

const T0 = 1_718_000_000_000_000_000n; // epoch ns of probe 0
const MS = 1_000_000n;

/** 1 kHz probes, reply after 0.3 ms (guest clock advancing with the host's), `lost` unanswered. */
function rows(n: number, lost: (seq: number) => boolean, extraDelayNs: (seq: number) => bigint = () => 0n): ProbeRow[] {
  return Array.from({ length: n }, (_, seq) => {
    const sentNs = T0 + BigInt(seq) * MS;
    if (lost(seq)) return { seq, sentNs, recvNs: undefined, guestMonoNs: undefined };
    const recvNs = sentNs + 300_000n + extraDelayNs(seq);
    return { seq, sentNs, recvNs, guestMonoNs: 5_000_000_000n + (recvNs - T0) - 150_000n };
  });
}

describe('analyzeProbe', () => {
  it('finds a 250 ms silence with 250 probes lost in it', () => {
    // Probes 300..549 get no reply: the last reply before is probe 299's (at 299.3 ms), the first
    // after is probe 550's (at 550.3 ms): a gap of 251 ms.
    const r = analyzeProbe(rows(1000, (s) => s >= 300 && s < 550), { intervalUs: 1000 });
    expect(r).toMatchObject({ sent: 1000, received: 750, lost: 250, intervalMs: 1, resolutionMs: 1, lostAroundGap: 250 });
    expect(r.longestGapMs).toBeCloseTo(251, 9);
    expect(r.longestGapStartMs).toBeCloseTo(1_718_000_000_000 + 299.3, 3);
    expect(r.longestGapEndMs).toBeCloseTo(1_718_000_000_000 + 550.3, 3);
    expect(r.rttP50Ms).toBeCloseTo(0.3, 9);
    expect(r.rttMaxMs).toBeCloseTo(0.3, 9);
    // The guest answered probe 299 and then probe 550: its clock moved 251 ms in between.
    expect(r.guestGapMs).toBeCloseTo(251, 9);
    expect(r.firstSentMs).toBe(1_718_000_000_000);
    expect(r.lastSentMs).toBe(1_718_000_000_999);
  });

  it('counts probes answered late (queued during a pause) as received, with their round trip', () => {
    // The guest stops at 100 ms for 50 ms; probes 100..149 are queued and answered at 150.3 ms.
    const r = analyzeProbe(
      rows(200, () => false, (s) => (s >= 100 && s < 150 ? BigInt(150 - s) * MS : 0n)),
      { intervalUs: 1000 },
    );
    expect(r.lost).toBe(0);
    expect(r.lostAroundGap).toBe(0);
    expect(r.longestGapMs).toBeCloseTo(51, 9); // 99.3 -> 150.3
    expect(r.rttMaxMs).toBeCloseTo(50.3, 9);
    expect(r.rttP50Ms).toBeCloseTo(0.3, 9);
    // The slow ones took 1.3, 2.3, ... 50.3 ms; p99 of 200 values is the 198th smallest, so
    // the 48th slow one (48.3 ms).
    expect(r.rttP99Ms).toBeCloseTo(48.3, 9);
  });

  it('takes the longest gap within a window instead of the longest overall', () => {
    const r = analyzeProbe(rows(1000, (s) => (s >= 100 && s < 400) || (s >= 700 && s < 720)), {
      intervalUs: 1000,
      within: { fromMs: 1_718_000_000_000 + 690, toMs: 1_718_000_000_000 + 750 },
    });
    expect(r.longestGapMs).toBeCloseTo(21, 9);
    expect(r.lostAroundGap).toBe(20);
    // A reply in flight when the guest stopped (a 1 ms gap right at the window's start) does not
    // hide the silence that follows it.
    const late = analyzeProbe(rows(1000, (s) => s >= 701 && s < 720), { intervalUs: 1000, within: { fromMs: 1_718_000_000_000 + 700.5, toMs: 1_718_000_000_000 + 900 } });
    expect(late.longestGapMs).toBeCloseTo(20, 9);
    expect(analyzeProbe(rows(1000, (s) => (s >= 100 && s < 400) || (s >= 700 && s < 720))).longestGapMs).toBeCloseTo(301, 9);
  });

  it('says when the client never heard the guest again: a silence still going on when probing stopped', () => {
    // The guest answered until probe 299, then never again through probe 999: 700 ms unanswered.
    const r = analyzeProbe(rows(1000, (s) => s >= 300), { intervalUs: 1000 });
    expect(r.unansweredAtEnd).toBe(700);
    expect(r.silentAtEndMs).toBeCloseTo(999 - 299.3, 6);
    // The closed gaps before it are tiny: the longest gap alone would have read 1 ms.
    expect(r.longestGapMs).toBeCloseTo(1, 9);
    // A few probes in flight when the tool stopped are no silence.
    const inFlight = analyzeProbe(rows(1000, (s) => s >= 995), { intervalUs: 1000 });
    expect(inFlight.unansweredAtEnd).toBe(5);
    expect(inFlight.silentAtEndMs).toBeNull();
    // Nor is a silence that ended: replies resumed before probing stopped.
    expect(analyzeProbe(rows(1000, (s) => s >= 300 && s < 550), { intervalUs: 1000 }).silentAtEndMs).toBeNull();
  });

  it('derives the interval from the send times when not told, and copes with no replies', () => {
    const r = analyzeProbe(rows(10, () => true));
    expect(r).toMatchObject({ sent: 10, received: 0, lost: 10, intervalMs: 1, longestGapMs: null, rttP50Ms: null, guestGapMs: null, lostAroundGap: 0 });
    expect(analyzeProbe([])).toMatchObject({ sent: 0, intervalMs: 0, firstSentMs: null });
  });
});

describe('parseProbeCsv', () => {
  it('reads the settings line, the header and rows with and without replies', () => {
    const text = [
      '# miglab-probe ping target=10.77.0.100:7777 interval_us=1000 duration_ms=1500 realtime_minus_monotonic_ns=1718000000000000000 sent=3 received=2 stopped_by=signal',
      'seq,sent_ns,recv_ns,guest_mono_ns',
      '0,1718000000000000000,1718000000000312000,5123456789',
      '1,1718000000001000000,,',
      '2,1718000000002000000,1718000000002400000,5125456789',
      '',
    ].join('\n');
    const { meta, rows: r } = parseProbeCsv(text);
    expect(meta).toMatchObject({ interval_us: '1000', sent: '3', stopped_by: 'signal', target: '10.77.0.100:7777' });
    expect(r).toEqual([
      { seq: 0, sentNs: 1718000000000000000n, recvNs: 1718000000000312000n, guestMonoNs: 5123456789n },
      { seq: 1, sentNs: 1718000000001000000n, recvNs: undefined, guestMonoNs: undefined },
      { seq: 2, sentNs: 1718000000002000000n, recvNs: 1718000000002400000n, guestMonoNs: 5125456789n },
    ]);
  });

  it('rejects a line that is not a probe row, naming it', () => {
    expect(() => parseProbeCsv('seq,sent_ns,recv_ns,guest_mono_ns\n0,1,2\n')).toThrow(/line 2/);
  });

  it('parses 60 000 rows quickly', () => {
    const lines = ['seq,sent_ns,recv_ns,guest_mono_ns'];
    for (let i = 0; i < 60_000; i++) lines.push(`${i},${T0 + BigInt(i) * MS},${T0 + BigInt(i) * MS + 300_000n},${5_000_000_000 + i * 1_000_000}`);
    const t = Date.now();
    const { rows: r } = parseProbeCsv(lines.join('\n'));
    const res = analyzeProbe(r, { intervalUs: 1000 });
    expect(res.received).toBe(60_000);
    expect(res.longestGapMs).toBeCloseTo(1, 9);
    expect(Date.now() - t).toBeLessThan(3000);
  });
});
