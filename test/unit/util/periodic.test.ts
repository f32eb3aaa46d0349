// The sampling loop: fixed ticks, a tick that takes no sample leaves a gap, and an error ends the
// loop: its user is told at once (onFailure), and stop() rethrows the error.
import { describe, expect, it } from '@jest/globals';
import { startPeriodic } from '../../../src/util/periodic.js';

describe('startPeriodic', () => {
  it('collects what ticks return, skipping the ticks that took no sample', async () => {
    let n = 0;
    const p = startPeriodic<number>({ what: 'counter', intervalMs: 5, start: async () => async () => (++n % 2 === 0 ? undefined : n) });
    while (p.samples.length < 3) await new Promise((r) => setTimeout(r, 5));
    const samples = await p.stop();
    expect(samples.slice(0, 3)).toEqual([1, 3, 5]);
  });

  it('tells onFailure at once when a tick fails, and stop() rethrows the same error', async () => {
    const boom = new Error('the host did not answer');
    let tell: (err: unknown) => void = () => undefined;
    const told = new Promise<unknown>((resolve) => (tell = resolve));
    const p = startPeriodic<number>({
      what: 'failing',
      intervalMs: 5,
      start: async () => async () => {
        throw boom;
      },
      onFailure: (err) => tell(err),
    });
    // Told without anyone calling stop(): the loop's user learns of it while it waits on other work.
    expect(await told).toBe(boom);
    await expect(p.stop()).rejects.toBe(boom);
  });

  it('does not call a read cut short by stop() a failure', async () => {
    let told = false;
    const p = startPeriodic<number>({
      what: 'slow',
      intervalMs: 1,
      start: async () => (signal) => new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(new Error('cut short')), { once: true })),
      onFailure: () => (told = true),
    });
    await new Promise((r) => setTimeout(r, 20));
    await expect(p.stop()).resolves.toEqual([]);
    expect(told).toBe(false);
  });
});
