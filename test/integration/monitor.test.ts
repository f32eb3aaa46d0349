// Both monitors against real QEMU: two empty TCG machines (no kernel; an idle machine still
// migrates its RAM) on 127.0.0.1, migrated once through QMP and once through the human monitor
// with the literal `migrate -d` and a parsed `info migrate`. Only the QEMUs started here are
// killed, and their sockets are removed.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HmpClient } from '../../src/hmp/index.js';
import { fromQueryMigrate, isFinalMigrationStatus, type MigrationInfo } from '../../src/migration/info.js';
import { MemoryTranscript, QmpClient } from '../../src/qmp/index.js';
import { pollUntil } from '../../src/util/deadline.js';


let dir: string;
const started: ChildProcess[] = [];
const clients: { close(): Promise<void> }[] = [];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

function startQemu(name: string, extra: string[]): { qmp: string; hmp: string; proc: ChildProcess } {
  const qmp = join(dir, `${name}.qmp`);
  const hmp = join(dir, `${name}.hmp`);
  const argv = ['-accel', 'tcg', '-m', '64', '-nographic', '-nodefaults', '-display', 'none'];
  argv.push('-qmp', `unix:${qmp},server=on,wait=off`, '-monitor', `unix:${hmp},server=on,wait=off`, ...extra);
  const proc = spawn('qemu-system-x86_64', argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  started.push(proc);
  return { qmp, hmp, proc };
}

async function stopAll(): Promise<void> {
  for (const c of clients.splice(0)) await c.close();
  for (const p of started.splice(0)) {
    if (p.exitCode !== null || p.signalCode !== null) continue;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'miglab-monitor-'));
});

afterAll(async () => {
  await stopAll();
  await rm(dir, { recursive: true, force: true });
});

async function pair(): Promise<{ src: ReturnType<typeof startQemu>; dst: ReturnType<typeof startQemu>; port: number }> {
  const port = await freePort();
  const src = startQemu(`src-${port}`, []);
  const dst = startQemu(`dst-${port}`, ['-incoming', `tcp:127.0.0.1:${port}`]);
  return { src, dst, port };
}

describe('real QEMU monitors', () => {
  it('migrates over 127.0.0.1 through QMP, seen in events and query-migrate', async () => {
    const { src, dst, port } = await pair();
    const transcript = new MemoryTranscript();
    const sq = await QmpClient.connect(src.qmp, { timeoutMs: 10000, name: 'source', transcript });
    const dq = await QmpClient.connect(dst.qmp, { timeoutMs: 10000, name: 'destination', transcript });
    clients.push(sq, dq);
    expect(sq.qemuVersion.major).toBeGreaterThanOrEqual(7);
    expect(await sq.queryVersion()).toEqual(sq.qemuVersion);

    await sq.setMigrateCapabilities({ events: true });
    await sq.setMigrateParameters({ 'max-bandwidth': 1024 * 1024 * 1024 });
    expect((await sq.queryMigrateParameters())['max-bandwidth']).toBe(1024 * 1024 * 1024);
    expect((await sq.queryMigrateCapabilities()).events).toBe(true);

    const migration = sq.events('MIGRATION');
    await sq.migrate(`tcp:127.0.0.1:${port}`);
    const done = await migration.next({ timeoutMs: 30000 }, (e) => isFinalMigrationStatus(String(e.data.status)), 'MIGRATION completed');
    migration.close();
    expect(done.data.status).toBe('completed');
    expect(done.timestamp.seconds).toBeGreaterThan(0);

    const info = fromQueryMigrate(await sq.queryMigrate());
    expect(info.status).toBe('completed');
    expect(info.ram?.transferredBytes).toBeGreaterThan(0);
    expect(info.totalTimeMs).toBeGreaterThanOrEqual(0); // an idle 64 MiB machine can take under 1 ms
    // The source reports completed once it has sent everything; the destination may still be
    // loading device state for a moment (inmigrate).
    const dstStatus = await pollUntil('the destination to run', async () => {
      const st = await dq.queryStatus();
      return st.status === 'inmigrate' ? undefined : st;
    }, { timeoutMs: 10000, intervalMs: 20 });
    expect(dstStatus.running).toBe(true);
    expect((await sq.queryStatus()).status).toBe('postmigrate');
    expect(transcript.entries.some((e) => e.dir === 'in' && (e.message as { event?: string }).event === 'MIGRATION')).toBe(true);

    await sq.quit({ timeoutMs: 5000 });
    await dq.quit({ timeoutMs: 5000 });
    expect(sq.state).toBe('closed');
  }, 60000);

  it('migrates through the human monitor with `migrate -d` and a parsed `info migrate`', async () => {
    const { src, dst, port } = await pair();
    const hmp = await HmpClient.connectUnix(src.hmp, { timeoutMs: 10000 });
    // Its monitor answering means the destination is up and listening on `port`.
    const dh = await HmpClient.connectUnix(dst.hmp, { timeoutMs: 10000 });
    clients.push(hmp, dh);
    expect(await dh.command('info status')).toContain('inmigrate');
    expect(hmp.banner).toMatch(/^QEMU \d+\.\d+/);
    expect(await hmp.infoMigrate()).toMatchObject({ status: 'none' });

    await hmp.migrateSetParameter('max-bandwidth', 1024 * 1024 * 1024);
    await hmp.migrateSetCapability('xbzrle', true);
    expect(await hmp.migrate(`tcp:127.0.0.1:${port}`)).toBe(`migrate -d tcp:127.0.0.1:${port}`);

    const info: MigrationInfo = await pollUntil(
      'HMP migration to finish',
      async () => {
        const i = await hmp.infoMigrate({ timeoutMs: 5000 });
        return isFinalMigrationStatus(i.status) ? i : undefined;
      },
      { timeoutMs: 30000, intervalMs: 100 },
    );
    expect(info.status).toBe('completed');
    expect(info.ram?.transferredBytes).toBeGreaterThan(0);
    expect(info.ram?.totalBytes).toBeGreaterThanOrEqual(64 * 1024 * 1024);
    expect(info.xbzrle?.cacheSizeBytes).toBeGreaterThan(0);

    // The same record through QMP's human-monitor-command and through query-migrate.
    const sq = await QmpClient.connect(src.qmp, { timeoutMs: 10000 });
    clients.push(sq);
    const qmpInfo = await sq.migrationInfo();
    expect(qmpInfo.status).toBe('completed');
    expect(Math.abs(qmpInfo.ram!.transferredBytes! - info.ram!.transferredBytes!)).toBeLessThan(1024);
    expect(await sq.humanMonitorCommand('info status')).toContain('postmigrate');
  }, 60000);

  it('speaks to a telnet monitor with negotiation', async () => {
    const port = await freePort();
    startQemu(`telnet-${port}`, ['-monitor', `telnet:127.0.0.1:${port},server=on,wait=off`]);
    const hmp = await pollUntil(
      'telnet monitor to listen',
      () => HmpClient.connectTelnet({ port, timeoutMs: 2000 }).catch(() => undefined),
      { timeoutMs: 10000, intervalMs: 100 },
    );
    clients.push(hmp);
    expect(await hmp.command('info status')).toBe('VM status: running');
    expect(await hmp.infoMigrate()).toEqual({ status: 'none' });
  }, 30000);
});
