// The SSH test hosts (src/lab/ssh-hosts.ts) are what `--hosts` tests take for real machines:
// reached only through their proxy, each is root in its own lab namespace with a /tmp and /run of
// its own (the controller's lab state invisible), has the lab's bridge, forwards a unix socket
// over the connection, and stopping them leaves none of their processes behind.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ClientChannel } from 'ssh2';
import { parse } from 'yaml';
import { shellCommand } from '../../src/host/shell-quote.js';
import { isOwnedAlive } from '../../src/lab/proc.js';
import { HOST_ROLES, type HostRole } from '../../src/lab/spec.js';
import { pollUntil, withDeadline } from '../../src/util/deadline.js';
import { connectThroughProxy, hiddenFromHosts, hostProcesses, type ProxiedSsh } from '../../src/lab/ssh-hosts.js';
import { useSshHosts } from '../support/ssh-hosts.js';

// Its own lab: SSH test hosts (sshd in the lab's namespaces) with a different export directory.
const PREFIX = 'mlssh';
const fx = useSshHosts(PREFIX);
const conns = new Map<HostRole, ProxiedSsh>();
const WAIT = { timeoutMs: 10_000 };
// Each test's limit, above the waits inside it: a failing wait reports itself.
const TEST_MS = 30_000;

/** The hosts file as the fixture wrote it (src/hosts/file.ts's format). */
interface HostsFile {
  hosts: Record<HostRole, { address: string; user: string; port: number; key: string; hostKey: string; proxy: string[] }>;
  bridge: string;
  storage: { nfs: string; server: HostRole; dir: string };
}
let file: HostsFile;

// Connected the way the hosts file says: its proxy, user, key and host key.
beforeAll(async () => {
  file = parse(readFileSync(fx.ssh.hostsFile, 'utf8')) as HostsFile;
  for (const role of HOST_ROLES) {
    const h = file.hosts[role];
    conns.set(role, await connectThroughProxy({ role, proxy: h.proxy, user: h.user, keyPath: h.key, hostKeySha256: h.hostKey }, WAIT));
  }
}, 30_000);
afterAll(async () => {
  for (const c of conns.values()) await c.close();
});

function exec(role: HostRole, argv: readonly string[], attach: (ch: ClientChannel) => void = () => undefined): Promise<ClientChannel> {
  const { client } = conns.get(role)!;
  return new Promise((resolve, reject) =>
    client.exec(shellCommand(argv), (err, ch) => {
      if (err) return reject(err);
      // Inside ssh2's callback: a quick command's whole answer may be parsed in the same tick (the race SshHost.exec avoids).
      attach(ch);
      resolve(ch);
    }),
  );
}

async function sh(role: HostRole, argv: readonly string[]): Promise<{ code: number | null; stdout: string }> {
  let stdout = '';
  let exited!: Promise<number | null>;
  let closed!: Promise<unknown>;
  await exec(role, argv, (ch) => {
    ch.on('data', (d: Buffer) => (stdout += d.toString()));
    ch.stderr.resume();
    exited = new Promise<number | null>((resolve) => ch.once('exit', (c: number | null) => resolve(c)));
    closed = new Promise((resolve) => ch.once('close', resolve));
  });
  const code = await withDeadline(`${argv.join(' ')} on ${role}`, exited, WAIT);
  await withDeadline(`${argv.join(' ')} on ${role} to close`, closed, WAIT);
  return { code, stdout: stdout.trim() };
}

