import { PassThrough } from 'node:stream';
import { HeartbeatLog, heartbeatContinuity, parseHeartbeat } from '../../../src/machine/heartbeat.js';

const hb = (seq: number, ms: number, boot = 'b1', hostMs = 1000 + ms) => parseHeartbeat(`MIGLAB-HB seq=${seq} mono_ns=${ms * 1e6} boot=${boot}`, hostMs)!;

describe('heartbeat', () => {
  it('parses a line and ignores noise around it', () => {
    expect(parseHeartbeat('garbage MIGLAB-HB seq=7 mono_ns=123456789 boot=abc12\r', 5)).toEqual({ seq: 7, monoNs: 123456789n, bootId: 'abc12', hostMs: 5 });
    expect(parseHeartbeat('MIGLAB-HB seq=7 mono_', 5)).toBeUndefined();
  });

  it('judges a clean switchover continuous and measures the gap', () => {
    const c = heartbeatContinuity([hb(1, 100), hb(2, 200)], [hb(4, 400, 'b1', 1700), hb(5, 500, 'b1', 1800)]);
    expect(c).toMatchObject({ continuous: true, sameBoot: true, sourceLastSeq: 2, destinationFirstSeq: 4, missingBeats: 1, guestGapMs: 200, hostGapMs: 500 });
  });

  it('flags a reset: new boot id, or sequence restarting', () => {
    expect(heartbeatContinuity([hb(9, 900)], [hb(1, 10, 'b2')]).continuous).toBe(false);
    expect(heartbeatContinuity([hb(9, 900)], [hb(3, 10)]).continuous).toBe(false);
    expect(heartbeatContinuity([hb(9, 900)], []).continuous).toBe(false);
  });

  it('reads beats and the ready line from a console stream', async () => {
    const s = new PassThrough();
    const log = new HeartbeatLog(s);
    s.write('Linux version 6.1\nMIGLAB-READY ip=10.77.0.100 boot=b1\nMIGLAB-HB seq=1 mono_ns=5 boot=b1\n');
    const ready = await log.waitReady({ timeoutMs: 1000 });
    expect(ready.ip).toBe('10.77.0.100');
    expect((await log.waitBeat(undefined, { timeoutMs: 1000 })).seq).toBe(1);
    await expect(log.waitBeat((b) => b.seq > 1, { timeoutMs: 100 })).rejects.toThrow(/within 100 ms/);
  });
});

describe('guest crash on the console', () => {
  it('ends a wait for a heartbeat with the kernel line', async () => {
    const log = new HeartbeatLog(new PassThrough());
    log.feed('[    9.218924] general protection fault, probably for non-canonical address 0xbe32158c0c0e9918: 0000 [#1] PREEMPT SMP NOPTI', 1);
    log.feed('[    9.389576] Kernel panic - not syncing: Fatal exception in interrupt', 2);
    await expect(log.waitBeat(undefined, { timeoutMs: 1000 })).rejects.toThrow('the guest reported a kernel crash: general protection fault, probably for non-canonical address');
  });
});
