// The switchover policies of a sweep whose grid varies them (grid.switchover), side by side per
// set of the other values (the dirty rate, the link): which converged, at what downtime and total
// time, and whether `auto` converged wherever any policy did (the aim of issue 12's benchmark).
// Read from the saved runs only, so `miglab plot` draws it again.
import type { Column } from '../report/markdown.js';
import { fmtMs } from '../report/markdown.js';
import { otherValues, type PointSummary } from './summary.js';

export interface PolicyRow {
  /** The other values of the point that vary (workload=dirty256m-120mbps-random, ...). */
  readonly at: string;
  readonly policy: string;
  readonly runs: number;
  readonly converged: number;
  readonly downtimeMs?: number;
  readonly totalTimeMs?: number;
  /** How the runs that did not converge ended (did-not-converge, failed: ...). */
  readonly otherwise?: string;
}

export interface PolicyComparison {
  readonly rows: readonly PolicyRow[];
  /** Sets of values where some policy converged and auto did not (empty: auto met the aim, or was not run). */
  readonly autoMissed: readonly string[];
  readonly autoRan: boolean;
}

/** The comparison, or undefined when the points do not differ in their policy. */
export function comparePolicies(summary: readonly PointSummary[]): PolicyComparison | undefined {
  if (!summary.some((p) => p.parameters.switchover !== undefined)) return undefined;
  const rows = summary.map((p): PolicyRow => {
    const failed = p.entries.filter((e) => e.report.outputs.status !== 'completed').map((e) => e.report.verdict);
    return {
      at: otherValues(p, 'switchover') || 'every point',
      policy: String(p.parameters.switchover),
      runs: p.runs,
      converged: p.converged,
      downtimeMs: p.metrics.downtimeMs.median,
      totalTimeMs: p.metrics.totalTimeMs.median,
      otherwise: failed.length ? [...new Set(failed)].join(', ') : undefined,
    };
  });
  const ats = [...new Set(rows.map((r) => r.at))];
  const isAuto = (r: PolicyRow) => r.policy.startsWith('auto:') || r.policy === 'auto';
  const autoRan = rows.some(isAuto);
  const autoMissed = autoRan ? ats.filter((at) => rows.some((r) => r.at === at && r.converged > 0) && !rows.some((r) => r.at === at && isAuto(r) && r.converged === r.runs)) : [];
  return { rows, autoMissed, autoRan };
}

export const POLICY_COLUMNS: readonly Column<PolicyRow>[] = [
  { key: 'at', title: 'at', about: "The point's other values that vary (the workload, the link...)" },
  { key: 'policy', title: 'policy', about: 'The switchover policy, every parameter spelt out' },
  { key: 'converged', title: 'converged', align: 'right', about: 'Runs whose migration completed' },
  { key: 'runs', title: 'runs', align: 'right', about: 'Runs of the point' },
  { key: 'downtimeMs', title: 'downtime (QEMU), median', format: fmtMs, align: 'right', about: "QEMU's downtime, median over the runs that completed" },
  { key: 'totalTimeMs', title: 'total time, median', format: fmtMs, align: 'right', about: 'Total migration time, median over the runs that completed' },
  { key: 'otherwise', title: 'the others', about: 'How the runs that did not complete ended' },
];
