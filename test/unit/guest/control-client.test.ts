// The host side of the agent's control port (src/guest/control-client.ts): the netstring framing,
// pure, and GuestControl against a fake agent on a real unix socket, reached through LocalHost's
// connectUnix as a run reaches QEMU's chardev socket. The fake answers as vm-images/agent/control.c
// does (its header lists the replies); each test scripts what it says and what it leaves unsaid.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AbortedError, MiglabError, TimeoutError } from '../../../src/errors.js';
import { GuestControl, MessageReader, decodeFields, encodeMessage } from '../../../src/guest/control-client.js';
import { CommandError, LocalHost } from '../../../src/host/local.js';

describe('encodeMessage / decodeFields', () => {
  it('writes each field as a netstring inside one netstring', () => {
    // "4:ping," (7 bytes) + "1:7," (4 bytes) = 11 bytes of fields.
    expect(encodeMessage(['ping', '7']).toString('latin1')).toBe('11:4:ping,1:7,,');
    expect(encodeMessage([]).toString('latin1')).toBe('0:,');
    expect(encodeMessage(['']).toString('latin1')).toBe('3:0:,,');
  });

  it('round-trips fields holding the framing bytes, newlines and multi-byte UTF-8 (lengths in bytes)', () => {
    const fields = ['exec', '12', 'sh', '-c', 'echo "a:b,c"\nprintf 10:,', 'température ½ 日本', ''];
    const msg = encodeMessage(fields);
    // The outer length counts bytes, not characters.
    const colon = msg.indexOf(0x3a);
    const len = Number(msg.subarray(0, colon).toString('latin1'));
    expect(len).toBe(msg.length - colon - 2);
    expect(Buffer.byteLength('température ½ 日本')).toBeGreaterThan('température ½ 日本'.length);
    expect(decodeFields(msg.subarray(colon + 1, msg.length - 1))).toEqual(fields);
  });

  it('says undefined for bytes that are not a sequence of netstrings', () => {
    expect(decodeFields(Buffer.from(''))).toEqual([]);
    expect(decodeFields(Buffer.from('3:ab,'))).toBeUndefined(); // shorter than its length
    expect(decodeFields(Buffer.from('2:abc,'))).toBeUndefined(); // longer: no comma where it should end
    expect(decodeFields(Buffer.from('x:ab,'))).toBeUndefined(); // not a length
    expect(decodeFields(Buffer.from('2:ab'))).toBeUndefined(); // no comma at all
    expect(decodeFields(Buffer.from('2:ab,junk'))).toBeUndefined(); // trailing bytes
  });
});

