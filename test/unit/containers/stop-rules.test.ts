import { memRoundDecision, PHAUL_RULES, shouldContinue, type MemRoundOptions } from '../../../src/containers/stop-rules.js';
import { UsageError } from '../../../src/errors.js';

const pages = (...n: number[]) => n.map((pagesWritten) => ({ pagesWritten }));

describe('shouldContinue (P.Haul\'s rule)', () => {
  it('has P.Haul\'s constants', () => {
    expect(PHAUL_RULES).toEqual({ minPages: 64, maxGrowthPct: 10, maxRounds: 8 });
  });

  it.each([
    // [pages written per pre-dump, continue, reason]
    [[40], false, 'small dump: 40 pages written <= 64'],
    [[64], false, 'small dump: 64 pages written <= 64'],
    [[65], true, 'go on: 65 pages (first pre-dump)'],
    [[5000, 5600], false, 'iteration grows: 5000 -> 5600 pages (+12%) > 10%'],
    [[5000, 5550], false, 'iteration grows: 5000 -> 5550 pages (+11%) > 10%'],
    [[5000, 5500], true, 'go on: 5500 pages (+10%)'],
    [[5000, 5501], false, 'iteration grows: 5000 -> 5501 pages (+10.02%) > 10%'],
    [[3750, 3000], true, 'go on: 3000 pages (-20%)'],
    // P.Haul under Python 2 floors +10.5 % to 10 and goes on; ours compares exactly
    [[5000, 5525], false, 'iteration grows: 5000 -> 5525 pages (+10.5%) > 10%'],
    // the small-dump check comes first, even when the round also grew
    [[10, 40], false, 'small dump: 40 pages written <= 64'],
  ] as const)('%j -> continue %s: %s', (written, cont, reason) => {
    expect(shouldContinue(pages(...written))).toEqual({ continue: cont, reason });
  });

  it('stops after 8 pre-dumps (P.Haul stops after 9: its check is on the 0-based index)', () => {
    const seven = pages(9000, 8000, 7000, 6000, 5000, 4000, 3000, 2000);
    expect(shouldContinue(seven.slice(0, 7))).toEqual({ continue: true, reason: 'go on: 3000 pages (-25%)' });
    expect(shouldContinue(seven)).toEqual({ continue: false, reason: 'too many iterations: 8 pre-dumps >= 8' });
    // P.Haul's own check is ours with one more round allowed.
    expect(shouldContinue(seven, { ...PHAUL_RULES, maxRounds: 9 }).continue).toBe(true);
  });

  it('checks in P.Haul\'s order: growth before the round count', () => {
    const r = shouldContinue(pages(1000, 1000, 1000, 1000, 1000, 1000, 1000, 2000));
    expect(r.reason).toBe('iteration grows: 1000 -> 2000 pages (+100%) > 10%');
  });

  it('answers before the first pre-dump, and maxRounds 0 means none at all', () => {
    expect(shouldContinue([])).toEqual({ continue: true, reason: 'go on: no pre-dump yet' });
    expect(shouldContinue([], { ...PHAUL_RULES, maxRounds: 0 })).toEqual({ continue: false, reason: 'too many iterations: 0 pre-dumps >= 0' });
  });

  it('treats growth from 0 pages as growth', () => {
    expect(shouldContinue(pages(0, 100), { ...PHAUL_RULES, minPages: 0 }).reason).toBe('iteration grows: 0 -> 100 pages (from 0) > 10%');
  });

  it('refuses rules that make no sense, with a one-line hint', () => {
    expect(() => shouldContinue([], { ...PHAUL_RULES, maxRounds: 1.5 })).toThrow(UsageError);
    expect(() => shouldContinue([], { ...PHAUL_RULES, minPages: -1 })).toThrow('min pages must be a whole number >= 0, got -1; P.Haul uses 64');
    expect(() => shouldContinue([], { ...PHAUL_RULES, maxGrowthPct: NaN })).toThrow(/max growth/);
  });
});

describe('memRoundDecision (plan 5.4)', () => {
  const opts: MemRoundOptions = { plateauPct: 10, budgetPages: 1024, maxRounds: 8, round: 1 };

  it('takes the final dump at once when the change since the pre-dump fits the budget', () => {
    expect(memRoundDecision(900, undefined, opts)).toEqual({ decision: 'final-dump', reason: '900 pages changed since pre-dump 1 <= budget 1024: final dump' });
    // exactly the budget fits; an idle tree has nothing to carry
    expect(memRoundDecision(1024, 5000, { ...opts, round: 3 }).decision).toBe('final-dump');
    expect(memRoundDecision(0, undefined, opts).decision).toBe('final-dump');
  });

  it('pre-dumps again while the change over the budget keeps shrinking', () => {
    // the counts of the session 9 bench's mem:64M@16M/s container
    expect(memRoundDecision(9266, undefined, opts)).toEqual({
      decision: 'pre-dump-again',
      reason: '9266 pages changed since pre-dump 1 > budget 1024, the first round: pre-dump 2 of at most 8',
    });
    expect(memRoundDecision(3860, 9266, { ...opts, round: 2 })).toEqual({
      decision: 'pre-dump-again',
      reason: '3860 pages changed since pre-dump 2 > budget 1024, 9266 -> 3860 (-58.3%): pre-dump 3 of at most 8',
    });
    expect(memRoundDecision(2099, 2386, { ...opts, round: 5 }).decision).toBe('pre-dump-again');
  });

  it('takes the final dump when the change stops shrinking: another round would carry as much again', () => {
    expect(memRoundDecision(2467, 2099, { ...opts, round: 6 })).toEqual({
      decision: 'final-dump',
      reason: '2467 pages changed since pre-dump 6 > budget 1024, stopped shrinking: 2099 -> 2467 (+17.5%), not below -10%: final dump',
    });
    // a fall of exactly plateauPct has stopped; just past it has not
    expect(memRoundDecision(1800, 2000, { ...opts, round: 2 }).decision).toBe('final-dump');
    expect(memRoundDecision(1799, 2000, { ...opts, round: 2 }).decision).toBe('pre-dump-again');
    // the percentage is written with the decimals that show which side of the limit it is on
    expect(memRoundDecision(18001, 20000, { ...opts, budgetPages: 100, round: 2 }).reason).toContain('(-9.99%)');
  });

  it('takes the final dump anyway once maxRounds pre-dumps ran', () => {
    expect(memRoundDecision(3000, 5000, { ...opts, round: 8 })).toEqual({
      decision: 'final-dump',
      reason: '3000 pages changed since pre-dump 8 > budget 1024, 5000 -> 3000 (-40%), but 8 pre-dumps >= 8: final dump',
    });
    expect(memRoundDecision(3000, 5000, { ...opts, round: 7 }).decision).toBe('pre-dump-again');
  });

  it('refuses options that make no sense', () => {
    expect(() => memRoundDecision(0, undefined, { ...opts, maxRounds: 0 })).toThrow(UsageError);
    expect(() => memRoundDecision(0, undefined, { ...opts, budgetPages: -5 })).toThrow(/page budget/);
    expect(() => memRoundDecision(0, undefined, { ...opts, plateauPct: -1 })).toThrow(/plateau/);
    expect(() => memRoundDecision(0, undefined, { ...opts, round: 0 })).toThrow(/round/);
  });
});
