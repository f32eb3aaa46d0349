// SshHost against a real sshd started for this test on 127.0.0.1 (loopback only), with a fresh
// host key and client key in a temp dir: commands with awkward arguments arrive intact, exit codes
// and stderr come back, a long-lived process is stopped by its remote pid and ends with its SSH
// session, unix sockets are reached over the connection, files are put by hash, and a proxy argv
// carries the connection. The "remote" machine is this one, so its files and pids can be checked
// directly.
import { pidRuns } from '../../src/lab/proc.js';
import { execa } from 'execa';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:net';
import { SshHost, type SshTarget } from '../../src/host/ssh.js';
import { CommandError } from '../../src/host/local.js';
import { pollUntil, withDeadline } from '../../src/util/deadline.js';
import { jest } from '@jest/globals';

// Every SSH command here starts root's login shell (0.1-1 s on a loaded machine): tests of a few
// commands need more than jest's default 5 s.
jest.setTimeout(30_000);

const dir = mkdtempSync(join(tmpdir(), 'miglab-ssh-'));
let sshd: ReturnType<typeof execa> | undefined;
let host: SshHost | undefined;
let target: SshTarget;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

beforeAll(async () => {
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'client_key')]);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')));
  mkdirSync('/run/sshd', { recursive: true }); // sshd's privilege separation directory
  const port = await freePort();
  const config = [
    `ListenAddress 127.0.0.1:${port}`,
    `HostKey ${join(dir, 'host_key')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'UsePAM no',
    'StrictModes no',
    'Subsystem sftp internal-sftp',
  ].join('\n');
  writeFileSync(join(dir, 'sshd_config'), config + '\n');
  sshd = execa('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], { reject: false });
  target = { host: '127.0.0.1', port, username: 'root', privateKeyPath: join(dir, 'client_key') };
  host = await pollUntil(
    'sshd to accept a connection',
    () => SshHost.connect(target, { timeoutMs: 2000 }).catch(() => undefined),
    { timeoutMs: 15000, intervalMs: 200 },
  );
}, 30000);

afterAll(async () => {
  host?.close();
  sshd?.kill('SIGTERM');
  await sshd;
  rmSync(dir, { recursive: true, force: true });
});

describe('SshHost', () => {
  it('runs argv with awkward arguments intact', async () => {
    const r = await host!.run(['printf', '%s|', "it's", 'a b', '$HOME', '`id`', '; rm -rf /']);
    expect(r.stdout).toBe("it's|a b|$HOME|`id`|; rm -rf /|");
  });

  it('reports exit codes and stderr', async () => {
    await expect(host!.run(['sh', '-c', 'echo oops >&2; exit 3'])).rejects.toThrow(CommandError);
    const r = await host!.run(['sh', '-c', 'echo oops >&2; exit 3'], { reject: false });
    expect(r).toMatchObject({ exitCode: 3, stderr: 'oops' });
    expect(await host!.which('sh')).toMatch(/\/sh$/);
    expect(await host!.which('no-such-program-miglab')).toBeUndefined();
  });

  it('stops a long-lived process by its remote pid', async () => {
    const p = host!.spawn(['sleep', '60']);
    await pollUntil('remote pid', () => (p.pid > 0 ? p.pid : undefined), { timeoutMs: 5000 });
    expect((await host!.run(['kill', '-0', String(p.pid)], { reject: false })).exitCode).toBe(0);
    const exit = await p.stop(2000);
    expect(exit.exitCode === null || exit.exitCode !== 0 || exit.signal !== null).toBe(true);
    expect((await host!.run(['kill', '-0', String(p.pid)], { reject: false })).exitCode).not.toBe(0);
  });
});

const alive = pidRuns;

describe('SshHost sessions', () => {
  it('ends a remote process when its SSH connection closes', async () => {
    const own = await SshHost.connect(target, { timeoutMs: 5000 });
    const p = own.spawn(['sleep', '1000']);
    const pid = await withDeadline('remote pid', p.running, { timeoutMs: 5000 });
    expect(pid).toBe(p.pid);
    expect(alive(pid)).toBe(true);
    own.close();
    await pollUntil('the remote sleep to end', async () => (alive(pid) ? undefined : true), { timeoutMs: 10000, intervalMs: 50 });
    expect(await withDeadline('exit of the dropped process', p.exited, { timeoutMs: 5000 })).toBeDefined();
    expect(p.hasExited).toBe(true);
  });

  it('reports the exit code of a remote process, and the signal that killed one', async () => {
    const seven = host!.spawn(['sh', '-c', 'echo out; echo err >&2; exit 7']);
    expect(await seven.exited).toEqual({ exitCode: 7, signal: null });
    expect(seven.tail()).toMatch(/out/);
    expect(seven.tail()).toMatch(/err/);
    expect(seven.tail()).not.toMatch(/miglab-pid/);
    const killed = host!.spawn(['sleep', '60']);
    await killed.running;
    await killed.sendSignal('SIGKILL');
    expect(await killed.exited).toEqual({ exitCode: null, signal: 'SIGKILL' });
  });

  it('writes what a remote process prints to a log file on the controller', async () => {
    const log = join(dir, 'remote.log');
    const p = host!.spawn(['sh', '-c', 'echo one; echo two >&2; echo three'], { logFile: log });
    await p.exited;
    // stdout and stderr are two streams: their lines may reach the file in either order.
    const lines = () => readFileSync(log, 'utf8').split('\n').filter(Boolean).sort();
    await pollUntil('the log to be flushed', async () => (lines().length === 3 ? true : undefined), { timeoutMs: 2000, intervalMs: 20 }).catch(() => undefined);
    expect(lines()).toEqual(['one', 'three', 'two']);
    expect(statSync(log).mode & 0o777).toBe(0o600);
  });

  it('tells the owner when the controller-side log cannot be written, and the process goes on', async () => {
    let logError: Error | undefined;
    const p = host!.spawn(['echo', 'fine'], { logFile: join(dir, 'no-such-dir', 'x.log'), onLogError: (e) => (logError = e) });
    expect(await p.exited).toEqual({ exitCode: 0, signal: null });
    expect(logError?.message).toMatch(/ENOENT/);
  });
});

describe('SshHost sockets and files', () => {
  let server: Server;
  let sock: string;
  beforeAll(async () => {
    sock = join(dir, 'echo.sock');
    server = createServer((s) => s.pipe(s));
    await new Promise<void>((resolve) => server.listen(sock, resolve));
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('reaches a unix socket of the host over the SSH connection', async () => {
    const s = await host!.connectUnix(sock);
    const echoed = new Promise<string>((resolve) => s.once('data', (d: Buffer) => resolve(d.toString())));
    s.write('over ssh');
    expect(await echoed).toBe('over ssh');
    s.destroy();
  });

  it('says ENOENT for a socket not there yet and ECONNREFUSED for one nobody accepts on, as a local connect would', async () => {
    await expect(host!.connectUnix(join(dir, 'not-yet.sock'))).rejects.toMatchObject({ code: 'ENOENT' });
    const stale = join(dir, 'stale.sock');
    writeFileSync(stale, '');
    await expect(host!.connectUnix(stale)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('makes private temp dirs, reads text exactly, removes trees', async () => {
    const d = await host!.makeTempDir(join(dir, 'run', 'sock'), 'g0-src-');
    expect(d.startsWith(join(dir, 'run', 'sock', 'g0-src-'))).toBe(true);
    expect(statSync(d).mode & 0o777).toBe(0o700);
    writeFileSync(join(d, 'f.txt'), "it's\n\ntwo lines\n");
    expect(await host!.readText(join(d, 'f.txt'))).toBe("it's\n\ntwo lines\n");
    expect(await host!.readText(join(d, 'missing.txt'))).toBeUndefined();
    await host!.remove(d);
    expect(existsSync(d)).toBe(false);
    await expect(host!.remove(d)).resolves.toBeUndefined();
  });

  it('puts a file with its mode, and skips it when the same bytes are there', async () => {
    const src = join(dir, 'tool');
    writeFileSync(src, '#!/bin/sh\necho hi\n');
    chmodSync(src, 0o750);
    const dst = join(dir, 'put', 'deep', 'tool');
    expect(await host!.putFile(src, dst)).toBe(true);
    expect(readFileSync(dst, 'utf8')).toBe('#!/bin/sh\necho hi\n');
    expect(statSync(dst).mode & 0o777).toBe(0o750);
    expect(await host!.putFile(src, dst)).toBe(false);
    writeFileSync(src, '#!/bin/sh\necho changed\n');
    expect(await host!.putFile(src, dst)).toBe(true);
    expect(readFileSync(dst, 'utf8')).toContain('changed');
  });
});

describe('SshHost through a proxy', () => {
  it('carries the connection over the proxy argv, and stops the proxy when the connection closes', async () => {
    const proxied = await SshHost.connect({ ...target, proxy: ['socat', '-', `TCP:127.0.0.1:${target.port}`] }, { timeoutMs: 10000 });
    try {
      expect((await proxied.run(['echo', 'via proxy'])).stdout).toBe('via proxy');
    } finally {
      proxied.close();
    }
    await pollUntil(
      'the proxy to stop',
      async () => ((await execa('pgrep', ['-f', `^socat - TCP:127.0.0.1:${target.port}$`], { reject: false })).exitCode === 1 ? true : undefined),
      { timeoutMs: 5000, intervalMs: 50 },
    );
  });

  it('names the proxy when it cannot carry the connection', async () => {
    const err = await SshHost.connect({ ...target, proxy: ['sh', '-c', 'echo no route to the host >&2; exit 1'] }, { timeoutMs: 5000 }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/through `sh -c/);
  });
});