describe('MessageReader', () => {
  const two = Buffer.concat([encodeMessage(['pong', '1']), encodeMessage(['done', '2', '0', '0', '5', '1', '1', '900', '0', 'out', ''])]);

  it('gives every message of a chunk that holds several (coalesced)', () => {
    expect(new MessageReader().push(two)).toEqual([
      ['pong', '1'],
      ['done', '2', '0', '0', '5', '1', '1', '900', '0', 'out', ''],
    ]);
  });

  it('waits for the rest of a message split over chunks, one byte at a time', () => {
    const r = new MessageReader();
    const got: string[][] = [];
    for (let i = 0; i < two.length; i++) {
      const out = r.push(two.subarray(i, i + 1));
      got.push(...out);
      // The first message completes exactly at its closing comma, not before.
      if (i < encodeMessage(['pong', '1']).length - 1) expect(got).toEqual([]);
    }
    expect(got).toEqual([
      ['pong', '1'],
      ['done', '2', '0', '0', '5', '1', '1', '900', '0', 'out', ''],
    ]);
  });

  it('waits when a chunk ends inside the length digits', () => {
    const msg = encodeMessage(['started', '3', '4242', '987654']); // a two-digit length
    expect(msg.toString('latin1')).toMatch(/^\d\d:/);
    const r = new MessageReader();
    expect(r.push(msg.subarray(0, 1))).toEqual([]);
    expect(r.push(msg.subarray(1, 2))).toEqual([]);
    expect(r.push(msg.subarray(2))).toEqual([['started', '3', '4242', '987654']]);
  });

  it('keeps a UTF-8 character split across chunks whole', () => {
    const msg = encodeMessage(['done', '1', 'ünïcødé']);
    const cut = msg.indexOf(Buffer.from('ï')) + 1; // inside the two bytes of ï
    const r = new MessageReader();
    expect(r.push(msg.subarray(0, cut))).toEqual([]);
    expect(r.push(msg.subarray(cut))).toEqual([['done', '1', 'ünïcødé']]);
  });

  it('throws a readable error, quoting the bytes, on what is not a netstring', () => {
    const notNetstring = () => new MessageReader().push(Buffer.from('HTTP/1.1 400 Bad Request'));
    expect(notNetstring).toThrow(MiglabError);
    expect(notNetstring).toThrow(/control port: not a netstring: "HTTP\/1\.1 400 Bad Request"/);
    // No colon yet, but already not digits: refused at once rather than waited on.
    expect(() => new MessageReader().push(Buffer.from('hello'))).toThrow(/not a netstring: "hello"/);
    // Ten digits and no colon: no message is that long (the agent caps them at 1 MiB).
    expect(() => new MessageReader().push(Buffer.from('1234567890'))).toThrow(/not a netstring/);
    expect(() => new MessageReader().push(Buffer.from('5:abcde;'))).toThrow(/does not end with ","/);
    expect(() => new MessageReader().push(Buffer.from('5:abcde,'))).toThrow(/fields are not netstrings/);
  });
});

// ---- a fake agent on a real unix socket ----------------------------------------------------------

type Reply = (fields: readonly string[]) => void;

/** Answers requests as control.c does; `answer` sees each request and may reply, later or never. */
class FakeAgent {
  readonly received: string[][] = [];
  readonly sockets = new Set<Socket>();
  private constructor(private readonly server: Server) {}

  static start(path: string, answer: (req: string[], reply: Reply, socket: Socket) => void): Promise<FakeAgent> {
    const server = createServer((socket) => {
      agent.sockets.add(socket);
      socket.on('close', () => agent.sockets.delete(socket));
      socket.on('error', () => undefined);
      const reader = new MessageReader();
      socket.on('data', (chunk: Buffer) => {
        for (const req of reader.push(chunk)) {
          agent.received.push(req);
          answer(req, (fields) => socket.write(encodeMessage(fields)), socket);
        }
      });
    });
    const agent = new FakeAgent(server);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve(agent));
    });
  }

  ops(): string[] {
    return this.received.map((r) => r[0]!);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** The agent's answer to ping (every fake gives it, so connect() succeeds); true when it answered. */
function pongs(req: string[], reply: Reply): boolean {
  if (req[0] !== 'ping') return false;
  reply(['pong', req[1]!]);
  return true;
}

let dir: string;
let sock: string;
let agent: FakeAgent | undefined;
let ctl: GuestControl | undefined;
const host = new LocalHost();

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'miglab-ctl-'));
  sock = join(dir, 'g0.ctl');
});

