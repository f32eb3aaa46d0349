// What a command is given to talk to the user: lines for stdout, progress for stderr, and the
// signal that interrupts it. Commands never write to the process's streams themselves.
import type { Progress } from '../migrate/engine.js';

export interface CommandIo {
  /** Lines for the user (stdout). */
  readonly out: (line: string) => void;
  readonly progress?: Progress;
  readonly signal?: AbortSignal;
}
