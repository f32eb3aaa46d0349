import { memRoundDecision, PHAUL_RULES, shouldContinue, type DirtyPoll, type MemRoundOptions } from '../../../src/containers/stop-rules.js';
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
  const opts: MemRoundOptions = { plateauPct: 5, budgetPages: 4096, maxRounds: 4, round: 1 };
  const polls = (...p: Array<[number, number]>): DirtyPoll[] => p.map(([atMs, dirtyPages]) => ({ atMs, dirtyPages }));

  it('waits while the count grows under the budget', () => {
    expect(memRoundDecision([], opts)).toEqual({ decision: 'wait', reason: 'no soft-dirty count yet' });
    expect(memRoundDecision(polls([0, 500]), opts)).toEqual({ decision: 'wait', reason: 'still growing: 500 pages, one poll, under the budget of 4096 after 0 ms' });
    expect(memRoundDecision(polls([0, 500], [50, 1000]), opts)).toEqual({
      decision: 'wait',
      reason: 'still growing: 500 -> 1000 pages (+100%) > 5%, under the budget of 4096 after 50 ms',
    });
  });

  it('takes the final dump when the count plateaus under the budget', () => {
    const r = memRoundDecision(polls([0, 500], [50, 2000], [100, 3000], [150, 3100]), opts);
    expect(r).toEqual({ decision: 'final-dump', reason: 'plateau: 3000 -> 3100 pages (+3.3%) within 5% after 150 ms; 3100 <= budget 4096: final dump' });
    // exactly plateauPct still counts as a plateau; just over it does not
    expect(memRoundDecision(polls([0, 2000], [50, 2100]), opts).decision).toBe('final-dump');
    expect(memRoundDecision(polls([0, 2000], [50, 2101]), opts).decision).toBe('wait');
    // an idle tree: nothing dirty, nothing changing
    expect(memRoundDecision(polls([0, 0], [50, 0]), opts).reason).toBe('plateau: 0 -> 0 pages (+0%) within 5% after 50 ms; 0 <= budget 4096: final dump');
  });

  it('pre-dumps again when the count reaches the budget (a plateau above it reaches it too)', () => {
    expect(memRoundDecision(polls([0, 3000], [50, 5000]), opts)).toEqual({
      decision: 'pre-dump-again',
      reason: 'budget reached: 5000 pages >= 4096 after 50 ms; 5000 > budget 4096: pre-dump 2 of at most 4',
    });
    // the budget closes a round at the first poll too
    expect(memRoundDecision(polls([0, 9000]), opts).decision).toBe('pre-dump-again');
    // exactly at the budget: the dump fits
    expect(memRoundDecision(polls([0, 3000], [50, 4096]), opts)).toEqual({
      decision: 'final-dump',
      reason: 'budget reached: 4096 pages >= 4096 after 50 ms; 4096 <= budget 4096: final dump',
    });
  });

  it('takes the final dump anyway once maxRounds pre-dumps ran', () => {
    expect(memRoundDecision(polls([0, 3000], [50, 5000]), { ...opts, round: 4 })).toEqual({
      decision: 'final-dump',
      reason: 'budget reached: 5000 pages >= 4096 after 50 ms; 5000 > budget 4096, but 4 pre-dumps >= 4: final dump',
    });
    expect(memRoundDecision(polls([0, 3000], [50, 5000]), { ...opts, round: 3 }).decision).toBe('pre-dump-again');
  });

  it('refuses options that make no sense', () => {
    expect(() => memRoundDecision([], { ...opts, maxRounds: 0 })).toThrow(UsageError);
    expect(() => memRoundDecision([], { ...opts, budgetPages: -5 })).toThrow(/page budget/);
    expect(() => memRoundDecision([], { ...opts, plateauPct: -1 })).toThrow(/plateau/);
  });
});
