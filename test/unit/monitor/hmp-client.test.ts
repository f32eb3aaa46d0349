// The HMP client against a fake monitor on a real unix socket that echoes like QEMU's readline.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TimeoutError } from '../../../src/errors.js';
import { cleanOutput, HmpClient, HmpCommandError, HmpError } from '../../../src/hmp/index.js';
import { LocalHost } from '../../../src/host/local.js';
import { FakeHmpServer, readlineEcho } from '../../support/fake-hmp.js';

const FIX = join(process.cwd(), 'test/fixtures/monitor/qemu-7.2');
let dir: string;
let sock: string;
let fake: FakeHmpServer | undefined;
let hmp: HmpClient | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'miglab-hmp-'));
  sock = join(dir, 'hmp.sock');
});
afterEach(async () => {
  await hmp?.close();
  await fake?.close();
  hmp = undefined;
  fake = undefined;
  await rm(dir, { recursive: true, force: true });
});

describe('HMP over a unix socket', () => {
  it('returns output without echo, escape codes or prompt, even when it arrives in small pieces', async () => {
    fake = await FakeHmpServer.start(sock, (l) => (l === 'info status' ? { output: 'VM status: running\r\n' } : undefined), { chunkSize: 3 });
    hmp = await HmpClient.connectUnix(sock, { timeoutMs: 2000 });
    expect(hmp.banner).toBe("QEMU 7.2.22 monitor - type 'help' for more information");
    expect(await hmp.command('info status')).toBe('VM status: running');
  });

  it('parses info migrate from what QEMU 7.2 really sent', async () => {
    const raw = await readFile(join(FIX, 'info-migrate-completed.txt'), 'utf8');
    fake = await FakeHmpServer.start(sock, (l) => (l === 'info migrate' ? { raw } : undefined));
    hmp = await HmpClient.connectUnix(sock, { timeoutMs: 2000 });
    const info = await hmp.infoMigrate();
    expect(info.status).toBe('completed');
    expect(info.ram?.transferredBytes).toBe(915 * 1024);
  });

  it('sends the literal migrate -d and the parameter/capability commands', async () => {
    fake = await FakeHmpServer.start(sock, () => ({ output: '' }));
    hmp = await HmpClient.connectUnix(sock, { timeoutMs: 2000 });
    expect(await hmp.migrate('tcp:10.0.0.2:4444')).toBe('migrate -d tcp:10.0.0.2:4444');
    await hmp.migrateSetParameter('max-bandwidth', 5 * 1024 * 1024);
    await hmp.migrateSetParameter('downtime-limit', 300);
    await hmp.migrateSetCapability('xbzrle', true);
    expect(fake.received).toEqual([
      'migrate -d tcp:10.0.0.2:4444',
      'migrate_set_parameter max-bandwidth 5242880B',
      'migrate_set_parameter downtime-limit 300',
      'migrate_set_capability xbzrle on',
    ]);
  });

  it("raises HmpCommandError when QEMU prints an error, keeping the line and QEMU's words", async () => {
    fake = await FakeHmpServer.start(sock, (l) =>
      l.startsWith('migrate ') ? { output: "Error: Can't migrate the vm that was paused due to previous migration\r\n" } : undefined,
    );
    hmp = await HmpClient.connectUnix(sock, { timeoutMs: 2000 });
    const err = (await hmp.migrate('tcp:127.0.0.1:1').catch((e: unknown) => e)) as HmpCommandError;
    expect(err).toBeInstanceOf(HmpCommandError);
    expect(err.code).toBe('HMP');
    expect(err.commandLine).toBe('migrate -d tcp:127.0.0.1:1');
    expect(err.message).toContain("Can't migrate");
    await expect(hmp.run('nosuch')).rejects.toThrow("unknown command: 'nosuch'");
    // command() itself never judges the output.
    expect(await hmp.command('nosuch')).toBe("unknown command: 'nosuch'");
  });

  it('runs concurrent commands one at a time, each getting its own output', async () => {
    fake = await FakeHmpServer.start(sock, (l) => ({ output: `out of ${l}\r\n`, delayMs: l === 'a' ? 80 : 0 }));
    hmp = await HmpClient.connectUnix(sock, { timeoutMs: 2000 });
    expect(await Promise.all([hmp.command('a'), hmp.command('b'), hmp.command('c')])).toEqual(['out of a', 'out of b', 'out of c']);
  });

  it('times out naming the command; the monitor is then out of step and says so', async () => {
    fake = await FakeHmpServer.start(sock, (l) => (l === 'slow' ? { output: 'late\r\n', delayMs: 500 } : { output: 'ok\r\n' }));
    hmp = await HmpClient.connectUnix(sock, { timeoutMs: 2000 });
    const err = (await hmp.command('slow', { timeoutMs: 100 }).catch((e: unknown) => e)) as TimeoutError;
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err.message).toContain('slow');
    expect(err.limitMs).toBe(100);
    await expect(hmp.command('info status')).rejects.toBeInstanceOf(HmpError);
  });

  it('retries until the socket appears, and fails with HmpError after the deadline', async () => {
    const pending = HmpClient.connectUnix(sock, { timeoutMs: 3000, retryIntervalMs: 20 });
    await new Promise((r) => setTimeout(r, 200));
    fake = await FakeHmpServer.start(sock, () => ({ output: '' }));
    hmp = await pending;
    await expect(HmpClient.connectUnix(join(dir, 'absent.sock'), { timeoutMs: 150 })).rejects.toBeInstanceOf(HmpError);
  });

  it("reaches the socket through the opener it is given (a host's connectUnix), retrying until it is there", async () => {
    let tries = 0;
    const pending = HmpClient.connectUnix(sock, { timeoutMs: 3000, retryIntervalMs: 20, open: () => (tries++, new LocalHost().connectUnix(sock)) });
    await new Promise((r) => setTimeout(r, 200));
    fake = await FakeHmpServer.start(sock, () => ({ output: '' }));
    hmp = await pending;
    expect(tries).toBeGreaterThan(1);
    expect(hmp.description).toBe(`unix:${sock}`);
  });
});

describe('cleanOutput', () => {
  it('strips the readline echo of the captured QEMU reply', async () => {
    const raw = await readFile(join(FIX, 'hmp-unknown-command.txt'), 'utf8');
    expect(cleanOutput(raw, 'nosuchcmd')).toBe("unknown command: 'nosuchcmd'");
  });
  it('keeps output when there is no echo (telnet with negotiation)', () => {
    expect(cleanOutput('VM status: running\r\n', 'info status')).toBe('VM status: running');
    expect(cleanOutput(`${readlineEcho('info status')}VM status: paused\r\n(qemu) `, 'info status')).toBe('VM status: paused');
  });
});
