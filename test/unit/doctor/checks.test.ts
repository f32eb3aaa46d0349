// The doctor's checks against a fake host: a machine described by the commands it answers and the
// programs on its PATH. Each check must say what it found and, when it is not ok, how to fix it;
// a run can go unless something it needs is missing.
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { doctorExit, EXIT } from '../../../src/cli/exit.js';
import { CHECKS, formatDoctor, makefileAptPackages, runDoctor, type DoctorProbes, type KvmVerdict } from '../../../src/doctor/checks.js';
import type { Host, RunResult } from '../../../src/host/host.js';
import { REQUIRED_PROGRAMS } from '../../../src/lab/deps.js';
import { runOnlyHost } from '../../support/fake-host.js';

interface FakeMachine {
  programs: Set<string>;
  files: Map<string, string>;
  /** Answers to other commands, by argv joined with spaces. */
  commands: Map<string, { exitCode: number; stdout?: string; stderr?: string }>;
}

let hosts = 0;

/** A host answering from `m`; `ran` keeps every argv it was given. */
function fakeMachineHost(m: FakeMachine): Host & { ran: string[][] } {
  const ran: string[][] = [];
  const run = async (argv: readonly string[]): Promise<RunResult> => {
    ran.push([...argv]);
    const done = (exitCode: number, stdout = '', stderr = ''): RunResult => ({ argv, exitCode, stdout, stderr, durationMs: 1 });
    if (argv[0] === 'cat') return m.files.has(argv[1]!) ? done(0, m.files.get(argv[1]!)) : done(1, '', `cat: ${argv[1]}: No such file or directory`);
    if (argv[0] === 'test' && argv[1] === '-e') return done(m.files.has(argv[2]!) ? 0 : 1);
    if (argv[0] === 'ls') {
      const dir = `${argv[2]}/`;
      const entries = [...new Set([...m.files.keys()].filter((f) => f.startsWith(dir)).map((f) => f.slice(dir.length).split('/')[0]))];
      return entries.length ? done(0, entries.join('\n')) : done(2, '', 'No such file or directory');
    }
    const answer = m.commands.get(argv.join(' '));
    if (answer) return done(answer.exitCode, answer.stdout, answer.stderr);
    if (m.programs.has(argv[0]!)) return done(0);
    return done(127, '', `${argv[0]}: not found`);
  };
  // Its own name: QEMU's version is read once per host name and process.
  const host = runOnlyHost(`fake-${++hosts}`, run, async (program) => (m.programs.has(program) ? `/usr/bin/${program}` : undefined));
  return Object.assign(host, { ran });
}

const MAKEFILE = readFileSync(new URL('../../../Makefile', import.meta.url), 'utf8');
const PACKAGES = makefileAptPackages(MAKEFILE);

const MEMINFO = (availKiB: number) => `MemTotal:       24000000 kB\nMemFree:        1000 kB\nMemAvailable:   ${availKiB} kB\n`;

/** A machine with everything a run needs, quiet, no lab up; each test takes something away. */
function healthy(): FakeMachine {
  return {
    programs: new Set([...REQUIRED_PROGRAMS.map(([p]) => p), 'qemu-system-x86_64', 'qemu-img', 'telnet', 'socat']),
    files: new Map([
      ['/usr/lib/x86_64-linux-gnu/qemu/block-nfs.so', ''],
      ['/usr/lib/x86_64-linux-gnu/ganesha/libfsalvfs.so', ''],
      ['/proc/meminfo', MEMINFO(8 * 1024 * 1024)],
      ['/proc/pressure/cpu', 'some avg10=1.50 avg60=2.00 avg300=1.00 total=1\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n'],
      ['/proc/loadavg', '0.40 0.30 0.20 1/200 999\n'],
      ['/repo/Makefile', MAKEFILE],
    ]),
    commands: new Map([
      ['qemu-system-x86_64 --version', { exitCode: 0, stdout: 'QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright (c) 2003-2022' }],
      ['unshare --net tc qdisc add dev lo root netem delay 1ms', { exitCode: 0 }],
      [['dpkg-query', '-W', '-f=${Package} ${db:Status-Abbrev}\n', ...PACKAGES].join(' '), { exitCode: 0, stdout: PACKAGES.map((p) => `${p} ii `).join('\n') }],
    ]),
  };
}

function probes(m: FakeMachine, over: Partial<DoctorProbes> = {}, kvm: KvmVerdict = { usable: true, reason: 'a guest booted under KVM and its agent answered' }): DoctorProbes & { host: ReturnType<typeof fakeMachineHost> } {
  return {
    host: fakeMachineHost(m),
    isRoot: true,
    cpus: 2,
    stateRoot: '/run/miglab',
    prefix: 'mlab',
    ports: { migration: 4444, hmp: 4445 },
    makefile: '/repo/Makefile',
    kvm: async () => kvm,
    guestImage: async () => 'built 2026-12-02: Linux 6.1.0-57-amd64',
    ...over,
  } as DoctorProbes & { host: ReturnType<typeof fakeMachineHost> };
}

