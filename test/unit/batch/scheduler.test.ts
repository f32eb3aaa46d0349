import { DEFAULT_PAIR_CORES, estimateResourceUse, planRetries, planSchedule, type ResourceUse } from '../../../src/batch/index.js';
import { mbitToMiBps } from '../../../src/util/units.js';
import { attempt, sample } from './helpers.js';

const guests = (n: number, dirty = 0, memoryMiB = 128) => Array.from({ length: n }, (_, i) => ({ guestIndex: i, memoryMiB, dirtyRateMiBps: dirty }));
const USE: ResourceUse = { cpus: 2, baselineBusyCores: 0.2, pairCores: 0.5, baselineSamples: 4, pairSamples: 10 };
const base = { use: USE, memAvailableMiB: 20000, memoryReserveMiB: 1024, timeoutMs: 60000 };

describe('estimateResourceUse from recorded samples', () => {
  it('takes the idle baseline from samples without guests and the cost of a pair from its QEMUs', () => {
    const samples = [
      sample({ atMs: 0, busyPct: 10 }),
      sample({ atMs: 500, busyPct: 20 }),
      // two pairs in flight: 4 QEMUs using 180 % CPU in all -> 0.9 cores per pair
      sample({ atMs: 1000, busyPct: 95, qemu: { 11: ['g0-source', 80], 12: ['g0-destination', 5], 13: ['g1-source', 90], 14: ['g1-destination', 5] } }),
      // one pair: 1.1 cores
      sample({ atMs: 1500, busyPct: 60, qemu: { 11: ['g0-source', 100], 12: ['g0-destination', 10] } }),
    ];
    const u = estimateResourceUse(samples, 2);
    expect(u.baselineBusyCores).toBeCloseTo(0.3);
    expect(u.pairCores).toBeCloseTo(1.0);
    expect(u).toMatchObject({ baselineSamples: 2, pairSamples: 2 });
  });

  it('assumes one core per pair when no guest has been seen yet', () => {
    expect(estimateResourceUse([sample({ atMs: 0 })], 2).pairCores).toBe(DEFAULT_PAIR_CORES);
  });
});

