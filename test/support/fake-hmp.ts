// A fake human monitor on a real unix socket: banner, prompt, QEMU-style readline echo (the
// line redrawn character by character with escape codes), scripted outputs, and replies that
// can be delayed or cut into small chunks.
import { createServer, type Server, type Socket } from 'node:net';
import { rm } from 'node:fs/promises';

export type HmpScript = (line: string) => { output?: string; raw?: string; delayMs?: number } | undefined;

const BANNER = "QEMU 7.2.22 monitor - type 'help' for more information\r\n(qemu) ";

/** What QEMU's readline writes while a line is typed, then the newline. */
export function readlineEcho(line: string): string {
  let out = '';
  for (let i = 1; i <= line.length; i++) out += `${line.slice(0, i)}\x1b[K${'\x1b[D'.repeat(i)}`;
  return `${out.slice(0, out.lastIndexOf('\x1b[K') + 3)}\r\n`;
}

export class FakeHmpServer {
  readonly received: string[] = [];
  private readonly sockets = new Set<Socket>();
  private constructor(
    readonly path: string,
    private readonly server: Server,
  ) {}

  static async start(path: string, script: HmpScript, opts: { chunkSize?: number } = {}): Promise<FakeHmpServer> {
    await rm(path, { force: true });
    const server = createServer();
    const fake = new FakeHmpServer(path, server);
    server.on('connection', (s) => fake.accept(s, script, opts.chunkSize));
    await new Promise<void>((resolve) => server.listen(path, () => resolve()));
    return fake;
  }

  private accept(s: Socket, script: HmpScript, chunkSize = 0): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => undefined); // the client went away; nothing to report
    const write = (text: string) => {
      if (chunkSize <= 0) s.write(text);
      else for (let i = 0; i < text.length; i += chunkSize) s.write(text.slice(i, i + chunkSize));
    };
    write(BANNER);
    let buf = '';
    s.on('data', (chunk) => {
      buf += chunk.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        this.received.push(line);
        const r = script(line) ?? { output: `unknown command: '${line.split(' ')[0] ?? ''}'\r\n` };
        const reply = r.raw ?? `${readlineEcho(line)}${r.output ?? ''}(qemu) `;
        if (r.delayMs) setTimeout(() => !s.destroyed && write(reply), r.delayMs);
        else write(reply);
      }
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await rm(this.path, { force: true });
  }
}
