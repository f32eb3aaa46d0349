// How HMP command lines reach QEMU. Two transports share one contract (send a line, get the raw
// text QEMU wrote before the next prompt):
//  - PromptStreamTransport: any byte stream. Used for `-monitor unix:PATH,server=on,wait=off`
//    (miglab's own automation), or for a stream a caller built another way, e.g. the stdio of
//    `ip netns exec NS socat - TCP:127.0.0.1:PORT` (Node cannot open a socket inside another
//    network namespace).
//  - TelnetTransport: telnet-client to `-monitor telnet:HOST:PORT,server=on,wait=off`, as a
//    human would connect; it can also take an already connected socket.
// Commands are serialised: HMP answers strictly in order and has no ids.
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Telnet } from 'telnet-client';
import { AbortedError, TimeoutError, describeError } from '../errors.js';
import { pollUntil, withDeadline, type WaitOptions } from '../util/deadline.js';
import { connectUnixSocket } from '../util/unix-socket.js';
import { HMP_PROMPT, stripTerminalCodes } from './clean.js';
import { HmpError } from './errors.js';

export interface HmpTransport {
  /** Where this monitor is, for messages. */
  readonly description: string;
  /** What QEMU printed before the first prompt ("QEMU 7.2.22 monitor - type 'help' ..."). */
  readonly banner: string;
  /** Send one command line; resolves with the raw text QEMU wrote before the next prompt. */
  exec(line: string, opts: WaitOptions): Promise<string>;
  close(): Promise<void>;
}

export interface UnixOpenOptions {
  /** How often to retry while the socket does not exist yet; default 50 ms. */
  readonly retryIntervalMs?: number;
  /** Opens a stream to the socket; fails with `code` ENOENT or ECONNREFUSED until QEMU made it. */
  readonly open?: () => Promise<Duplex>;
}

/** Run `task`s one at a time, in call order. */
class Serial {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task, task);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

export class PromptStreamTransport implements HmpTransport {
  private buffer = '';
  private waiter: { resolve: (text: string) => void; reject: (e: unknown) => void } | undefined;
  private readonly serial = new Serial();
  private broken: Error | undefined;
  private closed = false;
  bannerText = '';

  private constructor(
    private readonly stream: Duplex,
    readonly description: string,
  ) {
    stream.setEncoding?.('utf8');
    stream.on('data', (chunk: string | Buffer) => {
      this.buffer += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
      if (this.waiter && this.buffer.endsWith(HMP_PROMPT)) {
        const text = this.buffer.slice(0, -HMP_PROMPT.length);
        this.buffer = '';
        const w = this.waiter;
        this.waiter = undefined;
        w.resolve(text);
      }
    });
    const fail = (err?: Error) => {
      this.broken ??= new HmpError(this.description, this.closed ? 'closed' : 'connection lost', err);
      this.waiter?.reject(this.broken);
      this.waiter = undefined;
    };
    stream.on('error', fail);
    stream.on('close', () => fail());
    stream.on('end', () => fail());
  }

  get banner(): string {
    return this.bannerText;
  }

  /** Use an already open stream; waits for QEMU's first prompt. */
  static async open(stream: Duplex, description: string, opts: WaitOptions): Promise<PromptStreamTransport> {
    const t = new PromptStreamTransport(stream, description);
    try {
      const banner = await withDeadline(`waiting for the HMP prompt of ${description}`, t.untilPrompt(), opts);
      t.bannerText = stripTerminalCodes(banner).trim();
    } catch (err) {
      await t.close();
      throw err instanceof HmpError ? err : new HmpError(description, `no prompt: ${describeError(err)}`, err);
    }
    return t;
  }

  /**
   * Connect to `-monitor unix:PATH,server=on,wait=off`, retrying until QEMU has created it. `open`
   * reaches the socket (default: the path on this machine), e.g. a host's connectUnix.
   */
  static async connectUnix(path: string, opts: WaitOptions & UnixOpenOptions): Promise<PromptStreamTransport> {
    const start = Date.now();
    const open = opts.open ?? (() => connectUnixSocket(path));
    let lastError: unknown;
    let socket: Duplex;
    try {
      socket = await pollUntil(
        `connecting to HMP socket ${path}`,
        () =>
          open().catch((err: NodeJS.ErrnoException) => {
            lastError = err;
            if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') return undefined;
            throw err;
          }),
        { timeoutMs: opts.timeoutMs, signal: opts.signal, intervalMs: opts.retryIntervalMs ?? 50 },
      );
    } catch (err) {
      if (err instanceof AbortedError) throw err;
      throw new HmpError(`unix:${path}`, `cannot connect: ${describeError(lastError ?? err)}`, lastError ?? err);
    }
    return PromptStreamTransport.open(socket, `unix:${path}`, {
      timeoutMs: Math.max(1, opts.timeoutMs - (Date.now() - start)),
      signal: opts.signal,
    });
  }

