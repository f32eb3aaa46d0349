// The local machine, and a network namespace on it (the same machine with every argv prefixed
// by `ip netns exec NS`, which execs the program so the pid we hold is the program's own).
import { createWriteStream } from 'node:fs';
import { execa, type ResultPromise } from 'execa';
import { MiglabError } from '../errors.js';
import type { ExitInfo, Host, HostProcess, RunOptions, RunResult, SpawnOptions } from './host.js';

export class CommandError extends MiglabError {
  readonly result: RunResult;
  constructor(host: string, result: RunResult, cause?: unknown) {
    const detail = (result.stderr || result.stdout).trim().split('\n').slice(-3).join(' | ');
    super('COMMAND_FAILED', `on ${host}: \`${result.argv.join(' ')}\` exited ${result.exitCode}${detail ? `: ${detail}` : ''}`, {
      cause,
      context: { host, argv: result.argv, exitCode: result.exitCode },
    });
    this.name = 'CommandError';
    this.result = result;
  }
}

export class LocalHost implements Host {
  readonly name: string;
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

  spawn(argv: readonly string[], opts: SpawnOptions = {}): HostProcess {
    return new LocalProcess(this.wrap(argv), opts);
  }

  async which(program: string): Promise<string | undefined> {
    const r = await execa('sh', ['-c', 'command -v "$1"', 'which', program], { reject: false });
    return r.exitCode === 0 ? String(r.stdout).trim() : undefined;
  }
}

/** A host that is a network namespace on this machine. */
export class NetnsHost extends LocalHost {
  readonly netns: string;
  constructor(name: string, netns: string) {
    super(name, ['ip', 'netns', 'exec', netns]);
    this.netns = netns;
  }
}

const TAIL_KEEP = 200;

class LocalProcess implements HostProcess {
  readonly argv: readonly string[];
  readonly pid: number;
  readonly exited: Promise<ExitInfo>;
  hasExited = false;
  private readonly child: ResultPromise;
  private readonly lines: string[] = [];

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
    if (this.child.pid === undefined) throw new MiglabError('COMMAND_FAILED', `could not start \`${argv.join(' ')}\``);
    this.pid = this.child.pid;
    // Logs may hold what a guest printed: readable by their owner only.
    let log = opts.logFile ? createWriteStream(opts.logFile, { flags: 'a', mode: 0o600 }) : undefined;
    // A full or read-only disk must not crash miglab (an unhandled stream error would, leaving
    // every QEMU running): stop logging and tell the owner, who fails its run cleanly.
    log?.on('error', (err) => {
      log = undefined;
      opts.onLogError?.(err);
    });
    const keep = (chunk: Buffer) => {
      log?.write(chunk);
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) this.lines.push(l);
      if (this.lines.length > TAIL_KEEP) this.lines.splice(0, this.lines.length - TAIL_KEEP);
    };
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    this.exited = this.child.then((r) => {
      this.hasExited = true;
      log?.end();
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
    return this.lines.slice(-n).join('\n');
  }
}
