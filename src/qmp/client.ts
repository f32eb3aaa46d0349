// The QMP client: a session over a unix socket (connect with retry, greeting, capabilities
// negotiation, states), request/response matching by id, event listeners, and an optional
// transcript. Modelled on QEMU's python/qemu/qmp. Typed helpers for what miglab uses sit on top.
// The socket is reached through an opener, so it may be on this machine or on a host over SSH.
import type { Duplex } from 'node:stream';
import { AbortedError, TimeoutError, describeError } from '../errors.js';
import { pollUntil, withDeadline, type WaitOptions } from '../util/deadline.js';
import { connectUnixSocket } from '../util/unix-socket.js';
import { fromQueryMigrate, type MigrationInfo } from '../migration/info.js';
import { QmpCommandError, QmpConnectError, QmpDisconnectedError, QmpProtocolError } from './errors.js';
import { QmpEventListener, type EventFilter } from './events.js';
import { LineDecoder, encodeMessage, type QmpMessage } from './framing.js';
import type { QmpTranscript } from './transcript.js';
import type { QemuVersion, QmpEvent, QmpGreeting, QmpState, QmpStatus } from './types.js';

export interface QmpConnectOptions extends WaitOptions {
  /** Name used in messages and the transcript (e.g. "source"); defaults to the path. */
  readonly name?: string;
  readonly transcript?: QmpTranscript;
  /** Deadline for commands called without their own; default 30 s. */
  readonly commandTimeoutMs?: number;
  /** How often to retry while the socket does not exist yet; default 50 ms. */
  readonly retryIntervalMs?: number;
  /**
   * Opens a stream to the socket (default: the path on this machine), e.g. a host's connectUnix.
   * Fails with `code` ENOENT or ECONNREFUSED while QEMU has not made the socket yet.
   */
  readonly open?: () => Promise<Duplex>;
}

type Pending = {
  readonly command: string;
  readonly args: Record<string, unknown> | undefined;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
};

type ExecuteOptions = Partial<WaitOptions>;

/** Errors that mean "QEMU is not listening yet": keep retrying until the deadline. */
const RETRYABLE = new Set(['ENOENT', 'ECONNREFUSED', 'EAGAIN']);

export class QmpClient {
  readonly path: string;
  readonly name: string;
  private socket: Duplex | undefined;
  private readonly decoder = new LineDecoder();
  private readonly pending = new Map<string, Pending>();
  /** Ids whose caller gave up (timeout/abort): their late replies are dropped quietly. */
  private readonly abandoned = new Set<string>();
  private readonly listeners = new Set<QmpEventListener>();
  private readonly handlers = new Set<(e: QmpEvent) => void>();
  private nextId = 1;
  private stateValue: QmpState = 'idle';
  private greetingValue: QmpGreeting | undefined;
  private greetingWaiter: { resolve: (g: QmpGreeting) => void; reject: (e: unknown) => void } | undefined;
  private expectDisconnect = false;
  private closing: Promise<void> | undefined;
  private readonly commandTimeoutMs: number;
  private readonly transcript: QmpTranscript | undefined;

  private constructor(path: string, opts: QmpConnectOptions) {
    this.path = path;
    this.name = opts.name ?? path;
    this.transcript = opts.transcript;
    this.commandTimeoutMs = opts.commandTimeoutMs ?? 30_000;
  }

  /**
   * Connect to QEMU's QMP socket (`-qmp unix:PATH,server=on,wait=off`), retrying until it
   * appears (QEMU creates it as it starts), read the greeting and negotiate capabilities, all
   * within `timeoutMs`.
   */
  static async connect(path: string, opts: QmpConnectOptions): Promise<QmpClient> {
    const client = new QmpClient(path, opts);
    await client.open(opts);
    return client;
  }

  get state(): QmpState {
    return this.stateValue;
  }

  /** The greeting QEMU sent (available once connected). */
  get greeting(): QmpGreeting {
    if (!this.greetingValue) throw new QmpDisconnectedError(this.path, undefined, new Error('not connected'));
    return this.greetingValue;
  }

  /** QEMU's version as the greeting announced it. */
  get qemuVersion(): QemuVersion {
    return this.greeting.version;
  }