  private untilPrompt(): Promise<string> {
    if (this.broken) return Promise.reject(this.broken);
    if (this.buffer.endsWith(HMP_PROMPT)) {
      const text = this.buffer.slice(0, -HMP_PROMPT.length);
      this.buffer = '';
      return Promise.resolve(text);
    }
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  exec(line: string, opts: WaitOptions): Promise<string> {
    return this.serial.run(async () => {
      if (this.broken) throw this.broken;
      if (/[\r\n]/.test(line)) throw new HmpError(this.description, `a command line cannot contain a newline: ${JSON.stringify(line)}`);
      // Nothing is in flight between commands; anything buffered is unsolicited and not ours.
      this.buffer = '';
      const reply = this.untilPrompt();
      this.stream.write(`${line}\n`);
      try {
        return await withDeadline(`HMP command "${line}" on ${this.description}`, reply, opts);
      } catch (err) {
        if (err instanceof TimeoutError || err instanceof AbortedError) {
          // Its output may still arrive and would be taken for the next command's: this
          // monitor is out of step for good.
          this.waiter = undefined;
          this.broken = new HmpError(this.description, `out of step after "${line}" was given up`, err);
          this.stream.destroy();
        }
        throw err;
      }
    });
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise<void>((resolve) => {
      if (this.stream.destroyed) {
        resolve();
        return;
      }
      this.stream.once('close', () => resolve());
      this.stream.end();
      setTimeout(() => this.stream.destroy(), 500).unref();
    });
  }
}

export interface TelnetConnectOptions extends WaitOptions {
  readonly host?: string;
  readonly port: number;
  /** An already connected socket (e.g. one a netns helper made); host/port are then labels. */
  readonly sock?: Socket;
}

export class TelnetTransport implements HmpTransport {
  private readonly serial = new Serial();
  private broken: Error | undefined;
  private closed = false;

  private constructor(
    private readonly telnet: Telnet,
    readonly description: string,
    readonly banner: string,
  ) {
    telnet.on('close', () => {
      this.broken ??= new HmpError(this.description, this.closed ? 'closed' : 'connection lost');
    });
  }

  static async connect(opts: TelnetConnectOptions): Promise<TelnetTransport> {
    const host = opts.host ?? '127.0.0.1';
    const description = `telnet:${host}:${opts.port}`;
    const telnet = new Telnet();
    try {
      await withDeadline(
        `connecting to HMP ${description}`,
        telnet.connect({
          host,
          port: opts.port,
          sock: opts.sock,
          shellPrompt: /\(qemu\) $/,
          // Mandatory negotiation makes QEMU treat us as a terminal that needs no redraws;
          // without it every reply comes back full of readline escape codes.
          negotiationMandatory: true,
          timeout: opts.timeoutMs,
          execTimeout: opts.timeoutMs,
          echoLines: 0,
          stripShellPrompt: true,
          irs: '\r\n',
          ors: '\n',
        }),
        opts,
      );
    } catch (err) {
      await telnet.destroy().catch(() => undefined);
      if (err instanceof AbortedError) throw err;
      throw new HmpError(description, `cannot connect: ${describeError(err)}`, err);
    }
    // telnet-client consumes the banner while it waits for the first prompt.
    return new TelnetTransport(telnet, description, '');
  }

  exec(line: string, opts: WaitOptions): Promise<string> {
    return this.serial.run(async () => {
      if (this.broken) throw this.broken;
      try {
        return await withDeadline(
          `HMP command "${line}" on ${this.description}`,
          this.telnet.exec(line, { execTimeout: opts.timeoutMs + 1000, echoLines: 0 }),
          opts,
        );
      } catch (err) {
        this.broken = new HmpError(this.description, `out of step after "${line}" failed`, err);
        await this.telnet.destroy().catch(() => undefined);
        throw err instanceof TimeoutError || err instanceof AbortedError ? err : this.broken;
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.telnet.end().catch(() => this.telnet.destroy());
  }
}
