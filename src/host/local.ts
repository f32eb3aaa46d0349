// The local machine, and a network namespace on it (the same machine with every argv prefixed
// by `ip netns exec NS`, which execs the program so the pid we hold is the program's own).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import { execa, type ResultPromise } from 'execa';
import which from 'which';
import { MiglabError } from '../errors.js';
import type { ExitInfo, Host, HostProcess, RunOptions, RunResult, SeriesOptions, SpawnOptions } from './host.js';
import { connectUnixSocket } from '../util/unix-socket.js';
import { lineSession, type LineSession } from './line-session.js';
import { ProcessOutput } from './output.js';

/**
 * A command as a message shows it: whole up to `maxArgs` arguments, then how many more (a command
 * over 200 paths made a one-line error 10 KB long; the error's context keeps the whole argv).
 */
export function commandText(argv: readonly string[], maxArgs = 8): string {
  if (argv.length <= maxArgs) return argv.join(' ');
  return `${argv.slice(0, maxArgs).join(' ')} ... (${argv.length - maxArgs} more arguments)`;
}

export class CommandError extends MiglabError {
  readonly result: RunResult;
  constructor(host: string, result: RunResult, cause?: unknown) {
    const detail = (result.stderr || result.stdout).trim().split('\n').slice(-3).join(' | ');
    super('COMMAND_FAILED', `on ${host}: \`${commandText(result.argv)}\` exited ${result.exitCode}${detail ? `: ${detail}` : ''}`, {
      cause,
      context: { host, argv: result.argv, exitCode: result.exitCode },
    });
    this.name = 'CommandError';
    this.result = result;
  }
}

/**
 * A series' outcome as `runSeries` gives it: its results, or, with `reject` (the default), the
 * CommandError of its first command that failed. Shared by every Host.
 */
export function seriesOutcome(host: string, results: RunResult[], opts: SeriesOptions): RunResult[] {
  const failed = results.find((r) => r.exitCode !== 0);
  if (failed && opts.reject !== false) throw new CommandError(host, failed);
  return results;
}

/** A series run command by command through `host.run` (a process is cheap to start here). */
export async function runEachInTurn(host: Pick<Host, 'name' | 'run'>, argvs: readonly (readonly string[])[], opts: SeriesOptions = {}): Promise<RunResult[]> {
  const { keepGoing, ...each } = opts;
  const deadline = opts.timeoutMs === undefined ? undefined : Date.now() + opts.timeoutMs;
  const results: RunResult[] = [];
  for (const argv of argvs) {
    // The series' time limit is shared by its commands, as it is over SSH.
    const timeoutMs = deadline === undefined ? undefined : Math.max(1, deadline - Date.now());
    const r = await host.run(argv, { ...each, timeoutMs, reject: false });
    results.push(r);
    if (r.exitCode !== 0 && !keepGoing) break;
  }
  return seriesOutcome(host.name, results, opts);
}

export class LocalHost implements Host {
  readonly name: string;
  readonly sharesLocalFiles = true;
  private readonly prefix: readonly string[];

  constructor(name = 'local', prefix: readonly string[] = []) {
    this.name = name;
    this.prefix = prefix;
  }

  /** The argv that really runs for `argv` (with the namespace prefix). */
  wrap(argv: readonly string[]): string[] {
    return [...this.prefix, ...argv];
  }

