// A remote machine over SSH (ssh2), behind the same Host interface as the local machine and its
// namespaces. SSH runs a command line through the remote shell, so each argv element is quoted
// here, in one place, and nowhere else. Long-lived processes run under a fixed wrapper that
// reports their remote pid (so they are stopped by pid like local ones) and ends them when their
// SSH session ends: nothing miglab starts outlives a dropped connection or a killed miglab.
import { spawn as spawnLocal, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { Duplex, PassThrough, type Readable } from 'node:stream';
import ssh2 from 'ssh2';
import { lineSession, type LineSession } from './line-session.js';
import { shellCommand } from './shell-quote.js';
import type { ClientChannel, ConnectConfig } from 'ssh2';
import { MiglabError, TimeoutError } from '../errors.js';
import { withDeadline, type WaitOptions } from '../util/deadline.js';
import type { ExitInfo, Host, HostProcess, RunOptions, RunResult, SeriesOptions, SpawnOptions } from './host.js';
import { CommandError, commandText, seriesOutcome, sha256File } from './local.js';
import { ProcessOutput } from './output.js';


export interface SshTarget {
  readonly host: string;
  readonly port?: number;
  readonly username: string;
  /** Path of a private key file; or use `agent`. */
  readonly privateKeyPath?: string;
  readonly agent?: string;
  /** Expected host key (as ssh2's hostHash sha256 hex); unset accepts any (lab use only). */
  readonly hostKeySha256?: string;
  /**
   * A program started on the controller whose stdin/stdout carry the SSH connection (as OpenSSH's
   * ProxyCommand): a jump host, or `ip netns exec NS nc ADDR 22`. Stopped when the connection closes.
   */
  readonly proxy?: readonly string[];
}

/**
 * Runs `"$@"` (stdin /dev/null, fd 3 closed) in the background, in a session (and process group)
 * of its own, and waits for it. The background child prints its own pid (which is also its group's
 * id) on stderr and then execs the program (which keeps the pid), so the pid line comes before
 * anything the program prints. A watcher reads the channel's stdin: EOF there means the SSH
 * session ended (miglab closed it, was killed, or the connection dropped), and the program's
 * group gets SIGTERM (with SIGCONT, in case it is frozen) and, 5 s later, SIGKILL. The group, not
 * the pid alone: a child the program started (a shell's command) would otherwise live on and hold
 * the channel's output open. A program killed by a signal makes the wrapper die of the same
 * signal, so the channel reports the signal, not 128+N. (A background child of a shell without
 * job control is no group leader, so setsid makes the new session in place, without a fork.)
 */
const SESSION_BOUND_SCRIPT = [
  'exec 3<&0',
  `setsid -w sh -c 'echo "miglab-pid $$" >&2; exec "$@"' miglab "$@" </dev/null 3<&- & p=$!`,
  '(cat <&3; kill -s TERM -- "-$p"; kill -s CONT -- "-$p"; sleep 5; kill -s KILL -- "-$p") >/dev/null 2>&1 & w=$!',
  'exec 3<&-',
  'wait "$p"; c=$?',
  'kill "$w" 2>/dev/null',
  'if [ "$c" -gt 128 ]; then s=$(kill -l "$c"); trap - "$s"; kill -s "$s" $$; fi',
  'exit "$c"',
].join('\n');

/** The argv a long-lived remote process really runs: `argv` under the session-bound wrapper. */
export function sessionBoundArgv(argv: readonly string[]): string[] {
  if (argv.length === 0) throw new MiglabError('INTERNAL', 'empty command');
  return ['sh', '-c', SESSION_BOUND_SCRIPT, 'miglab', ...argv];
}

const PID_LINE = /^miglab-pid (\d+)\n/;

/** `[ -e ]` says whether a path is there; `cat` then reads it (exit 3: it is not). */
const READ_SCRIPT = '[ -e "$1" ] || exit 3; exec cat -- "$1"';
const NOT_THERE = 3;

/**
 * Reads files for readText over one long-lived conversation: a path a line in, a line out: `-`
 * when nothing is there, `+` and the content in base64 (one line whatever the file holds), or
 * `!` when it cannot be read (then readText asks by a command of its own, whose error says why).
 * A file costs a round trip on an open channel instead of opening one for a command (/proc reads
 * during a migration, the sampling of a batch). `-e` is also how connectUnix tells a socket that
 * is not there yet from one nobody accepts on.
 */
const READER = ['sh', '-c', 'while IFS= read -r f; do if [ ! -e "$f" ]; then echo -; elif b=$(base64 -w0 -- "$f" 2>/dev/null); then echo "+$b"; else echo !; fi; done'];
/** A file the reader has not answered in this long is read by a command instead (and the reader ended). */
const READER_ANSWER_MS = 5_000;

/** `mkdir -p` the parent (0700 when made), then `mktemp -d` inside it. */
const TEMP_DIR_SCRIPT = 'mkdir -p -m 0700 -- "$1" && mktemp -d "$1/$2XXXXXX"';

/**
 * One command of a series (SshHost.runSeries): run as an external program (env: never a shell
 * builtin or function of the same name, as `run` would not), then a marker ($m, the script's
 * first argument) with its exit status on stdout and the marker on stderr, each after a newline
 * of its own (removed again when split). The marker is new for each series, so no output can
 * imitate it.
 */
const SERIES_STEP = `m=$1; miglab_step() { env -- "$@"; c=$?; printf '\\n%s %d\\n' "$m" "$c"; printf '\\n%s\\n' "$m" >&2; return "$c"; }`;

/** The one command that runs a series: a shell script of the commands, each quoted by shellCommand. */
export function seriesArgv(argvs: readonly (readonly string[])[], marker: string, keepGoing = false): string[] {
  const steps = argvs.map((argv) => `miglab_step ${shellCommand(argv)}`).join(keepGoing ? '\n' : ' &&\n');
  return ['sh', '-c', `${SERIES_STEP}\n${steps}`, 'series', marker];
}

/** A marker for one series: nothing a command prints can be it by chance. */
export function seriesMarker(): string {
  return `miglab-step-${randomBytes(8).toString('hex')}`;
}

/**
 * The results of a series from its output: one per marker; a command the series ended in (the
 * shell killed at its deadline, the connection lost) gets the series' own exit status.
 */
export function splitSeries(argvs: readonly (readonly string[])[], whole: RunResult, marker: string, keepGoing = false): RunResult[] {
  const outs = whole.stdout.split(new RegExp(`\\n${marker} (\\d+)\\n`));
  const errs = whole.stderr.split(`\n${marker}\n`);
  const trim = (t: string | undefined) => (t ?? '').replace(/\n$/, '');
  const results: RunResult[] = [];
  for (let i = 0; i < argvs.length && 2 * i + 1 < outs.length; i++) {
    results.push({ argv: argvs[i]!, exitCode: Number(outs[2 * i + 1]), stdout: trim(outs[2 * i]), stderr: trim(errs[i]), durationMs: whole.durationMs });
  }
  const last = results[results.length - 1];
  const cutShort = results.length < argvs.length && (keepGoing || last === undefined || last.exitCode === 0);
  if (cutShort) {
    const i = results.length;
    results.push({ argv: argvs[i]!, exitCode: whole.exitCode || 255, stdout: trim(outs[2 * i]), stderr: trim(errs[i]), durationMs: whole.durationMs });
  }
  return results;
}

/** How long the server may take to open a channel (it answers in milliseconds when it is alive). */
const CHANNEL_OPEN_MS = 15_000;
/** Writes stdin to $1 (parents made), sets mode $2, renames it to $3. */
const PUT_SCRIPT = 'mkdir -p -- "$(dirname -- "$3")" && cat > "$1" && chmod "$2" "$1" && mv -f -- "$1" "$3"';
/** How long copying one file may take (the guest's initrd, tens of MiB, takes about a second on a LAN). */
const FILE_STEP_MS = 300_000;
/** How long a channel may take to close once its command has exited. */
const CHANNEL_CLOSE_MS = 5_000;

/** OpenSSH's SSH2_OPEN_CONNECT_FAILED: the server could not connect where the channel was to go. */
const OPEN_CONNECT_FAILED = 2;

/**
 * MIGLAB_DEBUG_SSH=FILE (or 1: stderr) logs every channel's life, one timestamped line per event
 * (open asked, opened, exit, eof, close), to find a command whose end is not seen: which
 * command, on which host and channel, got which of its events.
 */
const DEBUG_SSH = process.env.MIGLAB_DEBUG_SSH;
let channelSeq = 0;
function debugSsh(line: string): void {
  if (!DEBUG_SSH) return;
  const text = `${new Date().toISOString()} ${process.pid} ${line}\n`;
  if (DEBUG_SSH === '1') process.stderr.write(text);
  else appendFileSync(DEBUG_SSH, text);
}

/** Log a channel's events under its number (nothing unless MIGLAB_DEBUG_SSH is set). */
function traceChannel(ch: ClientChannel, id: string): void {
  if (!DEBUG_SSH) return;
  ch.on('exit', (code: unknown, signal?: unknown) => debugSsh(`${id} exit ${String(code)}${signal ? ` ${String(signal)}` : ''}`));
  ch.on('end', () => debugSsh(`${id} eof`));
  ch.on('close', () => debugSsh(`${id} close`));
}

/**
 * One exit status for every path, as a shell reports it: the program's code, 128 + N for one
 * killed by signal N, 255 (ssh's own failure) when SSH brought neither.
 */
export function shellExitCode(code: number | null, signal: string | null): number {
  if (code !== null) return code;
  if (!signal) return 255;
  // ssh2 names it SIGKILL (the protocol's KILL with SIG added); either is taken.
  const name = (signal.startsWith('SIG') ? signal : `SIG${signal}`) as NodeJS.Signals;
  return 128 + (osConstants.signals[name] ?? 0);
}

export class SshHost implements Host {
  readonly name: string;
  private closedByUs = false;
  private lostAt: Date | undefined;
  private constructor(
    private readonly client: ssh2.Client,
    target: SshTarget,
  ) {
    this.name = `${target.username}@${target.host}`;
    // A connection that ends without close() was lost: the host is out of reach from now on,
    // which a run's watcher and every later command say in those words.
    client.once('close', () => {
      debugSsh(`${this.name} connection closed${this.closedByUs ? '' : ' (lost)'}`);
      if (!this.closedByUs) this.lostAt = new Date();
    });
  }

  /** Why this host cannot be reached any more (its connection was lost), or undefined. */
  connectionLost(): string | undefined {
    return this.lostAt ? `the SSH connection to ${this.name} was lost at ${this.lostAt.toISOString().slice(11, 23)}` : undefined;
  }

  /** Refuse to use a lost connection, in words that say so (ssh2 says only "Not connected"). */
  private checkConnected(what: string): void {
    const lost = this.connectionLost();
    if (lost) throw new MiglabError('HOST_LOST', `${lost}: cannot ${what}`, { context: { host: this.name } });
  }

  static async connect(target: SshTarget, opts: WaitOptions): Promise<SshHost> {
    const client = new ssh2.Client();
    const proxy = target.proxy ? startProxy(target.proxy) : undefined;
    const config: ConnectConfig = {
      host: target.host,
      port: target.port ?? 22,
      username: target.username,
      privateKey: target.privateKeyPath ? readFileSync(target.privateKeyPath) : undefined,
      agent: target.agent,
      readyTimeout: opts.timeoutMs,
      hostHash: 'sha256',
      hostVerifier: target.hostKeySha256 ? (hash: string) => hash === target.hostKeySha256 : undefined,
      sock: proxy?.stream,
    };
    const where = `${target.username}@${target.host}:${config.port}${proxy ? ` through \`${target.proxy!.join(' ')}\`` : ''}`;
    const ready = new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve());
      // Kept for the connection's life: ssh2 may report more than one error (a proxy that ends
      // before the handshake, then the lost connection), and one with no listener would crash
      // miglab. Once connected, a dropped connection shows as failed commands and ended processes.
      client.on('error', (err) => {
        const said = proxy?.stderr().trim().split('\n').slice(-1)[0];
        reject(new MiglabError('COMMAND_FAILED', `cannot connect to ${where} over SSH: ${err.message}${said ? ` (the proxy said: ${said})` : ''}`, { cause: err }));
      });
    });
    // The proxy lives exactly as long as the connection.
    if (proxy) client.once('close', () => proxy.child.kill('SIGTERM'));
    client.connect(config);
    try {
      await withDeadline(`SSH connection to ${where}`, ready, opts);
    } catch (err) {
      client.end();
      proxy?.child.kill('SIGTERM');
      throw err;
    }
    return new SshHost(client, target);
  }

  private reader: Promise<LineSession> | undefined;

  /**
   * The reader's answer for `path` (see READER), or undefined when it cannot be asked (a path with
   * a newline; the reader would not start, or did not answer in time: it is ended and the next
   * question starts another).
   */
  private async askReader(path: string): Promise<string | undefined> {
    if (path.includes('\n')) return undefined;
    this.reader ??= this.converse(READER);
    const reader = this.reader;
    try {
      return await (await reader).ask(path, { timeoutMs: READER_ANSWER_MS });
    } catch {
      if (this.reader === reader) this.reader = undefined;
      void reader.then((r) => r.close()).catch(() => undefined);
      return undefined;
    }
  }

  close(): void {
    this.closedByUs = true;
    this.client.end();
  }

  /**
   * Open an exec channel and hand it to `attach` AT ONCE, inside ssh2's callback. A quick command's
   * whole answer (the exec's success, its output, exit status, EOF and close) can arrive in one
   * read from the socket, which ssh2 parses in one go: a listener added after an `await` (a
   * microtask later) misses the exit and the close, and the command looks as if it never ended
   * (seen: a /proc read over SSH whose exit came 1 ms after the channel opened, waited on until
   * its deadline). So every listener is added by `attach`, before ssh2 parses on.
   */
  private exec<T>(command: string, attach: (ch: ClientChannel) => T, shown = command): Promise<T> {
    const what = `\`${shown.slice(0, 80)}\``;
    this.checkConnected(`run ${what}`);
    const id = `${this.name} ch${++channelSeq}`;
    debugSsh(`${id} open ${shown.slice(0, 300).replace(/\s+/g, ' ')}`);
    const opened = new Promise<T>((resolve, reject) =>
      this.client.exec(command, (err, ch) => {
        debugSsh(`${id} ${err ? `open failed: ${err.message}` : 'opened'}`);
        if (err) reject(this.connectionLost() ? new MiglabError('HOST_LOST', `${this.connectionLost()}: cannot run ${what}`, { cause: err }) : err);
        else {
          traceChannel(ch, id);
          resolve(attach(ch));
        }
      }),
    );
    // A connection that went quiet without closing (a proxy stalled) answers no channel request:
    // never wait for one without a bound.
    return withDeadline(`opening an SSH channel on ${this.name} for ${what}`, opened, { timeoutMs: CHANNEL_OPEN_MS });
  }

  /**
   * Run `argv` to completion; stdout and stderr exactly as printed. A command without input runs
   * under the session-bound wrapper, as spawned processes do: its remote pid is known, so a
   * command that outlives its deadline is said to be still running (the program hung) or gone
   * (its exit status was lost on the way), and is ended, never left behind on the host.
   */
  private async execute(argv: readonly string[], opts: RunOptions, shown = argv.join(' ')): Promise<RunResult> {
    if (opts.input !== undefined) return this.executeWithInput(argv, opts.input, opts);
    const started = Date.now();
    const proc = this.startBound(argv, {}, shown);
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const what = `\`${shown}\` on ${this.name}`;
    let exit: ExitInfo;
    try {
      exit = await withDeadline(what, proc.exited, { timeoutMs: opts.timeoutMs ?? 600000, signal: opts.signal });
    } catch (err) {
      if (!(err instanceof TimeoutError)) {
        await proc.stop(1000).catch(() => undefined);
        throw err;
      }
      const state = await this.stateOf(proc.pid);
      await proc.stop(1000).catch(() => undefined);
      throw new TimeoutError(`${what} (${state})`, err.limitMs, { host: this.name, argv });
    }
    if (!proc.pid) throw new MiglabError('COMMAND_FAILED', `${what} did not start: ${proc.tail(3) || 'no output'}`);
    // No exit status at all is the connection lost.
    const exitCode = shellExitCode(exit.exitCode, exit.signal);
    if (exit.exitCode === null && exit.signal === null) this.checkConnected(`finish ${what}`);
    const result: RunResult = { argv, exitCode, stdout, stderr, durationMs: Date.now() - started };
    if (exitCode !== 0 && opts.reject !== false) throw new CommandError(this.name, result);
    return result;
  }

  /** What became of a command whose exit status did not come: its remote process, asked by pid. */
  private async stateOf(pid: number): Promise<string> {
    if (!pid) return 'it never reported its pid: the SSH channel stalled before it started';
    try {
      // Asked over a plain channel: one wrapper fewer, when this connection may be the trouble.
      const alive = (await this.executeWithInput(['kill', '-0', String(pid)], '', { timeoutMs: 5000 })).exitCode === 0;
      return alive ? `still running there as pid ${pid}: the program hung; stopped now` : `its process ${pid} is gone there, but SSH brought no exit status`;
    } catch (err) {
      return `pid ${pid}, its state unknown: ${(err as Error).message}`;
    }
  }

  /** A command fed `input` on its stdin, over a plain exec channel (the wrapper needs stdin). */
  private async executeWithInput(argv: readonly string[], input: string | Buffer, opts: RunOptions): Promise<RunResult> {
    const started = Date.now();
    let stdout = '';
    let stderr = '';
    const { ch, exit, closed } = await this.exec(shellCommand(argv), (ch) => {
      ch.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
      ch.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
      return {
        ch,
        exit: new Promise<number>((resolve) => ch.on('exit', (code: number | null, signal?: string | null) => resolve(shellExitCode(code, signal ?? null)))),
        closed: new Promise<void>((resolve) => ch.on('close', () => resolve())),
      };
    });
    ch.end(input);
    let exitCode: number;
    try {
      exitCode = await withDeadline(`\`${commandText(argv)}\` on ${this.name}`, exit, { timeoutMs: opts.timeoutMs ?? 600000, signal: opts.signal });
      // Output may still be on its way after the exit status: wait for the close, within a bound.
      await withDeadline(`the channel of \`${commandText(argv)}\` on ${this.name} to close`, closed, { timeoutMs: CHANNEL_CLOSE_MS });
    } catch (err) {
      ch.close();
      throw err;
    }
    const result: RunResult = { argv, exitCode, stdout, stderr, durationMs: Date.now() - started };
    if (exitCode !== 0 && opts.reject !== false) throw new CommandError(this.name, result);
    return result;
  }

  async run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const r = await this.execute(argv, { ...opts, reject: false });
    const result: RunResult = { ...r, stdout: r.stdout.replace(/\n$/, ''), stderr: r.stderr.replace(/\n$/, '') };
    if (result.exitCode !== 0 && opts.reject !== false) throw new CommandError(this.name, result);
    return result;
  }

  /**
   * One remote shell runs the commands in turn (each quoted by shellCommand), and after each one
   * prints a marker with its exit status on stdout and the marker on stderr: the output between
   * markers is that command's (SERIES_STEP). One round trip for the whole series instead of one per command.
   */
  async runSeries(argvs: readonly (readonly string[])[], opts: SeriesOptions = {}): Promise<RunResult[]> {
    if (argvs.length === 0) return [];
    const shown = argvs.map((argv) => argv.join(' ')).join('; ');
    const { keepGoing: _, ...runOpts } = opts;
    const marker = seriesMarker();
    const whole = await this.execute(seriesArgv(argvs, marker, opts.keepGoing), { ...runOpts, reject: false }, shown);
    return seriesOutcome(this.name, splitSeries(argvs, whole, marker, opts.keepGoing), opts);
  }

  spawn(argv: readonly string[], opts: SpawnOptions = {}): HostProcess {
    return this.startBound(argv, opts);
  }

  /** `argv` under the session-bound wrapper, on a channel of its own: long-lived or not. */
  private startBound(argv: readonly string[], opts: SpawnOptions, shown = shellCommand(argv)): SshProcess {
    // Logged and named by the program it runs, not by the wrapper every bound command shares.
    return new SshProcess(this, argv, (wire) => this.exec(shellCommand(sessionBoundArgv(argv)), wire, `[bound] ${shown}`), opts);
  }

  async which(program: string): Promise<string | undefined> {
    const r = await this.run(['sh', '-c', 'command -v "$1"', 'which', program], { reject: false });
    return r.exitCode === 0 ? r.stdout.trim() : undefined;
  }

  async connectUnix(path: string): Promise<Duplex> {
    this.checkConnected(`reach unix socket ${path}`);
    try {
      const id = `${this.name} ch${++channelSeq}`;
      debugSsh(`${id} open unix ${path}`);
      return await new Promise<ClientChannel>((resolve, reject) =>
        this.client.openssh_forwardOutStreamLocal(path, (err, ch) => {
          debugSsh(`${id} ${err ? `open failed: ${err.message}` : 'opened'}`);
          if (err) reject(err);
          else {
            traceChannel(ch, id);
            resolve(ch);
          }
        }),
      );
    } catch (err) {
      // sshd says only that it could not connect; whether the socket is there yet tells ENOENT
      // (QEMU has not made it) from ECONNREFUSED (nobody listens), as a local connect would.
      if ((err as { reason?: unknown }).reason !== OPEN_CONNECT_FAILED) {
        throw new MiglabError('COMMAND_FAILED', `cannot reach unix socket ${path} on ${this.name}: ${(err as Error).message} (sshd needs AllowStreamLocalForwarding yes)`, { cause: err });
      }
      const answer = await this.askReader(path);
      const there = answer === undefined ? (await this.run(['test', '-e', path], { reject: false })).exitCode === 0 : answer !== '-';
      throw Object.assign(new Error(`${there ? 'connection refused' : 'no such file'}: unix socket ${path} on ${this.name}`, { cause: err }), {
        code: there ? 'ECONNREFUSED' : 'ENOENT',
      });
    }
  }

  /** Over an exec channel of its own: the program ends with the channel's input, or with the connection. */
  async converse(argv: readonly string[]): Promise<LineSession> {
    const { ch, ended } = await this.exec(shellCommand(argv), (ch) => ({ ch, ended: new Promise<void>((resolve) => ch.on('close', () => resolve())) }));
    return lineSession(`\`${commandText(argv)}\` on ${this.name}`, ch, ch, ended);
  }

  async makeTempDir(parent: string, prefix: string): Promise<string> {
    return (await this.run(['sh', '-c', TEMP_DIR_SCRIPT, 'mktemp', parent, prefix])).stdout.trim();
  }

  async remove(path: string): Promise<void> {
    await this.run(['rm', '-rf', '--', path]);
  }

  /**
   * A file of this host over the reader (one round trip on an open channel, no command started
   * for it), or by a command of its own when the reader cannot say: its answer then says why.
   */
  async readText(path: string): Promise<string | undefined> {
    const answer = await this.askReader(path);
    if (answer?.startsWith('+')) return Buffer.from(answer.slice(1), 'base64').toString('utf8');
    if (answer === '-') return undefined;
    const r = await this.execute(['sh', '-c', READ_SCRIPT, 'read', path], { reject: false });
    if (r.exitCode === NOT_THERE) return undefined;
    if (r.exitCode !== 0) throw new CommandError(this.name, r);
    return r.stdout;
  }

  /**
   * Written by `cat` from an exec channel's input (no sftp subsystem needed; ssh2's sftp fastPut
   * was seen to hang mid-file here), under a temporary name renamed into place once whole, so a
   * reader never sees half a file; then checked by its sha256.
   */
  async putFile(localPath: string, path: string): Promise<boolean> {
    const [want, have] = await Promise.all([sha256File(localPath), this.sha256(path)]);
    if (want === have) return false;
    const mode = ((await stat(localPath)).mode & 0o7777).toString(8);
    const tmp = `${path}.miglab-${randomBytes(4).toString('hex')}.tmp`;
    const what = `copying ${localPath} to ${path} on ${this.name}`;
    // Sent whole as the command's input (the image's files are tens of MiB), then its exit waited
    // for as any command's.
    const r = await this.execute(['sh', '-c', PUT_SCRIPT, 'put', tmp, mode, path], { input: await readFile(localPath), timeoutMs: FILE_STEP_MS, reject: false });
    if (r.exitCode !== 0) {
      await this.run(['rm', '-f', '--', tmp], { reject: false });
      throw new MiglabError('COMMAND_FAILED', `${what} failed (exit ${r.exitCode}): ${r.stderr.trim().split('\n').slice(-1)[0] ?? ''}`);
    }
    const got = await this.sha256(path);
    if (got !== want) throw new MiglabError('COMMAND_FAILED', `${what}: the copy's sha256 is ${got ?? 'unreadable'}, not ${want}`);
    return true;
  }

  private async sha256(path: string): Promise<string | undefined> {
    const r = await this.run(['sha256sum', '--', path], { reject: false });
    return r.exitCode === 0 ? r.stdout.split(/\s/)[0] : undefined;
  }
}

