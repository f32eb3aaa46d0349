// `batch --hosts` and `guests up|down --hosts` on SSH hosts inside an embedded lab's namespaces
// (src/lab/ssh-hosts.ts), driven through the command as a user runs them (in-process runs on SSH
// hosts were seen to stall under jest). The batch samples the source host over SSH while its
// guests migrate and writes figures that hold; the by-hand guests are migrated through the ssh
// line `guests up` prints; and afterwards nothing of miglab runs on the hosts.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { hostsLabPrefix } from '../../src/hosts/lab.js';
import { BatchFileSchema } from '../../src/results/batch.js';
import { RunReportSchema } from '../../src/results/run.js';
import { endIfRunning, waitPrinted } from '../support/printed.js';
import { qemusOnHost, useSshHosts } from '../support/ssh-hosts.js';

const MIGLAB = resolve('bin/miglab.js');
const fx = useSshHosts('mlhb');
const results = mkdtempSync(join(tmpdir(), 'miglab-it-hosts-batch-'));
afterAll(() => rmSync(results, { recursive: true, force: true }));

const qemusOn = (role: 'src' | 'dst') => qemusOnHost(fx.ssh.hosts[role]);

async function cli(args: string[], timeout = 150_000) {
  return execa('node', [MIGLAB, ...args], { reject: false, all: true, timeout, env: { ...process.env, NO_COLOR: '1' } });
}

/** `lab status --hosts`: miglab's processes on each host, as a user asks. */
async function nothingOnHosts(): Promise<void> {
  const status = await cli(['lab', 'status', '--hosts', fx.ssh.hostsFile], 60_000);
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
    const r = await cli(
      [
        'batch', '--hosts', fx.ssh.hostsFile, '--steps', '2', '--mode', 'parallel', '--memory', '128M',
        // Slow enough that the migrations span several samples: 128 MiB at 8 MiB/s.
        '--max-bandwidth', '8M/s', '--timeout', '90s', '--deadline', '4m', '--reserve', '256M',
        // This 2-core machine is meant to be busy here: only a real stall may stop this batch.
        '--psi-cpu', '98', '--load-per-cpu', '10', '--results', results,
      ],
      300_000,
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

    const down = await cli(['guests', 'down', '--hosts', file], 120_000);
    expect(down.all).toMatch(new RegExp(`ended miglab guests up \\(pid \\d+\\) on the hosts of ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    expect(down.exitCode).toBe(0);
    const done = await up;
    expect(done.exitCode).toBe(0);
    expect(out).toMatch(/left behind +nothing/);
    await nothingOnHosts();
  }, 360_000);
});
