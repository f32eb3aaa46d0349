// The version matrix of a sweep whose grid varies the QEMU builds (grid.qemu: system, 10.0,
// system->10.0, 10.0->system): for each direction and each set of the other values (machine type,
// devices...), whether the migration completed with the guest going on at the destination, and
// when it did not, what QEMU said. Read from the saved runs only, so `miglab plot` draws it again.
import type { Column } from '../report/markdown.js';
import { fmtMs } from '../report/markdown.js';
import { describeQemu } from '../qemu/pair.js';
import { otherValues, type PointSummary } from './summary.js';

export interface MatrixRow {
  readonly point: string;
  /** The grid's qemu value: system, 10.0, system->10.0. */
  readonly builds: string;
  /** The versions the QEMUs reported, source -> destination. */
  readonly versions: string;
  /** The other values of the point that vary (machineType=pc, nicModel=e1000). */
  readonly with: string;
  /** The -machine both QEMUs got. */
  readonly machineType: string;
  readonly runs: number;
  /** Runs that completed with the guest going on at the destination (run.json ok). */
  readonly worked: number;
  readonly outcome: 'works' | 'fails' | 'mixed' | 'no run';
  readonly downtimeMs?: number;
  readonly totalTimeMs?: number;
  /** The first failed run's reason, as its report gives it (QEMU's words included). */
  readonly why?: string;
}

/** The matrix, or undefined when the points do not differ in their QEMU builds. */
export function qemuMatrix(summary: readonly PointSummary[]): MatrixRow[] | undefined {
  if (!summary.some((p) => p.parameters.qemu !== undefined)) return undefined;
  return summary.map((p) => {
    const first = p.entries[0]?.report;
    const worked = p.entries.filter((e) => e.report.ok).length;
    const failed = p.entries.find((e) => !e.report.ok)?.report;
    return {
      point: p.point,
      builds: String(p.parameters.qemu ?? ''),
      versions: first ? describeQemu({ version: first.inputs.qemu.version, destination: first.inputs.qemu.destination }) : '',
      with: otherValues(p, 'qemu'),
      machineType: first?.inputs.qemu.machineType ?? first?.inputs.machine?.machineType ?? '',
      runs: p.runs,
      worked,
      outcome: p.runs === 0 || p.entries.length === 0 ? 'no run' : worked === p.runs ? 'works' : worked === 0 ? 'fails' : 'mixed',
      downtimeMs: p.metrics.downtimeMs.median,
      totalTimeMs: p.metrics.totalTimeMs.median,
      why: failed?.failure,
    };
  });
}

/** matrix.csv and the report's table. */
export const MATRIX_COLUMNS: readonly Column<MatrixRow>[] = [
  { key: 'point', title: 'point', about: 'The sweep point' },
  { key: 'builds', title: 'builds', about: 'The QEMU builds as the grid names them: one for both sides, or SOURCE->DESTINATION' },
  { key: 'versions', title: 'QEMU', about: 'The versions the QEMUs reported (query-version), source -> destination' },
  { key: 'with', title: 'with', about: "The point's other values that vary (machine type asked for, devices...)" },
  { key: 'machineType', title: 'machine type', about: 'The -machine both QEMUs got' },
  { key: 'outcome', title: 'outcome', about: 'works: every run completed with the guest going on at the destination; fails: none did; mixed' },
  { key: 'worked', title: 'worked', align: 'right', about: 'Runs that worked' },
  { key: 'runs', title: 'runs', align: 'right', about: 'Runs of the point' },
  { key: 'downtimeMs', title: 'downtime (QEMU), median', format: fmtMs, align: 'right', about: "QEMU's downtime, median over the runs that completed" },
  { key: 'totalTimeMs', title: 'total time, median', format: fmtMs, align: 'right', about: 'Total migration time, median over the runs that completed' },
  { key: 'why', title: 'why it failed', about: "The first failed run's reason, with what QEMU said" },
];
