// Exit statuses: one per kind of error, and one per verdict of a run or a batch, so scripts can
// tell what happened without parsing text. EXIT_STATUSES is the one list: `miglab --help` prints
// it and a unit test holds README's "Exit statuses" table to it, so neither can drift.
import type { DoctorReport } from '../doctor/checks.js';
import type { ErrorCode } from '../errors.js';
import type { RunReport } from '../migrate/report.js';

export const EXIT = {
  done: 0,
  failed: 1,
  badInput: 2,
  missing: 3,
  notRoot: 4,
  labInTheWay: 5,
  notConverged: 6,
  resultsLost: 7,
  stalled: 8,
  sigint: 130,
  sigterm: 143,
} as const;

/** Every status and what it means (Markdown: README's table; backticks dropped for `--help`). */
export const EXIT_STATUSES: ReadonlyArray<{ readonly status: string; readonly meaning: string }> = [
  { status: `${EXIT.done}`, meaning: 'done (`migrate`: completed; `lab status`: up and healthy; `doctor`, `hosts check`: a run can go; `batch`: every step ran)' },
  { status: `${EXIT.failed}`, meaning: 'a run failed, or an unexpected error; `image info`: not built or damaged' },
  { status: `${EXIT.badInput}`, meaning: 'bad input, refused before anything started; `batch`: a step refused by the memory guard' },
  { status: `${EXIT.missing}`, meaning: 'a program or package is missing (`doctor`: something a run needs is missing: a program, the guest image, memory)' },
  { status: `${EXIT.notRoot}`, meaning: 'not root (`doctor` and `hosts check` too, whatever else they found)' },
  { status: `${EXIT.labInTheWay}`, meaning: 'the lab is in the way: not up, unhealthy (`lab status`), busy (`lab down` under a run); `hosts check`: a bridge, the NFS export or the migration port of a host is not ready' },
  { status: `${EXIT.notConverged}`, meaning: '`migrate`: did not converge by the deadline; `batch`: its `--deadline` passed' },
  {
    status: `${EXIT.resultsLost}`,
    meaning: 'the results could not be written during or after a run (it was stopped cleanly; a results folder found unwritable or full before anything started is bad input: 2)',
  },
  { status: `${EXIT.stalled}`, meaning: '`migrate`: stalled (no byte moved for the stall limit); `batch`: stopped because the host stalled' },
  { status: `${EXIT.sigint}, ${EXIT.sigterm}`, meaning: 'interrupted by Ctrl-C (SIGINT) or SIGTERM' },
];

export const ERROR_EXIT: Partial<Record<ErrorCode, number>> = {
  BAD_INPUT: EXIT.badInput,
  MISSING_DEPENDENCY: EXIT.missing,
  NOT_ROOT: EXIT.notRoot,
  LAB_STATE: EXIT.labInTheWay,
  RESULTS: EXIT.resultsLost,
  ABORTED: EXIT.sigint,
};
export const VERDICT_EXIT: Record<RunReport['verdict'], number> = {
  completed: EXIT.done,
  failed: EXIT.failed,
  'did-not-converge': EXIT.notConverged,
  stalled: EXIT.stalled,
  interrupted: EXIT.sigint,
};

/** 128 + the signal's number, as shells report a process ended by it. */
export function signalExit(signal: string | undefined): number {
  return signal === 'SIGTERM' ? EXIT.sigterm : EXIT.sigint;
}

/** The exit status of one run's report. */
export function runExit(report: RunReport): number {
  if (report.verdict === 'interrupted') return signalExit(report.outputs.interruptedBy);
  return report.ok ? EXIT.done : VERDICT_EXIT[report.verdict] || EXIT.failed;
}

/** The exit status of `miglab doctor`: its first failed check's, as the same failure in a run would exit. */
export function doctorExit(report: DoctorReport): number {
  return report.failure === undefined ? EXIT.done : (ERROR_EXIT[report.failure] ?? EXIT.failed);
}

/**
 * The statuses as `--help` ends: one per status, its meaning wrapped under itself to `columns`
 * (the help's width, so yargs has nothing left to re-wrap).
 */
export function exitEpilogue(columns: number): string {
  const width = Math.max(...EXIT_STATUSES.map((s) => s.status.length));
  const indent = ' '.repeat(width + 4);
  const lines = ['Exit statuses:'];
  for (const s of EXIT_STATUSES) {
    let line = `  ${s.status.padEnd(width)}  `;
    for (const word of s.meaning.replace(/`/g, '').split(' ')) {
      if (line.length + word.length > columns && line.trim() !== '') {
        lines.push(line.trimEnd());
        line = indent;
      }
      line += `${word} `;
    }
    lines.push(line.trimEnd());
  }
  return lines.join('\n');
}