describe('planSchedule', () => {
  it('limits concurrency by CPU on a 2-core TCG host: cores minus what the host needs, over a pair\'s cost', () => {
    const p = planSchedule({ ...base, guests: guests(6) });
    // (2 x 0.9 - 0.2) / 0.5 = 3.2
    expect(p).toMatchObject({ concurrency: 3, limitedBy: 'cpu' });
    expect(p.maxBandwidthMiBps).toBeUndefined();
    expect(p.reasons[0]).toMatch(/^CPU: 2 CPUs/);
  });

  it('limits by the link when it is shaped, and gives each migration its share', () => {
    // 200 Mbit/s = 23.8 MiB/s; a guest dirtying 5 MiB/s needs 16 MiB/s (the floor) -> 1 at once
    const p = planSchedule({ ...base, guests: guests(4, 5), linkBandwidthMbit: 200, use: { ...USE, pairCores: 0.1 } });
    expect(p).toMatchObject({ concurrency: 1, limitedBy: 'network', maxBandwidthMiBps: Math.floor(mbitToMiBps(200)) });
    // One migrates while the next boots: the link does not wait for a boot.
    expect(p.inFlight).toBe(2);
    expect(p.reasons.join(' ')).toMatch(/pipeline: 2 guests in flight/);
    // Memory holds the migrated guest still being checked too: its place goes to the next at once.
    expect(p.overlapsChecks).toBe(true);
    expect(p.reasons.join(' ')).toMatch(/hand-over: .*\(memory holds 3 pairs\)/);
    // Idle guests wait for their turn ready; busy ones only where the CPU holds them all running.
    expect(p.readyAhead).toBe(true);
    const busy = (pairCores: number) => planSchedule({ ...base, guests: guests(4, 5).map((g) => ({ ...g, busy: true })), linkBandwidthMbit: 200, use: { ...USE, pairCores } });
    expect(busy(0.5)).toMatchObject({ inFlight: 2, readyAhead: true });
    expect(busy(1.2)).toMatchObject({ inFlight: 2, readyAhead: false });
    expect(busy(1.2).reasons.join(' ')).toMatch(/waits booted, its workload not started: the CPU \(1.60 cores\) does not hold 2 busy pairs running \(1.20 each\)/);
    // Room for the two in flight only: a place is free once its guest is gone.
    const tight = planSchedule({ ...base, guests: guests(4, 5, 4096), memAvailableMiB: 1024 + 2 * 2 * (4096 + 150) + 100, linkBandwidthMbit: 200, use: { ...USE, pairCores: 0.1 } });
    expect(tight).toMatchObject({ concurrency: 1, inFlight: 2, overlapsChecks: false });
    const fast = planSchedule({ ...base, guests: guests(8, 10), linkBandwidthMbit: 1000, use: { ...USE, pairCores: 0.1 } });
    // 119.2 MiB/s over 20 MiB/s each
    expect(fast).toMatchObject({ concurrency: 5, limitedBy: 'network', maxBandwidthMiBps: 23 });
  });

  it('never plans more pairs than memory holds, nor more than the guests there are', () => {
    expect(planSchedule({ ...base, guests: guests(4, 0, 4096), memAvailableMiB: 12000, use: { ...USE, pairCores: 0.1 } })).toMatchObject({ concurrency: 1, inFlight: 1, limitedBy: 'memory' });
    expect(planSchedule({ ...base, guests: guests(2), use: { ...USE, pairCores: 0.1 } })).toMatchObject({ concurrency: 2, inFlight: 2, limitedBy: 'guests' });
  });

  it('backs off below the concurrency at which a resource was seen saturated', () => {
    const p = planSchedule({ ...base, guests: guests(6), use: { ...USE, pairCores: 0.1 }, saturated: { resource: 'cpu', concurrency: 4 } });
    expect(p).toMatchObject({ concurrency: 3, limitedBy: 'saturation' });
    expect(planSchedule({ ...base, guests: guests(6), use: { ...USE, pairCores: 0.1 }, saturated: { resource: 'none', concurrency: 4 } }).limitedBy).not.toBe('saturation');
  });

  it('starts the slowly dirtying and small guests first', () => {
    const p = planSchedule({
      ...base,
      guests: [
        { guestIndex: 0, memoryMiB: 512, dirtyRateMiBps: 50 },
        { guestIndex: 1, memoryMiB: 256, dirtyRateMiBps: 0 },
        { guestIndex: 2, memoryMiB: 128, dirtyRateMiBps: 0 },
        { guestIndex: 3, memoryMiB: 128, dirtyRateMiBps: 10 },
      ],
    });
    expect(p.order).toEqual([2, 1, 3, 0]);
  });
});

describe('planRetries', () => {
  const plan = planSchedule({ ...base, guests: guests(3), linkBandwidthMbit: 1000 });
  it('retries only what did not converge, alone, with more bandwidth, more time and auto-converge', () => {
    const r = planRetries(
      [
        attempt({ guestIndex: 0 }),
        attempt({ guestIndex: 1, outcome: 'did-not-converge', maxBandwidthMiBps: 30, timeoutMs: 20000 }),
        attempt({ guestIndex: 2, outcome: 'heartbeat-broken' }),
      ],
      plan,
      1000,
    );
    expect(r).toEqual([{ guestIndex: 1, maxBandwidthMiBps: 60, timeoutMs: 40000, autoConverge: true, reason: expect.stringContaining('g1 did not converge') }]);
  });

  it('caps the doubled bandwidth at the link and does not retry a retry', () => {
    const r = planRetries([attempt({ guestIndex: 0, outcome: 'did-not-converge', maxBandwidthMiBps: 100 }), attempt({ guestIndex: 1, attempt: 2, outcome: 'did-not-converge' })], plan, 1000);
    expect(r).toHaveLength(1);
    expect(r[0]!.maxBandwidthMiBps).toBe(Math.floor(mbitToMiBps(1000)));
  });
});
