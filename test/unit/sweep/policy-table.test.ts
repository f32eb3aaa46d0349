// Switchover policies side by side in a sweep's report: per rate, which converged, and whether
// auto converged wherever any policy did.
import { describe, expect, it } from '@jest/globals';
import { comparePolicies } from '../../../src/sweep/policy-table.js';
import { summarizePoints } from '../../../src/sweep/summary.js';
import type { RunEntry } from '../../../src/sweep/results.js';
import { fakeReport } from './fake-report.js';

const entry = (workload: string, switchover: string, converged: boolean): RunEntry => ({
  point: `${workload}-${switchover}`,
  dir: '/r',
  report: fakeReport({ scenario: { workload, switchover }, verdict: converged ? 'completed' : 'did-not-converge', downtimeMs: 40 }),
});

describe('comparePolicies', () => {
  it('is absent when the policy does not vary', () => {
    expect(comparePolicies(summarizePoints([entry('idle', 'qemu-default', true)]))).toBeUndefined();
  });

  it('lists each policy at each rate, and names the rates where auto missed what another policy reached', () => {
    const c = comparePolicies(
      summarizePoints([
        entry('dirty:64M@8M/s', 'qemu-default', true),
        entry('dirty:64M@8M/s', 'auto:max=1s,tolerance=5%', true),
        entry('dirty:64M@64M/s', 'qemu-default', false),
        entry('dirty:64M@64M/s', 'postcopy-after:2', true),
        entry('dirty:64M@64M/s', 'auto:max=1s,tolerance=5%', false),
      ]),
    )!;
    expect(c.rows.map((r) => [r.at, r.policy, r.converged, r.otherwise])).toEqual([
      ['workload=dirty-rate8', 'qemu-default', 1, undefined],
      ['workload=dirty-rate8', 'auto:max=1s,tolerance=5%', 1, undefined],
      ['workload=dirty-rate64', 'qemu-default', 0, 'did-not-converge'],
      ['workload=dirty-rate64', 'postcopy-after:2', 1, undefined],
      ['workload=dirty-rate64', 'auto:max=1s,tolerance=5%', 0, 'did-not-converge'],
    ]);
    expect(c.autoRan).toBe(true);
    expect(c.autoMissed).toEqual(['workload=dirty-rate64']);
  });
});
