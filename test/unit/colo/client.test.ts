// What the client's probe saw of a COLO run, and the command's options checked before anything starts.
import { describe, expect, it } from '@jest/globals';
import { clientFigures } from '../../../src/colo/run.js';
import { coloSettingsFromArgs, COLO_DEFAULTS, diskMiB, intervalsFromArgs } from '../../../src/colo/options.js';
import type { ProbeRow } from '../../../src/guest/probe.js';

const T0 = 1_800_000_000_000;
/** A probe every 100 ms from T0; `rtt(i)` gives the round trip of probe i in ms, or undefined for lost. */
function rows(n: number, rtt: (i: number) => number | undefined): ProbeRow[] {
  return Array.from({ length: n }, (_, i) => {
    const sent = BigInt(T0 + i * 100) * 1_000_000n;
    const r = rtt(i);
    return { seq: i, sentNs: sent, recvNs: r === undefined ? undefined : sent + BigInt(Math.round(r * 1e6)), guestMonoNs: 1n };
  });
}

describe('clientFigures', () => {
  // Lock-step from 0.5 s (its first 0.5 s left out), to the kill at 3 s (each answer held ~60 ms by a
  // checkpoint); probes 30-32 lost, then the secondary answers in 2 ms.
  const r = rows(60, (i) => (i < 30 ? 60 : i < 33 ? undefined : 2));
  const f = clientFigures(r, { lockStepAtMs: T0 + 500, killedAtMs: T0 + 3000 });

  it('takes the round trips through colo-compare and those without COLO from their own windows', () => {
    expect(f.probeInLockStep).toMatchObject({ sent: 20, received: 20, rttMs: { median: 60 } });
    expect(f.probeAfter).toMatchObject({ received: f.probeAfter!.sent, rttMs: { median: 2 } });
  });

  it('measures the silence from the last answer before the kill to the first after it, and the probes lost in it', () => {
    // Last answer: probe 29 (sent 2.9 s, back 2.96 s); first after: probe 33 (sent 3.3 s, back 3.302 s).
    expect(f.clientSilenceMs).toBe(342);
    expect(f.probesLost).toBe(3);
    expect(f.serviceBackAfterKillMs).toBe(302);
  });

  it("counts the primary's answers still in flight at the kill as the primary's, not as service back", () => {
    // Killed at 2.93 s: probe 29's answer (sent 2.9 s) arrives at 2.96 s, after the kill; the
    // secondary is told to take over at 3.05 s.
    const g = clientFigures(r, { lockStepAtMs: T0 + 500, killedAtMs: T0 + 2930, takeoverAtMs: T0 + 3050 });
    expect(g.serviceBackAfterKillMs).toBe(372);
    expect(g.clientSilenceMs).toBe(342);
    expect(g.probesLost).toBe(3);
  });

  it('leaves the iperf3 runs out of the probe windows', () => {
    const g = clientFigures(r, { lockStepAtMs: T0 + 500, lockStepEndMs: T0 + 2000, killedAtMs: T0 + 3000, afterEndMs: T0 + 4000 });
    expect(g.probeInLockStep!.sent).toBe(10);
    // From 0.5 s after the first answer (3.302 s) to 4 s: probes 39 to 39.
    expect(g.probeAfter!.sent).toBe(1);
    expect(g.clientSilenceMs).toBe(f.clientSilenceMs);
  });

  it('says nothing of a service that never came back', () => {
    const none = clientFigures(rows(40, (i) => (i < 30 ? 60 : undefined)), { lockStepAtMs: T0 + 500, killedAtMs: T0 + 3000 });
    expect(none.serviceBackAfterKillMs).toBeUndefined();
    expect(none.clientSilenceMs).toBeUndefined();
    expect(none.probeInLockStep?.received).toBe(20);
  });
});

describe('intervalsFromArgs', () => {
  it('reads one interval or several, each checked', () => {
    expect(intervalsFromArgs({ interval: '1000' })).toEqual([1000]);
    expect(intervalsFromArgs({ interval: '100, 1000,10000' })).toEqual([100, 1000, 10000]);
    expect(() => intervalsFromArgs({ interval: '100,x' })).toThrow(/^--interval x: not a whole number; give a whole number from 10 to 600000$/);
    expect(() => intervalsFromArgs({ interval: '100,,1000' })).toThrow(/--interval/);
    expect(() => intervalsFromArgs({ interval: '100,100' })).toThrow(/^--interval 100,100: an interval is given twice; give each once/);
  });
});

describe('coloSettingsFromArgs', () => {
  const defaults = { interval: '1000', lockstep: 10, memory: 128, 'disk-rate': 64, 'probe-ms': 100, iperf: 3, port: 4700 };

  it('turns the defaults into the default settings', () => {
    expect(coloSettingsFromArgs(defaults)).toEqual(COLO_DEFAULTS);
  });

  it('takes how the primary is lost', () => {
    expect(coloSettingsFromArgs({ ...defaults, failure: 'link' }).failure).toBe('link');
    expect(coloSettingsFromArgs(defaults).failure).toBe('kill');
  });

  it('refuses bad values in one line naming the option and what it takes', () => {
    expect(() => coloSettingsFromArgs({ ...defaults, interval: '5' })).toThrow(/--interval.*too small.*from 10 to 600000/);
    expect(() => coloSettingsFromArgs({ ...defaults, lockstep: 'x' })).toThrow(/--lockstep.*not a whole number/);
    expect(() => coloSettingsFromArgs({ ...defaults, port: 70000 })).toThrow(/--port.*too large/);
    // The disk must hold what the workload writes over the run: 64 MiB at least, 1 GiB at most.
    expect(diskMiB({ diskRateKiBps: 64, lockStepS: 10, iperfS: 3 })).toBe(64);
    expect(diskMiB({ diskRateKiBps: 8192, lockStepS: 10, iperfS: 3 })).toBe(608);
    expect(() => coloSettingsFromArgs({ ...defaults, 'disk-rate': 65536 })).toThrow(/^--disk-rate 65536 KiB\/s over the run's length needs 4864 MiB of disk per image, more than 1024; lower --disk-rate/);
  });
});
