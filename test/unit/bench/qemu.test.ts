// The QEMU benchmark's bound: a run's total time over the time its bytes take at the link's rate.
import { describe, expect, it } from '@jest/globals';
import { boundRatio } from '../../../src/bench/qemu.js';
import { fakeReport } from '../sweep/fake-report.js';

describe('boundRatio', () => {
  it('is total time over sent bytes at the link rate, for a run that worked', () => {
    // fakeReport sends 120 MiB; at 1000 Mbit/s that is 1006.6 ms.
    const r = fakeReport({ scenario: {}, totalTimeMs: 1107 });
    expect(boundRatio({ report: r, dir: '/r', point: 'p' })).toBeCloseTo(1.1, 2);
    expect(boundRatio({ report: r, dir: '/r', point: 'p' }, 100)).toBeCloseTo(0.11, 2);
  });

  it('is undefined for a run that did not complete', () => {
    expect(boundRatio({ report: fakeReport({ scenario: {}, verdict: 'did-not-converge' }), dir: '/r', point: 'p' })).toBeUndefined();
  });
});
