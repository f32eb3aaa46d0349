// miglab on hosts from a hosts file, for real: three SSH servers inside an embedded lab's
// namespaces (src/lab/ssh-hosts.ts), each with a /tmp and /run of its own, reached only
// through their proxies. The same migration as on the embedded lab runs there: QEMU started over
// SSH, its monitors forwarded, the image and probe tool put on the hosts, the hosts' clocks
// measured; a dropped SSH connection mid-migration fails the run and leaves nothing running; a
// batch samples the source host over SSH while its guests migrate; the by-hand guests are migrated
// through the ssh line `guests up` prints; a bridge miglab makes joins the hosts; an NFS export
// miglab serves itself (from dst) lives from the first run that needs it until `lab down --hosts`;
// and `lab down --hosts` leaves nothing on the hosts. Everything runs through the command, as a
// user runs it (in-process runs on SSH hosts were seen to stall under jest). One lab and one set
// of hosts for all of it: each bring-up costs most of a minute.
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { checkHosts } from '../../src/hosts/check.js';
import { hostsLabPrefix } from '../../src/hosts/lab.js';
import { BatchFileSchema } from '../../src/results/batch.js';
import { parseHostsText } from '../../src/hosts/file.js';
import { isOwnedAlive } from '../../src/lab/proc.js';
import { hostsFileText } from '../../src/lab/ssh-hosts.js';
import { RunReportSchema } from '../../src/results/run.js';
import { pollUntil } from '../../src/util/deadline.js';
import { endIfRunning, waitPrinted } from '../support/printed.js';
import { qemusOnHost, useSshHosts } from '../support/ssh-hosts.js';

const MIGLAB = resolve('bin/miglab.js');
// Its own lab: SSH test hosts (sshd in the lab's namespaces) with a different export directory.
const fx = useSshHosts('mlhost');
const results = mkdtempSync(join(tmpdir(), 'miglab-it-hosts-'));
afterAll(() => rmSync(results, { recursive: true, force: true }));

/** A process's PID namespace (`pid:[INODE]`), or undefined once it is gone. */
function pidNsOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return undefined;
  }
}

const qemusOn = (role: 'src' | 'dst') => qemusOnHost(fx.ssh.hosts[role]);

/** A miglab command, as a user runs it; one that leaks a handle (bin/miglab.js names it) fails. */
async function cliWithin(timeoutMs: number, args: string[]) {
  const r = await execa('node', [MIGLAB, ...args], { reject: false, all: true, timeout: timeoutMs, env: { ...process.env, NO_COLOR: '1' } });
  expect(r.all).not.toMatch(/still open after the command ended/);
  return r;
}
const cli = (...args: string[]) => cliWithin(150_000, args);

const PORT = 4444;
const inNs = (ns: string, argv: string[]) => execa('ip', ['netns', 'exec', ns, ...argv], { reject: false });

/** What a check could leave: trial taps, probe disks, a listener on the port. */
async function checkLeftovers(): Promise<string[]> {
  const found: string[] = [];
  for (const role of ['src', 'dst'] as const) {
    const ns = fx.ssh.hosts[role].netns;
    const links = JSON.parse((await inNs(ns, ['ip', '-j', 'link', 'show'])).stdout) as Array<{ ifname: string }>;
    found.push(...links.filter((l) => l.ifname.startsWith('mlchk')).map((l) => `tap ${l.ifname} in ${ns}`));
    if ((await inNs(ns, ['ss', '-Htln', `sport = :${PORT}`])).stdout.trim()) found.push(`a listener on ${PORT} in ${ns}`);
  }
  found.push(...readdirSync(fx.lab.nfs.exportDir).filter((f) => f.startsWith('miglab-check-')));
  return found;
}

