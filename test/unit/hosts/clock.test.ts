// Cristian's method on a host whose clock and network delays the test decides: the offset found
// is the true one to within the uncertainty it reports, the reading with the shortest round trip
// wins, and a host that does not print nanoseconds is named.
import { describe, expect, it } from '@jest/globals';
import { CLOCK_READER, measureClockOffset, offsetBetween, type ControllerClock } from '../../../src/hosts/clock.js';
import { FakeHost } from '../../support/fake-host.js';

/**
 * A controller and a host `hostAheadMs` ahead of it; each `date` takes `out` ms to reach the host
 * and `back` ms to come back (one pair per reading, in order). Controller time starts at a whole ms.
 */
function network(hostAheadMs: number, delays: ReadonlyArray<readonly [out: number, back: number]>) {
  let now = 1_700_000_000_000;
  let i = 0;
  const clock: ControllerClock = { wallMs: () => Math.floor(now), monotonicMs: () => now };
  let warmedUp = false;
  const host = new FakeHost('clocked', {
    converse: (argv) => {
      expect(argv).toEqual(CLOCK_READER);
      return () => {
        // The first answer only warms the reader up: it takes no part in the figures.
        const [out, back] = warmedUp ? delays[i++]! : [50, 50];
        warmedUp = true;
        now += out;
        const hostNs = BigInt(Math.round((now + hostAheadMs) * 1e6));
        now += back;
        return `${hostNs}`;
      };
    },
  });
  return { clock, host };
}

describe('measureClockOffset', () => {
  it('finds a host ahead or behind to within half the round trip (and the controller clock step)', async () => {
    for (const ahead of [250.25, -1234.5, 0]) {
      const { clock, host } = network(ahead, [[3, 3]]);
      const r = await measureClockOffset(host, 1, clock);
      expect(Math.abs(r.offsetMs - ahead)).toBeLessThanOrEqual(r.uncertaintyMs);
      expect(r.uncertaintyMs).toBe(3 + 0.5);
    }
  });

  it('keeps the reading with the shortest round trip', async () => {
    const { clock, host } = network(40, [
      [30, 2],
      [1, 1],
      [9, 9],
    ]);
    const r = await measureClockOffset(host, 3, clock);
    expect(host.conversations).toHaveLength(1);
    expect(host.conversations[0]!.asked).toHaveLength(4);
    expect(host.conversations[0]!.closed).toBe(true);
    expect(r.uncertaintyMs).toBe(1 + 0.5);
    expect(Math.abs(r.offsetMs - 40)).toBeLessThanOrEqual(r.uncertaintyMs);
  });

  it('stays within its bound when the way out and back differ', async () => {
    const { clock, host } = network(-75, [[12, 0.5]]);
    const r = await measureClockOffset(host, 1, clock);
    expect(Math.abs(r.offsetMs - -75)).toBeLessThanOrEqual(r.uncertaintyMs);
    // The midpoint guess is off by most of the asymmetry, which the bound covers.
    expect(Math.abs(r.offsetMs - -75)).toBeGreaterThan(5);
  });

  it('names a host whose date does not print nanoseconds', async () => {
    const host = new FakeHost('busybox-box', { converse: () => () => '1700000000%N' });
    await expect(measureClockOffset(host, 1)).rejects.toThrow('cannot read the clock of busybox-box: date +%s%N printed "1700000000%N" (GNU date prints nanoseconds)');
  });
});

describe('offsetBetween', () => {
  it("is one host's offset against the other's, with both uncertainties", () => {
    expect(offsetBetween({ offsetMs: 10, uncertaintyMs: 2 }, { offsetMs: -5, uncertaintyMs: 3 })).toEqual({ offsetMs: -15, uncertaintyMs: 5 });
  });
});
