// The hosts benchmark (`miglab bench --which hosts`): the same idle and busy migrations on the
// embedded lab and on SSH hosts, to measure what controlling QEMU over SSH costs a run and to show
// that it changes none of QEMU's figures. One embedded lab of its own is brought up and SSH hosts
// are started in its namespaces (src/lab/ssh-hosts.ts), so both modes use the same bridge, NFS
// export, QEMU and guest: what differs is only how miglab reaches them. Runs alternate between the
// two modes, so a drift of the shared machine's load falls on both. The raw cost of control (a
// command, a QMP round trip) is measured apart from the runs. The arithmetic and the summary are
// in hosts-figures.ts; figures go to hosts.json, hosts.csv and hosts.md under the output folder.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { basename, join, posix } from 'node:path';
import { performance } from 'node:perf_hooks';
import { migrateOnLab, preflight } from '../api.js';
import { useHostsLab } from '../hosts/use.js';
import { labDown, labUp, type Lab, type LabHost } from '../lab/index.js';
import { maxGuestIndex } from '../lab/spec.js';
import { SSH_HOSTS_PARENT, startSshHosts } from '../lab/ssh-hosts.js';
import { parseScenario, type Scenario, type ScenarioInput } from '../migrate/scenario.js';
import type { Progress } from '../progress/progress.js';
import { QmpClient } from '../qmp/client.js';
import { makePrivateDir, PRIVATE } from '../util/private.js';
import { withDeadline } from '../util/deadline.js';
import { withTeardown } from '../util/teardown.js';
import { benchRun, caseFigures, controlCost, hostsBenchMarkdown, hostsSpread, JUDGED_BY, runsCsv, SSH_COST_AIM_MS, type BenchMode, type ControlAction, type ControlCost, type HostsBenchResult, type HostsBenchRun } from './hosts-figures.js';

/** The bench's own embedded lab, so it never takes over a lab a user has up. */
export const HOSTS_BENCH_PREFIX = 'mlbhost';
/** Round trips of each control action a side. */
const CONTROL_SAMPLES = 20;
const LAB_TIMEOUT_MS = 60_000;
const STEP_TIMEOUT_MS = 20_000;
/** Putting one image file (the kernel is 65 MB) on a host over SFTP. */
const PLACE_TIMEOUT_MS = 60_000;
/** The embedded lab's guest slot for every embedded run; the SSH hosts' guests take the others. */
const EMBEDDED_SLOT = 0;

export const HOSTS_BENCH_CASES: Readonly<Record<'idle' | 'busy', ScenarioInput>> = {
  idle: { guest: { memoryMiB: 128, accel: 'tcg', diskSizeMiB: 16 }, timeoutMs: 60_000 },
  // Dirtying a third of its RAM while migrating, capped so that it still converges under TCG here
  // (measured: 3 passes, about 2.4 s of total time).
  busy: { guest: { memoryMiB: 256, accel: 'tcg', diskSizeMiB: 16 }, workload: 'dirty:32M@8M/s,random', parameters: { maxBandwidthMiBps: 64 }, timeoutMs: 60_000 },
};

export interface HostsBenchOptions {
  readonly outDir: string;
  /** Runs a side and scenario (default 3). */
  readonly repetitions?: number;
  readonly progress?: Progress;
  readonly signal?: AbortSignal;
}

/** Milliseconds each of `n` calls of `action` took, one after another. */
async function timeEach(n: number, action: () => Promise<unknown>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await action();
    times.push(performance.now() - t0);
  }
  return times;
}

/**
 * The round trips of control on one host: a command run to completion, and QMP query-status to
 * a QEMU there (no guest: `-machine none`, paused), through the host's own socket connection.
 */
async function controlRoundTrips(labHost: LabHost, signal: AbortSignal): Promise<Record<ControlAction, number[]>> {
  const { host } = labHost;
  const step = { timeoutMs: STEP_TIMEOUT_MS, signal };
  const runTrue = await timeEach(CONTROL_SAMPLES, () => host.run(['true'], step));
  const dir = await host.makeTempDir(labHost.runDir, 'bench-qmp-');
  const socket = posix.join(dir, 'qmp.sock');
  const qemu = host.spawn(['qemu-system-x86_64', '-machine', 'none', '-nodefaults', '-display', 'none', '-S', '-qmp', `unix:${socket},server=on,wait=off`]);
  try {
    const qmp = await QmpClient.connect(socket, { ...step, name: `bench QEMU on ${labHost.where}`, open: () => host.connectUnix(socket) });
    try {
      return { runTrue, qmpQueryStatus: await timeEach(CONTROL_SAMPLES, () => qmp.queryStatus(step)) };
    } finally {
      await qmp.close();
    }
  } finally {
    await qemu.stop(2000);
    await host.remove(dir);
  }
}

interface Timed<T> {
  readonly value: T;
  readonly ms: number;
}

async function timed<T>(work: Promise<T>): Promise<Timed<T>> {
  const t0 = performance.now();
  const value = await work;
  return { value, ms: performance.now() - t0 };
}