/** The proxy program, and its stdin/stdout as the one stream ssh2 talks over. */
function startProxy(argv: readonly string[]): { child: ChildProcess; stream: Duplex; stderr: () => string } {
  if (argv.length === 0) throw new MiglabError('BAD_INPUT', 'an SSH proxy command is empty; give its argv, e.g. [nc, 10.0.0.1, "22"]');
  const child = spawnLocal(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  const said = new ProcessOutput({});
  child.stderr!.on('data', (d: Buffer) => said.keep(d));
  // One stream over the proxy's stdin and stdout, with backpressure both ways made explicit:
  // a write completes when the proxy's stdin took it, and its stdout pauses while ssh2 is full.
  // (Duplex.from over the two pipes stalled the whole connection while a large file was sent.)
  const input = child.stdin!;
  const output = child.stdout!;
  const stream = new Duplex({
    write(chunk: Buffer, _enc, done) {
      input.write(chunk, done);
    },
    final(done) {
      input.end(done);
    },
    read() {
      output.resume();
    },
  });
  output.on('data', (d: Buffer) => {
    if (!stream.push(d)) output.pause();
  });
  // The proxy's end is the connection's: ssh2 learns it from the stream's close.
  output.on('end', () => {
    stream.push(null);
    stream.destroy();
  });
  input.on('error', (err) => stream.destroy(err));
  child.once('exit', () => stream.destroy());
  // A proxy that cannot start reports on the stream: ssh2 then fails the connection with it.
  child.once('error', (err) => stream.destroy(err));
  return { child, stream, stderr: () => said.tail(3) };
}

class SshProcess implements HostProcess {
  readonly stdout: Readable = new PassThrough();
  readonly stderr: Readable = new PassThrough();
  readonly exited: Promise<ExitInfo>;
  readonly running: Promise<number>;
  pid = 0;
  hasExited = false;
  private readonly output: ProcessOutput;

  constructor(
    private readonly host: SshHost,
    readonly argv: readonly string[],
    /**
     * Opens the process's channel, wiring it (inside ssh2's callback) with the function given.
     * Its promise is wrapped in an object: exec resolves when the channel opens, not when the
     * process exits (a promise resolved with a promise would wait for it).
     */
    open: (wire: (ch: ClientChannel) => { exited: Promise<ExitInfo> }) => Promise<{ exited: Promise<ExitInfo> }>,
    opts: SpawnOptions,
  ) {
    this.output = new ProcessOutput(opts);
    let started: (pid: number) => void = () => undefined;
    let failed: (err: unknown) => void = () => undefined;
    this.running = new Promise((resolve, reject) => {
      started = resolve;
      failed = reject;
    });
    this.running.catch(() => undefined); // a caller that never asks is told by `exited`
    const out = this.stdout as PassThrough;
    const err = this.stderr as PassThrough;
    const done = (info: ExitInfo) => {
      if (this.hasExited) return info;
      this.hasExited = true;
      out.end();
      err.end();
      this.output.end();
      if (!this.pid) failed(new MiglabError('COMMAND_FAILED', `\`${commandText(argv)}\` did not start on ${host.name}: ${this.output.tail(3) || 'no output'}`));
      return info;
    };
    this.exited = open((ch) => ({
      exited: new Promise<ExitInfo>((resolve) => {
        // The channel's stdin stays open: its EOF is what tells the wrapper the session ended.
        let head = '';
        ch.on('data', (d: Buffer) => {
          out.write(d);
          this.output.keep(d);
        });
        ch.stderr.on('data', (d: Buffer) => {
          if (!this.pid) {
            // The wrapper's first line is the pid; it may arrive in pieces.
            head += d.toString('utf8');
            const m = PID_LINE.exec(head);
            if (!m) return;
            this.pid = Number(m[1]);
            started(this.pid);
            d = Buffer.from(head.slice(m[0].length));
            if (d.length === 0) return;
          }
          err.write(d);
          this.output.keep(d);
        });
        let exit: ExitInfo | undefined;
        ch.on('exit', (code: number | null, signal?: string) => {
          exit = { exitCode: code ?? null, signal: signal ?? null };
          ch.end(); // the wrapper's watcher is left reading stdin: let it go
        });
        // Exit status and output both arrive before the channel closes; without an exit status
        // the connection dropped (and the wrapper ended the program).
        ch.on('close', () => resolve(done(exit ?? { exitCode: null, signal: null })));
      }),
    })).then(
      ({ exited }) => exited,
      (e: unknown) => {
        this.output.keep(Buffer.from(`cannot start on ${host.name}: ${(e as Error).message}\n`));
        return done({ exitCode: null, signal: null });
      },
    );
  }

  async stop(graceMs = 3000): Promise<ExitInfo> {
    if (this.hasExited) return this.exited;
    const pid = await withDeadline('remote pid', this.running, { timeoutMs: 5000 });
    // The program's whole process group (the wrapper made it): what it started goes with it.
    await this.host.run(['kill', '-s', 'TERM', '--', `-${pid}`], { reject: false });
    try {
      return await withDeadline(`remote process ${pid} exit`, this.exited, { timeoutMs: graceMs });
    } catch {
      // It ignored TERM within the grace period: KILL its group, by the same id.
      await this.host.run(['kill', '-s', 'KILL', '--', `-${pid}`], { reject: false });
      return this.exited;
    }
  }

  async sendSignal(signal: NodeJS.Signals): Promise<void> {
    if (this.hasExited) return;
    const pid = await withDeadline('remote pid', this.running, { timeoutMs: 5000 });
    await this.host.run(['kill', `-${signal.replace(/^SIG/, '')}`, String(pid)], { reject: false });
  }

  tail(n = 20): string {
    return this.output.tail(n);
  }
}
