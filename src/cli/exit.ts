// Exit statuses (README, "Exit statuses"; `miglab --help` prints them): one per kind of error,
// and one per verdict of a run, so scripts can tell what happened without parsing text.
import type { ErrorCode } from '../errors.js';
import type { RunReport } from '../migrate/report.js';

export const ERROR_EXIT: Partial<Record<ErrorCode, number>> = { BAD_INPUT: 2, MISSING_DEPENDENCY: 3, NOT_ROOT: 4, LAB_STATE: 5, RESULTS: 7, ABORTED: 130 };
export const VERDICT_EXIT: Record<RunReport['verdict'], number> = { completed: 0, failed: 1, 'did-not-converge': 6, stalled: 8, interrupted: 130 };

/** 128 + the signal's number, as shells report a process ended by it. */
export function signalExit(signal: string | undefined): number {
  return signal === 'SIGTERM' ? 143 : 130;
}

/** The exit status of one run's report. */
export function runExit(report: RunReport): number {
  if (report.verdict === 'interrupted') return signalExit(report.outputs.interruptedBy);
  return report.ok ? 0 : VERDICT_EXIT[report.verdict] || 1;
}