  async run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const full = this.wrap(argv);
    const started = Date.now();
    const r = await execa(full[0]!, full.slice(1), {
      reject: false,
      timeout: opts.timeoutMs,
      cancelSignal: opts.signal,
      input: opts.input,
      env: opts.env,
      stripFinalNewline: true,
    });
    const result: RunResult = {
      argv: full,
      exitCode: r.exitCode ?? (r.timedOut ? 124 : 128),
      stdout: String(r.stdout ?? ''),
      stderr: r.timedOut ? `timed out after ${opts.timeoutMs} ms\n${String(r.stderr ?? '')}` : String(r.stderr ?? ''),
      durationMs: Date.now() - started,
    };
    if (result.exitCode !== 0 && opts.reject !== false) throw new CommandError(this.name, result, r.cause);
    return result;
  }

  runSeries(argvs: readonly (readonly string[])[], opts?: SeriesOptions): Promise<RunResult[]> {
    return runEachInTurn(this, argvs, opts);
  }

  spawn(argv: readonly string[], opts: SpawnOptions = {}): HostProcess {
    return new LocalProcess(this.wrap(argv), opts);
  }

  // Looked up in this process's PATH, not by a shell: a preflight asks for some fifteen programs,
  // and a shell each cost about 25 ms (0.35 s of every command).
  async which(program: string): Promise<string | undefined> {
    return (await which(program, { nothrow: true })) ?? undefined;
  }

  // A namespace shares this machine's filesystem, and a unix socket is a filesystem object: the
  // file operations below are the same for the machine and each of its namespaces.

  connectUnix(path: string): Promise<Duplex> {
    return connectUnixSocket(path);
  }

  async makeTempDir(parent: string, prefix: string): Promise<string> {
    await mkdir(parent, { recursive: true, mode: 0o700 });
    return mkdtemp(join(parent, prefix));
  }

  remove(path: string): Promise<void> {
    return rm(path, { recursive: true, force: true });
  }

  async readText(path: string): Promise<string | undefined> {
    try {
      return await readFile(path, 'utf8');
    } catch (err) {
      // ESRCH: a /proc/PID file of a process that ended while it was read.
      if (['ENOENT', 'ESRCH'].includes((err as NodeJS.ErrnoException).code ?? '')) return undefined;
      throw err;
    }
  }

  async putFile(localPath: string, path: string): Promise<boolean> {
    const [want, have] = await Promise.all([sha256File(localPath), sha256File(path).catch(() => undefined)]);
    if (want === have) return false;
    await mkdir(dirname(path), { recursive: true });
    // A copy under a temporary name renamed into place: a reader never sees half a file.
    const tmp = `${path}.miglab-${process.pid}.tmp`;
    try {
      await copyFile(localPath, tmp);
      await chmod(tmp, (await stat(localPath)).mode & 0o7777);
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    return true;
  }

  async converse(argv: readonly string[]): Promise<LineSession> {
    const full = this.wrap(argv);
    const child = execa(full[0]!, full.slice(1), { stdin: 'pipe', stdout: 'pipe', stderr: 'ignore', buffer: false, reject: false });
    return lineSession(`\`${argv.join(' ')}\` on ${this.name}`, child.stdin!, child.stdout!, child);
  }
}

/** The sha256 of a file on this machine, in hex (as `sha256sum` prints it). */
export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('error', reject)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/** A host that is a network namespace on this machine. */
export class NetnsHost extends LocalHost {
  readonly netns: string;
  constructor(name: string, netns: string) {
    super(name, ['ip', 'netns', 'exec', netns]);
    this.netns = netns;
  }
}

class LocalProcess implements HostProcess {
  readonly argv: readonly string[];
  readonly pid: number;
  readonly running: Promise<number>;
  readonly exited: Promise<ExitInfo>;
  hasExited = false;
  private readonly child: ResultPromise;
  private readonly output: ProcessOutput;

  constructor(argv: readonly string[], opts: SpawnOptions) {
    this.argv = argv;
    this.child = execa(argv[0]!, argv.slice(1), {
      reject: false,
      env: opts.env,
      stdin: 'ignore',
      buffer: false,
      // A detached process group: Ctrl-C in the terminal reaches miglab only, and miglab
      // stops its children in order (QEMU gets `quit` before any signal).
      detached: true,
      cleanup: true,
    });
    if (this.child.pid === undefined) throw new MiglabError('COMMAND_FAILED', `could not start \`${commandText(argv)}\``);
    this.pid = this.child.pid;
    this.running = Promise.resolve(this.pid);
    this.output = new ProcessOutput(opts);
    const keep = (chunk: Buffer) => this.output.keep(chunk);
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    this.exited = this.child.then((r) => {
      this.hasExited = true;
      this.output.end();
      return { exitCode: r.exitCode ?? null, signal: r.signal ?? null };
    });
  }

  get stdout() {
    return this.child.stdout!;
  }
  get stderr() {
    return this.child.stderr!;
  }

  async stop(graceMs = 3000): Promise<ExitInfo> {
    if (this.hasExited) return this.exited;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (!this.hasExited) this.child.kill('SIGKILL');
    }, graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  async sendSignal(signal: NodeJS.Signals): Promise<void> {
    if (!this.hasExited) this.child.kill(signal);
  }

  tail(n = 20): string {
    return this.output.tail(n);
  }
}
