// SshHost against a real sshd started for this test on 127.0.0.1 (loopback only), with a fresh
// host key and client key in a temp dir: commands with awkward arguments arrive intact, exit codes
// and stderr come back, and a long-lived process is stopped by its remote pid.
import { execa } from 'execa';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { SshHost } from '../../src/host/ssh.js';
import { CommandError } from '../../src/host/local.js';
import { pollUntil } from '../../src/util/deadline.js';

const dir = mkdtempSync(join(tmpdir(), 'miglab-ssh-'));
let sshd: ReturnType<typeof execa> | undefined;
let host: SshHost | undefined;

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
  ].join('\n');
  writeFileSync(join(dir, 'sshd_config'), config + '\n');
  sshd = execa('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], { reject: false });
  host = await pollUntil(
    'sshd to accept a connection',
    () => SshHost.connect({ host: '127.0.0.1', port, username: 'root', privateKeyPath: join(dir, 'client_key') }, { timeoutMs: 2000 }).catch(() => undefined),
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
