// A remote machine over SSH (ssh2), behind the same Host interface as the local machine and its
// namespaces. SSH runs a command line through the remote shell, so each argv element is quoted
// here, in one place, and nowhere else; long-lived processes report their remote pid first so
// they can be stopped by pid like local ones.
import { readFileSync } from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import ssh2 from 'ssh2';
import type { ClientChannel, ConnectConfig } from 'ssh2';
import { MiglabError } from '../errors.js';
import { withDeadline, type WaitOptions } from '../util/deadline.js';
import type { ExitInfo, Host, HostProcess, RunOptions, RunResult, SpawnOptions } from './host.js';
import { CommandError } from './local.js';

/** POSIX shell quoting of one argument: safe for any byte string. */
export function shellQuote(arg: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function shellCommand(argv: readonly string[]): string {
  if (argv.length === 0) throw new MiglabError('INTERNAL', 'empty command');
  return argv.map(shellQuote).join(' ');
}

export interface SshTarget {
  readonly host: string;
  readonly port?: number;
  readonly username: string;
  /** Path of a private key file; or use `agent`. */
  readonly privateKeyPath?: string;
  readonly agent?: string;
  /** Expected host key (as ssh2's hostHash sha256 hex); unset accepts any (lab use only). */
  readonly hostKeySha256?: string;
  /** An argv started on the controller whose stdin/stdout carry the SSH connection (as OpenSSH's ProxyCommand). */
  readonly proxy?: readonly string[];
}

export class SshHost implements Host {
  readonly name: string;
  private constructor(
    private readonly client: ssh2.Client,
    target: SshTarget,
  ) {
    this.name = `${target.username}@${target.host}`;
  }

  static async connect(target: SshTarget, opts: WaitOptions): Promise<SshHost> {
    const client = new ssh2.Client();
    const config: ConnectConfig = {
      host: target.host,
      port: target.port ?? 22,
      username: target.username,
      privateKey: target.privateKeyPath ? readFileSync(target.privateKeyPath) : undefined,
      agent: target.agent,
      readyTimeout: opts.timeoutMs,
      hostHash: 'sha256',
      hostVerifier: target.hostKeySha256 ? (hash: string) => hash === target.hostKeySha256 : undefined,
    };
    const ready = new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve());
      client.once('error', (err) => reject(new MiglabError('COMMAND_FAILED', `cannot connect to ${target.username}@${target.host}:${config.port} over SSH: ${err.message}`, { cause: err })));
    });
    client.connect(config);
    try {
      await withDeadline(`SSH connection to ${target.host}`, ready, opts);
    } catch (err) {
      client.end();
      throw err;
    }
    return new SshHost(client, target);
  }

  close(): void {
    this.client.end();
  }

  private exec(command: string): Promise<ClientChannel> {
    return new Promise((resolve, reject) => this.client.exec(command, (err, ch) => (err ? reject(err) : resolve(ch))));
  }

  async run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const started = Date.now();
    const ch = await this.exec(shellCommand(argv));
    let stdout = '';
    let stderr = '';
    ch.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    ch.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    if (opts.input !== undefined) ch.end(opts.input);
    else ch.end();
    const exit = new Promise<number>((resolve) => ch.on('exit', (code: number | null) => resolve(code ?? 128)));
    const closed = new Promise<void>((resolve) => ch.on('close', () => resolve()));
    let exitCode: number;
    try {
      exitCode = await withDeadline(`\`${argv.join(' ')}\` on ${this.name}`, exit, { timeoutMs: opts.timeoutMs ?? 600000, signal: opts.signal });
      await closed;
    } catch (err) {
      ch.close();
      throw err;
    }
    const result: RunResult = { argv, exitCode, stdout: stdout.replace(/\n$/, ''), stderr: stderr.replace(/\n$/, ''), durationMs: Date.now() - started };
    if (exitCode !== 0 && opts.reject !== false) throw new CommandError(this.name, result);
    return result;
  }

  spawn(argv: readonly string[], opts: SpawnOptions = {}): HostProcess {
    if (opts.logFile) throw new MiglabError('INTERNAL', 'SshHost.spawn does not write remote log files; read the streams instead');
    return new SshProcess(this, argv, this.exec.bind(this));
  }

  async which(program: string): Promise<string | undefined> {
    const r = await this.run(['sh', '-c', 'command -v "$1"', 'which', program], { reject: false });
    return r.exitCode === 0 ? r.stdout.trim() : undefined;
  }
}

/** The remote shell prints its pid, then execs the program: the pid is the program's own. */
const PID_WRAPPER = ['sh', '-c', 'echo "miglab-pid $$" >&2; exec "$@"', 'miglab'];

class SshProcess implements HostProcess {
  readonly stdout: Readable = new PassThrough();
  readonly stderr: Readable = new PassThrough();
  readonly exited: Promise<ExitInfo>;
  pid = 0;
  hasExited = false;
  private readonly lines: string[] = [];
  private readonly pidKnown: Promise<number>;

  constructor(
    private readonly host: SshHost,
    readonly argv: readonly string[],
    exec: (command: string) => Promise<ClientChannel>,
  ) {
    let setPid: (p: number) => void = () => undefined;
    this.pidKnown = new Promise((resolve) => (setPid = resolve));
    this.exited = exec(shellCommand([...PID_WRAPPER, ...argv])).then(
      (ch) =>
        new Promise<ExitInfo>((resolve) => {
          ch.end();
          ch.on('data', (d: Buffer) => {
            (this.stdout as PassThrough).write(d);
            this.keep(d);
          });
          ch.stderr.on('data', (d: Buffer) => {
            const text = d.toString('utf8');
            const m = /miglab-pid (\d+)/.exec(text);
            if (m && !this.pid) {
              this.pid = Number(m[1]);
              setPid(this.pid);
            }
            const rest = text.replace(/miglab-pid \d+\n?/, '');
            if (rest) {
              (this.stderr as PassThrough).write(rest);
              this.keep(Buffer.from(rest));
            }
          });
          ch.on('exit', (code: number | null, signal?: string) => {
            this.hasExited = true;
            (this.stdout as PassThrough).end();
            (this.stderr as PassThrough).end();
            resolve({ exitCode: code, signal: signal ?? null });
          });
        }),
    );
  }

  private keep(d: Buffer) {
    for (const l of d.toString('utf8').split('\n')) if (l.trim()) this.lines.push(l);
    if (this.lines.length > 200) this.lines.splice(0, this.lines.length - 200);
  }

  async stop(graceMs = 3000): Promise<ExitInfo> {
    if (this.hasExited) return this.exited;
    const pid = await withDeadline('remote pid', this.pidKnown, { timeoutMs: 5000 });
    await this.host.run(['kill', '-TERM', String(pid)], { reject: false });
    try {
      return await withDeadline(`remote process ${pid} exit`, this.exited, { timeoutMs: graceMs });
    } catch {
      // It ignored TERM within the grace period: KILL it, by the same pid.
      await this.host.run(['kill', '-KILL', String(pid)], { reject: false });
      return this.exited;
    }
  }

  async sendSignal(signal: NodeJS.Signals): Promise<void> {
    if (this.hasExited) return;
    const pid = await withDeadline('remote pid', this.pidKnown, { timeoutMs: 5000 });
    await this.host.run(['kill', `-${signal.replace(/^SIG/, '')}`, String(pid)], { reject: false });
  }

  tail(n = 20): string {
    return this.lines.slice(-n).join('\n');
  }
}
