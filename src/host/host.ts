// Hosts sit behind this one small interface: run a command to completion, start a long-lived
// process, reach a unix socket, read and write files. Implemented for the local machine, a network
// namespace on it, and a remote machine over SSH; every action miglab takes on a host goes through
// it, so no caller asks whether a host is local. Commands are argv arrays, never shell strings.
import type { Duplex, Readable } from 'node:stream';
import type { LineSession } from './line-session.js';

export interface RunOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  readonly input?: string | Buffer;
  /** Do not throw on a non-zero exit; return the result instead. */
  readonly reject?: boolean;
  readonly env?: Readonly<Record<string, string>>;
}

/** How `runSeries` runs its commands. */
export interface SeriesOptions extends Omit<RunOptions, 'input'> {
  /** Run every command whatever the ones before it exited with (default: stop after the first that failed). */
  readonly keepGoing?: boolean;
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
  /** Append stdout and stderr to this file, on the machine miglab runs on (the controller). */
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
  /** The process's pid on its host; 0 until known (a remote process reports it first: see `running`). */
  readonly pid: number;
  /** Resolves with the pid once the process runs (at once for a local one); rejects if it never started. */
  readonly running: Promise<number>;
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
  /** This machine or one of its namespaces: its files are this machine's (read here directly). */
  readonly sharesLocalFiles?: boolean;
  run(argv: readonly string[], opts?: RunOptions): Promise<RunResult>;
  /**
   * Run commands one after another as one step: over SSH one round trip for all of them, here
   * each in turn. Stops after the first that exits non-zero unless `keepGoing`. Resolves with the
   * results of those that ran, in order (`durationMs` is the whole series'); with `reject` (the
   * default) a non-zero exit throws the CommandError `run` would have thrown for that command.
   */
  runSeries(argvs: readonly (readonly string[])[], opts?: SeriesOptions): Promise<RunResult[]>;
  spawn(argv: readonly string[], opts?: SpawnOptions): HostProcess;
  /** Whether `program` is on this host's PATH. */
  which(program: string): Promise<string | undefined>;
  /**
   * A byte stream to a unix socket on this host (QMP, HMP). Rejects with an Error whose `code` is
   * 'ENOENT' or 'ECONNREFUSED' while the socket is not there yet, so connect loops can retry.
   */
  connectUnix(path: string): Promise<Duplex>;
  /** Create a private (0700) directory `parent/prefixXXXXXX` on this host (parent made if missing). */
  makeTempDir(parent: string, prefix: string): Promise<string>;
  /** Remove a file or directory tree on this host; nothing if it is absent. */
  remove(path: string): Promise<void>;
  /** A text file of this host, or undefined when it does not exist. */
  readText(path: string): Promise<string | undefined>;
  /**
   * Put a local (controller) file on this host at `path` (parents made, mode kept), skipped when
   * a file with the same sha256 is there already. Returns whether it copied.
   */
  putFile(localPath: string, path: string): Promise<boolean>;
  /**
   * Start `argv` for a conversation (a line in, a line out), ended by close(). It ends with its
   * input, so it never outlives the session that started it.
   */
  converse(argv: readonly string[]): Promise<LineSession>;
}