describe('SSH test hosts', () => {
  it('are root in their own lab namespace, sshd listening on loopback only', async () => {
    for (const role of HOST_ROLES) {
      expect(await sh(role, ['id', '-u'])).toEqual({ code: 0, stdout: '0' });
      const addrs = (await sh(role, ['ip', '-o', '-4', 'addr', 'show'])).stdout;
      for (const other of HOST_ROLES) {
        const has = addrs.includes(` ${file.hosts[other].address}/`);
        expect([other, has]).toEqual([other, other === role]);
      }
      const sshListeners = (await sh(role, ['ss', '-Hltn', 'sport', '=', `:${fx.ssh.hosts[role].port}`])).stdout.split('\n').map((l) => l.trim().split(/\s+/)[3]);
      expect(sshListeners).toEqual([`127.0.0.1:${fx.ssh.hosts[role].port}`]);
    }
  }, TEST_MS);

  it('each have a /tmp and /run of their own: no controller state, no other host files', async () => {
    const file = `/tmp/miglab-ssh-hosts-${randomBytes(4).toString('hex')}`;
    expect((await sh('src', ['sh', '-c', 'echo on-src > "$1"', 'sh', file])).code).toBe(0);
    expect(await sh('src', ['cat', file])).toEqual({ code: 0, stdout: 'on-src' });
    expect((await sh('dst', ['test', '-e', file])).code).not.toBe(0);
    expect(existsSync(file)).toBe(false);
    expect(await sh('client', ['ls', '-A', '/tmp'])).toEqual({ code: 0, stdout: '' });
    // The lab's state is in /run/miglab on the controller; no host sees it.
    expect(existsSync(fx.lab.paths.labDir)).toBe(true);
    for (const role of HOST_ROLES) expect((await sh(role, ['test', '-e', '/run/miglab'])).code).not.toBe(0);
    // Nor the miglab checkout (the controller's image and probe tool) or root's home.
    for (const dir of hiddenFromHosts()) expect([dir, (await sh('src', ['ls', '-A', dir])).stdout]).toEqual([dir, '']);
  }, TEST_MS);

  it('src and dst have the bridge guests join, and src the NFS export, as the hosts file says', async () => {
    for (const role of ['src', 'dst'] as const) expect((await sh(role, ['ip', 'link', 'show', 'dev', file.bridge])).code).toBe(0);
    // The export is a directory on the server host, which the URL names by its address.
    const { nfs, server, dir } = file.storage;
    expect(nfs).toBe(`nfs://${file.hosts[server].address}${dir}`);
    const marker = `marker-${randomBytes(4).toString('hex')}`;
    writeFileSync(join(fx.lab.nfs.exportDir, marker), 'x');
    expect((await sh(server, ['test', '-f', join(dir, marker)])).code).toBe(0);
  }, TEST_MS);

  it('forward a unix socket of the host over the connection', async () => {
    const dir = `/run/${PREFIX}-it`;
    const socket = `${dir}/echo.sock`;
    // An echo server on src's own /run, ended by the test's connection closing.
    const server = await exec('src', ['sh', '-c', 'mkdir -p "$1" && exec socat "UNIX-LISTEN:$2" PIPE', 'sh', dir, socket]);
    // Its output read, or the channel never gets to 'close'.
    server.resume();
    server.stderr.resume();
    const { client } = conns.get('src')!;
    const stream = await pollUntil(
      `${socket} on src`,
      () => new Promise<ClientChannel | undefined>((resolve) => client.openssh_forwardOutStreamLocal(socket, (err, ch) => resolve(err ? undefined : ch))),
      { ...WAIT, intervalMs: 50 },
    );
    expect(existsSync(socket)).toBe(false);
    const echoed = new Promise<string>((resolve) => stream.once('data', (d: Buffer) => resolve(d.toString())));
    stream.write('hello over ssh');
    expect(await withDeadline('the echo', echoed, WAIT)).toBe('hello over ssh');
    stream.end();
    await withDeadline('the echo server to end', new Promise((resolve) => server.once('close', resolve)), WAIT);
  }, TEST_MS);

  it('stop with every process they ran', async () => {
    // A command still running on dst when the hosts stop, as QEMU would be.
    // Each host has a PID namespace of its own: the sleeper is found here by its command line, among the host's processes.
    await exec('dst', ['sh', '-c', 'exec sleep 600.5']);
    const isSleeper = (pid: number) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8') === 'sleep\u0000600.5\u0000';
      } catch {
        return false;
      }
    };
    const sleeper = await pollUntil('the sleeper on dst', async () => hostProcesses(fx.ssh.hosts.dst).find((p) => isSleeper(p.pid)), { ...WAIT, intervalMs: 50 });
    const hosts = Object.values(fx.ssh.hosts);
    // Not seen from another host: src's /proc is its own.
    expect(await sh('src', ['pgrep', '-f', '^sleep 600.5$'])).toEqual({ code: 1, stdout: '' });
    expect((await sh('dst', ['pgrep', '-f', '^sleep 600.5$'])).code).toBe(0);
    await fx.ssh.stop({ timeoutMs: 15_000 });
    for (const h of hosts) {
      expect(hostProcesses(h)).toEqual([]);
      expect(isOwnedAlive(h.sshd)).toBe(false);
    }
    expect(isOwnedAlive(sleeper)).toBe(false);
    // Their connections are gone with them; the proxies exit.
    for (const c of conns.values()) await c.close();
  }, TEST_MS);
});
