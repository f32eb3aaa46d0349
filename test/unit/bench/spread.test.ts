import { describe, expect, it } from '@jest/globals';
import { markdown } from '../../../src/report/markdown.js';
import { fmtCv, spreadCase, spreadSampleOf, spreadSection, SPREAD_AIM_CV } from '../../../src/bench/spread.js';

const run = (totalTimeMs: number, downtimeMs: number, ok = true) => ({ ok, totalTimeMs, downtimeMs });

describe("a case's spread over its repetitions", () => {
  it('is met when both coefficients of variation are under the aim', () => {
    const c = spreadCase('idle', [run(1000, 50), run(1050, 52), run(950, 48)]);
    expect(c.totalTimeMs.cv).toBeCloseTo(0.05, 9);
    expect(c.downtimeMs.cv).toBeCloseTo(0.04, 9);
    expect(c).toMatchObject({ case: 'idle', runs: 3, ok: 3, verdict: 'met' });
    expect(c.why).toBeUndefined();
  });

  it('is not met when either figure varies by the aim or more', () => {
    // Total time steady, downtime anything but: the downtime alone misses.
    const c = spreadCase('busy', [run(1000, 20), run(1000, 60), run(1000, 100)]);
    expect(c.totalTimeMs.cv).toBe(0);
    expect(c.downtimeMs.cv!).toBeGreaterThanOrEqual(SPREAD_AIM_CV);
    expect(c.verdict).toBe('NOT met');
  });

  it('is not judged when a run did not complete (the case did not converge every time), but summarizes the others', () => {
    const c = spreadCase('busy', [run(1000, 50), run(60000, 0, false), run(1000, 50)]);
    expect(c).toMatchObject({ runs: 3, ok: 2, verdict: 'not judged', why: '1 of 3 runs did not end as expected' });
    expect(c.totalTimeMs).toMatchObject({ count: 2, median: 1000, cv: 0 });
  });

  it("takes a run report's completion, QEMU total time and downtime", () => {
    expect(spreadSampleOf({ ok: false, outputs: { totalTimeMs: 1200, downtimeMs: 30 } })).toEqual({ ok: false, totalTimeMs: 1200, downtimeMs: 30 });
  });

  it('is not judged with fewer than two figures, nor where the aim is not about the case', () => {
    expect(spreadCase('one', [run(1000, 50)])).toMatchObject({ verdict: 'not judged', why: 'fewer than two figures' });
    expect(spreadCase('lazy', [run(1000, 50), run(1010, 51)], 'no frozen time')).toMatchObject({ verdict: 'not aimed', why: 'no frozen time' });
  });
});

describe("a bench file's spread section", () => {
  it('gives each case a row: runs, median and CV of both figures, the verdict with its reason', () => {
    const md = spreadSection(markdown(), [spreadCase('idle', [run(1000, 50), run(1050, 52), run(950, 48)]), spreadCase('busy', [run(1000, 50), run(2000, 1, false)])], {
      figures: 'the total and the frozen time',
      note: 'Once a point elsewhere.',
    }).render();
    expect(md).toContain('## Spread over repetitions');
    expect(md).toContain('Coefficient of variation (stdev / mean) of the total and the frozen time');
    expect(md).toContain('Aim: both under 10.0%');
    expect(md).toContain('Once a point elsewhere.');
    expect(md).toContain('| idle | 3 | 1,000 ms (CV 5.0%, sd 50 ms) | 50 ms (CV 4.0%, sd 2.0 ms) | met |');
    expect(md).toContain('| busy | 1 of 2 | 1,000 ms (CV –) | 50 ms (CV –) | not judged: 1 of 2 runs did not end as expected |');
  });

  it('says so when no case was repeated', () => {
    expect(spreadSection(markdown(), []).render()).toContain('No case here was repeated.');
    expect(fmtCv(undefined)).toBe('–');
    expect(fmtCv(0.1234)).toBe('12.3%');
  });
});