export async function runHostsBench(opts: HostsBenchOptions): Promise<{ files: { json: string; csv: string; markdown: string }; result: HostsBenchResult }> {
  const repetitions = opts.repetitions ?? 3;
  const scenarios = Object.fromEntries(Object.entries(HOSTS_BENCH_CASES).map(([name, input]) => [name, parseScenario(input)])) as Record<string, Scenario>;
  const image = await preflight(Object.values(scenarios).map((s) => s.guest.cpuModel));
  await makePrivateDir(opts.outDir);
  const progress = opts.progress ?? (() => undefined);
  const result = await withTeardown(async (td, signal) => {
    // Keys, sshd configs and the lab's export live where the hosts see them (not /tmp or /run).
    const dir = await mkdtemp(join(SSH_HOSTS_PARENT, 'miglab-bench-hosts-'));
    td.defer(`remove ${dir}`, () => rm(dir, { recursive: true, force: true }));
    progress('bench', `hosts: bringing up the embedded lab ${HOSTS_BENCH_PREFIX}`);
    const lab = await timed(labUp({ prefix: HOSTS_BENCH_PREFIX, exportDir: join(dir, 'export') }, { timeoutMs: LAB_TIMEOUT_MS, signal, ephemeral: true }));
    td.defer(`take lab ${HOSTS_BENCH_PREFIX} down`, () => labDown(HOSTS_BENCH_PREFIX, { timeoutMs: LAB_TIMEOUT_MS }).then(() => undefined));
    progress('bench', 'hosts: starting sshd in its namespaces');
    // Embedded runs take slot 0, the hosts the lab's other slots: no address is ever both labs'.
    const ssh = await timed(startSshHosts(lab.value, dir, { timeoutMs: 30_000, signal, guestSlots: { first: EMBEDDED_SLOT + 1, last: maxGuestIndex(lab.value.spec) } }));
    td.defer('stop the SSH hosts and all they ran', () => ssh.value.stop({ timeoutMs: 20_000 }));
    const hostsLab = await timed(useHostsLab(td, ssh.value.hostsFile, { signal, cpuModels: Object.values(scenarios).map((s) => s.guest.cpuModel) }));
    const labs: Record<BenchMode, Lab> = { embedded: lab.value, hosts: hostsLab.value };
    // The guest image goes onto the hosts before anything is timed, one file at a time, each
    // within a deadline: a copy that hangs (seen once here, on dst's initrd) fails the bench with
    // its name instead of holding the machine's QEMU lock for ever.
    const placing = await timed(
      (async () => {
        for (const role of ['src', 'dst'] as const) {
          for (const file of [image.kernelPath, image.initrdPath]) {
            await withDeadline(`putting ${basename(file)} on the ${role} host`, hostsLab.value.placeFile(role, file), { timeoutMs: PLACE_TIMEOUT_MS, signal });
          }
        }
      })(),
    );

    progress('bench', `hosts: ${CONTROL_SAMPLES} round trips of each control action a side`);
    const trips = { embedded: await controlRoundTrips(labs.embedded.hosts.src, signal), hosts: await controlRoundTrips(labs.hosts.hosts.src, signal) };
    const control = Object.fromEntries((['runTrue', 'qmpQueryStatus'] as const).map((a) => [a, controlCost(trips.embedded[a], trips.hosts[a])])) as Record<ControlAction, ControlCost>;

    const runOnce = async (name: string, mode: BenchMode, repetition: number): Promise<HostsBenchRun> => {
      const t0 = performance.now();
      const { report, dir: runDir } = await migrateOnLab({ lab: labs[mode], image, scenario: scenarios[name]!, dir: join(opts.outDir, 'runs'), runName: `bench-${name}-${mode}`, signal, progress, guestIndex: mode === 'embedded' ? EMBEDDED_SLOT : undefined });
      return benchRun({ case: name, mode, repetition, wallMs: performance.now() - t0, runDir, report });
    };
    // The first run on fresh hosts puts the probe tool there (once, by hash), and each lab's first
    // run warms the page cache: one run a side is recorded as a warm-up, apart from those averaged.
    const warmup: HostsBenchRun[] = [];
    for (const mode of ['embedded', 'hosts'] as const) {
      progress('bench', `hosts: warm-up run, ${mode}`);
      warmup.push(await runOnce('idle', mode, 0));
    }
    const runs: HostsBenchRun[] = [];
    for (const name of Object.keys(scenarios)) {
      for (let i = 1; i <= repetitions; i++) {
        const order: BenchMode[] = i % 2 === 1 ? ['embedded', 'hosts'] : ['hosts', 'embedded'];
        for (const mode of order) {
          progress('bench', `hosts: ${name} ${i}/${repetitions} on the ${mode === 'embedded' ? 'embedded lab' : 'SSH hosts'}`);
          runs.push(await runOnce(name, mode, i));
        }
      }
    }
    const cases = Object.fromEntries(Object.keys(scenarios).map((name) => [name, caseFigures(runs.filter((r) => r.case === name))]));
    const bench: HostsBenchResult = {
      benchmark: `the same idle and busy migrations on the embedded lab and on SSH hosts in its namespaces (guest image ${image.hash.slice(0, 12)}, TCG)`,
      measuredAt: new Date().toISOString(),
      aims: { sshCostPerRunMs: SSH_COST_AIM_MS, qemuFigures: 'no change beyond run-to-run spread' },
      judgedBy: JUDGED_BY,
      repetitions,
      scenarios: HOSTS_BENCH_CASES,
      setupMs: { 'embedded lab up': lab.ms, 'sshd started in its namespaces': ssh.ms, 'hosts connected and checked (QEMU, CPU models)': hostsLab.ms, 'kernel and initrd put on src and dst': placing.ms },
      control,
      warmup,
      cases,
      spread: hostsSpread(runs),
      runs,
    };
    return bench;
  }, opts.signal);
  const files = { json: join(opts.outDir, 'hosts.json'), csv: join(opts.outDir, 'hosts.csv'), markdown: join(opts.outDir, 'hosts.md') };
  await writeFile(files.json, JSON.stringify(result, null, 2) + '\n', PRIVATE);
  await writeFile(files.csv, runsCsv(result.runs, result.warmup), PRIVATE);
  await writeFile(files.markdown, hostsBenchMarkdown(result), PRIVATE);
  return { files, result };
}
