// One container live migration with CRIU between the two container hosts (hosts.ts), in named
// phases: the container is started on chost-src, warmed up, probed by a client at 1 kHz, then
// checkpointed (stop-and-copy: one dump; iterative: pre-dump rounds under P.Haul's stop rules, then
// a final dump of what changed since the last), its images left on the shared checkpoint export,
// restored on chost-dst, its service address moved with it, and checked: the sequence it emits
// goes on with no gap and no repeat, its process tree and log intact. Every figure comes from
// CRIU's own stats files, the agent's timing of each command, or the client's probe.
import { readFile, rm, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { MiglabError, describeError } from '../errors.js';
import { AgentClient } from '../guest/agent-client.js';
import { startProbe, type ProbeHandle, type ProbeRun } from '../guest/probe.js';
import { ensureProbeTool } from '../guest/probe-tool.js';
import type { ImageInfo } from '../image/build.js';
import type { Lab } from '../lab/index.js';
import type { ExplainedCommand } from '../util/explained-command.js';
import { pollUntil, sleep } from '../util/deadline.js';
import type { Teardown } from '../util/teardown.js';
import { criuDump, criuRestore } from './criu-argv.js';
import type { DumpStats, RestoreStats } from './criu-stats.js';
import { GUEST_CKPT_DIR, startContainerHosts, type ContainerHosts } from './hosts.js';
import { PHAUL_RULES, type DirtyPoll, type IterRules } from './stop-rules.js';
import { iterativeRounds, MEM_ROUNDS_DEFAULTS, memRounds, type MemRoundsRules, type Strategy } from './strategies.js';
import { checkpointDirOf, dirBytes, ms, readStats, runCriu, Transfer, type TransferMode } from './transfer.js';
import { lazyPagesTransferred, lazyRestore, lazyTransferDone, startLazyDump } from './lazy.js';
import { verifyContinuity, type ContinuityResult } from './verify.js';
import { DEFAULT_PERIOD_MS, parseWorkloadState, workloadArgv, type ContainerWorkload, type WorkloadState } from './workload.js';

/**
 * CRIU's frozen time, unless it is longer than the dump's process ran (plus 50 ms of timing
 * slack): then it is no measurement (CRIU 3.17.1's lazy dump reported 3358 s for a 2 s dump), and
 * the run records why instead of the figure.
 */
export function checkFrozen(frozenMs: number | null, dumpLifetimeMs: number): { ms: number | null; rejected?: string } {
  if (frozenMs === null || frozenMs <= dumpLifetimeMs + 50) return { ms: frozenMs };
  return { ms: null, rejected: `CRIU's stats-dump gave ${frozenMs.toFixed(1)} ms of frozen time for a dump that ran ${dumpLifetimeMs.toFixed(0)} ms: not a measurement, left out` };
}

/** The container's UDP service port (the workload's ping/state). */
export const SERVICE_PORT = 7700;

export interface ContainerMigrateOptions {
  readonly runId: string;
  /** The run folder (run.json and the rest are written there by record.ts). */
  readonly runDir: string;
  readonly lab: Lab;
  readonly image: Pick<ImageInfo, 'kernelPath' | 'initrdPath' | 'inputs' | 'hash'>;
  readonly cacheDir: string;
  readonly workload: ContainerWorkload;
  readonly strategy: Strategy;
  readonly transfer?: TransferMode;
  readonly rules?: IterRules;
  /** mem-rounds: when a round of memory change closes, and what the final dump may carry. */
  readonly memRounds?: MemRoundsRules;
  readonly memoryMiB: number;
  readonly vcpus: number;
  readonly cpuModel: string;
  /** Values the container emits before it is migrated (default 3). */
  readonly warmValues?: number;
  /** The workload's period (default the mode's own). */
  readonly periodMs?: number;
  /** Keep the checkpoint images (in the lab's checkpoint export) after the run. */
  readonly keepImages?: boolean;
  readonly td: Teardown;
  readonly signal: AbortSignal;
  readonly progress: (phase: string, line: string) => void;
  /** Filled as the run goes: a failed run's record says where it stopped and what was done. */
  readonly trace?: RunTrace;
}

/** Where a run is, and the CRIU steps it has done: what a failed run's record keeps. */
export interface RunTrace {
  phase: string;
  readonly steps: CriuStep[];
}

/** One CRIU command of the run: a pre-dump round, the final dump, or the restore. */
export interface CriuStep {
  readonly kind: 'pre-dump' | 'dump' | 'restore';
  /** 1-based round; the final dump is the last. */
  readonly index: number;
  /** Images directory, as the guests see it. */
  readonly dir: string;
  /** Milliseconds from the run's first CRIU command. */
  readonly atMs: number;
  /** The command's wall time as the agent timed it (fork to reap). */
  readonly wallMs: number;
  readonly maxRssKiB: number;
  readonly command: ExplainedCommand;
  readonly dump?: DumpStats;
  readonly restore?: RestoreStats;
  /** Bytes of the images written in this step's directory. */
  readonly imageBytes?: number;
  /** For a pre-dump: whether the rules let another round follow, and why. */
  readonly decision?: string;
  /** mem-rounds: the soft-dirty count read right after this pre-dump (one; an array so older runs read the same). */
  readonly dirtyPolls?: readonly DirtyPoll[];
}

export interface ContainerFigures {
  /** The final dump's frozen time from CRIU's stats (freeze end to tree killed, page writing included); null when it said none, or one it cannot have measured. */
  readonly criuFrozenMs: number | null;
  /** Why CRIU's figure was not taken: it was longer than its dump ran (seen with --lazy-pages). */
  readonly criuFrozenRejected?: string;
  /** Sum of frozen time over every round and the final dump (P.Haul's "frozen time"). */
  readonly criuFrozenTotalMs: number | null;
  readonly dumpWallMs: number;
  /** From the dump's end to the restore's start: address moved, NFS flushed. */
  readonly handoverMs: number;
  readonly restoreWallMs: number;
  /** CRIU's own restore time (stats-restore). */
  readonly criuRestoreMs: number | null;
  /** The longest silence the client saw (probe), or null when it never heard the container again. */
  readonly clientDowntimeMs: number | null;
  /** First CRIU command to the first reply from the destination. */
  readonly totalMs: number;
  readonly imageBytes: number;
  readonly preDumpRounds: number;
  /** How the images reached chost-dst. */
  readonly transfer: TransferMode;
  /** Page server: time from each dump's end until its page server had written everything and exited, summed. */
  readonly pageServerWaitMs: number;
  /** Page server: copying the final dump's other images from the export into dst's own directory (part of the hand-over). */
  readonly metaCopyMs: number;
  /** lazy: from the restore's start until chost-src had sent its last page (the container needed chost-src until then); null otherwise. */
  readonly lazyTransferMs: number | null;
  /** lazy: pages the lazy-pages daemon took from chost-src (its "UFFD transferred pages" line); null otherwise. */
  readonly lazyPages: number | null;
}

export interface ContainerRunResult {
  readonly hosts: ContainerHosts;
  readonly steps: readonly CriuStep[];
  readonly figures: ContainerFigures;
  readonly before: WorkloadState;
  readonly after: WorkloadState;
  readonly verify: ContinuityResult;
  readonly probe: ProbeRun | undefined;
  readonly workloadCommand: ExplainedCommand;
  /** Where the images were, on the lab host (removed after the run unless kept). */
  readonly imagesDir: string;
  readonly stopReason: string;
}

/** The workload's state over UDP from the client host, once it answers with at least `minN` values. */
async function waitState(agent: AgentClient, minN: number, timeoutMs: number, signal: AbortSignal): Promise<WorkloadState> {
  return pollUntil(
    `the container's state with ${minN} values`,
    async () => {
      const reply = await agent.request('state', { timeoutMs: 2000, signal }).catch(() => undefined);
      const s = reply === undefined ? undefined : parseWorkloadState(reply);
      return s && s.n >= minN ? s : undefined;
    },
    { timeoutMs, signal, intervalMs: 100 },
  );
}

export async function migrateContainer(o: ContainerMigrateOptions): Promise<ContainerRunResult> {
  const { signal, progress, td } = o;
  const trace: RunTrace = o.trace ?? { phase: '', steps: [] };
  const at = (phase: string) => void (trace.phase = phase);
  at('booting the container hosts');
  const rules = o.rules ?? PHAUL_RULES;
  const toolPath = ensureProbeTool({ cacheDir: o.cacheDir, signal });
  const hosts = await startContainerHosts({
    lab: o.lab,
    image: o.image,
    td,
    runId: o.runId,
    runDir: o.runDir,
    memoryMiB: o.memoryMiB,
    vcpus: o.vcpus,
    cpuModel: o.cpuModel,
    signal,
    progress,
  });
  const { src, dst, serviceIp } = hosts;
  const lab = hosts.lab;

  // The run's directory on the checkpoint export: /ckpt/<run> in the guests.
  const hostDir = checkpointDirOf(lab, o.runId);
  const guestDir = `${GUEST_CKPT_DIR}/${o.runId}`;
  await mkdir(hostDir, { recursive: true });
  if (!o.keepImages) td.defer(`remove the checkpoint images ${hostDir}`, () => rm(hostDir, { recursive: true, force: true }));
  const svc = `${serviceIp}/${hosts.prefixLength}`;

  if (o.strategy === 'lazy') {
    // userfaultfd for another process's memory: without it the lazy restore cannot start.
    const f = await dst.ctl.exec(['criu', 'check', '--feature', 'uffd-noncoop'], { reject: false, signal });
    if (f.exitCode !== 0) throw new MiglabError('COMMAND_FAILED', `the lazy strategy needs uffd-noncoop, and criu on ${dst.name} says: ${`${f.stdout}${f.stderr}`.trim().split('\n').slice(-2).join(' | ')}`);
  }
  // The container: PID 1 of its own PID namespace on chost-src, its service address added there.
  at('starting the container');
  const launch = workloadArgv({ workload: o.workload, port: SERVICE_PORT, bind: serviceIp, logPath: `${guestDir}/seq.log`, periodMs: o.periodMs });
  await src.ctl.exec(['ip', 'addr', 'add', svc, 'dev', src.iface], { signal });
  // Its init's pid as chost-src sees it (inside, it is PID 1): what CRIU is pointed at.
  const container = await src.ctl.spawn(launch.argv, { newPid: true, log: `${guestDir}/workload.out`, signal });
  const rootPid = container.pid;
  const client = lab.hosts.client.host;
  const agent = new AgentClient({ host: client, guestIp: serviceIp, port: SERVICE_PORT, toolPath: await lab.placeFile('client', await toolPath) });
  const warm = o.warmValues ?? 3;
  progress('start', `container started on chost-src (${launch.argv.slice(1).join(' ')}); waiting for ${warm} values`);
  // Its first values, or its end if it stops at once (its own words are in workload.out): the wait
  // allows for the period, so a slow counter is not taken for a dead one.
  const periodMs = o.periodMs ?? DEFAULT_PERIOD_MS[o.workload.mode];
  const warming = new AbortController();
  const warmed = waitState(agent, warm, 60_000 + (warm + 1) * periodMs, AbortSignal.any([signal, warming.signal]));
  const started = await Promise.race([warmed.then((s) => ({ s })), container.exited.then((e) => ({ e }))]);
  if ('e' in started) {
    warming.abort();
    await warmed.catch(() => undefined);
    const out = (await readFile(join(hostDir, 'workload.out'), 'utf8').catch(() => '')).trim().split('\n').slice(-2).join(' | ');
    throw new MiglabError('COMMAND_FAILED', `the container exited as it started (${started.e.signal ? `signal ${started.e.signal}` : `exit ${started.e.exitCode}`})${out ? `: ${out}` : ''}`);
  }
  let first = started.s;

  // The client's probe: 1 kHz pings at the service address, through the whole move.
  const probe: ProbeHandle = startProbe({ host: client, guestIp: serviceIp, port: SERVICE_PORT, maxDurationMs: 600_000, toolPath: await lab.placeFile('client', await toolPath), logFile: join(o.runDir, 'probe.csv') });
  let probeRun: ProbeRun | undefined;
  td.defer('stop the client probe', async () => void (probeRun ??= await probe.stop().catch(() => undefined)));
  await sleep(300, signal);

  const t0 = Date.now();
  const steps = trace.steps;
  const transfer = new Transfer(o.transfer ?? 'nfs', { src, dst, guestDir, hostDir, runId: o.runId, signal });
  let stopReason = 'stop-and-copy: one dump';
  // Pre-dump rounds while the tree runs on (strategies.ts); stop-and-copy has none.
  const rounds = { transfer, rootPid, src, t0, steps, signal, progress, at };
  if (o.strategy === 'iterative') stopReason = await iterativeRounds(rounds, rules);
  if (o.strategy === 'mem-rounds') stopReason = await memRounds(rounds, o.memRounds ?? MEM_ROUNDS_DEFAULTS);

  // The final dump: the tree is frozen, its remaining state written, and it is killed.
  const last = steps.length;
  at('the final dump');
  first = (await agent.request('state', { timeoutMs: 2000, signal }).then(parseWorkloadState).catch(() => undefined)) ?? first;
  const before = first;
  const dumpAt = Date.now() - t0;
  // lazy: the dump writes everything but the memory and then serves the pages (lazy.ts); its step is
  // recorded once it has sent the last of them.
  const lazyCtx = { src, dst, runId: o.runId, guestDir, hostDir, signal };
  const lazy = o.strategy === 'lazy' ? await startLazyDump(lazyCtx, rootPid) : undefined;
  const final = lazy
    ? undefined
    : await transfer.dump('final', last + 1, (to) =>
        criuDump({ pid: rootPid, imagesDir: to.imagesDir, logFile: 'dump.log', preDump: false, trackMem: last > 0, prevImagesDir: last > 0 ? `../r${last}` : undefined, pageServer: to.pageServer }),
      );
  const dumpWallMs = final ? final.result.wallUs / 1000 : lazy!.readyMs;
  const dumpStats = final?.stats;
  if (final) {
    steps.push({ kind: 'dump', index: last + 1, dir: 'final', atMs: dumpAt, wallMs: dumpWallMs, maxRssKiB: final.result.maxRssKiB, command: final.command, dump: dumpStats, imageBytes: final.imageBytes });
    progress('dump', `final dump: frozen ${ms(dumpStats?.frozenUs)?.toFixed(1) ?? '?'} ms, ${dumpStats?.pagesWritten ?? '?'} pages written, ${dumpWallMs.toFixed(0)} ms in all`);
  } else {
    progress('dump', `lazy dump: everything but the memory written in ${dumpWallMs.toFixed(0)} ms; serving the pages`);
  }

  // Hand-over: the address leaves chost-src, the source's NFS client writes back what it holds
  // (the log's last lines: CRIU checks the file's size on restore), the address comes up on dst.
  at('the hand-over (address, NFS flush)');
  const handoverStart = Date.now();
  await Promise.all([src.ctl.exec(['ip', 'addr', 'del', svc, 'dev', src.iface], { signal }), src.ctl.exec(['sync'], { signal })]);
  await dst.ctl.exec(['ip', 'addr', 'add', svc, 'dev', dst.iface], { signal });
  // Page server: the images other than the pages are on the export; they join the pages in dst's own directory.
  const metaMs = await transfer.gatherFinal();
  const handoverMs = Date.now() - handoverStart;

  at('the restore on chost-dst');
  const restoreDirs = transfer.restoreDirs('final');
  const restoreAt = Date.now() - t0;
  const lazyRestored = lazy ? await lazyRestore(lazyCtx) : undefined;
  const restoreCmd = lazyRestored?.restore ?? criuRestore({ imagesDir: restoreDirs.imagesDir, workDir: restoreDirs.workDir, logFile: 'restore.log', pidFile: 'restored.pid', detach: true });
  const restored = lazyRestored?.result ?? (await runCriu(dst, restoreCmd, join(hostDir, 'final', 'restore.log'), signal));
  const restoreStats = (await readStats(join(hostDir, 'final', 'stats-restore')))?.restore;
  steps.push({ kind: 'restore', index: last + 1, dir: 'final', atMs: restoreAt, wallMs: restored.wallUs / 1000, maxRssKiB: restored.maxRssKiB, command: restoreCmd, restore: restoreStats });
  // Tell the bridge and the client where the address is now (gratuitous ARP, as QEMU's announce).
  await dst.ctl.exec(['arping', '-U', '-c', '1', '-I', dst.iface, serviceIp], { reject: false, signal });
  progress('restore', `restored on chost-dst in ${(restored.wallUs / 1000).toFixed(0)} ms (CRIU: ${ms(restoreStats?.restoreUs)?.toFixed(1) ?? '?'} ms)`);

  at('waiting for the restored container to answer');
  const after = await waitState(agent, 0, 30_000, signal);
  const totalMs = Date.now() - t0;
  await sleep(500, signal);
  probeRun = await probe.stop({ within: { fromMs: t0 + dumpAt - 50, toMs: Date.now() } });

  // lazy: the container runs on chost-dst; its memory keeps coming from chost-src until the dump ends.
  let lazyTransferMs: number | null = null;
  let lazyPages: number | null = null;
  // How long the final dump's process ran: CRIU's frozen time cannot be longer.
  let dumpLifetimeMs = dumpWallMs;
  if (lazy) {
    at('the lazy page transfer');
    const exit = await lazyTransferDone(lazyCtx, lazy);
    lazyTransferMs = Date.now() - (t0 + restoreAt);
    dumpLifetimeMs = Date.now() - (t0 + dumpAt);
    // CRIU 3.17.1 writes a lazy dump's stats-dump with zeros and a frozen time it cannot have
    // measured (3358 s for a 2 s dump, seen here), so none of it is taken; the pages moved come
    // from the lazy-pages daemon's own log on chost-dst (flushed to the export first).
    await dst.ctl.exec(['sync'], { signal });
    lazyPages = lazyPagesTransferred(await readFile(join(hostDir, 'final', 'lazy-pages.log'), 'utf8').catch(() => ''));
    steps.splice(steps.length - 1, 0, { kind: 'dump', index: last + 1, dir: 'final', atMs: dumpAt, wallMs: dumpWallMs, maxRssKiB: exit.maxRssKiB, command: lazy.command, imageBytes: await dirBytes(join(hostDir, 'final')) });
    progress('dump', `lazy dump ended ${lazyTransferMs} ms after the restore began: ${lazyPages === null ? 'the lazy-pages log does not say how many pages moved' : `${lazyPages} pages moved to chost-dst`}`);
  }

  at('checking the container');
  // The destination's NFS client holds the log's newest lines until it writes them back: flushed
  // first, so the file on the export has at least the values `after` counted.
  await dst.ctl.exec(['sync'], { signal });
  const log = await readFile(join(hostDir, 'seq.log'), 'utf8').catch((err: unknown) => {
    progress('verify', `cannot read the sequence log: ${describeError(err)}`);
    return undefined;
  });
  const verify = verifyContinuity({ mode: o.workload.mode, before, after, log });
  const frozen = steps.map((s) => s.dump?.frozenUs).filter((x): x is number => x !== undefined);
  const frozenCheck = checkFrozen(ms(dumpStats?.frozenUs), dumpLifetimeMs);
  const figures: ContainerFigures = {
    criuFrozenMs: frozenCheck.ms,
    ...(frozenCheck.rejected ? { criuFrozenRejected: frozenCheck.rejected } : {}),
    criuFrozenTotalMs: frozenCheck.ms !== null && frozen.length === steps.filter((s) => s.kind !== 'restore').length ? frozen.reduce((a, b) => a + b, 0) / 1000 : null,
    dumpWallMs,
    handoverMs,
    restoreWallMs: restored.wallUs / 1000,
    criuRestoreMs: ms(restoreStats?.restoreUs),
    clientDowntimeMs: probeRun.silentAtEndMs !== null ? null : probeRun.longestGapMs,
    totalMs,
    imageBytes: steps.reduce((a, s) => a + (s.imageBytes ?? 0), 0),
    preDumpRounds: steps.filter((s) => s.kind === 'pre-dump').length,
    transfer: transfer.mode,
    pageServerWaitMs: transfer.waitedMs,
    metaCopyMs: metaMs,
    lazyTransferMs,
    lazyPages,
  };
  return { hosts, steps, figures, before, after, verify, probe: probeRun, workloadCommand: launch, imagesDir: hostDir, stopReason };
}