const byName = async (p: DoctorProbes) => Object.fromEntries((await runDoctor(p)).checks.map((c) => [c.name, c]));

describe('miglab doctor on a fake host', () => {
  it('passes a machine that has everything, one line per check, and says a run can go', async () => {
    const r = await runDoctor(probes(healthy()));
    expect(r.checks).toHaveLength(CHECKS.length);
    expect(r.checks.filter((c) => c.status !== 'ok')).toEqual([]);
    expect(r.canRun).toBe(true);
    const text = formatDoctor(r);
    expect(text.split('\n')).toHaveLength(CHECKS.length + 1);
    expect(text).toMatch(/^ok {4}qemu +QEMU emulator version 7\.2\.22/m);
    expect(text.split('\n').at(-1)).toBe('a run can go');
    expect(doctorExit(r)).toBe(EXIT.done);
  });

  it('fails what a run cannot do without, each with the package that fixes it', async () => {
    const m = healthy();
    m.programs.delete('qemu-system-x86_64');
    m.commands.delete('qemu-system-x86_64 --version');
    m.files.delete('/usr/lib/x86_64-linux-gnu/qemu/block-nfs.so');
    m.programs.delete('ganesha.nfsd');
    m.programs.delete('nft');
    const c = await byName(probes(m, { guestImage: async () => undefined }));
    expect(c.qemu).toMatchObject({ status: 'fail', fix: 'apt-get install -y qemu-system-x86' });
    expect(c['qemu nfs']).toMatchObject({ status: 'fail', fix: 'apt-get install -y qemu-block-extra' });
    expect(c['lab tools']).toMatchObject({ status: 'fail', found: 'missing: ganesha.nfsd, nft', fix: 'apt-get install -y nfs-ganesha nftables' });
    expect(c['guest image']).toMatchObject({ status: 'fail', fix: 'miglab image build (or make image)' });
    const r = await runDoctor(probes(m));
    expect(r.canRun).toBe(false);
    expect(formatDoctor(r).split('\n').at(-1)).toBe('a run cannot go: 3 checks failed (the fix is on each line)');
    expect(doctorExit(r)).toBe(EXIT.missing);
  });

  it("reads QEMU's version as the runs do, and names qemu-img's package when only it is missing", async () => {
    const m = healthy();
    m.programs.delete('qemu-img');
    expect((await byName(probes(m))).qemu).toMatchObject({ status: 'fail', found: 'qemu-img not installed', fix: 'apt-get install -y qemu-utils' });
    const broken = healthy();
    broken.commands.set('qemu-system-x86_64 --version', { exitCode: 0, stdout: 'something else\n' });
    const c = await byName(probes(broken));
    expect(c.qemu).toMatchObject({ status: 'fail', found: expect.stringMatching(/^qemu-system-x86_64 --version did not answer with a version: .*something else/) });
  });

  it('fails when not root, and does not try netem without it', async () => {
    const p = probes(healthy(), { isRoot: false });
    const c = await byName(p);
    expect(c.root).toMatchObject({ status: 'fail', fix: 'run miglab with sudo' });
    expect(c.sch_netem).toMatchObject({ status: 'warn', found: 'not checked (needs root)' });
    expect(p.host.ran.some((a) => a.includes('netem'))).toBe(false);
    // Labs' state is root's: not seen is not "no lab up".
    expect(c['other labs']).toMatchObject({ status: 'warn', found: 'not checked (needs root)' });
    expect(c['lab ports']).toMatchObject({ status: 'warn', found: 'not checked (needs root)' });
    const unreadable = await byName(probes(healthy(), { isRoot: false, guestImage: async () => { throw new Error("EACCES: permission denied, mkdir '/repo/vm-images/cache/downloads'"); } }));
    expect(unreadable['guest image']).toMatchObject({ status: 'fail', fix: 'run miglab as root (sudo)' });
    // The exit status README gives "not root", also when something else is missing too.
    const m = healthy();
    m.programs.delete('nft');
    expect(doctorExit(await runDoctor(probes(m, { isRoot: false, guestImage: async () => undefined })))).toBe(EXIT.notRoot);
  });

  it('explains plainly why KVM is not usable and that runs go on under TCG', async () => {
    const absent = await byName(probes(healthy(), {}, { usable: false, reason: "/dev/kvm is not available (Error: ENOENT: no such file or directory, access '/dev/kvm')" }));
    expect(absent.kvm).toMatchObject({ status: 'warn', found: 'not usable: /dev/kvm does not exist: this machine (or the VM it is) offers no KVM' });
    expect(absent.kvm!.fix).toMatch(/runs use TCG/);
    const nested = await byName(probes(healthy(), {}, { usable: false, reason: '/dev/kvm exists but booting a guest with -accel kvm -cpu host failed: QEMU was killed by SIGABRT' }));
    expect(nested.kvm!.found).toBe('not usable: /dev/kvm exists but booting a guest with -accel kvm -cpu host failed: QEMU was killed by SIGABRT');
    expect((await runDoctor(probes(healthy(), {}, { usable: false, reason: 'x' }))).canRun).toBe(true);
  });

  it('tries a netem qdisc for real and says what miglab does instead when the kernel has none', async () => {
    const m = healthy();
    m.commands.set('unshare --net tc qdisc add dev lo root netem delay 1ms', { exitCode: 2, stderr: 'Error: Specified qdisc kind is unknown.' });
    const c = await byName(probes(m));
    expect(c.sch_netem!.status).toBe('warn');
    expect(c.sch_netem!.found).toMatch(/no netem qdisc \(tc: Error: Specified qdisc kind is unknown\.\), so --delay and --loss cannot work; miglab shapes bandwidth with tbf and drops packets for link-loss faults with nftables/);
  });

  it("names the packages of the Makefile's one list that are missing, and how to install them", async () => {
    expect(PACKAGES).toEqual(expect.arrayContaining(['qemu-block-extra', 'nfs-ganesha']));
    const m = healthy();
    const key = ['dpkg-query', '-W', '-f=${Package} ${db:Status-Abbrev}\n', ...PACKAGES].join(' ');
    m.commands.set(key, { exitCode: 1, stdout: PACKAGES.filter((p) => p !== 'linux-perf' && p !== 'iperf3').map((p) => `${p} ii `).join('\n'), stderr: 'dpkg-query: no packages found matching linux-perf' });
    const c = await byName(probes(m));
    expect(c.packages).toMatchObject({ status: 'warn', fix: expect.stringMatching(/^make deps \(or apt-get install -y (iperf3 linux-perf|linux-perf iperf3)\)$/) });
    expect(c.packages!.found).toMatch(new RegExp(`^2 of the ${PACKAGES.length} Debian packages make deps installs are missing`));
  });

  it('warns about telnet and socat, needed only by hand', async () => {
    const m = healthy();
    m.programs.delete('socat');
    const c = await byName(probes(m));
    expect(c['telnet, socat']).toMatchObject({ status: 'warn', fix: 'apt-get install -y socat' });
    expect((await runDoctor(probes(m))).canRun).toBe(true);
  });

  it('checks the ports of the default lab when it is up, and names other labs', async () => {
    const m = healthy();
    m.files.set('/run/miglab/mlab/lab.json', '{}');
    m.files.set('/run/miglab/mlbh/lab.json', '{}');
    m.files.set('/run/miglab/stray/readme', '');
    m.commands.set('ip netns exec mlab-dst ss -Htln', { exitCode: 0, stdout: 'LISTEN 0 1 10.77.0.2:4444 0.0.0.0:*' });
    m.commands.set('ip netns exec mlab-src ss -Htln', { exitCode: 0, stdout: 'LISTEN 0 1 127.0.0.1:22 0.0.0.0:*' });
    const c = await byName(probes(m));
    expect(c['lab ports']).toMatchObject({ status: 'warn', found: 'lab mlab is up and something listens on 4444 on dst (a run in progress, or one left behind)' });
    expect(c['other labs']).toMatchObject({ status: 'warn', fix: 'when they are done: miglab lab down --prefix mlbh' });
    expect(c['other labs']!.found).toMatch(/^lab mlbh up beside yours/);
  });

  it('fails when memory is short of a run, warns when it is short of two', async () => {
    const m = healthy();
    m.files.set('/proc/meminfo', MEMINFO(500 * 1024));
    expect((await byName(probes(m))).memory).toMatchObject({ status: 'fail', found: expect.stringMatching(/^500 MiB available; a default run needs about 1012 MiB/) });
    m.files.set('/proc/meminfo', MEMINFO(1500 * 1024));
    expect((await byName(probes(m))).memory!.status).toBe('warn');
  });

  it('warns when other work keeps the CPU busy, with the pressure and load measured', async () => {
    const m = healthy();
    m.files.set('/proc/pressure/cpu', 'some avg10=93.00 avg60=80.00 avg300=50.00 total=1\n');
    m.files.set('/proc/loadavg', '6.20 5.00 4.00 3/300 999\n');
    const c = await byName(probes(m));
    expect(c['cpu load']).toMatchObject({ status: 'warn', found: expect.stringMatching(/^PSI cpu some 93 % over 10 s, load 6\.2 on 2 CPUs: other work keeps the CPU busy/) });
  });

  it('reports a check that throws as failed and goes on with the rest', async () => {
    const r = await runDoctor(probes(healthy(), { guestImage: async () => { throw new Error('initrd truncated: 10 of 20 bytes'); } }));
    expect(r.checks).toHaveLength(CHECKS.length);
    expect(r.checks.find((c) => c.name === 'guest image')).toMatchObject({ status: 'fail', fix: 'miglab image build --force' });
  });
});