afterEach(async () => {
  ctl?.close();
  ctl = undefined;
  await agent?.close();
  agent = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function connected(answer: (req: string[], reply: Reply, socket: Socket) => void): Promise<GuestControl> {
  agent = await FakeAgent.start(sock, (req, reply, s) => pongs(req, reply) || answer(req, reply, s));
  ctl = await GuestControl.connect(host, sock, 'chost-src', { timeoutMs: 5000 });
  return ctl;
}

describe('GuestControl.connect', () => {
  it('pings until the agent answers (its port opens after the socket does), then is ready', async () => {
    let unanswered = 2;
    agent = await FakeAgent.start(sock, (req, reply) => {
      if (req[0] === 'ping' && unanswered-- <= 0) reply(['pong', req[1]!]);
    });
    ctl = await GuestControl.connect(host, sock, 'chost-src', { timeoutMs: 10_000 });
    expect(agent.ops()).toEqual(['ping', 'ping', 'ping']);
    // Each ping is a request of its own: the late pong of an earlier one cannot answer a later one.
    expect(new Set(agent.received.map((r) => r[1])).size).toBe(3);
    expect(await ctl.ping(1000)).toBe(true);
  });

  it('retries while the socket is not there yet (QEMU makes it as it starts)', async () => {
    const pending = GuestControl.connect(host, sock, 'chost-src', { timeoutMs: 5000 });
    await new Promise((r) => setTimeout(r, 300));
    agent = await FakeAgent.start(sock, (req, reply) => pongs(req, reply));
    ctl = await pending;
    expect(await ctl.ping(1000)).toBe(true);
  });

  it('gives up with a TimeoutError naming the guest and the socket when nothing answers', async () => {
    agent = await FakeAgent.start(sock, () => undefined);
    const err = await GuestControl.connect(host, sock, 'chost-dst', { timeoutMs: 1200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as Error).message).toContain('the control port of chost-dst');
    expect((err as Error).message).toContain(sock);
    expect(agent.ops().length).toBeGreaterThanOrEqual(2);
    expect(agent.ops().every((op) => op === 'ping')).toBe(true);
  });

  it('stops at once when aborted', async () => {
    const ac = new AbortController();
    ac.abort(new Error('Ctrl-C'));
    const err = await GuestControl.connect(host, sock, 'chost-src', { timeoutMs: 5000, signal: ac.signal }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortedError);
    expect((err as Error).message).toContain('chost-src');
  });
});

describe('GuestControl.exec', () => {
  it('sends the deadline and the argv as fields, and reads the exit, the rusage and the output', async () => {
    const c = await connected((req, reply) => {
      if (req[0] === 'exec') reply(['done', req[1]!, '0', '0', '1534000', '120000', '30000', '2456', '0', 'criu\nVersion: 3.17.1\n', 'a warning: with, commas']);
    });
    const r = await c.exec(['criu', '--version'], { timeoutMs: 7000 });
    expect(agent!.received.at(-1)).toEqual(['exec', agent!.received.at(-1)![1], '7000', 'criu', '--version']);
    expect(r).toEqual({
      argv: ['criu', '--version'],
      exitCode: 0,
      signal: 0,
      wallUs: 1_534_000,
      utimeUs: 120_000,
      stimeUs: 30_000,
      maxRssKiB: 2456,
      timedOut: false,
      stdout: 'criu\nVersion: 3.17.1\n',
      stderr: 'a warning: with, commas',
      durationMs: 1534,
    });
    // The default deadline is 60 s.
    await c.exec(['true']);
    expect(agent!.received.at(-1)![2]).toBe('60000');
  });

  it('gives a program killed by a signal the exit status 128 + signal, as a shell does', async () => {
    const c = await connected((req, reply) => {
      if (req[0] === 'exec') reply(['done', req[1]!, '-1', '9', '10', '0', '0', '100', '0', '', '']);
    });
    const r = await c.exec(['sleep', '100'], { reject: false });
    expect(r.exitCode).toBe(137);
    expect(r.signal).toBe(9);
    const err = await c.exec(['sleep', '100']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect((err as CommandError).result.exitCode).toBe(137);
  });

  it('throws a CommandError naming the guest, the argv, the exit and stderr on a non-zero exit, unless reject is false', async () => {
    const c = await connected((req, reply) => {
      if (req[0] === 'exec') reply(['done', req[1]!, '1', '0', '900', '0', '0', '300', '0', '', 'mount: mounting 10.77.0.1:/ckpt on /ckpt failed: Connection refused\n']);
    });
    const err = await c.exec(['mount', '-t', 'nfs4', '10.77.0.1:/ckpt', '/ckpt']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect((err as Error).message).toBe('on chost-src: `mount -t nfs4 10.77.0.1:/ckpt /ckpt` exited 1: mount: mounting 10.77.0.1:/ckpt on /ckpt failed: Connection refused');
    const r = await c.exec(['mount'], { reject: false });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('Connection refused');
  });

  it('turns the guest\'s own deadline (timed_out=1) into a TimeoutError, whatever the exit', async () => {
    const c = await connected((req, reply) => {
      if (req[0] === 'exec') reply(['done', req[1]!, '-1', '9', '2000000', '0', '0', '100', '1', 'partial', '']);
    });
    const err = await c.exec(['criu', 'dump'], { timeoutMs: 2000, reject: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).limitMs).toBe(2000);
    expect((err as Error).message).toBe('`criu dump` on chost-src did not finish within 2000 ms');
  });

  it('rejects with the agent\'s own words on an `error` reply', async () => {
    const c = await connected((req, reply) => {
      if (req[0] === 'exec') reply(['error', req[1]!, 'cannot run nosuch: No such file or directory']);
    });
    const err = await c.exec(['nosuch']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MiglabError);
    expect(err).not.toBeInstanceOf(CommandError);
    expect((err as Error).message).toBe("chost-src's agent: cannot run nosuch: No such file or directory");
  });

  it('matches replies to requests by id when several are in flight and answered out of order', async () => {
    const held: { id: string; argv: string[] }[] = [];
    const c = await connected((req) => {
      if (req[0] !== 'exec') return;
      held.push({ id: req[1]!, argv: req.slice(3) });
      if (held.length === 3) {
        // Answer the last first, all three in one write.
        const frames = [...held].reverse().map((h) => encodeMessage(['done', h.id, '0', '0', '1', '0', '0', '1', '0', h.argv.join(' '), '']));
        agent!.sockets.forEach((s) => s.write(Buffer.concat(frames)));
      }
    });
    const [a, b, d] = await Promise.all([c.exec(['echo', 'a']), c.exec(['echo', 'b']), c.exec(['echo', 'd'])]);
    expect([a.stdout, b.stdout, d.stdout]).toEqual(['echo a', 'echo b', 'echo d']);
  });
});

describe('GuestControl.spawn, kill, softDirty', () => {
  it('starts a long-lived program and resolves `exited` when the agent reports the reap', async () => {
    let spawnId = '';
    const c = await connected((req, reply) => {
      if (req[0] === 'spawn') {
        spawnId = req[1]!;
        reply(['started', spawnId, '311', '98765']);
      }
    });
    const p = await c.spawn(['/bin/miglab-workload', 'counter', '--port', '7700'], { newPid: true, log: '/ckpt/run/workload.out' });
    expect(agent!.received.at(-1)).toEqual(['spawn', spawnId, '1', '/ckpt/run/workload.out', '/bin/miglab-workload', 'counter', '--port', '7700']);
    expect(p).toMatchObject({ pid: 311, startTime: 98765 });
    let settled = false;
    void p.exited.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(settled).toBe(false);
    agent!.sockets.forEach((s) => s.write(encodeMessage(['exited', spawnId, '311', '-1', '15', '1800'])));
    expect(await p.exited).toEqual({ pid: 311, exitCode: -1, signal: 15, maxRssKiB: 1800 });
  });

  it('sends no new PID namespace and /dev/null output by default, and catches an exit reported with the start', async () => {
    const c = await connected((req, _reply, s) => {
      if (req[0] === 'spawn') {
        // A program that exited before the agent answered: `started` and `exited` in one write.
        s.write(Buffer.concat([encodeMessage(['started', req[1]!, '40', '7']), encodeMessage(['exited', req[1]!, '40', '3', '0', '900'])]));
      }
    });
    const p = await c.spawn(['false']);
    expect(agent!.received.at(-1)!.slice(2)).toEqual(['0', '-', 'false']);
    expect(await p.exited).toEqual({ pid: 40, exitCode: 3, signal: 0, maxRssKiB: 900 });
  });

  it('kills by pid and start time, and passes on the agent\'s refusal', async () => {
    const c = await connected((req, reply) => {
      if (req[0] !== 'kill') return;
      if (req[3] === '98765') reply(['killed', req[1]!]);
      else reply(['error', req[1]!, `no process ${req[2]} started at ${req[3]} (gone or another process now)`]);
    });
    await c.kill(311, 98765, 9);
    expect(agent!.received.at(-1)!.slice(2)).toEqual(['311', '98765', '9']);
    const err = await c.kill(311, 11111, 15).catch((e: unknown) => e);
    expect((err as Error).message).toBe("chost-src's agent: no process 311 started at 11111 (gone or another process now)");
  });

  it('reads soft-dirty page counts', async () => {
    const c = await connected((req, reply) => {
      if (req[0] === 'softdirty') reply(['dirty', req[1]!, '4096', '2']);
    });
    expect(await c.softDirty(311)).toEqual({ pages: 4096, processes: 2 });
    expect(agent!.received.at(-1)!.slice(2)).toEqual(['311']);
  });
});

describe('GuestControl when things go wrong', () => {
  it('rejects every request in flight when the stream closes, and every later one at once', async () => {
    const c = await connected((req, _reply, s) => {
      if (req[0] === 'exec' && req[3] === 'criu') setTimeout(() => s.destroy(), 20);
    });
    const inFlight = [c.exec(['sleep', '5']), c.exec(['criu', 'dump']), c.softDirty(1)];
    const errs = await Promise.all(inFlight.map((p) => p.catch((e: unknown) => e)));
    for (const e of errs) {
      expect(e).toBeInstanceOf(MiglabError);
      expect((e as Error).message).toBe('the control port of chost-src closed');
    }
    const later = await c.exec(['true']).catch((e: unknown) => e);
    expect((later as Error).message).toBe('the control port of chost-src closed');
    expect(await c.ping(200)).toBe(false);
  });

  it('fails the connection on bytes that are not a netstring, naming them', async () => {
    const c = await connected((req, _reply, s) => {
      if (req[0] === 'exec') s.write('garbage\n');
    });
    const err = await c.exec(['true']).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/control port: not a netstring: "garbage\\n"/);
  });

  it('gives up on a request when aborted, and ignores its late reply', async () => {
    const late: string[] = [];
    const c = await connected((req) => {
      if (req[0] === 'exec') late.push(req[1]!);
    });
    const ac = new AbortController();
    const pending = c.exec(['criu', 'restore'], { signal: ac.signal });
    await new Promise((r) => setTimeout(r, 30));
    ac.abort(new Error('Ctrl-C'));
    const err = await pending.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortedError);
    expect((err as Error).message).toBe('exec on chost-src was interrupted');
    // The reply that comes after is dropped; the connection serves the next request.
    agent!.sockets.forEach((s) => s.write(encodeMessage(['done', late[0]!, '0', '0', '1', '0', '0', '1', '0', 'late', ''])));
    expect(await c.ping(1000)).toBe(true);
  });

  it('sends nothing for a request whose signal is already aborted', async () => {
    const c = await connected(() => undefined);
    const before = agent!.received.length;
    const ac = new AbortController();
    ac.abort();
    await expect(c.softDirty(1, ac.signal)).rejects.toBeInstanceOf(AbortedError);
    await new Promise((r) => setTimeout(r, 30));
    expect(agent!.received.length).toBe(before);
  });

  it('says false to a ping the agent leaves unanswered, and true again once it answers', async () => {
    let answering = true;
    agent = await FakeAgent.start(sock, (req, reply) => {
      if (req[0] === 'ping' && answering) reply(['pong', req[1]!]);
    });
    const c = (ctl = await GuestControl.connect(host, sock, 'chost-src', { timeoutMs: 5000 }));
    answering = false;
    expect(await c.ping(100)).toBe(false);
    answering = true;
    expect(await c.ping(1000)).toBe(true);
  });
});
