import { coefficientOfVariation, count, max, mean, median, min, percentile, stdev, summarize } from '../../../src/stats/index.js';

// Hand-computed: mean 5; squared deviations 9+1+1+1+0+0+4+16 = 32; sample variance 32/7.
const XS = [2, 4, 4, 4, 5, 5, 7, 9];

describe('statistics', () => {
  it('matches hand-computed values', () => {
    expect(count(XS)).toBe(8);
    expect(mean(XS)).toBe(5);
    expect(median(XS)).toBe(4.5);
    expect(stdev(XS)).toBeCloseTo(Math.sqrt(32 / 7), 12);
    expect(stdev(XS)).toBeCloseTo(2.13808994, 7);
    expect(min(XS)).toBe(2);
    expect(max(XS)).toBe(9);
    expect(coefficientOfVariation(XS)).toBeCloseTo(2.13808994 / 5, 7);
  });

  it('interpolates percentiles between closest ranks', () => {
    // rank = p/100 * (n-1): p25 -> 1.75 (4..4), p90 -> 6.3 (7 + 0.3*2).
    expect(percentile(XS, 25)).toBe(4);
    expect(percentile(XS, 90)).toBeCloseTo(7.6, 12);
    expect(percentile(XS, 0)).toBe(2);
    expect(percentile(XS, 100)).toBe(9);
    expect(percentile([1, 2, 3, 4], 25)).toBe(1.75);
    expect(median([3, 1, 2])).toBe(2);
    expect(() => percentile(XS, 101)).toThrow(RangeError);
  });

  it('leaves out missing values instead of counting them as zero', () => {
    expect(summarize([10, undefined, 20, null, Number.NaN])).toEqual({ count: 2, mean: 15, median: 15, stdev: Math.sqrt(50), min: 10, max: 20, cv: Math.sqrt(50) / 15 });
  });

  it('has no spread for fewer than two values and nothing at all for none', () => {
    expect(summarize([7])).toEqual({ count: 1, mean: 7, median: 7, stdev: undefined, min: 7, max: 7, cv: undefined });
    expect(summarize([])).toEqual({ count: 0, mean: undefined, median: undefined, stdev: undefined, min: undefined, max: undefined, cv: undefined });
    expect(coefficientOfVariation([0, 0])).toBeUndefined();
  });
});
