// A scripted host for unit tests of what runs commands (host/host.ts `Host`): it records every argv
// it is given, answers run() as the test scripts it (exit 0 and no output otherwise), and spawns
// fake processes whose console the test writes and whose exit it decides.
import { PassThrough, type Duplex } from 'node:stream';
import type { LineSession } from '../../src/host/line-session.js';
import type { ExitInfo, Host, HostProcess, RunOptions, RunResult, SeriesOptions } from '../../src/host/host.js';
import { CommandError, LocalHost, runEachInTurn } from '../../src/host/local.js';
import type { LabMachine } from '../../src/lab/machine.js';
import { connectUnixSocket } from '../../src/util/unix-socket.js';

/** A long-lived process that is only what the test makes it: it prints what it is told and exits when told. */
export class FakeProcess implements HostProcess {
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  readonly exited: Promise<ExitInfo>;
  readonly running: Promise<number>;
  /** Signals sent to it, in order. */
  readonly signals: NodeJS.Signals[] = [];
  hasExited = false;
  private end!: (e: ExitInfo) => void;

  constructor(
    readonly pid: number,
    readonly argv: readonly string[],
  ) {
    this.exited = new Promise((resolve) => (this.end = resolve));
    this.running = Promise.resolve(pid);
  }

  /** A line on its console (the guest's serial port). */
  print(line: string): void {
    if (!this.hasExited) this.stdout.write(`${line}\n`);
  }

  exit(info: ExitInfo = { exitCode: 0, signal: null }): void {
    if (this.hasExited) return;
    this.hasExited = true;
    this.stdout.end();
    this.stderr.end();
    this.end(info);
  }

  stop(): Promise<ExitInfo> {
    this.exit({ exitCode: null, signal: 'SIGTERM' });
    return this.exited;
  }

  async sendSignal(signal: NodeJS.Signals): Promise<void> {
    if (this.hasExited) return;
    this.signals.push(signal);
    if (signal === 'SIGKILL') this.exit({ exitCode: null, signal });
  }

  tail(): string {
    return '';
  }
}

/** What a scripted run() answers (anything left out: exit 0, no output). */
export type RunAnswer = Partial<Pick<RunResult, 'exitCode' | 'stdout' | 'stderr'>>;

export class FakeHost implements Host {
  /** Every argv run() was given, in order. */
  readonly ran: (readonly string[])[] = [];
  readonly spawned: FakeProcess[] = [];
  /** Fake pids start here; the test's own pid would let /proc answer for them. */
  private nextPid = 4_000_000;

  constructor(
    readonly name: string,
    private readonly script: {
      run?: (argv: readonly string[]) => RunAnswer | undefined;
      pid?: () => number;
      /** How a conversation started with converse(argv) answers each line. */
      converse?: (argv: readonly string[]) => (line: string) => string;
    } = {},
  ) {}

  /** Every argv converse() was given, in order, and the lines each was asked. */
  readonly conversations: { argv: readonly string[]; asked: string[]; closed: boolean }[] = [];

  async converse(argv: readonly string[]): Promise<LineSession> {
    const answer = this.script.converse?.(argv);
    if (!answer) throw new Error(`${this.name}: no conversation scripted for \`${argv.join(' ')}\``);
    const c = { argv, asked: [] as string[], closed: false };
    this.conversations.push(c);
    return {
      ask: async (line) => {
        if (c.closed) throw new Error(`${this.name}: asked after close`);
        c.asked.push(line);
        return answer(line);
      },
      close: async () => {
        c.closed = true;
      },
    };
  }

  async run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    this.ran.push(argv);
    const r: RunResult = { argv, exitCode: 0, stdout: '', stderr: '', durationMs: 0, ...this.script.run?.(argv) };
    if (r.exitCode !== 0 && opts.reject !== false) throw new CommandError(this.name, r);
    return r;
  }

  /** Each command of a series is run() in turn, as a local host does. */
  runSeries(argvs: readonly (readonly string[])[], opts?: SeriesOptions): Promise<RunResult[]> {
    return runEachInTurn(this, argvs, opts);
  }

  spawn(argv: readonly string[]): FakeProcess {
    const p = new FakeProcess(this.script.pid?.() ?? this.nextPid++, argv);
    this.spawned.push(p);
    return p;
  }

  async which(program: string): Promise<string | undefined> {
    return `/usr/bin/${program}`;
  }

  /** Paths remove() was given, in order. */
  readonly removed: string[] = [];
  /** Files readText() answers from; any other is read from this machine (/proc of the test's own process). */
  readonly files = new Map<string, string>();

  /** Sockets are this machine's: the fake QEMUs' QMP servers listen on real unix sockets. */
  connectUnix(path: string): Promise<Duplex> {
    return connectUnixSocket(path);
  }

  async makeTempDir(parent: string, prefix: string): Promise<string> {
    return `${parent}/${prefix}${String(this.nextPid++).slice(-6)}`;
  }

  async remove(path: string): Promise<void> {
    this.removed.push(path);
  }

  async readText(path: string): Promise<string | undefined> {
    return this.files.get(path) ?? new LocalHost().readText(path);
  }

  async putFile(): Promise<boolean> {
    return false;
  }
}

/**
 * A host that only runs commands (as `run` answers) and finds programs (as `which` does); anything
 * else it is asked is a test's mistake and throws.
 */
export function runOnlyHost(name: string, run: Host['run'], which: Host['which'] = async () => undefined): Host {
  const unused = (what: string) => () => {
    throw new Error(`${name}: ${what} is not used by this test`);
  };
  const host: Host = {
    name,
    run,
    runSeries: (argvs, opts) => runEachInTurn(host, argvs, opts),
    which,
    spawn: unused('spawn'),
    connectUnix: unused('connectUnix'),
    makeTempDir: unused('makeTempDir'),
    remove: unused('remove'),
    readText: unused('readText'),
    putFile: unused('putFile'),
    converse: unused('converse'),
  };
  return host;
}

/**
 * A lab machine (src/lab/machine.ts) on `host`: its namespaces run their commands through it as
 * `ip netns exec NS ...`, as this machine's do, so `host.ran` holds every command in order.
 */
export function fakeMachine(host: FakeHost): LabMachine {
  return {
    host,
    netns: (name, netns): Host => {
      const wrap = (argv: readonly string[]) => ['ip', 'netns', 'exec', netns, ...argv];
      const inNs: Host = {
        name,
        run: (argv, opts) => host.run(wrap(argv), opts),
        runSeries: (argvs, opts) => runEachInTurn(inNs, argvs, opts),
        spawn: (argv) => host.spawn(wrap(argv)),
        converse: (argv) => host.converse(wrap(argv)),
        which: (program) => host.which(program),
        connectUnix: (path) => host.connectUnix(path),
        makeTempDir: (parent, prefix) => host.makeTempDir(parent, prefix),
        remove: (path) => host.remove(path),
        readText: (path) => host.readText(path),
        putFile: () => host.putFile(),
      };
      return inNs;
    },
  };
}
