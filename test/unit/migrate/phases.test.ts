// The engine's phases one by one, each on a pair of fake QEMUs (real Vm objects whose processes
// are a fake host's and whose QMP monitors are fake servers on real unix sockets) and a fake lab
// that is only what the boot uses: the boot and its watchers, what configure sends each side and
// records, the migrate command by miglab and by hand, the verdict of each way a migration ends,
// and the record a failing qemu-img check turns into a failed run.
import { FakeHost } from '../../support/fake-host.js';
import { LocalHost } from '../../../src/host/local.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FaultRunner } from '../../../src/fault/runner.js';
import { AgentClient } from '../../../src/guest/agent-client.js';
import type { ImageInputs } from '../../../src/image/inputs.js';
import { parseLabSpec } from '../../../src/lab/index.js';
import type { AccelDecision } from '../../../src/machine/accel.js';
import { parseMachineSpec } from '../../../src/machine/spec.js';
import { VmLaunchError } from '../../../src/machine/vm.js';
import type { MigrationInfo } from '../../../src/migration/info.js';
import type { MigrationHooks } from '../../../src/migrate/engine.js';
import { RunGuard } from '../../../src/migrate/guard.js';
import { boot, type BootRun, type Booted, type GuestLauncher, type Slot } from '../../../src/migrate/phases/boot.js';
import { configure, type ConfigureRun } from '../../../src/migrate/phases/configure.js';
import { migrate, type MigrateRun, type Migrated } from '../../../src/migrate/phases/migrate.js';
import { buildReport, hostFacts, type RecordRun } from '../../../src/migrate/phases/record.js';
import { verify, type VerifyRun } from '../../../src/migrate/phases/verify.js';
import { startedByOf } from '../../../src/migrate/run-state.js';
import { ScenarioSchema, type ScenarioInput } from '../../../src/migrate/scenario.js';
import { Teardown } from '../../../src/util/teardown.js';
import { FakePair } from '../../support/fake-guests.js';

const MiB = 1024 * 1024;
const SLOT: Slot = {
  index: 0,
  guestIp: '10.77.0.100',
  dstAddress: '10.77.0.2',
  uri: 'tcp:10.77.0.2:4444',
  machine: parseMachineSpec({ name: 'g0', accel: 'tcg', memoryMiB: 128, mac: '52:54:00:77:00:00', ip: '10.77.0.100/24' }),
};
const ACCEL: AccelDecision = { requested: 'tcg', used: 'tcg', kvmUsable: undefined, reason: 'tcg was asked for' };
const INPUTS: ImageInputs = {
  recipeVersion: 3,
  kernel: { metaPackage: 'linux-image-amd64', package: 'linux-image-6.1.0-57-amd64', version: '6.1.192-3' },
  packages: {},
  sources: {},
  hostFiles: {},
  modules: [],
  agentCflags: [],
};

type PhaseRun = BootRun & ConfigureRun & MigrateRun & VerifyRun & RecordRun & { readonly lines: string[] };

