// The container sweep's plan and summary: the size axis and the rate axis share one point, bad axes
// are refused before anything starts, and each point's median and spread come from its intact runs.
import { UsageError } from '../../../src/errors.js';
import { checkSweepAxes, summarizeSweep, sweepPoints, type SweepRun } from '../../../src/containers/sweep.js';
import { figuresWith } from '../../support/container-run.js';

const fig = figuresWith;

describe('sweepPoints', () => {
  it('runs the point both axes share once, marked as on both', () => {
    const points = sweepPoints({ wssMiB: [16, 64], atRateMiBps: 16, ratesMiBps: [0, 16], atWssMiB: 64 });
    expect(points).toEqual([
      { wssMiB: 16, rateMiBps: 16, axes: ['size'] },
      { wssMiB: 64, rateMiBps: 16, axes: ['size', 'rate'] },
      { wssMiB: 64, rateMiBps: 0, axes: ['rate'] },
    ]);
  });

  it('refuses an empty or out-of-range axis with the fix', () => {
    expect(() => checkSweepAxes({ wssMiB: [], atRateMiBps: 16, ratesMiBps: [0], atWssMiB: 64 })).toThrow(UsageError);
    expect(() => checkSweepAxes({ wssMiB: [0], atRateMiBps: 16, ratesMiBps: [0], atWssMiB: 64 })).toThrow(/working set \(MiB\) 0 is out of range/);
    expect(() => checkSweepAxes({ wssMiB: [16], atRateMiBps: 16, ratesMiBps: [-1], atWssMiB: 64 })).toThrow(/write rate \(MiB\/s\) -1/);
  });
});

describe('summarizeSweep', () => {
  it('gives the median and min-max of the intact runs per strategy and point', () => {
    const runs: SweepRun[] = [
      { strategy: 'stop-and-copy', wssMiB: 64, rateMiBps: 16, repetition: 1, verdict: 'intact', figures: fig(2000, 5000) },
      { strategy: 'stop-and-copy', wssMiB: 64, rateMiBps: 16, repetition: 2, verdict: 'intact', figures: fig(2400, 6000) },
      { strategy: 'stop-and-copy', wssMiB: 64, rateMiBps: 16, repetition: 3, verdict: 'failed', failure: 'x' },
      { strategy: 'iterative', wssMiB: 64, rateMiBps: 16, repetition: 1, verdict: 'intact', figures: fig(800, null) },
    ];
    const rows = summarizeSweep(runs);
    const sc = rows.find((r) => r.strategy === 'stop-and-copy')!;
    expect(sc).toMatchObject({ runs: 3, intact: 2, frozenMs: 2200, frozenMinMs: 2000, frozenMaxMs: 2400, downtimeMs: 5500 });
    // A client that never heard the container again gives no downtime figure, not a zero.
    const it = rows.find((r) => r.strategy === 'iterative')!;
    expect(it.frozenMs).toBe(800);
    expect(it.downtimeMs).toBeUndefined();
  });
});
