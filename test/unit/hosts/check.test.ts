// `miglab hosts check` against fake machines described by what they answer: each problem a person
// could have (no root, another QEMU, no bridge, a port taken, an export not reachable, clocks
// apart, a host that does not answer) comes out as its own line with the fix, the exit status
// follows the doctor's, and nothing the check made (taps, the probe disk, the listener) is left.
import { describe, expect, it } from '@jest/globals';
import { doctorExit, EXIT } from '../../../src/cli/exit.js';
import { formatDoctor } from '../../../src/doctor/checks.js';
import { checkHosts, type HostsCheckOptions } from '../../../src/hosts/check.js';
import { parseMachineTypes } from '../../../src/qemu/machine-types.js';
import { parseHostsText, type HostsSpec } from '../../../src/hosts/file.js';
import type { SshTarget } from '../../../src/host/ssh.js';
import { FakeHost, type RunAnswer } from '../../support/fake-host.js';

const PORT = 4567;

interface Machine {
  uid: string;
  capEff: string;
  qemu: string;
  pcIs: string;
  kvm: boolean;
  /** Whether QEMU can use the /dev/kvm that opens. */
  kvmWorks: boolean;
  cpuFlags: string;
  bridges: Array<{ ifname: string; flags: string[] }>;
  /** Ports something else listens on. */
  listening: number[];
  clockAheadMs: number;
  /** Whether qemu-img opens the nfs:// URL from here. */
  nfsOpens: boolean;
  /** Whether a connection from here to dst's migration port gets through (the answer of the trial connect). */
  connect: 'ok' | 'refused' | 'dropped';
  /** Older versioned machine types this QEMU also lists. */
  olderTypes?: string[];
}

const good = (over: Partial<Machine> = {}): Machine => ({
  uid: '0',
  capEff: '000001ffffffffff',
  qemu: '7.2.22',
  pcIs: 'pc-i440fx-7.2',
  kvm: false,
  kvmWorks: true,
  cpuFlags: 'fpu vme sse sse2',
  bridges: [{ ifname: 'br0', flags: ['BROADCAST', 'UP'] }],
  listening: [22],
  clockAheadMs: 0,
  nfsOpens: true,
  connect: 'ok',
  ...over,
});

let machines = 0;

/** A fake machine, with what the check leaves on it: taps and files it made and has not removed. */
function fakeMachine(m: Machine) {
  const taps = new Set<string>();
  const files = new Set<string>();
  const host: FakeHost = new FakeHost(`fake-${++machines}`, {
    run: (argv): RunAnswer | undefined => {
      const cmd = argv.join(' ');
      if (cmd === 'id -u') return { stdout: m.uid };
      if (cmd === 'id -un') return { stdout: 'alice' };
      if (cmd === 'cat /proc/self/status') return { stdout: `Name:\tcat\nCapEff:\t${m.capEff}\n` };
      if (cmd === 'qemu-system-x86_64 --version') return { stdout: `QEMU emulator version ${m.qemu} (Debian)\nCopyright` };
      if (cmd === 'qemu-system-x86_64 -machine help') {
        const older = (m.olderTypes ?? []).map((t) => `${t}        Standard PC\n`).join('');
        return { stdout: `Supported machines are:\npc                   Standard PC (alias of ${m.pcIs})\n${m.pcIs}        Standard PC (default)\n${older}isapc                ISA-only PC\nnone                 empty machine` };
      }
      if (cmd === 'sh -c exec 3<>/dev/kvm') return m.kvm ? {} : { exitCode: 2, stderr: 'sh: 1: cannot open /dev/kvm: No such file' };
      if (argv[0] === 'qemu-system-x86_64' && argv[2] === 'kvm') return m.kvmWorks ? {} : { exitCode: 1, stderr: 'kvm version too old\nqemu-system-x86_64: -accel kvm: failed to initialize kvm: Inappropriate ioctl for device' };
      if (cmd === 'cat /proc/cpuinfo') return { stdout: `processor\t: 0\nflags\t\t: ${m.cpuFlags}\n` };
      if (cmd === 'ip -j link show type bridge') return { stdout: JSON.stringify(m.bridges) };
      if (argv[0] === 'ip' && argv[1] === 'tuntap') taps.add(argv[4]!);
      if (argv[0] === 'ip' && argv.slice(1, 3).join(' ') === 'link del') taps.delete(argv[4]!);
      if (argv[0] === 'qemu-img' && argv[1] === 'create') files.add(argv.at(-2)!);
      if (argv[0] === 'rm') files.delete(argv.at(-1)!);
      if (argv[0] === 'qemu-img' && argv[1] === 'info') return m.nfsOpens ? { stdout: 'file format: qcow2' } : { exitCode: 1, stderr: "qemu-img: Could not open 'nfs://x': Failed to mount nfs share: RPC error" };
      if (cmd === 'ss -Htln') {
        const listener = host.spawned.some((p) => !p.hasExited);
        return { stdout: [...m.listening, ...(listener ? [PORT] : [])].map((p) => `LISTEN 0 1 0.0.0.0:${p} 0.0.0.0:*`).join('\n') };
      }
      if (argv[0] === 'timeout') return m.connect === 'ok' ? {} : m.connect === 'dropped' ? { exitCode: 124 } : { exitCode: 1, stderr: `bash: connect: Connection refused` };
      return undefined;
    },
    converse: () => () => String(BigInt(Date.now() + m.clockAheadMs) * 1_000_000n),
  });
  return { host, taps, files };
}

