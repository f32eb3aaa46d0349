// A scripted QMP server on a real unix socket, for protocol tests of the QMP client. It sends a
// greeting, answers commands from handlers (with delays, errors, out-of-order replies or no
// reply), emits events and can drop every connection, as QEMU might.
import { createServer, type Server, type Socket } from 'node:net';
import { rm } from 'node:fs/promises';

export type QmpRequest = { execute: string; arguments?: Record<string, unknown>; id?: unknown };

/** What a handler asks the fake to do with one request. */
export type FakeReply =
  | { return: unknown; delayMs?: number }
  | { error: { class: string; desc: string }; delayMs?: number }
  /** Send nothing (a reply that never comes). */
  | { noReply: true }
  /** Close the connection instead of answering. */
  | { drop: true; delayMs?: number };

export type Handler = (req: QmpRequest) => FakeReply | Promise<FakeReply>;

export const GREETING_7_2 = {
  QMP: { version: { qemu: { micro: 22, minor: 2, major: 7 }, package: 'Debian 1:7.2+dfsg-7+deb12u18+b3' }, capabilities: ['oob'] },
};

export interface FakeQmpOptions {
  greeting?: Record<string, unknown>;
  /** Per-command handlers; `qmp_capabilities` and unknown commands have defaults. */
  handlers?: Record<string, Handler>;
}

export class FakeQmpServer {
  readonly received: QmpRequest[] = [];
  readonly connections = new Set<Socket>();
  private readonly handlers: Record<string, Handler>;
  private waiters: { name: string; resolve: (r: QmpRequest) => void }[] = [];

  private constructor(
    readonly path: string,
    private readonly server: Server,
    private readonly opts: FakeQmpOptions,
  ) {
    this.handlers = {
      qmp_capabilities: () => ({ return: {} }),
      'query-version': () => ({ return: { qemu: { major: 7, minor: 2, micro: 22 }, package: ' Debian 1:7.2 ' } }),
      ...opts.handlers,
    };
  }

  static async start(path: string, opts: FakeQmpOptions = {}): Promise<FakeQmpServer> {
    await rm(path, { force: true });
    const server = createServer();
    const fake = new FakeQmpServer(path, server, opts);
    server.on('connection', (s) => fake.accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    return fake;
  }

  /** Replace or add the handler of `command`. */
  on(command: string, handler: Handler): this {
    this.handlers[command] = handler;
    return this;
  }

  /** Resolves when the fake receives `command` (from now on). */
  nextCommand(name: string): Promise<QmpRequest> {
    return new Promise((resolve) => this.waiters.push({ name, resolve }));
  }

  private accept(s: Socket): void {
    this.connections.add(s);
    s.on('close', () => this.connections.delete(s));
    s.on('error', () => this.connections.delete(s)); // the client went away; nothing to report
    s.write(`${JSON.stringify(this.opts.greeting ?? GREETING_7_2)}\r\n`);
    let buf = '';
    s.on('data', (chunk) => {
      buf += chunk.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim()) void this.handle(s, JSON.parse(line) as QmpRequest);
      }
    });
  }

  private async handle(s: Socket, req: QmpRequest): Promise<void> {
    this.received.push(req);
    for (const w of this.waiters.filter((x) => x.name === req.execute)) w.resolve(req);
    this.waiters = this.waiters.filter((x) => x.name !== req.execute);
    const handler = this.handlers[req.execute];
    const reply: FakeReply = handler
      ? await handler(req)
      : { error: { class: 'CommandNotFound', desc: `The command ${req.execute} has not been found` } };
    if ('noReply' in reply) return;
    if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
    if ('drop' in reply) {
      s.destroy();
      return;
    }
    const body = 'error' in reply ? { error: reply.error } : { return: reply.return };
    this.send(s, req.id === undefined ? body : { ...body, id: req.id });
  }

  /** Write any line (valid JSON or not) to every connection. */
  sendRaw(line: string): void {
    for (const s of this.connections) s.write(`${line}\r\n`);
  }

  private send(s: Socket, msg: unknown): void {
    if (!s.destroyed) s.write(`${JSON.stringify(msg)}\r\n`);
  }

  /** Send an event to every connection, with QEMU's timestamp shape. */
  emit(event: string, data?: Record<string, unknown>, timestamp = { seconds: 1700000000, microseconds: 123456 }): void {
    for (const s of this.connections) this.send(s, data === undefined ? { event, timestamp } : { event, data, timestamp });
  }

  /** Close every client connection abruptly (QEMU crashing). */
  dropConnections(): void {
    for (const s of this.connections) s.destroy();
  }

  async close(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await rm(this.path, { force: true });
  }
}
