// The harness itself under faults, through the `miglab` command as a user runs it: Ctrl-C and
// SIGTERM end a run with 130/143 and a run.json that says `interrupted`; a miglab killed with
// SIGKILL leaves processes that `lab status` names (and exits non-zero for) and that the next run
// in that slot, or `lab down`, stops; two runs on one lab take two slots; `lab down` refuses to
// pull a lab from under a run unless forced, and forced, the run says the lab went; bad input and
// unusable results folders are refused before anything starts. One lab for the file.
import { execa, type ResultPromise } from 'execa';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { migrateOnLab, REPO_ROOT } from '../../src/api.js';
import { labStatus, labUp, listNetns } from '../../src/lab/index.js';
import { isOwnedAlive } from '../../src/lab/proc.js';
import type { RunReport } from '../../src/migrate/report.js';
import { parseScenario } from '../../src/migrate/scenario.js';
import { pollUntil } from '../../src/util/deadline.js';
import { useTestLab } from '../support/lab-fixture.js';

// Its own lab, not the suite's shared one: it takes its lab down (`lab down`, forced mid-run)
// and brings it up again.
const PREFIX = 'mlhn';
const fx = useTestLab(PREFIX);
const MIGLAB = resolve(REPO_ROOT, 'bin', 'miglab.js');

/** `miglab migrate` on the test lab: a 128 MiB guest whose migration lasts a while (4 MiB/s). */
function startMigrate(results: string, extra: string[] = []): ResultPromise<{ reject: false; all: true }> {
  return execa('node', [MIGLAB, 'migrate', '--prefix', PREFIX, '--memory', '128M', '--accel', 'tcg', '--disk-size', '16M', '--max-bandwidth', '4M/s', '--results', results, ...extra], {
    reject: false,
    all: true,
    env: { FORCE_COLOR: '0' },
  });
}

/** Resolves once the child's progress output shows `phase`. */
function waitFor(child: ResultPromise<{ reject: false; all: true }>, phase: RegExp): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`no ${phase} in: ${text}`)), 60000);
    child.all!.on('data', (d: Buffer) => {
      text += d.toString();
      if (phase.test(text)) {
        clearTimeout(timer);
        resolvePromise();
      }
    });
  });
}

function onlyRun(results: string): RunReport {
  const [dir] = readdirSync(results);
  return JSON.parse(readFileSync(join(results, dir!, 'run.json'), 'utf8')) as RunReport;
}

/** A `miglab migrate` killed with SIGKILL once it is migrating: what it left running in the lab. */
async function killedMidMigration(name: string) {
  const child = startMigrate(fresh(name));
  await waitFor(child, /migrate\s+QMP: migrating/);
  child.kill('SIGKILL');
  await child;
  return fx.lab.liveProcesses();
}

function fresh(name: string): string {
  const d = join(fx.runDir, name);
  mkdirSync(d, { recursive: true });
  return d;
}

describe('interrupted runs', () => {
  it.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)('%s mid-migration: exit %i, a run.json that says interrupted, nothing left', async (signal, code) => {
    const results = fresh(`int-${signal}`);
    const child = startMigrate(results);
    await waitFor(child, /migrate\s+QMP: migrating/);
    await new Promise((r) => setTimeout(r, 1500));
    child.kill(signal);
    const r = await child;
    expect(r.exitCode).toBe(code);
    expect(r.all).toMatch(/migration interrupted/);
    const report = onlyRun(results);
    expect(report).toMatchObject({ verdict: 'interrupted', ok: false, failure: `interrupted by ${signal} during migrate` });
    expect(report.outputs.interruptedBy).toBe(signal);
    // What had been measured is kept.
    expect(report.timeline.length).toBeGreaterThan(3);
    expect(report.outputs.leftovers).toEqual([]);
    expect(fx.lab.liveProcesses()).toEqual([]);
    expect((await labStatus(PREFIX)).problems).toEqual([]);
  }, 90000);
});

