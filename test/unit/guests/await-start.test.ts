// Noticing a migration a person starts, against a scripted QMP server on a real unix socket: by
// QEMU's MIGRATION event (timed by QEMU's stamp), by query-migrate when it had begun already, and
// a limit that names the option to raise.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { awaitMigrationStart } from '../../../src/guests/await-start.js';
import { QmpClient } from '../../../src/qmp/index.js';
import { FakeQmpServer } from '../../support/fake-qmp.js';

let dir: string;
let fake: FakeQmpServer;
let client: QmpClient;
let status: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'miglab-byhand-'));
  status = 'none';
  fake = await FakeQmpServer.start(join(dir, 'qmp.sock'), { handlers: { 'query-migrate': () => ({ return: status === 'none' ? {} : { status } }) } });
  client = await QmpClient.connect(fake.path, { timeoutMs: 2000 });
});

afterEach(async () => {
  await client.close();
  await fake.close();
  await rm(dir, { recursive: true, force: true });
});

describe('a migration started by hand', () => {
  it('is seen by its MIGRATION setup event, timed by QEMU', async () => {
    const began: number[] = [];
    const seen = awaitMigrationStart(client, { timeoutMs: 5000, signal: new AbortController().signal, began: (t) => began.push(t) });
    await fake.nextCommand('query-migrate');
    await new Promise((r) => setTimeout(r, 50));
    expect(began).toEqual([]);
    fake.emit('MIGRATION', { status: 'setup' }, { seconds: 1800000000, microseconds: 250000 });
    await expect(seen).resolves.toBe('setup');
    expect(began).toEqual([1800000000250]);
  });

  it('is seen by query-migrate when it began before miglab listened', async () => {
    status = 'active';
    const began: number[] = [];
    const before = Date.now();
    await expect(awaitMigrationStart(client, { timeoutMs: 5000, signal: new AbortController().signal, began: (t) => began.push(t) })).resolves.toBe('active');
    expect(began[0]).toBeGreaterThanOrEqual(before);
  });

  it('ignores other events and says which option gives more time', async () => {
    const seen = awaitMigrationStart(client, { timeoutMs: 400, signal: new AbortController().signal, began: () => undefined });
    fake.emit('RESUME');
    fake.emit('MIGRATION', { status: 'none' });
    await expect(seen).rejects.toThrow(/no migration was started within 0 s.*--hold/);
  });

  it('ends at once on Ctrl-C', async () => {
    const ac = new AbortController();
    const seen = awaitMigrationStart(client, { timeoutMs: 60000, signal: ac.signal, began: () => undefined });
    await fake.nextCommand('query-migrate');
    ac.abort(new Error('received SIGINT'));
    await expect(seen).rejects.toThrow(/interrupted/);
  });
});
