// The QMP client against a scripted QMP server on a real unix socket.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { TimeoutError } from '../../../src/errors.js';
import {
  MemoryTranscript,
  QmpClient,
  QmpCommandError,
  QmpConnectError,
  QmpDisconnectedError,
  Transcript,
  type QmpEvent,
} from '../../../src/qmp/index.js';
import { LocalHost } from '../../../src/host/local.js';
import { FakeQmpServer } from '../../support/fake-qmp.js';

let dir: string;
let sock: string;
let fake: FakeQmpServer | undefined;
let client: QmpClient | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'miglab-qmp-'));
  sock = join(dir, 'qmp.sock');
});

afterEach(async () => {
  await client?.close();
  await fake?.close();
  client = undefined;
  fake = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function connect(opts: Partial<Parameters<typeof QmpClient.connect>[1]> = {}): Promise<QmpClient> {
  client = await QmpClient.connect(sock, { timeoutMs: 2000, ...opts });
  return client;
}

describe('session', () => {
  it('reads the greeting, negotiates capabilities and is running', async () => {
    fake = await FakeQmpServer.start(sock);
    const qmp = await connect();
    expect(qmp.state).toBe('running');
    expect(qmp.qemuVersion).toEqual({ major: 7, minor: 2, micro: 22, package: 'Debian 1:7.2+dfsg-7+deb12u18+b3' });
    expect(fake.received[0]?.execute).toBe('qmp_capabilities');
  });

  it('retries until the socket appears (QEMU creates it as it starts)', async () => {
    const pending = connect({ timeoutMs: 3000, retryIntervalMs: 20 });
    await new Promise((r) => setTimeout(r, 300));
    fake = await FakeQmpServer.start(sock);
    const qmp = await pending;
    expect(qmp.state).toBe('running');
  });

  it("reaches the socket through the opener it is given (a host's connectUnix), retrying its ENOENT", async () => {
    const host = new LocalHost();
    const opened: string[] = [];
    const pending = connect({ timeoutMs: 3000, retryIntervalMs: 20, open: () => (opened.push(sock), host.connectUnix(sock)) });
    await new Promise((r) => setTimeout(r, 200));
    fake = await FakeQmpServer.start(sock);
    expect((await pending).state).toBe('running');
    expect(opened.length).toBeGreaterThan(1);
    const refused = await QmpClient.connect('/over/there/qmp.sock', {
      timeoutMs: 200,
      retryIntervalMs: 20,
      open: () => Promise.reject(Object.assign(new Error('connection refused: unix socket /over/there/qmp.sock on root@h'), { code: 'ECONNREFUSED' })),
    }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(QmpConnectError);
    expect((refused as Error).message).toContain('/over/there/qmp.sock');
  });

  it('gives up with QmpConnectError naming the path when nothing appears in time', async () => {
    const start = Date.now();
    const err = await QmpClient.connect(sock, { timeoutMs: 300, retryIntervalMs: 20 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QmpConnectError);
    expect((err as QmpConnectError).path).toBe(sock);
    expect((err as QmpConnectError).code).toBe('QMP_CONNECT');
    expect((err as Error).message).toContain('300 ms');
    expect(Date.now() - start).toBeLessThan(2000);
  });

  it('says QEMU never greeted (not the early ENOENT) when the socket appears but stays silent', async () => {
    // QEMU creates its monitor socket early, then can block in its main thread (a drive that
    // will not open): the connection is queued in the backlog and no greeting ever comes.
    const silent = createServer(() => undefined);
    setTimeout(() => silent.listen(sock), 100);
    try {
      const err = await QmpClient.connect(sock, { timeoutMs: 600, retryIntervalMs: 20 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(QmpConnectError);
      expect((err as Error).message).toMatch(/connected, but QEMU sent no greeting within 600 ms/);
      expect((err as Error).message).not.toContain('ENOENT');
    } finally {
      await new Promise((r) => silent.close(r));
    }
  });

  it('fails to connect when QEMU never answers qmp_capabilities', async () => {
    fake = await FakeQmpServer.start(sock, { handlers: {} });
    // A server that greets but never answers qmp_capabilities.
    fake.on('qmp_capabilities', () => ({ noReply: true }));
    const err = await QmpClient.connect(sock, { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QmpConnectError);
  });

  it('close() is idempotent and later calls fail with QmpDisconnectedError', async () => {
    fake = await FakeQmpServer.start(sock);
    const qmp = await connect();
    await Promise.all([qmp.close(), qmp.close()]);
    await qmp.close();
    expect(qmp.state).toBe('closed');
    await expect(qmp.execute('query-status')).rejects.toBeInstanceOf(QmpDisconnectedError);
  });
});

describe('commands', () => {
  it('matches replies to requests by id when they come back out of order', async () => {
    fake = await FakeQmpServer.start(sock, {
      handlers: {
        slow: () => ({ return: 'slow', delayMs: 150 }),
        fast: () => ({ return: 'fast' }),
      },
    });
    const qmp = await connect();
    const order: string[] = [];
    const slow = qmp.execute<string>('slow').then((v) => (order.push(v), v));
    const fast = qmp.execute<string>('fast').then((v) => (order.push(v), v));
    expect(await Promise.all([slow, fast])).toEqual(['slow', 'fast']);
    expect(order).toEqual(['fast', 'slow']);
    const ids = fake.received.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("turns QEMU's error reply into QmpCommandError with command, args, reply and class", async () => {
    fake = await FakeQmpServer.start(sock, {
      handlers: { migrate: () => ({ error: { class: 'GenericError', desc: "Failed to connect to '127.0.0.1:1'" } }) },
    });
    const qmp = await connect();
    const err = (await qmp.migrate('tcp:127.0.0.1:1').catch((e: unknown) => e)) as QmpCommandError;
    expect(err).toBeInstanceOf(QmpCommandError);
    expect(err.code).toBe('QMP_COMMAND');
    expect(err.command).toBe('migrate');
    expect(err.args).toEqual({ uri: 'tcp:127.0.0.1:1' });
    expect(err.errorClass).toBe('GenericError');
    expect(err.desc).toContain('Failed to connect');
    expect(err.reply).toMatchObject({ error: { class: 'GenericError' } });
    expect(err.message).toContain('migrate');

    const nf = (await qmp.execute('no-such-command').catch((e: unknown) => e)) as QmpCommandError;
    expect(nf.errorClass).toBe('CommandNotFound');
  });

  it('times out one call (naming command and limit) while others succeed; the late reply is ignored', async () => {
    fake = await FakeQmpServer.start(sock, {
      handlers: {
        stuck: () => ({ return: 'late', delayMs: 300 }),
        'query-status': () => ({ return: { running: true, status: 'running' } }),
      },
    });
    const qmp = await connect();
    const stuck = qmp.execute('stuck', undefined, { timeoutMs: 100 }).catch((e: unknown) => e);
    const ok = qmp.queryStatus();
    const err = (await stuck) as TimeoutError;
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err.message).toContain('stuck');
    expect(err.limitMs).toBe(100);
    expect(await ok).toEqual({ running: true, status: 'running' });
    await new Promise((r) => setTimeout(r, 300)); // the late reply arrives and must do no harm
    expect(qmp.state).toBe('running');
    expect(await qmp.queryStatus()).toMatchObject({ status: 'running' });
  });

  it('rejects every pending call with QmpDisconnectedError when the connection drops', async () => {
    fake = await FakeQmpServer.start(sock, {
      handlers: { a: () => ({ noReply: true }), b: () => ({ noReply: true }) },
    });
    const qmp = await connect();
    const a = qmp.execute('a').catch((e: unknown) => e);
    const b = qmp.execute('b').catch((e: unknown) => e);
    await fake.nextCommand('b').catch(() => undefined);
    await new Promise((r) => setTimeout(r, 20));
    fake.dropConnections();
    const [ea, eb] = (await Promise.all([a, b])) as QmpDisconnectedError[];
    expect(ea).toBeInstanceOf(QmpDisconnectedError);
    expect(eb).toBeInstanceOf(QmpDisconnectedError);
    expect(ea!.command).toBe('a');
    expect(eb!.command).toBe('b');
    expect(qmp.state).toBe('closed');
  });

  it('quit() succeeds when QEMU drops the connection instead of answering', async () => {
    fake = await FakeQmpServer.start(sock, { handlers: { quit: () => ({ drop: true }) } });
    const qmp = await connect();
    await expect(qmp.quit()).resolves.toBeUndefined();
    expect(qmp.state).toBe('closed');
  });

  it('typed helpers send what QEMU expects', async () => {
    fake = await FakeQmpServer.start(sock, {
      handlers: {
        'migrate-set-capabilities': () => ({ return: {} }),
        'migrate-set-parameters': () => ({ return: {} }),
        'query-migrate-capabilities': () => ({
          return: [
            { capability: 'xbzrle', state: true },
            { capability: 'events', state: false },
          ],
        }),
        'human-monitor-command': (r) => ({ return: `ran ${String(r.arguments?.['command-line'])}\r\n` }),
      },
    });
    const qmp = await connect();
    await qmp.setMigrateCapabilities({ xbzrle: true, events: false });
    await qmp.setMigrateParameters({ 'max-bandwidth': 5242880 });
    expect(await qmp.queryMigrateCapabilities()).toEqual({ xbzrle: true, events: false });
    expect(await qmp.queryVersion()).toEqual({ major: 7, minor: 2, micro: 22, package: 'Debian 1:7.2' });
    expect(await qmp.humanMonitorCommand('info status')).toBe('ran info status\r\n');
    const sent = fake.received.map((r) => [r.execute, r.arguments]);
    expect(sent).toContainEqual([
      'migrate-set-capabilities',
      {
        capabilities: [
          { capability: 'xbzrle', state: true },
          { capability: 'events', state: false },
        ],
      },
    ]);
    expect(sent).toContainEqual(['migrate-set-parameters', { 'max-bandwidth': 5242880 }]);
  });
});

describe('events', () => {
  it('delivers each event to every listener, each with its own queue, keeping QEMU timestamps', async () => {
    fake = await FakeQmpServer.start(sock);
    const qmp = await connect();
    const all = qmp.events();
    const migration = qmp.events('MIGRATION');
    fake.emit('STOP');
    fake.emit('MIGRATION', { status: 'active' });
    fake.emit('MIGRATION', { status: 'completed' }, { seconds: 1700000001, microseconds: 5 });

    const seen: QmpEvent[] = [];
    for await (const e of migration) {
      seen.push(e);
      if (e.data.status === 'completed') break;
    }
    expect(seen.map((e) => e.data.status)).toEqual(['active', 'completed']);
    expect(seen[1]!.timestamp).toEqual({ seconds: 1700000001, microseconds: 5 });

    const names: string[] = [];
    for (let i = 0; i < 3; i++) names.push((await all.next({ timeoutMs: 1000 })).event);
    expect(names).toEqual(['STOP', 'MIGRATION', 'MIGRATION']);
    all.close();
  });

  it('waitEvent resolves on the matching event and times out naming the event', async () => {
    fake = await FakeQmpServer.start(sock);
    const qmp = await connect();
    const waiting = qmp.waitEvent('MIGRATION', (e) => e.data.status === 'completed', { timeoutMs: 1000 });
    fake.emit('MIGRATION', { status: 'active' });
    fake.emit('MIGRATION', { status: 'completed' });
    expect((await waiting).data).toEqual({ status: 'completed' });

    const err = (await qmp.waitEvent('RESUME', undefined, { timeoutMs: 80 }).catch((e: unknown) => e)) as TimeoutError;
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err.message).toContain('RESUME');
  });

  it('onEvent handlers see events until unsubscribed', async () => {
    fake = await FakeQmpServer.start(sock);
    const qmp = await connect();
    const got: string[] = [];
    const off = qmp.onEvent((e) => got.push(e.event));
    fake.emit('STOP');
    await qmp.waitEvent('STOP', undefined, { timeoutMs: 1000 });
    off();
    fake.emit('RESUME');
    await qmp.waitEvent('RESUME', undefined, { timeoutMs: 1000 });
    expect(got).toEqual(['STOP']);
  });

  it('a listener fails with QmpDisconnectedError when QEMU goes away', async () => {
    fake = await FakeQmpServer.start(sock);
    const qmp = await connect();
    const l = qmp.events('MIGRATION');
    const next = l.next({ timeoutMs: 2000 }).catch((e: unknown) => e);
    fake.dropConnections();
    expect(await next).toBeInstanceOf(QmpDisconnectedError);
  });
});

describe('transcript', () => {
  it('records every message in both directions with a local timestamp, as JSON lines', async () => {
    fake = await FakeQmpServer.start(sock);
    const mem = new MemoryTranscript();
    const qmp = await connect({ transcript: mem, name: 'source' });
    await qmp.queryVersion();
    fake.emit('STOP');
    await qmp.waitEvent('STOP', undefined, { timeoutMs: 1000 });
    const msgs = mem.entries.filter((e) => e.dir !== 'note');
    expect(msgs.map((e) => e.dir)).toEqual(['in', 'out', 'in', 'out', 'in', 'in']);
    expect(msgs[0]!.message).toHaveProperty('QMP');
    expect(msgs[3]!.message).toMatchObject({ execute: 'query-version' });
    expect(msgs.every((e) => e.peer === 'source' && !Number.isNaN(Date.parse(e.time)))).toBe(true);

    const file = join(dir, 'qmp.jsonl');
    const qmp2 = await QmpClient.connect(sock, { timeoutMs: 2000, transcript: new Transcript(file) });
    await qmp2.queryVersion();
    await qmp2.close();
    const lines = (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { dir: string });
    expect(lines.filter((l) => l.dir === 'out')).toHaveLength(2);
  });

  it('keeps the raw bytes of an undecodable message and reports the broken conversation', async () => {
    fake = await FakeQmpServer.start(sock, { handlers: { hang: () => ({ noReply: true }) } });
    const mem = new MemoryTranscript();
    const qmp = await connect({ transcript: mem });
    const pending = qmp.execute('hang').catch((e: unknown) => e);
    await fake.nextCommand('hang');
    fake.sendRaw('{"return": {}, "id": oops');
    const err = (await pending) as QmpDisconnectedError;
    expect(err).toBeInstanceOf(QmpDisconnectedError);
    expect((err.cause as { raw?: string }).raw).toContain('oops');
    expect(mem.entries.some((e) => e.raw?.includes('oops'))).toBe(true);
  });
});