describe('two runs on one lab', () => {
  it('take two guest slots (addresses, taps, ports) and both complete', async () => {
    const scenario = parseScenario({ guest: { memoryMiB: 128, accel: 'tcg', diskSizeMiB: 16 }, timeoutMs: 60000 });
    const [a, b] = await Promise.all([0, 1].map(() => migrateOnLab({ lab: fx.lab, image: fx.image, scenario, dir: fx.runDir })));
    expect([a!.report.outputs.slot, b!.report.outputs.slot].sort()).toEqual([0, 1]);
    expect([a!.report.inputs.migrationUri, b!.report.inputs.migrationUri].sort()).toEqual(['tcp:10.77.0.2:4444', 'tcp:10.77.0.2:4445']);
    expect([a!.report.verdict, b!.report.verdict]).toEqual(['completed', 'completed']);
  }, 120000);
});

describe('a miglab killed with SIGKILL', () => {
  it('leaves processes that lab status names (exit 5) and the next run in that slot stops', async () => {
    const orphans = await killedMidMigration('sigkill');
    // The capture on the switch's port is the run's too (client-silence.ts), recorded like the rest.
    expect(orphans.map((p) => p.what).sort()).toEqual(
      [`miglab-probe-${fx.toolPath.split('-').pop()} in ${PREFIX}-cli`, `qemu-system-x86_64 in ${PREFIX}-dst`, `qemu-system-x86_64 in ${PREFIX}-src`, `tcpdump in ${PREFIX}-sw`].sort(),
    );
    const status = await execa('node', [MIGLAB, 'lab', 'status', '--prefix', PREFIX], { reject: false });
    expect(status.exitCode).toBe(5);
    expect(status.stdout).toMatch(/problem: left running by a miglab that is gone: qemu-system-x86_64/);
    expect(status.stdout).toMatch(/problem: guest slot g0 is still held by run .*, whose miglab \(pid \d+\) is gone/);

    const { report } = await migrateOnLab({ lab: fx.lab, image: fx.image, scenario: parseScenario({ guest: { memoryMiB: 128, accel: 'tcg', diskSizeMiB: 16 } }), dir: fx.runDir });
    expect(report.outputs.slot).toBe(0);
    expect(report.verdict).toBe('completed');
    // It said what it cleaned up.
    expect(report.outputs.reclaimed?.[0]).toMatch(/^slot g0 of run .*, whose miglab \(pid \d+\) is gone$/);
    expect(report.outputs.reclaimed).toEqual(expect.arrayContaining([expect.stringMatching(/^stopped qemu-system-x86_64 in mlhn-src/), expect.stringMatching(/^removed tap-g0 on src$/)]));
    for (const p of orphans) expect(isOwnedAlive(p)).toBe(false);
    expect((await labStatus(PREFIX)).problems).toEqual([]);
  }, 120000);
});

describe('lab down after a miglab was killed with SIGKILL', () => {
  it('stops what it left, by pid and start time, before deleting the namespaces', async () => {
    const orphans = await killedMidMigration('sigkill-down');
    expect(orphans.length).toBe(4);
    // A process of the killed run may end by itself meanwhile (seen once in CI: lab down stopped 2
    // of the 3 it then had); lab down stops those still there, and afterwards none is left.
    const alive = orphans.filter((p) => isOwnedAlive(p)).length;
    const down = await execa('node', [MIGLAB, 'lab', 'down', '--prefix', PREFIX], { reject: false });
    expect(down.exitCode).toBe(0);
    const stopped = Number(/is down \(\d+ things removed, (\d+) of them processes of runs\)/.exec(down.stdout)?.[1]);
    expect(stopped).toBeGreaterThanOrEqual(1);
    expect(stopped).toBeLessThanOrEqual(alive);
    for (const p of orphans) expect(isOwnedAlive(p)).toBe(false);
    expect((await listNetns()).filter((n) => n.startsWith(`${PREFIX}-`))).toEqual([]);
    await labUp({ prefix: PREFIX }, { timeoutMs: 30000 });
  }, 90000);
});