let dir: string;
let pair: FakePair;
let td: Teardown;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'miglab-phases-'));
  td = new Teardown();
});
afterEach(async () => {
  await td.run();
  await pair.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A run's shared state as the phases see it, on the fake pair and a lab that is only what they use. */
function fakeRun(input: ScenarioInput = {}, hooks?: MigrationHooks): PhaseRun {
  const lines: string[] = [];
  const guard = new RunGuard();
  return {
    ctx: { runId: 'unit-run', runDir: dir, cacheDir: dir, hooks, image: { kernelPath: '/fake/vmlinux', initrdPath: '/fake/initrd.img', hash: 'f00d', kernelVersion: '6.1.0-57-amd64', inputs: INPUTS } },
    lab: {
      hosts: { src: { netns: 'mlut-src', where: 'namespace mlut-src', host: pair.host } },
      nfs: { serverIp: '10.77.0.1', exportDir: dir, url: (f) => `nfs://10.77.0.1${dir}/${f}`, host: pair.host, path: (f) => join(dir, f) },
      stillUp: () => undefined,
      nfsServerState: () => ({ state: 'running', pid: 4242 }),
      tlsCredentials: async () => join(dir, 'tls'),
      clockOffset: async () => ({ offsetMs: 0, uncertaintyMs: 0, method: 'one-clock' }),
      spec: parseLabSpec({ prefix: 'mlut' }),
      shaping: undefined,
    },
    scenario: ScenarioSchema.parse({ guest: { accel: 'tcg' }, sampleIntervalMs: 10, ...input }),
    guard,
    td,
    progress: (phase, detail) => lines.push(`${phase}: ${detail ?? ''}`),
    lines,
    started: Date.now(),
    out: {},
    phases: {},
    steps: [],
    processMsAtStart: 0,
    timeline: [],
    events: [],
    faults: new FaultRunner([], { inject: () => Promise.reject(new Error('no faults in these tests')), teardown: td, onError: () => undefined }),
    held: {},
    record: { uri: SLOT.uri, machine: SLOT.machine, accel: ACCEL, qemu: { version: 'unknown' }, parametersInForce: {}, capabilitiesInForce: {}, migrateCommand: '', monitorCommands: [], startedBy: startedByOf(hooks), failedLaunch: {} },
    phase: 'boot',
    verdict: 'failed',
  };
}

async function until(what: string, ok: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A query-migrate reply as QEMU 7.2 gives it. */
function migrating(status: string, transferredMiB: number, remainingMiB: number) {
  const ram = { transferred: transferredMiB * MiB, remaining: remainingMiB * MiB, total: 128 * MiB, 'dirty-sync-count': 1, 'dirty-pages-rate': 0, mbps: 100, duplicate: 0, normal: 0, 'normal-bytes': 0, skipped: 0, 'page-size': 4096 };
  return { return: status === 'completed' ? { status, 'total-time': 900, downtime: 40, 'setup-time': 5, ram } : { status, 'total-time': 0, ram } };
}

/** The source migrates once asked (by miglab's migrate or a person), completing after a few samples. */
function completesAfterAsked(): void {
  let asked = -1;
  pair.src.on('migrate', () => ((asked = 0), { return: {} }));
  pair.src.on('query-migrate', () => (asked < 0 ? { return: {} } : asked++ < 2 ? migrating('active', 40 * asked, 80) : migrating('completed', 130, 0)));
}

async function booted(run: PhaseRun, launch: GuestLauncher = pair.launch): Promise<Booted> {
  return boot(run, SLOT, ACCEL, launch);
}

describe('boot', () => {
  beforeEach(async () => (pair = await FakePair.start(dir)));

  it("creates the data disk, starts both QEMUs (recording a relaunch), and waits for the guest's heartbeat", async () => {
    const run = fakeRun();
    let hung = true;
    const b = await booted(run, (o) => {
      // As startLabGuest does for a QEMU that hung before greeting: say so, then launch again.
      if (o.side === 'src' && hung) {
        hung = false;
        o.onRelaunch?.('blocked in nfs_mount (libnfs)');
      }
      return pair.launch(o);
    });
    expect(run.held).toMatchObject({ src: b.src, dst: b.dst, diskFile: 'unit-run-g0.qcow2' });
    expect(run.out.relaunched).toEqual([{ side: 'source', where: 'blocked in nfs_mount (libnfs)' }]);
    expect(run.lines).toContain('boot: source QEMU hung while starting and is launched again: blocked in nfs_mount (libnfs)');
    expect(pair.host.ran.find((argv) => argv[0] === 'qemu-img' && argv[1] === 'create')).toContain(join(dir, 'unit-run-g0.qcow2'));
    expect(b.dst.command.argv).toContain('-incoming');
    expect(run.phases.bootToHeartbeatMs).toBeGreaterThanOrEqual(run.phases.qemuStartMs!);
    expect(run.guard.tripped).toBeUndefined();
  });

  it('keeps the command line of a QEMU that failed to start, for the report', async () => {
    const run = fakeRun();
    const command = { argv: ['qemu-system-x86_64', '-cpu', 'bogus'], explained: [{ args: ['-cpu', 'bogus'], why: 'the CPU model' }] };
    const refused = new VmLaunchError('unit (dst)', command, { exitCode: 1, signal: null }, "qemu-system-x86_64: unable to find CPU model 'bogus'");
    // Both refuse (an unknown CPU model is unknown to both): neither is left running for the teardown.
    await expect(booted(run, () => Promise.reject(refused))).rejects.toBe(refused);
    expect(run.record.failedLaunch).toEqual({ source: command, destination: command });
  });

  it('watches each QEMU: the destination dying before the migration ends the run, naming it', async () => {
    const run = fakeRun();
    const b = await booted(run);
    pair.dst.process!.exit({ exitCode: 1, signal: null });
    await until('the watcher trips', () => run.guard.tripped !== undefined);
    expect(run.guard.tripped?.source).toBe('qemu-exit');
    expect(run.guard.tripped?.error.message).toContain(`the destination QEMU (dst, pid ${b.dst.process.pid}) exited with code 1`);
    expect(run.guard.signal.aborted).toBe(true);
  });

  it("watches the guest's console: an OOM kill on the source ends the run and is kept as guestTrouble", async () => {
    const run = fakeRun();
    await booted(run);
    pair.src.process!.print('[   12.5] Out of memory: Killed process 245 (miglab-agent) total-vm:10240kB, anon-rss:2048kB');
    await until('the watcher trips', () => run.guard.tripped !== undefined);
    expect(run.guard.tripped?.source).toBe('console');
    expect(run.out.guestTrouble).toMatchObject({ side: 'source', kind: 'oom' });
  });
});

describe('configure', () => {
  beforeEach(async () => (pair = await FakePair.start(dir)));

  it('sets events and capabilities on both sides, parameters on the source, and records what QEMU says is in force', async () => {
    const run = fakeRun({ parameters: { maxBandwidthMiBps: 64, downtimeLimitMs: 100 }, capabilities: { xbzrle: true } });
    const c = await configure(run, await booted(run));
    for (const side of [pair.src, pair.dst]) {
      expect(side.sent('migrate-set-capabilities').map((r) => r.arguments)).toEqual([
        { capabilities: [{ capability: 'events', state: true }, { capability: 'xbzrle', state: true }] },
      ]);
    }
    expect(pair.src.sent('migrate-set-parameters').map((r) => r.arguments)).toEqual([{ 'max-bandwidth': 64 * MiB, 'downtime-limit': 100 }]);
    expect(pair.dst.sent('migrate-set-parameters')).toEqual([]);
    // What is in force is what the source answered, defaults included.
    expect(c.parametersInForce).toEqual(pair.src.params);
    expect(c.parametersInForce['max-bandwidth']).toBe(64 * MiB);
    expect(c.capabilitiesInForce).toMatchObject({ events: true, xbzrle: true, multifd: false });
    expect(run.record).toMatchObject({ parametersInForce: c.parametersInForce, capabilitiesInForce: c.capabilitiesInForce, qemu: c.qemu });
    expect(c.qemu.version).toBe('7.2.22');
    expect(run.record.monitorCommands.map((l) => (JSON.parse(l) as { execute: string }).execute)).toEqual(['migrate-set-capabilities', 'migrate-set-parameters']);
  });

  it('records the events of both sides from then on', async () => {
    const run = fakeRun();
    await configure(run, await booted(run));
    pair.src.server.emit('MIGRATION', { status: 'setup' });
    pair.dst.server.emit('RESUME');
    await until('both events arrive', () => run.events.length === 2);
    expect(run.events.map((e) => [e.side, e.event])).toEqual(
      expect.arrayContaining([
        ['source', 'MIGRATION'],
        ['destination', 'RESUME'],
      ]),
    );
  });
});

describe('migrate', () => {
  beforeEach(async () => (pair = await FakePair.start(dir)));

  it("by the engine: sends migrate to the slot's URI, samples until QEMU completes, and measures each QEMU's CPU", async () => {
    const run = fakeRun();
    const b = await booted(run);
    const c = await configure(run, b);
    completesAfterAsked();
    const m = await migrate(run, b, c);
    expect(pair.src.sent('migrate').map((r) => r.arguments)).toEqual([{ uri: SLOT.uri }]);
    expect(m.migrateCommand).toBe(JSON.stringify({ execute: 'migrate', arguments: { uri: SLOT.uri } }));
    expect(run.record.migrateCommand).toBe(m.migrateCommand);
    expect(m.drive).toMatchObject({ end: 'final', final: { status: 'completed' } });
    expect(run.final).toBe(m.drive.final);
    expect(run.timeline.map((s) => s.status)).toEqual(['active', 'active', 'completed']);
    expect(run.guard.migrateSentAt).toBeGreaterThan(0);
    expect(m.qemuCpuMs.source).toBeGreaterThanOrEqual(0);
    expect(m.inForce).toBeUndefined();
  });

  it('by hand: sends no migrate, and reads again what is in force once the person has started', async () => {
    const said = 'by hand at the source\'s monitor (a migration to tcp:10.77.0.2:4444)';
    const run = fakeRun({}, {
      byHand: {
        waitMs: 5000,
        awaitMigrate: async ({ uri, began }) => {
          // The person lowers the downtime limit at their own monitor, then migrates.
          pair.src.params['downtime-limit'] = 50;
          began(Date.now());
          return `by hand at the source's monitor (a migration to ${uri})`;
        },
      },
    });
    const b = await booted(run);
    const c = await configure(run, b);
    expect(c.parametersInForce['downtime-limit']).toBe(300);
    pair.src.on('query-migrate', () => migrating('completed', 130, 0));
    const m = await migrate(run, b, c);
    expect(pair.src.sent('migrate')).toEqual([]);
    expect(m.migrateCommand).toBe(said);
    expect(m.inForce?.parametersInForce['downtime-limit']).toBe(50);
    expect(run.record.parametersInForce['downtime-limit']).toBe(50);
    expect(run.record.startedBy).toBe('hand');
    expect(m.drive.final.status).toBe('completed');
  });
});

describe('verify', () => {
  beforeEach(async () => (pair = await FakePair.start(dir)));

  const completed: MigrationInfo = { status: 'completed', totalTimeMs: 900, downtimeMs: 40 };
  const ends: [string, Migrated['drive'], string, string | undefined][] = [
    ['completed', { final: completed, end: 'final' }, 'completed', undefined],
    ['stall', { final: { status: 'cancelled' }, end: 'stall', stall: { sinceMs: 200, forMs: 1000, transferredBytes: 7 * MiB, status: 'active', samples: 9 } }, 'stalled', 'STALLED'],
    ['deadline', { final: { status: 'cancelled' }, end: 'deadline' }, 'did-not-converge', 'NOT_CONVERGED'],
    ['failed', { final: { status: 'failed', errorDesc: 'Unable to write to socket: Connection reset by peer' }, end: 'final' }, 'failed', 'QEMU_FAILED'],
  ];

  it.each(ends)('a drive that ended %s: verdict and failedIn follow, and the guest is checked where it is', async (_end, drive, verdict, code) => {
    const run = fakeRun();
    const b = await booted(run);
    const switched = drive.final.status === 'completed';
    if (switched) pair.dst.status = 'running';
    // The guest beats on, on the side that has it.
    pair.keepBeating(() => (switched ? pair.dst : pair.src), 20);
    run.phase = 'conclude';
    run.final = drive.final;
    const instrumented = { agent: new AgentClient({ host: pair.host, guestIp: SLOT.guestIp, toolPath: '/fake/miglab-probe' }) };
    const v = await verify(run, b, instrumented, { drive, migrateCommand: 'migrate', qemuCpuMs: {} });
    expect(v.verdict).toBe(verdict);
    expect(v.failedIn).toEqual(code === undefined ? undefined : { phase: 'conclude', code });
    expect(v.checkedOn).toBe(switched ? 'destination' : 'source');
    if (switched) {
      expect(run.out.heartbeat?.continuous).toBe(true);
      expect(run.out.destinationStatus).toBe('running');
    } else {
      expect(v.failure).toMatch(/the source kept running \(running\) with its heartbeat going on$/);
      expect(run.out.sourceStatusAfter).toBe('running');
    }
    if (drive.final.errorDesc) expect(v.failure).toContain(drive.final.errorDesc);
  });
});

describe('record', () => {
  it.each([
    ['consistent', 0],
    ['found inconsistent', 2],
  ])('a completed run whose shared disk qemu-img check %s', async (_what, exit) => {
    pair = await FakePair.start(dir, { qemuImgCheckExit: exit });
    const run = fakeRun();
    const b = await booted(run);
    const c = await configure(run, b);
    completesAfterAsked();
    const m = await migrate(run, b, c);
    pair.dst.status = 'running';
    pair.keepBeating(() => pair.dst, 20);
    run.phase = 'conclude';
    await verify(run, b, { agent: new AgentClient({ host: pair.host, guestIp: SLOT.guestIp, toolPath: '/fake/miglab-probe' }) }, m);
    run.phase = 'cleanup';
    // Cleaning up stops both QEMUs, then checks the disk nobody has open any more.
    expect(await td.run()).toEqual([]);
    const finishedAtMs = Date.now();
    const r = buildReport(run, { accel: ACCEL, host: await hostFacts(new LocalHost()), finishedAtMs });
    expect(r.outputs.qemuImgCheck?.exitCode).toBe(exit);
    if (exit === 0) {
      expect(r).toMatchObject({ ok: true, verdict: 'completed', failure: undefined, failedIn: undefined });
    } else {
      expect(r).toMatchObject({ ok: false, verdict: 'failed', failedIn: { phase: 'cleanup', code: 'DISK_CHECK' } });
      expect(r.failure).toContain(r.outputs.qemuImgCheck!.meaning);
    }
    expect(r.outputs).toMatchObject({ status: 'completed', totalTimeMs: 900, downtimeMs: 40 });
    expect(r.inputs).toMatchObject({ migrationUri: SLOT.uri, startedBy: 'miglab', migrateCommand: m.migrateCommand, qemu: c.qemu });
    expect(r.inputs.commands.source.argv).toEqual(b.src.command.argv);
    expect(r.wallMs).toBe(finishedAtMs - run.started);
  });
});

describe('hostFacts', () => {
  it("reads the source host's facts on that host, and says unknown for a host that cannot be asked", async () => {
    const host = new FakeHost('root@10.0.0.1', {
      run: () => ({ stdout: '6.1.0-28-amd64\n8\nMemTotal:       16318480 kB\nmodel name\t: Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz' }),
    });
    expect(await hostFacts(host)).toMatchObject({ kernel: '6.1.0-28-amd64', cpus: 8, memTotalMiB: 15936, cpuModel: 'Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz', machine: 'root@10.0.0.1' });
    const lost = new FakeHost('root@10.0.0.2', { run: () => ({ exitCode: 255, stderr: 'connection lost' }) });
    expect(await hostFacts(lost)).toMatchObject({ kernel: 'unknown', cpus: 0, machine: 'root@10.0.0.2' });
  });
});
