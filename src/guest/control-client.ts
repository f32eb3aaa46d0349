// The host side of the guest agent's control port (vm-images/agent/control.c): programs run in a
// container host on miglab's request, over the unix socket QEMU connects to the guest's
// virtio-serial port. Only root on the QEMU host can open it (as QMP); nothing is on the network.
// Messages are netstrings whose bytes are netstrings (the fields); requests carry an id and every
// reply names it, so several requests may be in flight at once.
import type { Duplex } from 'node:stream';
import { AbortedError, MiglabError, TimeoutError } from '../errors.js';
import type { Host, RunResult } from '../host/host.js';
import { CommandError, commandText } from '../host/local.js';
import { sleep } from '../util/deadline.js';

// ---- framing (pure) ------------------------------------------------------------------------------

function netstring(data: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${data.length}:`), data, Buffer.from(',')]);
}

/** One message: each field a netstring, the whole a netstring. */
export function encodeMessage(fields: readonly string[]): Buffer {
  return netstring(Buffer.concat(fields.map((f) => netstring(Buffer.from(f)))));
}

/** The fields of one message's bytes, or undefined when they are not a sequence of netstrings. */
export function decodeFields(data: Buffer): string[] | undefined {
  const fields: string[] = [];
  let i = 0;
  while (i < data.length) {
    const colon = data.indexOf(0x3a, i);
    const head = colon < 0 ? '' : data.subarray(i, colon).toString('latin1');
    if (!/^\d{1,9}$/.test(head)) return undefined;
    const len = Number(head);
    const end = colon + 1 + len;
    if (end >= data.length || data[end] !== 0x2c) return undefined;
    fields.push(data.subarray(colon + 1, end).toString('utf8'));
    i = end + 1;
  }
  return fields;
}

/** Splits a byte stream into messages; bytes of a message still arriving wait for the next push. */
export class MessageReader {
  private buf: Buffer = Buffer.alloc(0);

  /** The complete messages in what has arrived so far; throws on bytes that are not a netstring. */
  push(chunk: Buffer): string[][] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: string[][] = [];
    for (;;) {
      const colon = this.buf.indexOf(0x3a);
      if (colon < 0) {
        if (!/^\d{0,9}$/.test(this.buf.toString('latin1'))) throw new MiglabError('INTERNAL', `control port: not a netstring: ${JSON.stringify(this.buf.subarray(0, 40).toString('latin1'))}`);
        return out;
      }
      const head = this.buf.subarray(0, colon).toString('latin1');
      if (!/^\d{1,9}$/.test(head)) throw new MiglabError('INTERNAL', `control port: not a netstring: ${JSON.stringify(this.buf.subarray(0, 40).toString('latin1'))}`);
      const end = colon + 1 + Number(head);
      if (this.buf.length <= end) return out;
      if (this.buf[end] !== 0x2c) throw new MiglabError('INTERNAL', 'control port: a message does not end with ","');
      const fields = decodeFields(this.buf.subarray(colon + 1, end));
      if (!fields) throw new MiglabError('INTERNAL', 'control port: a message whose fields are not netstrings');
      out.push(fields);
      this.buf = this.buf.subarray(end + 1);
    }
  }
}

// ---- the client -------------------------------------------------------------------------------------

/** What a program run in the guest did (the rusage is the agent's wait4). */
export interface GuestExecResult extends RunResult {
  readonly signal: number;
  readonly wallUs: number;
  readonly utimeUs: number;
  readonly stimeUs: number;
  readonly maxRssKiB: number;
  readonly timedOut: boolean;
}

export interface GuestExit {
  readonly pid: number;
  readonly exitCode: number;
  readonly signal: number;
  readonly maxRssKiB: number;
}

/** A long-lived program started in the guest. */
export interface GuestProcess {
  readonly pid: number;
  /** Field 22 of its /proc/PID/stat: with the pid, names it even after the pid is reused. */
  readonly startTime: number;
  /** Settles when the agent reaps it (only while this connection is open). */
  readonly exited: Promise<GuestExit>;
}

export interface ExecOptions {
  /** The guest kills the program's process group after this long. Default 60 s. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  /** Throw a CommandError when the program exits non-zero (default true). */
  readonly reject?: boolean;
}

type Waiter = { resolve: (fields: string[]) => void; reject: (err: Error) => void };

/** Extra time the host waits beyond the guest's own deadline for an exec's reply. */
const REPLY_GRACE_MS = 10_000;

export class GuestControl {
  private readonly waiters = new Map<string, Waiter>();
  private readonly exits = new Map<string, (e: GuestExit) => void>();
  private nextId = 1;
  private closedError: Error | undefined;

  private constructor(
    private readonly stream: Duplex,
    /** How errors name the guest, e.g. "chost-src". */
    readonly name: string,
  ) {
    const reader = new MessageReader();
    stream.on('data', (chunk: Buffer) => {
      let messages: string[][];
      try {
        messages = reader.push(chunk);
      } catch (err) {
        this.fail(err as Error);
        return;
      }
      for (const m of messages) this.dispatch(m);
    });
    stream.on('error', (err) => this.fail(err));
    stream.on('close', () => this.fail(new MiglabError('COMMAND_FAILED', `the control port of ${name} closed`)));
  }

  /**
   * Connect to the control socket on `host` and wait until the agent answers (its port opens a
   * moment after the kernel boots; until then the socket is there and nothing answers).
   */
  static async connect(host: Host, socketPath: string, name: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<GuestControl> {
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
    let last: unknown;
    while (Date.now() < deadline) {
      if (opts.signal?.aborted) throw new AbortedError(`connecting to the control port of ${name}`, opts.signal.reason);
      let ctl: GuestControl | undefined;
      try {
        ctl = new GuestControl(await host.connectUnix(socketPath), name);
        // A message sent before the agent opened its end is dropped: ask again until one is answered.
        for (let i = 0; i < 20 && Date.now() < deadline; i++) {
          if (await ctl.ping(500)) return ctl;
          if (ctl.closedError) break;
        }
      } catch (err) {
        last = err;
      }
      ctl?.close();
      await sleep(200, opts.signal);
    }
    throw new TimeoutError(`the control port of ${name} (${socketPath}) answering`, opts.timeoutMs ?? 60_000, { cause: String(last ?? '') });
  }

  private fail(err: Error): void {
    if (this.closedError) return;
    this.closedError = err;
    for (const w of this.waiters.values()) w.reject(err);
    this.waiters.clear();
  }

  private dispatch(fields: string[]): void {
    const [kind, id] = fields;
    if (kind === 'exited' && id !== undefined) {
      const done = this.exits.get(id);
      this.exits.delete(id);
      done?.({ pid: Number(fields[2]), exitCode: Number(fields[3]), signal: Number(fields[4]), maxRssKiB: Number(fields[5]) });
      return;
    }
    if (id === undefined) return;
    const w = this.waiters.get(id);
    if (!w) return; // a reply to a request given up on (a ping that came late)
    this.waiters.delete(id);
    if (kind === 'error') w.reject(new MiglabError('COMMAND_FAILED', `${this.name}'s agent: ${fields[2] ?? 'error'}`));
    else w.resolve(fields);
  }

  private request(fields: readonly string[], timeoutMs: number, signal?: AbortSignal): Promise<string[]> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = String(this.nextId++);
    const [op, ...rest] = fields;
    return new Promise<string[]>((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.waiters.delete(id);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new TimeoutError(`${op} on ${this.name}`, timeoutMs));
      }, timeoutMs);
      const onAbort = () => {
        cleanup();
        reject(new AbortedError(`${op} on ${this.name}`, signal?.reason));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.set(id, {
        resolve: (f) => {
          cleanup();
          resolve(f);
        },
        reject: (e) => {
          cleanup();
          reject(e);
        },
      });
      this.stream.write(encodeMessage([op!, id, ...rest]));
    });
  }

  /** Whether the agent answered within `timeoutMs`. */
  async ping(timeoutMs: number): Promise<boolean> {
    try {
      await this.request(['ping'], timeoutMs);
      return true;
    } catch {
      return false;
    }
  }

  /** Run a program in the guest and return what it printed (argv[0] looked up in the guest's PATH). */
  async exec(argv: readonly string[], opts: ExecOptions = {}): Promise<GuestExecResult> {
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const f = await this.request(['exec', String(timeoutMs), ...argv], timeoutMs + REPLY_GRACE_MS, opts.signal);
    const n = (i: number) => Number(f[i]);
    const signal = n(3);
    const result: GuestExecResult = {
      argv,
      exitCode: n(2) >= 0 ? n(2) : 128 + signal,
      signal,
      wallUs: n(4),
      utimeUs: n(5),
      stimeUs: n(6),
      maxRssKiB: n(7),
      timedOut: f[8] === '1',
      stdout: f[9] ?? '',
      stderr: f[10] ?? '',
      durationMs: n(4) / 1000,
    };
    if (result.timedOut) throw new TimeoutError(`\`${commandText(argv)}\` on ${this.name}`, timeoutMs);
    if (result.exitCode !== 0 && opts.reject !== false) throw new CommandError(this.name, result);
    return result;
  }

  /**
   * Start a long-lived program in the guest, its output appended to `log` (a guest path; default
   * /dev/null). With `newPid` it is PID 1 of a new PID namespace (a container's init).
   * `timeoutMs` (default 10 s) bounds the agent's answer, not the program.
   */
  async spawn(argv: readonly string[], opts: { newPid?: boolean; log?: string; signal?: AbortSignal; timeoutMs?: number } = {}): Promise<GuestProcess> {
    const id = String(this.nextId); // request() takes this id next
    let settle: (e: GuestExit) => void = () => undefined;
    const exited = new Promise<GuestExit>((resolve) => (settle = resolve));
    this.exits.set(id, settle);
    try {
      const f = await this.request(['spawn', opts.newPid ? '1' : '0', opts.log ?? '-', ...argv], opts.timeoutMs ?? 10_000, opts.signal);
      return { pid: Number(f[2]), startTime: Number(f[3]), exited };
    } catch (err) {
      this.exits.delete(id);
      throw err;
    }
  }

  /** Pages written since CRIU last cleared the soft-dirty bits, over `pid` and the processes under it. */
  async softDirty(pid: number, signal?: AbortSignal): Promise<{ pages: number; processes: number }> {
    const f = await this.request(['softdirty', String(pid)], 10_000, signal);
    return { pages: Number(f[2]), processes: Number(f[3]) };
  }

  /** Signal a process of the guest, only if it is still the one started at `startTime`. */
  async kill(pid: number, startTime: number, signal: number): Promise<void> {
    await this.request(['kill', String(pid), String(startTime), String(signal)], 10_000);
  }

  close(): void {
    this.fail(new MiglabError('COMMAND_FAILED', `the control port of ${this.name} was closed`));
    this.stream.destroy();
  }
}