const SPEC = `
hosts:
  src: { address: 10.0.0.1, agent: true }
  dst: { address: 10.0.0.2, agent: true }
bridge: br0
guests: { addresses: 10.0.0.100-10.0.0.120 }
storage: { nfs: "nfs://10.0.0.1/srv/m", server: src }
`;
const spec: HostsSpec = parseHostsText(SPEC, 'h.yaml', { env: { SSH_AUTH_SOCK: '/agent' }, homeDir: '/nonexistent' });

/** Check two fake machines (dst's connection may fail); returns the report and what each machine was left with. */
async function check(src: Machine, dst: Machine | Error, opts: Partial<HostsCheckOptions> = {}) {
  const s = fakeMachine(src);
  const d = dst instanceof Error ? undefined : fakeMachine(dst);
  const closed: string[] = [];
  const connect = async (t: SshTarget) => {
    const m = t.host === '10.0.0.1' ? s : d;
    if (!m) throw dst;
    return Object.assign(m.host, { close: () => closed.push(t.host) });
  };
  const report = await checkHosts(spec, { port: PORT, timeoutMs: 1000, clockReadings: 2, connect, ...opts });
  return { report, s, d, closed, line: (name: string) => report.checks.find((c) => c.name === name) };
}

describe('hosts check', () => {
  it('passes two alike machines under TCG, says TCG plainly, and leaves nothing on them', async () => {
    const { report, s, d, closed, line } = await check(good(), good());
    expect(report.canRun).toBe(true);
    expect(doctorExit(report)).toBe(EXIT.done);
    expect(report.checks.map((c) => c.name)).toEqual([
      'src ssh',
      'client ssh',
      'dst ssh',
      ...['src', 'dst'].flatMap((r) => ['root', 'qemu', 'qemu nfs', 'kvm', 'bridge'].map((c) => `${r} ${c}`)),
      'qemu src/dst',
      'cpu flags',
      'src storage',
      'dst storage',
      'dst port',
      'src->dst port',
      'clock',
    ]);
    expect(line('client ssh')!.found).toBe('the same login on the same machine as src: one connection');
    expect(line('src kvm')).toMatchObject({ status: 'warn', found: expect.stringContaining('guests run under TCG here') });
    expect(line('cpu flags')!.found).toMatch(/^not compared: with no KVM/);
    expect(line('qemu src/dst')!.found).toContain('the same QEMU on both (QEMU emulator version 7.2.22 (Debian)), the same 4 machine types (-machine pc is pc-i440fx-7.2)');
    expect(line('src storage')!.found).toMatch(/^qemu-img opened nfs:\/\/10\.0\.0\.1\/srv\/m\/miglab-check-[0-9a-f]+\.qcow2 \(made in \/srv\/m on src\)$/);
    expect(line('clock')!.found).toMatch(/^dst's clock is [\d.]+ ms (ahead of|behind) src's \(± [\d.]+ ms, best of 2 readings each\)/);
    // Nothing left: the trial taps, the probe disk, the listener (stopped by its pid); both connections ended.
    expect([...s.taps, ...d!.taps, ...s.files]).toEqual([]);
    expect(s.host.ran.some((a) => a[0] === 'qemu-img' && a[1] === 'create')).toBe(true);
    expect(d!.host.spawned).toHaveLength(1);
    expect(d!.host.spawned[0]!.argv).toEqual(['qemu-system-x86_64', '-machine', 'none', '-nodefaults', '-display', 'none', '-incoming', `tcp:10.0.0.2:${PORT}`]);
    expect(d!.host.spawned[0]!.hasExited).toBe(true);
    expect(closed.sort()).toEqual(['10.0.0.1', '10.0.0.2']);
    // The connection test gets the address and port as arguments, not in its script.
    expect(s.host.ran.find((a) => a[0] === 'timeout')!.slice(-2)).toEqual(['10.0.0.2', String(PORT)]);
  });

  it('says plainly that dst has no kernel NFS server to serve with, and exports nothing', async () => {
    const served = parseHostsText(SPEC.replace(/^storage: .*$/m, 'storage: { serve: kernel, server: dst, dir: /srv/served }'), 'h.yaml', { env: { SSH_AUTH_SOCK: '/agent' }, homeDir: '/nonexistent' });
    const [s, d] = [fakeMachine(good()), fakeMachine(good())];
    d.host.which = async (p: string) => (p === 'exportfs' ? undefined : `/usr/bin/${p}`);
    const connect = async (t: SshTarget) => Object.assign((t.host === '10.0.0.1' ? s : d).host, { close: () => undefined });
    const report = await checkHosts(served, { port: PORT, timeoutMs: 1000, clockReadings: 2, connect });
    expect(report.checks.find((c) => c.name === 'dst nfs serve')).toMatchObject({
      status: 'fail',
      found: 'no kernel NFS server on dst: exportfs is missing',
      fix: expect.stringContaining('use serve: ganesha'),
      code: 'MISSING_DEPENDENCY',
    });
    // Nothing was tried through an export that is not there.
    expect(report.checks.find((c) => c.name.endsWith(' storage'))).toBeUndefined();
    expect([...s.host.ran, ...d.host.ran].filter((a) => a[0] === 'exportfs' || a[0] === 'qemu-img' || a.includes('/srv/served'))).toEqual([]);
  });

  it("warns, not fails, when the releases differ but the newer knows the older's pc: runs pin that type", async () => {
    const { line } = await check(good(), good({ pcIs: 'pc-i440fx-8.2', qemu: '8.2.2', olderTypes: ['pc-i440fx-7.2'] }));
    expect(line('qemu src/dst')).toMatchObject({ status: 'warn', found: expect.stringMatching(/pc-i440fx-7\.2 on src and pc-i440fx-8\.2 on dst, so runs pin the older one's \(--machine-type auto: pc-i440fx-7\.2, which both know\)$/) });
  });

  it('names every problem with its fix, and exits as the doctor does', async () => {
    const { report, s, d, line } = await check(good({ uid: '1000', capEff: '0000000000000000' }), good({ pcIs: 'pc-i440fx-8.2', qemu: '8.2.2', bridges: [{ ifname: 'virbr0', flags: ['UP'] }], listening: [22, PORT], nfsOpens: false }));
    expect(report.canRun).toBe(false);
    // The first failure decides, as in the doctor: not root.
    expect(doctorExit(report)).toBe(EXIT.notRoot);
    expect(line('src root')).toMatchObject({ status: 'fail', found: 'logged in as alice (uid 1000): not root and without CAP_NET_ADMIN, so no tap can join the bridge and QEMU cannot open one', fix: expect.stringContaining('user: root for src') });
    expect(line('qemu src/dst')).toMatchObject({ status: 'fail', found: "-machine pc is pc-i440fx-7.2 on src and pc-i440fx-8.2 on dst, and neither QEMU knows the other's: no machine type both can run" });
    expect(line('qemu src/dst')!.fix).toContain('install the same QEMU release on both');
    expect(line('dst bridge')).toMatchObject({ status: 'fail', found: 'no bridge br0 (bridges here: virbr0)', fix: expect.stringContaining('ip link add br0 type bridge') });
    expect(line('dst storage')).toMatchObject({ status: 'fail', fix: expect.stringContaining('export /srv/m to dst') });
    expect(line('dst port')).toMatchObject({ status: 'fail', found: `something listens on port ${PORT} on dst already` });
    // With the port taken there is nothing to try: no listener was started.
    expect(line('src->dst port')).toBeUndefined();
    expect(d!.host.spawned).toHaveLength(0);
    expect([...s.files, ...d!.taps]).toEqual([]);
    const text = formatDoctor(report);
    for (const c of report.checks.filter((c) => c.status !== 'ok')) expect(text).toContain(`${c.found}; fix: ${c.fix}`);
    expect(text.split('\n').at(-1)).toBe(`a run cannot go: ${report.checks.filter((c) => c.status === 'fail').length} checks failed (the fix is on each line)`);
  });

  it('compares CPU flags when both have KVM, naming the ones that differ', async () => {
    const { line } = await check(good({ kvm: true, cpuFlags: 'fpu sse avx2 avx512f' }), good({ kvm: true, cpuFlags: 'fpu sse avx2 sha_ni' }));
    expect(line('src kvm')!.status).toBe('ok');
    expect(line('cpu flags')).toMatchObject({ status: 'warn', found: 'the CPUs differ: only src has avx512f; only dst has sha_ni; a guest given -cpu host may use what dst lacks', fix: expect.stringContaining('--cpu MODEL') });
  });

  it('tells a /dev/kvm QEMU cannot use from a KVM it can', async () => {
    const { line } = await check(good({ kvm: true, kvmWorks: false }), good({ kvm: true }));
    expect(line('src kvm')).toMatchObject({ status: 'warn', found: '/dev/kvm opens, but QEMU cannot use it (-accel kvm: failed to initialize kvm: Inappropriate ioctl for device): guests run under TCG here (slower; migration works the same)' });
    expect(line('dst kvm')!.status).toBe('ok');
    expect(line('cpu flags')!.found).toMatch(/^not compared: with KVM on dst only/);
  });

  it('tells a dropped connection from a refused one', async () => {
    const dropped = await check(good({ connect: 'dropped' }), good());
    expect(dropped.line('src->dst port')).toMatchObject({ status: 'fail', found: expect.stringContaining('got no answer in 5 s (a firewall drops it, or no route)'), fix: expect.stringContaining(`tcp dport ${PORT} accept`) });
    const refused = await check(good({ connect: 'refused' }), good());
    expect(refused.line('src->dst port')!.found).toBe(`src cannot connect to 10.0.0.2:${PORT}: Connection refused`);
  });

  it('warns of clocks more than a second apart', async () => {
    const { line } = await check(good(), good({ clockAheadMs: 5000 }));
    expect(line('clock')).toMatchObject({ status: 'warn', found: expect.stringMatching(/^dst's clock is 5\d{3}\.\d ms ahead of src's/), fix: expect.stringContaining('timedatectl set-ntp true') });
  });

  it('points at the proxy when a connection through one never reached SSH', async () => {
    const proxied = parseHostsText(SPEC.replace('dst: { address: 10.0.0.2, agent: true }', 'dst: { address: 10.0.0.2, agent: true, proxy: [ipx, netns, exec, d, socat, STDIO, "TCP:127.0.0.1:22"] }'), 'h.yaml', { env: { SSH_AUTH_SOCK: '/agent' }, homeDir: '/nonexistent' });
    const s = fakeMachine(good());
    const connect = async (t: SshTarget) => {
      if (t.host === '10.0.0.2') throw new Error('spawn ipx ENOENT');
      return Object.assign(s.host, { close: () => undefined });
    };
    const report = await checkHosts(proxied, { port: PORT, timeoutMs: 1000, clockReadings: 2, connect });
    expect(report.checks.find((c) => c.name === 'dst ssh')!.fix).toBe("check the proxy command: it must carry the connection to sshd on its stdin/stdout; try it: ssh -o ProxyCommand='ipx netns exec d socat STDIO TCP:127.0.0.1:22' -p 22 root@10.0.0.2 true");
  });

  it('reports a host that does not answer and checks the rest', async () => {
    const { report, line, closed } = await check(good(), new Error('connect ECONNREFUSED'));
    expect(line('dst ssh')).toMatchObject({ status: 'fail', found: 'cannot log in to root@10.0.0.2:22: connect ECONNREFUSED', fix: 'check the address and that sshd runs there and lets you in: ssh -p 22 root@10.0.0.2 true' });
    expect(doctorExit(report)).toBe(EXIT.failed);
    expect(report.checks.filter((c) => c.name.startsWith('dst ') && c.name !== 'dst ssh')).toEqual([]);
    expect(line('src bridge')!.status).toBe('ok');
    expect(line('src storage')!.status).toBe('ok');
    expect(line('clock')).toBeUndefined();
    expect(closed).toEqual(['10.0.0.1']);
  });

  it('says once that a machine playing two roles does not answer', async () => {
    const { report } = await check(good(), good(), { connect: async () => Promise.reject(new Error('cannot connect to root@10.0.0.1:22 over SSH: All configured authentication methods failed')) });
    expect(report.checks).toEqual([
      { name: 'src ssh', status: 'fail', found: 'cannot connect to root@10.0.0.1:22 over SSH: All configured authentication methods failed (the client host too)', fix: expect.stringContaining('add your key to the agent (ssh-add)'), code: 'COMMAND_FAILED' },
      expect.objectContaining({ name: 'dst ssh', status: 'fail' }),
    ]);
  });
});

describe('parseMachineTypes', () => {
  it('reads names and what an alias stands for', () => {
    const m = parseMachineTypes('Supported machines are:\nmicrovm              microvm (i386)\npc                   Standard PC (i440FX + PIIX, 1996) (alias of pc-i440fx-7.2)\npc-i440fx-7.2        Standard PC (i440FX + PIIX, 1996) (default)\n');
    expect(m.names).toEqual(['microvm', 'pc', 'pc-i440fx-7.2']);
    expect(m.aliases.get('pc')).toBe('pc-i440fx-7.2');
  });
});