describe('bad input and unusable results folders', () => {
  it('are refused in one line before anything starts', async () => {
    for (const [args, said] of [
      [['--memory', '-5G'], /--memory -5G: cannot be negative; give a size like 256M/],
      [['--downtime-limit', '-1ms'], /--downtime-limit -1ms: cannot be negative/],
    ] as const) {
      const neg = await execa('node', [MIGLAB, 'migrate', '--prefix', 'mlbad', ...args], { reject: false });
      expect(neg.exitCode).toBe(2);
      expect(neg.stderr.trim().split('\n')).toHaveLength(1);
      expect(neg.stderr).toMatch(said);
    }
    const big = await execa('node', [MIGLAB, 'migrate', '--prefix', 'mlbad', '--memory', '128M', '--workload', 'dirty:512M@8M/s'], { reject: false });
    expect(big.exitCode).toBe(2);
    expect(big.stderr).toMatch(/a dirty working set of 512 MiB does not fit in a 128 MiB guest.*give the guest at least 640 MiB \(--memory 640M/);

    const ro = fresh('ro');
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=100m,ro', 'miglab-test', ro]);
    const small = fresh('small');
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'miglab-test', small]);
    try {
      const r1 = await execa('node', [MIGLAB, 'migrate', '--prefix', 'mlbad', '--results', ro], { reject: false });
      expect(r1.exitCode).toBe(2);
      expect(r1.stderr).toMatch(/the results folder .* is not writable \(EROFS: read-only file system\); choose another folder with --results DIR/);
      const r2 = await execa('node', [MIGLAB, 'migrate', '--prefix', 'mlbad', '--results', small], { reject: false });
      expect(r2.exitCode).toBe(2);
      expect(r2.stderr).toMatch(/has [\d.]+ MiB free; a run needs at least 64 MiB/);
    } finally {
      await execa('umount', [ro]);
      await execa('umount', [small]);
    }
    // Nothing was started: no lab came up for any of them.
    expect((await listNetns()).filter((n) => n.startsWith('mlbad'))).toEqual([]);
    expect(existsSync('/run/miglab/mlbad')).toBe(false);
  }, 60000);
});

describe('lab down under a run', () => {
  it('refuses without --force; with it stops the run first, and the run says the lab went', async () => {
    const results = fresh('down');
    const child = startMigrate(results);
    await waitFor(child, /migrate\s+QMP: migrating/);
    const refused = await execa('node', [MIGLAB, 'lab', 'down', '--prefix', PREFIX], { reject: false });
    expect(refused.exitCode).toBe(5);
    expect(refused.stderr).toMatch(/has a run in progress \(run \S+ \(miglab pid \d+, slot g0, \d+ processes\)\); wait for it to end, or use --force/);
    const forced = await execa('node', [MIGLAB, 'lab', 'down', '--prefix', PREFIX, '--force'], { reject: false });
    expect(forced.exitCode).toBe(0);
    expect(forced.stdout).toMatch(/is down \(\d+ things removed, \d+ of them processes of runs\)/);
    const r = await child;
    expect(r.exitCode).toBe(1);
    const report = onlyRun(results);
    expect(report.verdict).toBe('failed');
    expect(report.failure).toMatch(/the lab "mlhn" (was taken down|is being taken down)/);
    expect((await listNetns()).filter((n) => n.startsWith(`${PREFIX}-`))).toEqual([]);
    // Back up for the fixture's own teardown.
    await labUp({ prefix: PREFIX }, { timeoutMs: 30000 });
    await pollUntil('the lab to answer', async () => ((await labStatus(PREFIX)).problems.length === 0 ? true : undefined), { timeoutMs: 10000 });
    rmSync(results, { recursive: true, force: true });
  }, 90000);
});
