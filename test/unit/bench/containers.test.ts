// The containers bench's summary: medians over the intact runs, each strategy's frozen-time cut
// against stop-and-copy measured in the same bench and with the same transfer, and the aim (2x,
// every run intact) judged from those, never assumed.
import { containersBenchMarkdown, summarizeContainersBench, type ContainersBenchRun } from '../../../src/bench/containers.js';
import { figuresWith } from '../../support/container-run.js';

const run = (strategy: ContainersBenchRun['strategy'], frozen: number, verdict: ContainersBenchRun['verdict'] = 'intact', repetition = 1): ContainersBenchRun => ({
  strategy,
  transfer: 'nfs',
  repetition,
  verdict,
  ...(verdict === 'failed' ? { failure: 'criu dump exited 1' } : { figures: figuresWith(frozen, frozen + 3000) }),
});

describe('summarizeContainersBench', () => {
  it('cuts each strategy against stop-and-copy of the same bench, and judges the 2x aim from the medians', () => {
    const cases = summarizeContainersBench([run('stop-and-copy', 2400), run('stop-and-copy', 2600, 'intact', 2), run('iterative', 600), run('iterative', 500, 'intact', 2), run('mem-rounds', 1500), run('mem-rounds', 1400, 'intact', 2)]);
    const by = Object.fromEntries(cases.map((c) => [c.strategy, c]));
    expect(by['stop-and-copy']!.frozenMs.median).toBe(2500);
    expect(by['stop-and-copy']!.meetsAim).toBeUndefined();
    expect(by.iterative!.frozenCutVsStopAndCopy).toBeCloseTo(2500 / 550);
    expect(by.iterative!.meetsAim).toBe(true);
    // 2500 / 1450 = 1.7x: short of the aim.
    expect(by['mem-rounds']!.meetsAim).toBe(false);
    // The spread of total and frozen time: iterative's frozen times 600 and 500 vary by 12.9 %.
    expect(by.iterative!.spread).toMatchObject({ case: 'iterative by nfs', ok: 2, verdict: 'NOT met' });
    expect(by.iterative!.spread.downtimeMs.cv).toBeCloseTo(70.71 / 550, 3);
    expect(containersBenchMarkdown(cases, [], 'now')).toContain("## Spread over repetitions\n\nCoefficient of variation (stdev / mean) of the move's total time and CRIU's frozen time");
  });

  it('does not meet the aim when a run was not intact, and leaves failed runs out of the medians', () => {
    const cases = summarizeContainersBench([run('stop-and-copy', 2000), run('iterative', 400), run('iterative', 0, 'failed', 2), run('iterative', 100, 'broken', 3)]);
    const it = cases.find((c) => c.strategy === 'iterative')!;
    expect(it.runs).toBe(3);
    expect(it.intact).toBe(1);
    expect(it.frozenMs.median).toBe(400);
    expect(it.meetsAim).toBe(false);
    const md = containersBenchMarkdown(cases, [run('iterative', 0, 'failed', 2)], 'now');
    expect(md).toContain('| iterative | nfs | 1/3 |');
    expect(md).toContain('iterative/nfs #2: failed: criu dump exited 1');
  });

  it('judges no aim for lazy, which has no frozen time, and says why under the table', () => {
    const lazy: ContainersBenchRun = { ...run('lazy', 0), figures: { ...figuresWith(0, 1500), criuFrozenMs: null } };
    const cases = summarizeContainersBench([run('stop-and-copy', 2000), lazy]);
    const c = cases.find((x) => x.strategy === 'lazy')!;
    expect(c.frozenCutVsStopAndCopy).toBeUndefined();
    expect(c.meetsAim).toBeUndefined();
    const md = containersBenchMarkdown(cases, [], 'now');
    const row = md.split('\n').find((l) => l.startsWith('| lazy |'))!.split('|').map((c) => c.trim());
    // frozen n/a, no cut, no aim judged
    expect([row[4], row[5], row.at(-2)]).toEqual(['n/a', '', '']);
    expect(c.spread).toMatchObject({ verdict: 'not aimed', why: 'CRIU gives a lazy dump no frozen time' });
    expect(md).toContain('lazy (once per repetition, pages from chost-src on demand) has no frozen time');
  });

  it('gives no cut without an intact stop-and-copy to compare with', () => {
    const cases = summarizeContainersBench([run('stop-and-copy', 0, 'failed'), run('iterative', 400)]);
    expect(cases.find((c) => c.strategy === 'iterative')!.frozenCutVsStopAndCopy).toBeUndefined();
    expect(cases.find((c) => c.strategy === 'iterative')!.meetsAim).toBe(false);
  });
});
