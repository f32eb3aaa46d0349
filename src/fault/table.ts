// The fault x outcome table: one row per run with faults, saying when each fault fired, how soon
// the run noticed, how the run ended (verdict, QEMU's status, each side afterwards, integrity,
// leftovers) and whether that is the outcome the fault must have (outcome.ts). The sweep report
// and `bench --which faults` print it; faults.csv holds the same rows.
import { describeSide, type RunReport } from '../migrate/report.js';
import { fmtMs, type Column } from '../report/markdown.js';
import { judgeFaults } from './outcome.js';

export interface FaultRow {
  readonly point: string;
  readonly rep?: number;
  readonly fault: string;
  readonly firedAtMs?: number;
  readonly detectMs?: number;
  readonly verdict: string;
  readonly migrationStatus?: string;
  readonly source: string;
  readonly destination: string;
  /** Absent when no integrity check ran (an idle guest, or no guest left to ask). */
  readonly integrity?: string;
  readonly leftovers: number;
  readonly expected: string;
  /** yes, or no with what differed. */
  readonly asExpected: string;
}

/** Rows for every fault of every run given (runs without faults give none). */
export function faultRows(runs: readonly { readonly point: string; readonly rep?: number; readonly report: RunReport }[]): FaultRow[] {
  return runs.flatMap(({ point, rep, report }) => {
    const o = report.outputs;
    const records = o.faults ?? [];
    return judgeFaults(report).map((j, i) => ({
      point,
      ...(rep !== undefined ? { rep } : {}),
      fault: j.fault,
      firedAtMs: records[i]?.firedAtMs,
      detectMs: j.detectMs,
      verdict: report.verdict,
      migrationStatus: o.status ?? o.after?.source.migrationStatus,
      source: describeSide(o.after?.source, true),
      destination: describeSide(o.after?.destination, true),
      integrity: o.integrity ? `${o.integrity.ok ? 'ok' : 'BAD'} (${o.integrityCheckedOn})` : undefined,
      leftovers: o.leftovers?.length ?? 0,
      expected: j.expected,
      asExpected: j.met ? 'yes' : `no: ${j.misses.join('; ')}`,
    }));
  });
}


/** Every column: faults.csv. */
export const FAULT_COLUMNS: readonly Column<FaultRow>[] = [
  { key: 'point', title: 'point', about: 'The sweep point' },
  { key: 'rep', title: 'rep', about: 'Repetition' },
  { key: 'fault', title: 'fault', about: 'The fault, compact form' },
  { key: 'firedAtMs', title: 'fired at', format: fmtMs, align: 'right', about: 'When it fired, since the migrate command' },
  { key: 'detectMs', title: 'noticed after', format: fmtMs, align: 'right', about: 'How long after it fired the run noticed (QEMU exit, NFS, stall...)' },
  { key: 'verdict', title: 'verdict', about: 'The run\'s verdict' },
  { key: 'asExpected', title: 'as expected', about: 'yes, or what differed from the outcome the fault must have (src/fault/outcome.ts)' },
  { key: 'migrationStatus', title: 'QEMU status', about: 'QEMU\'s final migration status' },
  { key: 'source', title: 'source after', about: 'The source after the run' },
  { key: 'destination', title: 'destination after', about: 'The destination after the run' },
  { key: 'integrity', title: 'integrity', about: 'ok or BAD, and where it was checked' },
  { key: 'leftovers', title: 'left behind', align: 'right', about: 'What the run left behind (count; the aim is 0)' },
  { key: 'expected', title: 'expected', about: 'The outcome the fault must have' },
];

/** The report's table: what a reader compares at a glance (the expectation's words are in faults.csv). */
export const FAULT_REPORT_COLUMNS: readonly Column<FaultRow>[] = FAULT_COLUMNS.filter((c) => c.key !== 'expected' && c.key !== 'rep');
