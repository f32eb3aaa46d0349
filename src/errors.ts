// The one error tree of miglab. Every error carries a stable `code` (the CLI maps it to an exit
// status and a one-line message), the context it happened in, and the error that caused it.

export type ErrorCode =
  | 'BAD_INPUT' // the user asked for something invalid; nothing was started
  | 'MISSING_DEPENDENCY' // a program or package is not installed
  | 'NOT_ROOT'
  | 'TIMEOUT'
  | 'ABORTED'
  | 'COMMAND_FAILED' // a host command exited non-zero
  | 'HOST_LOST' // the SSH connection to a host (from a hosts file) was lost
  | 'QMP_CONNECT'
  | 'QMP_COMMAND' // QEMU refused a command
  | 'QMP_DISCONNECTED'
  | 'HMP'
  | 'VM_LAUNCH'
  | 'LAB_STATE' // the lab is up when it should be down or the other way round
  | 'MIGRATION_FAILED'
  | 'COLO' // a COLO pair did not reach lock-step, or did not fail over
  | 'IMAGE_BUILD'
  | 'RESULTS' // the run's results could not be written (disk full, read-only)
  | 'INTERNAL';

export class MiglabError extends Error {
  readonly code: ErrorCode;
  readonly context: Readonly<Record<string, unknown>>;
  constructor(code: ErrorCode, message: string, options: { cause?: unknown; context?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MiglabError';
    this.code = code;
    this.context = options.context ?? {};
  }
}

/** Bad input: found before anything is started. `hint` says how to fix it. */
export class UsageError extends MiglabError {
  constructor(problem: string, hint?: string) {
    super('BAD_INPUT', hint ? `${problem}; ${hint}` : problem);
    this.name = 'UsageError';
  }
}

export class MissingDependencyError extends MiglabError {
  constructor(what: string, installCommand: string) {
    super('MISSING_DEPENDENCY', `${what} is not installed; install it with: ${installCommand}`);
    this.name = 'MissingDependencyError';
  }
}

export class TimeoutError extends MiglabError {
  readonly operation: string;
  readonly limitMs: number;
  constructor(operation: string, limitMs: number, context?: Record<string, unknown>) {
    super('TIMEOUT', `${operation} did not finish within ${limitMs} ms`, { context });
    this.name = 'TimeoutError';
    this.operation = operation;
    this.limitMs = limitMs;
  }
}

export class AbortedError extends MiglabError {
  constructor(operation: string, reason?: unknown) {
    super('ABORTED', `${operation} was interrupted`, { cause: reason });
    this.name = 'AbortedError';
  }
}

/** The message of an error and of its causes, on one line. */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let cur: unknown = err;
  for (let depth = 0; cur !== undefined && cur !== null && depth < 5; depth++) {
    const msg = cur instanceof Error ? cur.message : String(cur);
    if (!parts.some((p) => p.includes(msg))) parts.push(msg);
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return parts.join(': ').replace(/\s*\n\s*/g, ' ');
}