describe('hosts check over SSH', () => {
  const hostsText = () => readFileSync(fx.ssh.hostsFile, 'utf8');

  it('finds the hosts ready for a run, says TCG plainly, and leaves nothing behind', async () => {
    const report = await checkHosts(parseHostsText(hostsText(), 'hosts.yaml'), { port: PORT, timeoutMs: 15_000 });
    const line = (name: string) => report.checks.find((c) => c.name === name);
    expect(report.checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(report.canRun).toBe(true);
    expect(line('src ssh')!.found).toMatch(new RegExp(`^root@${fx.ssh.hosts.src.address.replace(/\./g, '\\.')}:22 \\(through ip netns exec .*\\) answered in \\d+ ms$`));
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
    expect(await checkLeftovers()).toEqual([]);
  }, 120_000);

  it('names a bridge that is not there and a migration port already taken', async () => {
    const dstNs = fx.ssh.hosts.dst.netns;
    const holder = execa('ip', ['netns', 'exec', dstNs, 'socat', `TCP-LISTEN:${PORT},bind=127.0.0.1,reuseaddr`, 'OPEN:/dev/null'], { reject: false });
    try {
      await pollUntil('the port holder', async () => ((await inNs(dstNs, ['ss', '-Htln', `sport = :${PORT}`])).stdout.trim() ? true : undefined), { timeoutMs: 10_000, intervalMs: 100 });
      const report = await checkHosts(parseHostsText(hostsText().replace(/^bridge: .*$/m, 'bridge: br9'), 'hosts.yaml'), { port: PORT, timeoutMs: 15_000 });
      const line = (name: string) => report.checks.find((c) => c.name === name);
      expect(report.canRun).toBe(false);
      expect(line('src bridge')).toMatchObject({ status: 'fail', found: 'no bridge br9 (bridges here: br0)' });
      expect(line('dst port')).toMatchObject({ status: 'fail', found: `something listens on port ${PORT} on dst already` });
      expect(line('dst port')!.fix).toContain(`ss -tlnp 'sport = :${PORT}'`);
    } finally {
      holder.kill('SIGTERM');
      await holder;
    }
    expect(await checkLeftovers()).toEqual([]);
  }, 120_000);
});

describe('migrate --hosts', () => {
  it('migrates a guest between two SSH hosts and records the hosts\' clocks', async () => {
    // Through the command, as a user runs it: it must also end once done (nothing of SSH left holding it).
    const r = await cli('migrate', '--hosts', fx.ssh.hostsFile, '--memory', '128M', '--accel', 'tcg', '--disk-size', '16M', '--timeout', '60s', '--results', results);
    expect(r.exitCode).toBe(0);
    expect(r.all).toMatch(/^migration completed/m);
    const dir = /^ {2}results {9}(.+)$/m.exec(r.all ?? '')![1]!;
    // run.json is what a person keeps: it parses, and says the events' clocks were measured over SSH.
    const saved = RunReportSchema.parse(JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')));
    const clocks = saved.outputs.clocks!;
    expect(clocks.method).toBe('ssh-round-trip');
    // The hosts share this machine's clock: the offsets measured over SSH are within their own bounds.
    expect(Math.abs(clocks.before.sourceOffsetMs)).toBeLessThanOrEqual(clocks.before.uncertaintyMs + 1);
    expect(clocks.after).toBeDefined();
    expect(saved.outputs.eventDowntimeMs).toBeGreaterThan(0);
    expect(saved.outputs.eventDowntimeUncorrectedMs).toBeGreaterThan(0);
    expect(saved.outputs.clientDowntimeMs).toBeGreaterThan(0);
    // The serial logs came back over SSH into the run folder on this machine.
    expect(readFileSync(join(dir, 'src.serial.log'), 'utf8')).toMatch(/MIGLAB-HB seq=1 /);
    // Nothing of the run is left running on the hosts.
    expect(qemusOn('src')).toEqual([]);
    expect(qemusOn('dst')).toEqual([]);
  }, 180_000);

  it('refuses what needs the embedded lab, in one line, before connecting', async () => {
    const r = await cli('migrate', '--hosts', fx.ssh.hostsFile, '--bandwidth', '100mbit', '--results', results);
    expect(r.exitCode).not.toBe(0);
    expect(r.all).toMatch(/link shaping .* works on the embedded lab only/);
    const f = await cli('migrate', '--hosts', fx.ssh.hostsFile, '--fault', 'link-down@pass:2', '--results', results);
    expect(f.exitCode).not.toBe(0);
    expect(f.all).toMatch(/link-down acts on the embedded lab/);
  }, 60_000);

  it('fails the run when the SSH connection to the source drops mid-migration, and leaves no QEMU behind', async () => {
    // The connection's proxy (socat in the src namespace) carries the SSH session: killing it is the link to the host going away.
    const proxyPids = async () => {
      const r = await execa('pgrep', ['-f', '--', `^socat STDIO TCP:127.0.0.1:22$`], { reject: false });
      return r.stdout.split('\n').filter(Boolean).map(Number);
    };
    const before = new Set(await proxyPids());
    // Through the command, as a user runs it. Slow enough to be cut in the middle: 128 MiB at 2 MiB/s takes over a minute.
    const run = execa(
      'node',
      [MIGLAB, 'migrate', '--hosts', fx.ssh.hostsFile, '--memory', '128M', '--accel', 'tcg', '--disk-size', '16M', '--max-bandwidth', '2M/s', '--timeout', '90s', '--results', results],
      { reject: false, all: true, timeout: 200_000, env: { ...process.env, NO_COLOR: '1' } },
    );
    let out = '';
    run.all!.on('data', (d: Buffer) => (out += d.toString('utf8')));
    // Wait until the migration runs (its progress line), give it a second of pre-copy, then cut src's connection.
    await pollUntil('the migration to start', async () => (/ migrate +(active|setup)/.test(out) || run.exitCode !== null ? true : undefined), { timeoutMs: 120_000, intervalMs: 100 });
    expect(out).toMatch(/ migrate +(active|setup)/);
    await new Promise((r) => setTimeout(r, 1000));
    // This run's proxy to the source host: new since the test began, and in src's namespace.
    const inSrc = async (pid: number) => (await execa('ip', ['netns', 'identify', String(pid)], { reject: false })).stdout.trim() === fx.ssh.hosts.src.netns;
    const fresh = (await proxyPids()).filter((p) => !before.has(p));
    const mine = (await Promise.all(fresh.map(async (p) => ((await inSrc(p)) ? p : undefined)))).filter((p): p is number => p !== undefined);
    expect(mine).toHaveLength(1);
    for (const pid of mine) process.kill(pid, 'SIGKILL');
    const r = await run;
    const text = `exit ${r.exitCode}: ${r.all}`;
    // The run ends failed, naming the lost connection, and the hosts are left clean.
    expect(text).toMatch(/^(run|migration) failed/m);
    expect(text).toMatch(/the SSH connection to root@[\d.]+ was lost/);
    expect(r.exitCode).not.toBe(0);
    await pollUntil('the QEMUs of the cut run ended', async () => (qemusOn('src').length === 0 && qemusOn('dst').length === 0) || undefined, { timeoutMs: 20_000, intervalMs: 200 });
    for (const pid of mine) expect(isOwnedAlive({ pid, startTime: 0 })).toBe(false);
  }, 240_000);

  it('runs the homework (--quick) on the hosts, its commands saying where each ran', async () => {
    const r = await cli('homework', '--quick', '--hosts', fx.ssh.hostsFile, '--results', results);
    // The output first: a failure (or a timeout) shows where it was.
    expect(r.all).toMatch(/^homework done in/m);
    expect(r.exitCode).toBe(0);
    const report = /^ {2}report {2}(.+)$/m.exec(r.all ?? '')![1]!;
    const md = readFileSync(report, 'utf8');
    expect(md).toMatch(new RegExp(`Runs in: root@${fx.ssh.hosts.src.address.replace(/\\./g, '\\\\.')} \\(source host\\)`));
    // The NFS server is the user's on hosts: the report neither shows miglab's server nor its config.
    expect(md).not.toMatch(/The NFS server's configuration/);
    // By hand: guests up names the hosts file, and the telnet line logs in to the source host first.
    expect(md).toContain(`miglab guests up --hmp-port 4445 --hosts ${resolve(fx.ssh.hostsFile)}`);
    expect(md).toMatch(new RegExp(`ssh -t .*root@${fx.ssh.hosts.src.address.replace(/\\./g, '\\\\.')} telnet 127\\.0\\.0\\.1 4445`));
  }, 240_000);

  it('runs a sweep on the hosts', async () => {
    const spec = join(results, 'hosts-memory.yaml');
    writeFileSync(spec, 'name: hosts-memory\nrepetitions: 1\nbase:\n  guest: { accel: tcg, diskSizeMiB: 16 }\ngrid:\n  memoryMiB: [128, 192]\ntimeoutMs: 60000\n');
    const r = await cli('sweep', spec, '--hosts', fx.ssh.hostsFile, '--no-plot', '--results', results);
    expect(r.all).toMatch(/sweep hosts-memory: 2 runs \(2 ran, 0 already complete, 0 errors\)/);
    expect(r.all).toMatch(/mem128 +1\/1 converged/);
    expect(r.all).toMatch(/mem192 +1\/1 converged/);
    expect(r.exitCode).toBe(0);
  }, 180_000);

  it('lab status and lab down --hosts: what miglab has on the hosts, then nothing', async () => {
    const status = await cli('lab', 'status', '--hosts', fx.ssh.hostsFile);
    expect(status.exitCode).toBe(0);
    expect(status.all).toMatch(/src \(root@10\.\d+\.\d+\.\d+\): no miglab process/);
    const down = await cli('lab', 'down', '--hosts', fx.ssh.hostsFile);
    expect(down.exitCode).toBe(0);
    expect(down.all).toMatch(/removed \/run\/miglab-remote\/h[0-9a-f]{7} on root@/);
    // The hosts' runDir is gone (looked at through the host's own mount namespace, where it lives).
    const ls = await execa('nsenter', ['--mount', `--target=${fx.ssh.hosts.src.sshd.pid}`, 'ls', '/run/miglab-remote'], { reject: false });
    expect(ls.stdout.trim()).toBe('');
    expect(existsSync(join(results, 'nothing'))).toBe(false);
  }, 60_000);
});

describe('storage miglab serves: nfs-ganesha on dst', () => {
  // The embedded lab's own ganesha runs in src's namespace on 2049: this one is served from dst.
  const served = () => {
    const dir = join(fx.ssh.dir, 'served');
    const file = join(fx.ssh.dir, 'served-hosts.yaml');
    if (!existsSync(file)) writeFileSync(file, hostsFileText(fx.lab, fx.ssh.hosts, undefined, { serve: 'ganesha', server: 'dst', dir }), { mode: 0o600 });
    return { dir, file, prefix: hostsLabPrefix(file), dst: fx.ssh.hosts.dst, src: fx.ssh.hosts.src };
  };
  /** Processes of this served export anywhere on the machine: detached, they are no host's session's any more. */
  const serverProcesses = async () => {
    const { prefix, dst } = served();
    const r = await execa('pgrep', ['-a', '-f', '--', `/${prefix}/nfs/|/check-[0-9a-f]{8}/nfs/|^rpcbind -f -h ${dst.address.replace(/\./g, '\\.')}$`], { reject: false });
    // pgrep sees the whole machine: only dst's processes (its PID namespace) are this test's; another
    // lab's hosts on the same addresses (a user's, another test's) are none of its business.
    const dstPidNs = pidNsOf(dst.sshd.pid);
    return r.stdout.split('\n').filter((l) => l && pidNsOf(Number(l.split(' ')[0])) === dstPidNs);
  };
  /** What listens in dst's namespace on the NFS ports. */
  const nfsListeners = async () => (await inNs(served().dst.netns, ['ss', '-Htuln'])).stdout.split('\n').filter((l) => /:(2049|20048|111)\s/.test(l));
  // A failed test must not leave the server running past the hosts (it is no session's process).
  afterAll(async () => {
    if ((await serverProcesses()).length) await cli('lab', 'down', '--hosts', served().file);
  }, 60_000);

  it('hosts check serves it for the check only, and leaves no server and no directory', async () => {
    const { file, dir } = served();
    const report = await checkHosts(parseHostsText(readFileSync(file, 'utf8'), file), { port: PORT, timeoutMs: 15_000 });
    const line = (name: string) => report.checks.find((c) => c.name === name);
    expect(report.checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(line('dst nfs serve')!.found).toMatch(/^serving .*\/served at nfs:\/\/[\d.]+\/.*\/served with nfs-ganesha \(pid \d+\) to [\d.]+, [\d.]+ \(.*made by miglab\): started for the check, stopped after it$/);
    expect(line('src storage')!.status).toBe('ok');
    expect(line('dst storage')!.status).toBe('ok');
    expect(await serverProcesses()).toEqual([]);
    expect(await nfsListeners()).toEqual([]);
    expect(existsSync(dir)).toBe(false);
  }, 120_000);

  it('a run asked to use a kernel NFS server dst does not have says so plainly and makes nothing', async () => {
    const dir = join(fx.ssh.dir, 'kernel-served');
    const file = join(fx.ssh.dir, 'kernel-hosts.yaml');
    writeFileSync(file, hostsFileText(fx.lab, fx.ssh.hosts, undefined, { serve: 'kernel', server: 'dst', dir }), { mode: 0o600 });
    const r = await cli('migrate', '--hosts', file, '--memory', '128M', '--accel', 'tcg', '--disk-size', '16M', '--timeout', '60s', '--results', results);
    expect(r.exitCode).not.toBe(0);
    expect(r.all).toContain('no kernel NFS server on dst: exportfs is missing; use serve: ganesha (miglab starts its own), or install and start the kernel NFS server there');
    expect(existsSync(dir)).toBe(false);
    expect(qemusOn('src')).toEqual([]);
    // Refused before anything was put on dst: no runDir of that lab there.
    const ls = await execa('nsenter', ['--mount', `--target=${fx.ssh.hosts.dst.sshd.pid}`, 'ls', '/run/miglab-remote'], { reject: false });
    expect(ls.stdout.split('\n')).not.toContain(hostsLabPrefix(file));
  }, 60_000);

  it('the first run serves it, later commands reuse it, lab down stops it and keeps a file of the user\'s', async () => {
    const { file, dir, dst, src } = served();
    const at = (a: string) => a.replace(/\./g, '\\.');
    // No lab up: the run needs the export and starts it; it outlives the run.
    const r = await cli('migrate', '--hosts', file, '--memory', '128M', '--accel', 'tcg', '--disk-size', '16M', '--timeout', '60s', '--results', results);
    expect(r.all).toMatch(/^migration completed/m);
    expect(r.exitCode).toBe(0);

    const status = await cli('lab', 'status', '--hosts', file);
    expect(status.all).toMatch(new RegExp(`dst: serving ${dir} at nfs://${at(dst.address)}${dir} with nfs-ganesha \\(pid \\d+\\) to ${at(src.address)}, ${at(dst.address)} \\(${dir} made by miglab\\)`));
    expect(status.exitCode).toBe(0);
    const pid = /with nfs-ganesha \(pid (\d+)\)/.exec(status.all ?? '')![1]!;
    // Bound to dst's address only: nothing on a wildcard address.
    // (ganesha's UDP socket is IPv6 bound to dst's address as v4-mapped: [::ffff:ADDRESS].)
    const listeners = await nfsListeners();
    expect(listeners.length).toBeGreaterThanOrEqual(3);
    for (const l of listeners) expect(l).toMatch(new RegExp(`(${at(dst.address)}|\\[::ffff:${at(dst.address)}\\]|127\\.0\\.0\\.1|\\[::1\\]):(2049|20048|111)\\s`));

    // lab up and hosts check find the live server and use it as it is.
    const up = await cli('lab', 'up', '--hosts', file);
    expect(up.exitCode).toBe(0);
    expect(up.all).toContain(`dst: serving ${dir} at nfs://${dst.address}${dir} with nfs-ganesha (pid ${pid})`);
    const report = await checkHosts(parseHostsText(readFileSync(file, 'utf8'), file), { port: PORT, timeoutMs: 15_000 });
    expect(report.checks.find((c) => c.name === 'dst nfs serve')!.found).toBe(`this lab serves ${dir} already (ganesha, pid ${pid}): the check opens the probe disk through it`);
    expect(report.checks.filter((c) => c.name.endsWith(' storage')).map((c) => c.status)).toEqual(['ok', 'ok']);
    expect(report.canRun).toBe(true);

    // A file of the user's in the directory miglab made: the directory is kept, with it.
    writeFileSync(join(dir, 'mine.txt'), 'not miglab\'s\n');
    const down = await cli('lab', 'down', '--hosts', file);
    expect(down.exitCode).toBe(0);
    expect(down.all).toContain(`dst: stopped the NFS server (nfs-ganesha and rpcbind, pid ${pid})`);
    expect(down.all).toContain(`dst: left ${dir}: it holds files that are not miglab's`);
    expect(readdirSync(dir)).toEqual(['mine.txt']);
    rmSync(dir, { recursive: true });
    expect(await serverProcesses()).toEqual([]);
    expect(await nfsListeners()).toEqual([]);
    const ls = await execa('nsenter', ['--mount', `--target=${dst.sshd.pid}`, 'ls', '/run/miglab-remote'], { reject: false });
    expect(ls.stdout.split('\n')).not.toContain(served().prefix);
  }, 240_000);
});

/** `lab status --hosts`: miglab's processes on each host, as a user asks. */
async function nothingOnHosts(): Promise<void> {
  const status = await cliWithin(60_000, ['lab', 'status', '--hosts', fx.ssh.hostsFile]);
  expect(status.exitCode).toBe(0);
  for (const role of ['src', 'dst', 'client']) expect(status.all).toMatch(new RegExp(`${role} \\(root@[\\d.]+\\): no miglab process`));
  expect(status.all).not.toMatch(/slot g\d+/);
  expect(qemusOn('src')).toEqual([]);
  expect(qemusOn('dst')).toEqual([]);
  // Nor any state of this hosts file's lab on this machine.
  expect(existsSync(join('/run/miglab', hostsLabPrefix(resolve(fx.ssh.hostsFile))))).toBe(false);
}

describe('batch --hosts', () => {
  it('migrates 2 guests at once between the SSH hosts, sampling the source host over SSH all along', async () => {
    const r = await cliWithin(
      300_000,
      [
        'batch', '--hosts', fx.ssh.hostsFile, '--steps', '2', '--mode', 'parallel', '--memory', '128M',
        // Slow enough that the migrations span several samples: 128 MiB at 8 MiB/s.
        '--max-bandwidth', '8M/s', '--timeout', '90s', '--deadline', '4m', '--reserve', '256M',
        // This 2-core machine is meant to be busy here: only a real stall may stop this batch.
        '--psi-cpu', '98', '--load-per-cpu', '10', '--results', results,
      ],
    );
    const text = `exit ${r.exitCode}: ${r.all}`;
    expect(text).toMatch(/^batch finished/m);
    expect(r.exitCode).toBe(0);
    const report = /^ {2}report {2}(.+)$/m.exec(r.all ?? '')![1]!;
    const dir = join(report, '..');
    const batch = BatchFileSchema.parse(JSON.parse(readFileSync(join(dir, 'batch.json'), 'utf8')));
    // The host judged is the source host, read over SSH.
    expect(batch.host.where).toBe(`the source host root@${fx.ssh.hosts.src.address}`);
    expect(batch.host.cpus).toBeGreaterThan(0);
    expect(batch.host.memTotalMiB).toBeGreaterThan(0);
    const [step] = batch.steps;
    expect(step!.attempts.map((a) => a.outcome)).toEqual(['completed', 'completed']);
    for (const a of step!.attempts) {
      expect(a.totalTimeMs).toBeGreaterThan(0);
      expect(a.downtimeMs).toBeGreaterThanOrEqual(0);
      expect(a.transferredMiB).toBeGreaterThan(1);
    }
    expect(batch.diagnoses[0]).toMatchObject({ n: 2, attempted: 2, migrated: 2 });

    // Samples taken while the migrations ran (between the first migrate sent and the last end),
    // naming both sources' QEMUs, their CPU, and the link at both ends.
    const sent = Math.min(...step!.attempts.map((a) => a.migrateSentAtMs!));
    const ended = Math.max(...step!.attempts.flatMap((a) => a.events.filter((e) => e.event === 'migration-end').map((e) => e.atMs)));
    const during = batch.samples.filter((s) => s.atMs >= sent && s.atMs <= ended);
    expect(during.length).toBeGreaterThanOrEqual(2);
    const labels = new Set(during.flatMap((s) => Object.values(s.qemuLabels)));
    expect([...labels]).toEqual(expect.arrayContaining(['g0-source', 'g1-source']));
    for (const s of during) {
      const sources = s.processes.filter((p) => /-source$/.test(s.qemuLabels[String(p.pid)] ?? ''));
      expect(sources.every((p) => p.alive && p.vmRssKiB! > 0)).toBe(true);
      expect(s.links.map((l) => l.role)).toEqual(['src', 'dst']);
      expect(s.links.every((l) => l.error === undefined)).toBe(true);
    }
    // The stream left src and reached dst while they migrated, at a rate the link can carry.
    const srcTx = during.map((s) => s.links[0]!.txBitsPerSecond ?? 0);
    const dstRx = during.map((s) => s.links[1]!.rxBitsPerSecond ?? 0);
    expect(Math.max(...srcTx)).toBeGreaterThan(1e6);
    expect(Math.max(...dstRx)).toBeGreaterThan(1e6);
    expect(Math.max(...srcTx)).toBeLessThan(100e9);
    // The sampler did not fall silent: no gap between samples anywhere near a minute.
    const gaps = batch.samples.slice(1).map((s, i) => s.atMs - batch.samples[i]!.atMs);
    expect(Math.max(...gaps)).toBeLessThan(10_000);
    // The tables a person opens: the samples with the link's rate, the migrations.
    const csv = readFileSync(join(dir, 'samples.csv'), 'utf8').trim().split('\n');
    const header = csv[0]!.split(',');
    const col = header.indexOf('migrationLinkMbps');
    expect(col).toBeGreaterThanOrEqual(0);
    expect(csv.slice(1).some((row) => Number(row.split(',')[col]) > 1)).toBe(true);
    expect(readFileSync(join(dir, 'migrations.csv'), 'utf8').trim().split('\n')).toHaveLength(3);
    await nothingOnHosts();
  }, 360_000);
});

describe('guests up|down --hosts', () => {
  let up: ResultPromise<{ reject: false; all: true; buffer: true }> | undefined;
  let out = '';
  afterAll(async () => {
    // Only if a step failed before `guests down`: end the session this test started.
    await endIfRunning(up);
  }, 120_000);

  const waitOutput = (re: RegExp, timeoutMs: number) => waitPrinted('guests up', () => out, () => up, re, timeoutMs);

  /** A printed line run as a person pastes it into a shell; the test's ssh trusts the test host's key. */
  function paste(line: string, input?: string) {
    const trusting = line.replace(/^ssh /, 'ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR ');
    return execa('sh', ['-c', trusting], { reject: false, all: true, buffer: true, ...(input !== undefined ? { input } : {}) });
  }

  it('prints the ssh lines to the source host; a person migrates through them; guests down leaves nothing', async () => {
    const file = fx.ssh.hostsFile;
    up = execa('node', [MIGLAB, 'guests', 'up', '--hosts', file, '--memory', '128M', '--accel', 'tcg', '--disk-size', '16M', '--results', results, '--hold', '3m'], {
      reject: false,
      all: true,
      buffer: true,
      env: { ...process.env, NO_COLOR: '1' },
    });
    up.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
    await waitOutput(/^miglab guests down --hosts \S+$/m, 150_000);
    const lines = out.split('\n');
    const src = fx.ssh.hosts.src;
    // Logged in as the hosts file says: its key, its proxy, its user and address.
    const telnetLine = lines.find((l) => /^ssh -t .* telnet 127\.0\.0\.1 \d+$/.test(l))!;
    expect(telnetLine).toBe(`ssh -t -i ${src.keyPath} -o 'ProxyCommand=${src.proxy.join(' ')}' root@${src.address} telnet 127.0.0.1 4445`);
    const socatLine = lines.find((l) => /^ssh -t .* socat - UNIX-CONNECT:\S+\.qmp$/.test(l))!;
    expect(socatLine).toBeDefined();
    const migrateLine = lines.find((l) => /^migrate -d tcp:[\d.]+:\d+$/.test(l))!;

    // The person: the printed telnet line, the printed migrate line, then info migrate until completed.
    const telnet = paste(telnetLine);
    let seen = '';
    telnet.all!.on('data', (c: Buffer) => (seen += c.toString('utf8')));
    const type = (line: string) => telnet.stdin!.write(`${line}\n`);
    const until = Date.now() + 120_000;
    while (!/\(qemu\)/.test(seen) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    type(migrateLine);
    while (!/Migration status: completed/.test(seen) && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 1000));
      type('info migrate');
    }
    expect(seen).toMatch(/Migration status: completed/);
    await waitOutput(/The guests are kept/, 120_000);
    telnet.stdin!.end();
    await telnet;

    // The person's QMP on the source host, through the printed line.
    const qmp = await paste(socatLine, `${JSON.stringify({ execute: 'qmp_capabilities' })}\n${JSON.stringify({ execute: 'query-migrate' })}\n`);
    expect(qmp.all).toMatch(/"status":\s*"completed"/);

    const dir = (await waitOutput(/^ {2}results\s+(\S+)$/m, 5_000))[1]!;
    const run = RunReportSchema.parse(JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')));
    expect(run.verdict).toBe('completed');
    expect(run.inputs.startedBy).toBe('hand');

    const down = await cliWithin(120_000, ['guests', 'down', '--hosts', file]);
    expect(down.all).toMatch(new RegExp(`ended miglab guests up \\(pid \\d+\\) on the hosts of ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    expect(down.exitCode).toBe(0);
    const done = await up;
    expect(done.exitCode).toBe(0);
    expect(out).toMatch(/left behind +nothing/);
    await nothingOnHosts();
  }, 360_000);
});

describe('a bridge miglab makes on the hosts (bridge.create)', () => {
  /** The fixture's hosts file with miglab's own bridge on a network of its own (10.213.0.0/24). */
  function madeBridgeFile(name: string, bridge: string): string {
    const doc = parseYaml(readFileSync(fx.ssh.hostsFile, 'utf8')) as Record<string, unknown>;
    const path = join(results, name);
    writeFileSync(path, stringifyYaml({ ...doc, bridge: { create: bridge }, guests: { addresses: '10.213.0.10-10.213.0.14', prefixLength: 24 } }), { mode: 0o600 });
    return path;
  }
  const roles = ['src', 'dst', 'client'] as const;
  const linksIn = async (role: (typeof roles)[number]) => JSON.parse((await inNs(fx.ssh.hosts[role].netns, ['ip', '-j', 'link', 'show'])).stdout) as Array<{ ifname: string; ifalias?: string }>;

  it('refuses a bridge name the user already has, in hosts check and in lab up, and leaves it alone', async () => {
    const dstNs = fx.ssh.hosts.dst.netns;
    expect((await inNs(dstNs, ['ip', 'link', 'add', 'mluser', 'type', 'bridge'])).exitCode).toBe(0);
    try {
      const file = madeBridgeFile('user-bridge.yaml', 'mluser');
      const check = await cli('hosts', 'check', '--hosts', file, '--port', String(PORT));
      expect(check.exitCode).not.toBe(0);
      expect(check.all).toMatch(/dst bridge .*on root@[\d.]+: mluser exists and is not miglab's \(alias: none\)/);
      const up = await cli('lab', 'up', '--hosts', file);
      expect(up.exitCode).not.toBe(0);
      expect(up.all).toMatch(/cannot make the bridge on root@[\d.]+: mluser exists and is not miglab's \(alias: none\)/);
      expect((await linksIn('dst')).some((l) => l.ifname === 'mluser')).toBe(true);
      // Refused before anything was made on any host (the names are checked on all of them first).
      for (const role of roles) expect((await linksIn(role)).filter((l) => l.ifalias?.startsWith('miglab:')).map((l) => l.ifname)).toEqual([]);
      // lab down keeps the user's bridge, and says so.
      const down = await cli('lab', 'down', '--hosts', file);
      expect(down.exitCode).toBe(0);
      expect(down.all).toMatch(/kept mluser: not this lab's/);
      for (const role of roles) expect((await linksIn(role)).filter((l) => l.ifalias?.startsWith('miglab:')).map((l) => l.ifname)).toEqual([]);
      expect((await linksIn('dst')).some((l) => l.ifname === 'mluser')).toBe(true);
      expect(await checkLeftovers()).toEqual([]);
    } finally {
      await inNs(dstNs, ['ip', 'link', 'del', 'mluser']);
    }
  }, 120_000);

  it('makes it on the three hosts, joined by VXLAN, migrates a guest across it, and takes it away', async () => {
    const file = madeBridgeFile('made-bridge.yaml', 'mlbrt');
    const check = await cli('hosts', 'check', '--hosts', file, '--port', String(PORT));
    expect(check.all).toMatch(/src bridge .*mlbrt and vx-h[0-9a-f]{7} can be made/);
    expect(check.all).toMatch(/client bridge .*this host takes 10\.213\.0\.14\/24 on it/);
    expect(await checkLeftovers()).toEqual([]);

    const up = await cli('lab', 'up', '--hosts', file);
    expect(up.exitCode).toBe(0);
    expect(up.all.match(/: made bridge mlbrt$/gm)).toHaveLength(3);
    expect(up.all).toMatch(/^ {2}client \(root@[\d.]+\): gave mlbrt the address 10\.213\.0\.14\/24$/m);
    for (const role of roles) {
      const ours = (await linksIn(role)).filter((l) => l.ifalias?.startsWith('miglab:h'));
      expect(ours.map((l) => l.ifname).sort()).toEqual(['mlbrt', expect.stringMatching(/^vx-h[0-9a-f]{7}$/)]);
    }

    // The client probes the guest across the tunnel (its downtime needs replies before and after).
    const r = await cli('migrate', '--hosts', file, '--memory', '128M', '--accel', 'tcg', '--disk-size', '16M', '--timeout', '60s', '--results', results);
    expect(r.exitCode).toBe(0);
    const dir = /^ {2}results {9}(.+)$/m.exec(r.all ?? '')![1]!;
    const saved = RunReportSchema.parse(JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')));
    expect(saved.outputs.clientDowntimeMs).toBeGreaterThan(0);

    const status = await cli('lab', 'status', '--hosts', file);
    expect(status.all).toMatch(/dst \(root@[\d.]+\): bridge mlbrt \(up\), tunnel vx-h[0-9a-f]{7} \(up\) to 2 peers/);

    // The file edited since (another bridge name): lab down still finds what this lab made, by its alias.
    writeFileSync(file, readFileSync(file, 'utf8').replace(/mlbrt/g, 'mlbrx'), { mode: 0o600 });
    const down = await cli('lab', 'down', '--hosts', file);
    expect(down.exitCode).toBe(0);
    expect(down.all.match(/^ {2}removed mlbrt on root@/gm)).toHaveLength(3);
    expect(down.all.match(/^ {2}removed vx-h[0-9a-f]{7} on root@/gm)).toHaveLength(3);
    for (const role of roles) expect((await linksIn(role)).filter((l) => l.ifalias?.startsWith('miglab:')).map((l) => l.ifname)).toEqual([]);
  }, 240_000);
});