  private async open(opts: QmpConnectOptions): Promise<void> {
    this.stateValue = 'connecting';
    const start = Date.now();
    const left = () => Math.max(1, opts.timeoutMs - (Date.now() - start));
    let lastError: unknown;
    try {
      this.socket = await pollUntil(
        `connecting to QMP socket ${this.path}`,
        async () => {
          try {
            return await (opts.open ?? (() => connectUnixSocket(this.path)))();
          } catch (err) {
            lastError = err;
            if (RETRYABLE.has((err as NodeJS.ErrnoException).code ?? '')) return undefined;
            throw err;
          }
        },
        { timeoutMs: opts.timeoutMs, signal: opts.signal, intervalMs: opts.retryIntervalMs ?? 50 },
      );
      this.attach(this.socket);
      this.note('connected');
      const greeting = await withDeadline(
        `reading the QMP greeting from ${this.path}`,
        new Promise<QmpGreeting>((resolve, reject) => {
          if (this.greetingValue) resolve(this.greetingValue);
          else this.greetingWaiter = { resolve, reject };
        }),
        { timeoutMs: left(), signal: opts.signal },
      );
      await this.send('qmp_capabilities', undefined, { timeoutMs: left(), signal: opts.signal });
      this.greetingValue = greeting;
      this.stateValue = 'running';
    } catch (err) {
      const connected = this.socket !== undefined;
      this.teardown(err);
      if (err instanceof AbortedError) throw err;
      // Once connected, an earlier ENOENT says nothing: QEMU made its socket and then never
      // greeted (its main loop is busy elsewhere, e.g. blocked opening a drive).
      const reason =
        err instanceof TimeoutError
          ? connected
            ? `connected, but QEMU sent no greeting within ${opts.timeoutMs} ms (its main loop is blocked)`
            : `no answer within ${opts.timeoutMs} ms${lastError ? ` (last error: ${describeError(lastError)})` : ''}`
          : describeError(err);
      throw new QmpConnectError(this.path, reason, lastError ?? err);
    }
  }

  private attach(s: Duplex): void {
    s.on('data', (chunk: Buffer) => {
      for (const frame of this.decoder.push(chunk)) {
        if (!frame.ok) {
          const raw = frame.raw.toString('utf8');
          this.record('in', { raw });
          this.teardown(new QmpProtocolError(this.path, 'undecodable message', raw, frame.error));
          s.destroy();
          return;
        }
        this.record('in', { message: frame.message });
        this.dispatch(frame.message);
      }
    });
    s.on('error', (err) => this.teardown(err));
    s.on('close', () => this.teardown(undefined));
  }

  private dispatch(msg: QmpMessage): void {
    if ('QMP' in msg) {
      const g = msg.QMP as { version?: { qemu?: Partial<QemuVersion>; package?: string }; capabilities?: string[] };
      const v = g.version?.qemu ?? {};
      const greeting: QmpGreeting = {
        version: { major: v.major ?? 0, minor: v.minor ?? 0, micro: v.micro ?? 0, package: (g.version?.package ?? '').trim() },
        capabilities: g.capabilities ?? [],
      };
      this.greetingValue = greeting;
      this.greetingWaiter?.resolve(greeting);
      this.greetingWaiter = undefined;
      return;
    }
    if (typeof msg.event === 'string') {
      const ts = (msg.timestamp ?? {}) as { seconds?: number; microseconds?: number };
      const event: QmpEvent = {
        event: msg.event,
        data: (msg.data ?? {}) as Record<string, unknown>,
        timestamp: { seconds: ts.seconds ?? 0, microseconds: ts.microseconds ?? 0 },
      };
      for (const l of [...this.listeners]) l.deliver(event);
      for (const h of [...this.handlers]) {
        try {
          h(event);
        } catch (err) {
          // A faulty handler must not stop the others or the connection; it is recorded.
          this.note(`event handler for ${event.event} threw: ${describeError(err)}`);
        }
      }
      return;
    }
    const id = typeof msg.id === 'string' ? msg.id : undefined;
    if (id === undefined) return; // QEMU answers every id-tagged request with the id; others are not ours.
    const p = this.pending.get(id);
    if (!p) {
      this.abandoned.delete(id);
      return;
    }
    this.pending.delete(id);
    if ('error' in msg) {
      const e = (msg.error ?? {}) as { class?: unknown; desc?: unknown };
      p.reject(
        new QmpCommandError(p.command, p.args, {
          ...msg,
          error: { class: String(e.class ?? 'GenericError'), desc: String(e.desc ?? '') },
        }),
      );
    } else {
      p.resolve(msg.return);
    }
  }

