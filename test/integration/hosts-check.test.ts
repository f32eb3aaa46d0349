// `hosts check` against real SSH servers: an sshd in the src and in the dst namespace of an
// embedded lab, reached only through a proxy argv (`ip netns exec NS socat STDIO TCP:...`), as a
// user's two machines would be over the network. The lab's br0 is the bridge, its NFS export the
// shared storage, its dst address the migration address. Everything a real machine would answer
// is answered for real (QEMU, /dev/kvm, ip, qemu-img over nfs://, a QEMU -incoming listener, the
// clocks); afterwards nothing the check made is left in either namespace or in the export.
import { execa, type ResultPromise } from 'execa';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkHosts } from '../../src/hosts/check.js';
import { parseHostsText, type HostsSpec } from '../../src/hosts/file.js';
import { guestIp } from '../../src/lab/spec.js';
import { pollUntil } from '../../src/util/deadline.js';
import { useTestLab } from '../support/lab-fixture.js';

const PREFIX = 'mlhchk';
const PORT = 4444;
const fx = useTestLab(PREFIX);
const dir = mkdtempSync(join(tmpdir(), 'miglab-hosts-check-'));
const sshds: ResultPromise[] = [];
let spec: HostsSpec;

const inNs = (ns: string, argv: string[]) => execa('ip', ['netns', 'exec', ns, ...argv], { reject: false });

/** sshd in `ns`, on the namespace's own loopback, with the test's host and client keys. */
async function startSshd(ns: string): Promise<void> {
  const config = join(dir, `sshd-${ns}.conf`);
  writeFileSync(
    config,
    [
      'ListenAddress 127.0.0.1:22',
      `HostKey ${join(dir, 'host_key')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PidFile none',
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'UsePAM no',
      'StrictModes no',
      '',
    ].join('\n'),
  );
  sshds.push(execa('ip', ['netns', 'exec', ns, '/usr/sbin/sshd', '-D', '-e', '-f', config], { reject: false }));
  await pollUntil('sshd listening in ' + ns, async () => ((await inNs(ns, ['ss', '-Htln', 'sport = :22'])).stdout.trim() ? true : undefined), { timeoutMs: 10_000, intervalMs: 100 });
}

function hostsFile(lab: typeof fx.lab, bridge: string): string {
  const host = (role: 'src' | 'dst') => {
    const h = lab.hosts[role];
    const proxy = JSON.stringify(['ip', 'netns', 'exec', h.netns, 'socat', 'STDIO', 'TCP:127.0.0.1:22']);
    return `  ${role}: { address: ${h.ip}, user: root, key: ${join(dir, 'client_key')}, proxy: ${proxy} }`;
  };
  return [
    'hosts:',
    host('src'),
    host('dst'),
    `bridge: ${bridge}`,
    `guests: { addresses: ${guestIp(lab.spec, 0)}-${guestIp(lab.spec, 9)}, prefixLength: 24 }`,
    `storage: { nfs: "nfs://${lab.nfs.serverIp}${lab.nfs.exportDir}", server: src, dir: ${lab.nfs.exportDir} }`,
    '',
  ].join('\n');
}

beforeAll(async () => {
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'client_key')]);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')));
  await startSshd(fx.lab.hosts.src.netns);
  await startSshd(fx.lab.hosts.dst.netns);
  spec = parseHostsText(hostsFile(fx.lab, 'br0'), 'hosts.yaml');
}, 60_000);

afterAll(async () => {
  for (const p of sshds) p.kill('SIGTERM');
  await Promise.all(sshds);
  rmSync(dir, { recursive: true, force: true });
});

/** What a check could leave: trial taps, probe disks, a listener on the port. */
async function leftovers(): Promise<string[]> {
  const found: string[] = [];
  for (const role of ['src', 'dst'] as const) {
    const ns = fx.lab.hosts[role].netns;
    const links = JSON.parse((await inNs(ns, ['ip', '-j', 'link', 'show'])).stdout) as Array<{ ifname: string }>;
    found.push(...links.filter((l) => l.ifname.startsWith('mlchk')).map((l) => `tap ${l.ifname} in ${ns}`));
    if ((await inNs(ns, ['ss', '-Htln', `sport = :${PORT}`])).stdout.trim()) found.push(`a listener on ${PORT} in ${ns}`);
  }
  found.push(...readdirSync(fx.lab.nfs.exportDir).filter((f) => f.startsWith('miglab-check-')));
  return found;
}

describe('hosts check over SSH', () => {
  it('finds the lab hosts ready for a run, says TCG plainly, and leaves nothing behind', async () => {
    const report = await checkHosts(spec, { port: PORT, timeoutMs: 15_000 });
    const line = (name: string) => report.checks.find((c) => c.name === name);
    const problems = report.checks.filter((c) => c.status === 'fail');
    expect(problems).toEqual([]);
    expect(report.canRun).toBe(true);
    expect(line('src ssh')!.found).toMatch(new RegExp(`^root@${fx.lab.hosts.src.ip.replace(/\./g, '\\.')}:22 \\(through ip netns exec .*\\) answered in \\d+ ms$`));
    expect(line('client ssh')!.found).toBe('the same login on the same machine as src: one connection');
    for (const role of ['src', 'dst']) {
      expect(line(`${role} root`)!.status).toBe('ok');
      expect(line(`${role} bridge`)).toMatchObject({ status: 'ok', found: 'br0 is up; a tap joined it and was removed' });
      expect(line(`${role} storage`)!.status).toBe('ok');
      // KVM is unusable on this machine: the check says so, as a warning with TCG named.
      expect(line(`${role} kvm`)!.status === 'ok' || /TCG/.test(line(`${role} kvm`)!.found)).toBe(true);
    }
    expect(line('qemu src/dst')!.status).toBe('ok');
    expect(line('src->dst port')).toMatchObject({ status: 'ok' });
    // One clock seen through two namespaces: the offset found is zero within its own bound.
    const clock = /dst's clock is ([\d.]+) ms .* \(± ([\d.]+) ms/.exec(line('clock')!.found)!;
    expect(Number(clock[1])).toBeLessThanOrEqual(Number(clock[2]) + 0.1);
    expect(await leftovers()).toEqual([]);
  }, 120_000);

  it('names a bridge that is not there and a migration port already taken', async () => {
    const dstNs = fx.lab.hosts.dst.netns;
    const holder = execa('ip', ['netns', 'exec', dstNs, 'socat', `TCP-LISTEN:${PORT},bind=127.0.0.1,reuseaddr`, 'OPEN:/dev/null'], { reject: false });
    try {
      await pollUntil('the port holder', async () => ((await inNs(dstNs, ['ss', '-Htln', `sport = :${PORT}`])).stdout.trim() ? true : undefined), { timeoutMs: 10_000, intervalMs: 100 });
      const report = await checkHosts(parseHostsText(hostsFile(fx.lab, 'br9'), 'hosts.yaml'), { port: PORT, timeoutMs: 15_000 });
      const line = (name: string) => report.checks.find((c) => c.name === name);
      expect(report.canRun).toBe(false);
      expect(line('src bridge')).toMatchObject({ status: 'fail', found: 'no bridge br9 (bridges here: br0)' });
      expect(line('dst port')).toMatchObject({ status: 'fail', found: `something listens on port ${PORT} on dst already` });
      expect(line('dst port')!.fix).toContain(`ss -tlnp 'sport = :${PORT}'`);
    } finally {
      holder.kill('SIGTERM');
      await holder;
    }
    expect(await leftovers()).toEqual([]);
  }, 120_000);
});
