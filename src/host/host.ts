// Hosts sit behind this one small interface: run a command to completion, start a long-lived
// process, read and write files. Implemented for the local machine, a network namespace on it,
// and a remote machine over SSH. Commands are argv arrays, never shell strings.
import type { Readable } from 'node:stream';

export interface RunOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  readonly input?: string;
  /** Do not throw on a non-zero exit; return the result instead. */
  readonly reject?: boolean;
  readonly env?: Readonly<Record<string, string>>;
}

export interface RunResult {
  readonly argv: readonly string[];
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly durationMs: number;
}

export interface ExitInfo {
  readonly exitCode: number | null;
  readonly signal: string | null;
}

export interface SpawnOptions {
  /** Append stdout and stderr to this file (on the host that runs the process). */
  readonly logFile?: string;
  readonly env?: Readonly<Record<string, string>>;
  /**
   * Told when the log file cannot be written (disk full, read-only): logging stops, the process
   * goes on, and the caller decides whether its run can (a result it cannot keep is no result).
   */
  readonly onLogError?: (err: Error) => void;
}

/** A long-lived process on a host. `stop` may be called more than once. */
export interface HostProcess {
  readonly pid: number;
  readonly argv: readonly string[];
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly exited: Promise<ExitInfo>;
  /** Whether it has exited already. */
  readonly hasExited: boolean;
  /** SIGTERM, wait up to `graceMs`, then SIGKILL; resolves once reaped. */
  stop(graceMs?: number): Promise<ExitInfo>;
  /** Send one signal (SIGSTOP, SIGCONT, SIGKILL for faults) to this process, by its pid; nothing once it has exited. */
  sendSignal(signal: NodeJS.Signals): Promise<void>;
  /** The last lines it printed (stdout and stderr interleaved), for error messages. */
  tail(lines?: number): string;
}

export interface Host {
  /** A short name used in messages and file names: "local", "src", "dst", "user@server". */
  readonly name: string;
  run(argv: readonly string[], opts?: RunOptions): Promise<RunResult>;
  spawn(argv: readonly string[], opts?: SpawnOptions): HostProcess;
  /** Whether `program` is on this host's PATH. */
  which(program: string): Promise<string | undefined>;
}