  /** The connection is over (by us, by QEMU or by an error): fail everything still waiting. */
  private teardown(cause: unknown): void {
    if (this.stateValue === 'closed') return;
    const expected = this.expectDisconnect && !(cause instanceof QmpProtocolError);
    this.stateValue = 'closed';
    this.note(cause === undefined ? 'disconnected' : `disconnected: ${describeError(cause)}`);
    this.socket?.destroy();
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(new QmpDisconnectedError(this.path, p.command, cause));
    }
    this.greetingWaiter?.reject(new QmpDisconnectedError(this.path, undefined, cause));
    this.greetingWaiter = undefined;
    for (const l of [...this.listeners]) l.end(expected ? undefined : new QmpDisconnectedError(this.path, undefined, cause));
  }

  /** Send a command and wait for its reply. */
  private send(command: string, args: Record<string, unknown> | undefined, opts: WaitOptions): Promise<unknown> {
    const s = this.socket;
    if (!s || this.stateValue === 'closed' || this.stateValue === 'disconnecting') {
      return Promise.reject(new QmpDisconnectedError(this.path, command, new Error(`client is ${this.stateValue}`)));
    }
    const id = `miglab-${this.nextId++}`;
    const msg: QmpMessage = args === undefined ? { execute: command, id } : { execute: command, arguments: args, id };
    const reply = new Promise<unknown>((resolve, reject) => this.pending.set(id, { command, args, resolve, reject }));
    this.record('out', { message: msg });
    s.write(encodeMessage(msg));
    return withDeadline(`QMP command ${command} on ${this.name}`, reply, opts).catch((err: unknown) => {
      if (this.pending.delete(id)) this.abandoned.add(id);
      throw err;
    });
  }

  /**
   * Run a QMP command; resolves with QEMU's `return` value. Rejects with QmpCommandError when
   * QEMU refuses, TimeoutError (this call only) after `timeoutMs`, QmpDisconnectedError when the
   * connection ends first.
   */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, opts: ExecuteOptions = {}): Promise<T> {
    return this.send(command, args, { timeoutMs: opts.timeoutMs ?? this.commandTimeoutMs, signal: opts.signal }) as Promise<T>;
  }

  /** A listener with its own queue for events that pass `filter` (names or a predicate). */
  events(filter?: EventFilter): QmpEventListener {
    const l = new QmpEventListener(filter, (x) => this.listeners.delete(x));
    if (this.stateValue === 'closed') l.end(new QmpDisconnectedError(this.path));
    else this.listeners.add(l);
    return l;
  }

  /** Call `handler` for every event from now on; returns a function that unsubscribes. */
  onEvent(handler: (e: QmpEvent) => void): () => void {
    this.handlers.add(handler);
    return () => {
      this.handlers.delete(handler);
    };
  }

  /**
   * Wait for the next event `name` (satisfying `predicate`) from now on. To not miss an event a
   * command triggers, create `events(name)` before sending the command and call its `next()`.
   */
  async waitEvent(name: string, predicate: ((e: QmpEvent) => boolean) | undefined, opts: WaitOptions): Promise<QmpEvent> {
    const l = this.events(name);
    try {
      return await l.next(opts, predicate, `QMP event ${name} on ${this.name}`);
    } finally {
      l.close();
    }
  }

  /** Close the connection. Idempotent; pending calls fail with QmpDisconnectedError. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      const s = this.socket;
      if (!s || this.stateValue === 'closed') {
        this.teardown(undefined);
        resolve();
        return;
      }
      this.expectDisconnect = true;
      this.stateValue = 'disconnecting';
      s.once('close', () => resolve());
      s.end();
      // A peer that never closes its side must not hold us up.
      setTimeout(() => s.destroy(), 1000).unref();
    }).then(() => this.teardown(undefined));
    return this.closing;
  }

  private record(dir: 'out' | 'in', body: { message?: unknown; raw?: string }): void {
    this.transcript?.record({ time: new Date().toISOString(), dir, peer: this.name, ...body });
  }

  private note(note: string): void {
    this.transcript?.record({ time: new Date().toISOString(), dir: 'note', peer: this.name, note });
  }

  // ---- typed helpers ------------------------------------------------------------------------

  async queryVersion(opts?: ExecuteOptions): Promise<QemuVersion> {
    const r = await this.execute<{ qemu: { major: number; minor: number; micro: number }; package: string }>('query-version', undefined, opts);
    return { major: r.qemu.major, minor: r.qemu.minor, micro: r.qemu.micro, package: r.package.trim() };
  }

  queryStatus(opts?: ExecuteOptions): Promise<QmpStatus> {
    return this.execute<QmpStatus>('query-status', undefined, opts);
  }

  /** The raw `query-migrate` return value (kept as-is for reports). */
  queryMigrate(opts?: ExecuteOptions): Promise<Record<string, unknown>> {
    return this.execute<Record<string, unknown>>('query-migrate', undefined, opts);
  }

  /** `query-migrate` mapped into the typed record. */
  async migrationInfo(opts?: ExecuteOptions): Promise<MigrationInfo> {
    return fromQueryMigrate(await this.queryMigrate(opts));
  }

  /** Parameters by QEMU's names, e.g. `{ 'max-bandwidth': 5 * MiB, 'downtime-limit': 300 }`. */
  async setMigrateParameters(params: Record<string, unknown>, opts?: ExecuteOptions): Promise<void> {
    await this.execute('migrate-set-parameters', params, opts);
  }

  queryMigrateParameters(opts?: ExecuteOptions): Promise<Record<string, unknown>> {
    return this.execute<Record<string, unknown>>('query-migrate-parameters', undefined, opts);
  }

  /** Capabilities by QEMU's names, e.g. `{ xbzrle: true, 'auto-converge': false }`. */
  async setMigrateCapabilities(caps: Readonly<Record<string, boolean>>, opts?: ExecuteOptions): Promise<void> {
    const capabilities = Object.entries(caps).map(([capability, state]) => ({ capability, state }));
    await this.execute('migrate-set-capabilities', { capabilities }, opts);
  }

  /** Capabilities as a record name -> enabled. */
  async queryMigrateCapabilities(opts?: ExecuteOptions): Promise<Record<string, boolean>> {
    const list = await this.execute<{ capability: string; state: boolean }[]>('query-migrate-capabilities', undefined, opts);
    return Object.fromEntries(list.map((c) => [c.capability, c.state]));
  }

  /** Start an outgoing migration; returns at once (watch MIGRATION events or query-migrate). */
  async migrate(uri: string, opts?: ExecuteOptions): Promise<void> {
    await this.execute('migrate', { uri }, opts);
  }

  async migrateCancel(opts?: ExecuteOptions): Promise<void> {
    await this.execute('migrate_cancel', undefined, opts);
  }

  async stop(opts?: ExecuteOptions): Promise<void> {
    await this.execute('stop', undefined, opts);
  }

  async cont(opts?: ExecuteOptions): Promise<void> {
    await this.execute('cont', undefined, opts);
  }

  /** Ask QEMU to exit. The connection dropping (after or instead of the reply) is success. */
  async quit(opts?: ExecuteOptions): Promise<void> {
    this.expectDisconnect = true;
    try {
      await this.execute('quit', undefined, opts);
    } catch (err) {
      if (!(err instanceof QmpDisconnectedError)) throw err;
    }
    await this.close();
  }

  /** Run an HMP command line through QMP; resolves with its text output. */
  humanMonitorCommand(commandLine: string, opts?: ExecuteOptions): Promise<string> {
    return this.execute<string>('human-monitor-command', { 'command-line': commandLine }, opts);
  }
}
