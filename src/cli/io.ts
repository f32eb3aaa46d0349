// What a command is given to talk to the user: lines for a person, its summary as JSON when
// asked (--json), progress for stderr, and the signal that interrupts it. Commands never write to
// the process's streams themselves (src/cli/output.ts does, for the CLI).
import type { Progress } from '../progress/progress.js';

export interface CommandIo {
  /** Lines for a person: stdout, or stderr under --json so that stdout holds the JSON alone. */
  readonly out: (line: string) => void;
  /** With --json: the command's summary, written to stdout as JSON. Absent otherwise. */
  readonly json?: (value: unknown) => void;
  /** Absent under --quiet. */
  readonly progress?: Progress;
  readonly signal?: AbortSignal;
}
