// One container live migration with CRIU between the two container hosts (hosts.ts), in named
// phases: the container is started on chost-src, warmed up, probed by a client at 1 kHz, then
// checkpointed (stop-and-copy: one dump; iterative: pre-dump rounds under P.Haul's stop rules, then
// a final dump of what changed since the last), its images left on the shared checkpoint export,
// restored on chost-dst, its service address moved with it, and checked: the sequence it emits
// goes on with no gap and no repeat, its process tree and log intact. Every figure comes from
// CRIU's own stats files, the agent's timing of each command, or the client's probe.
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MiglabError, describeError } from '../errors.js';
import { AgentClient } from '../guest/agent-client.js';
import type { GuestExecResult } from '../guest/control-client.js';
import { startProbe, type ProbeHandle, type ProbeRun } from '../guest/probe.js';
import { ensureProbeTool } from '../guest/probe-tool.js';
import type { Lab } from '../lab/index.js';
import type { ExplainedCommand } from '../util/explained-command.js';
import { pollUntil, sleep } from '../util/deadline.js';
import type { Teardown } from '../util/teardown.js';
import { criuDump, criuRestore } from './criu-argv.js';
import { decodeCriuStats, type DumpStats, type RestoreStats } from './criu-stats.js';
import { GUEST_CKPT_DIR, startContainerHosts, type ContainerHost, type ContainerHosts } from './hosts.js';
import { PHAUL_RULES, shouldContinue, type IterRules } from './stop-rules.js';
import { verifyContinuity, type ContinuityResult } from './verify.js';
import { parseWorkloadState, workloadArgv, type ContainerWorkload, type WorkloadState } from './workload.js';
import type { ImageInfo } from '../image/build.js';

export const STRATEGIES = ['stop-and-copy', 'iterative'] as const;
export type Strategy = (typeof STRATEGIES)[number];

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
  readonly rules?: IterRules;
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
}

export interface ContainerFigures {
  /** The final dump's frozen time from CRIU's stats (freeze end to tree killed, page writing included). */
  readonly criuFrozenMs: number | null;
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

async function dirBytes(dir: string): Promise<number> {
  if (!existsSync(dir)) return 0;
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) if (e.isFile()) total += (await stat(join(dir, e.name))).size;
  return total;
}

async function readStats(file: string): Promise<ReturnType<typeof decodeCriuStats> | undefined> {
  return existsSync(file) ? decodeCriuStats(await readFile(file), file) : undefined;
}

const ms = (us: number | undefined) => (us === undefined ? null : us / 1000);

/** Run a CRIU command in a guest; on failure, the tail of its log (CRIU's own words) is the error. */
async function runCriu(h: ContainerHost, cmd: ExplainedCommand, logOnHost: string, signal: AbortSignal): Promise<GuestExecResult> {
  const r = await h.ctl.exec(cmd.argv, { reject: false, timeoutMs: 120_000, signal });
  if (r.exitCode === 0) return r;
  const log = existsSync(logOnHost) ? await readFile(logOnHost, 'utf8') : '';
  const errors = log.split('\n').filter((l) => /Error|FAILED/.test(l)).slice(-3).map((l) => l.replace(/^\(\s*[\d.]+\)\s*/, ''));
  throw new MiglabError('COMMAND_FAILED', `${cmd.argv.slice(0, 2).join(' ')} on ${h.name} exited ${r.exitCode}: ${errors.join(' | ') || r.stderr.trim() || 'no error in its log'}`, {
    context: { argv: cmd.argv, log: logOnHost },
  });
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
  const hostDir = join(lab.paths.ckptDir, o.runId);
  const guestDir = `${GUEST_CKPT_DIR}/${o.runId}`;
  await mkdir(hostDir, { recursive: true });
  if (!o.keepImages) td.defer(`remove the checkpoint images ${hostDir}`, () => rm(hostDir, { recursive: true, force: true }));
  const svc = `${serviceIp}/${hosts.prefixLength}`;

  // The container: PID 1 of its own PID namespace on chost-src, its service address added there.
  const launch = workloadArgv({ workload: o.workload, port: SERVICE_PORT, bind: serviceIp, logPath: `${guestDir}/seq.log`, periodMs: o.periodMs });
  await src.ctl.exec(['ip', 'addr', 'add', svc, 'dev', src.iface], { signal });
  // Its init's pid as chost-src sees it (inside, it is PID 1): what CRIU is pointed at.
  const { pid: rootPid } = await src.ctl.spawn(launch.argv, { newPid: true, log: `${guestDir}/workload.out`, signal });
  const client = lab.hosts.client.host;
  const agent = new AgentClient({ host: client, guestIp: serviceIp, port: SERVICE_PORT, toolPath: await lab.placeFile('client', await toolPath) });
  const warm = o.warmValues ?? 3;
  progress('start', `container started on chost-src (${launch.argv.slice(1).join(' ')}); waiting for ${warm} values`);
  let first = await waitState(agent, warm, 60_000, signal);

  // The client's probe: 1 kHz pings at the service address, through the whole move.
  const probe: ProbeHandle = startProbe({ host: client, guestIp: serviceIp, port: SERVICE_PORT, maxDurationMs: 600_000, toolPath: await lab.placeFile('client', await toolPath), logFile: join(o.runDir, 'probe.csv') });
  let probeRun: ProbeRun | undefined;
  td.defer('stop the client probe', async () => void (probeRun ??= await probe.stop().catch(() => undefined)));
  await sleep(300, signal);

  const t0 = Date.now();
  const steps: CriuStep[] = [];
  let stopReason = 'stop-and-copy: one dump';
  // Pre-dump rounds (iterative): the tree runs on between them; each round writes only the pages
  // changed since the last (soft-dirty tracking), until the rules say the next would not help.
  if (o.strategy === 'iterative') {
    for (let k = 1; ; k++) {
      const dir = `${guestDir}/r${k}`;
      await mkdir(join(hostDir, `r${k}`), { recursive: true });
      const cmd = criuDump({ pid: rootPid, imagesDir: dir, logFile: 'criu.log', preDump: true, trackMem: true, prevImagesDir: k > 1 ? `../r${k - 1}` : undefined });
      const atMs = Date.now() - t0;
      const r = await runCriu(src, cmd, join(hostDir, `r${k}`, 'criu.log'), signal);
      const stats = await readStats(join(hostDir, `r${k}`, 'stats-dump'));
      const rounds = [...steps.map((s) => ({ pagesWritten: s.dump?.pagesWritten ?? 0 })), { pagesWritten: stats?.dump?.pagesWritten ?? 0 }];
      const decision = shouldContinue(rounds, rules);
      steps.push({ kind: 'pre-dump', index: k, dir, atMs, wallMs: r.wallUs / 1000, maxRssKiB: r.maxRssKiB, command: cmd, dump: stats?.dump, imageBytes: await dirBytes(join(hostDir, `r${k}`)), decision: decision.reason });
      progress('rounds', `pre-dump ${k}: ${stats?.dump?.pagesWritten ?? '?'} pages written, frozen ${ms(stats?.dump?.frozenUs)?.toFixed(1) ?? '?'} ms; ${decision.continue ? 'another round' : 'final dump'}: ${decision.reason}`);
      if (!decision.continue) {
        stopReason = decision.reason;
        break;
      }
    }
  }

  // The final dump: the tree is frozen, its remaining state written, and it is killed.
  const last = steps.length;
  const finalDir = `${guestDir}/final`;
  await mkdir(join(hostDir, 'final'), { recursive: true });
  const dumpCmd = criuDump({ pid: rootPid, imagesDir: finalDir, logFile: 'dump.log', preDump: false, trackMem: last > 0, prevImagesDir: last > 0 ? `../r${last}` : undefined });
  first = (await agent.request('state', { timeoutMs: 2000, signal }).then(parseWorkloadState).catch(() => undefined)) ?? first;
  const before = first;
  const dumpAt = Date.now() - t0;
  const dumped = await runCriu(src, dumpCmd, join(hostDir, 'final', 'dump.log'), signal);
  const dumpStats = (await readStats(join(hostDir, 'final', 'stats-dump')))?.dump;
  steps.push({ kind: 'dump', index: last + 1, dir: finalDir, atMs: dumpAt, wallMs: dumped.wallUs / 1000, maxRssKiB: dumped.maxRssKiB, command: dumpCmd, dump: dumpStats, imageBytes: await dirBytes(join(hostDir, 'final')) });
  progress('dump', `final dump: frozen ${ms(dumpStats?.frozenUs)?.toFixed(1) ?? '?'} ms, ${dumpStats?.pagesWritten ?? '?'} pages written, ${(dumped.wallUs / 1000).toFixed(0)} ms in all`);

  // Hand-over: the address leaves chost-src, the source's NFS client writes back what it holds
  // (the log's last lines: CRIU checks the file's size on restore), the address comes up on dst.
  const handoverStart = Date.now();
  await Promise.all([src.ctl.exec(['ip', 'addr', 'del', svc, 'dev', src.iface], { signal }), src.ctl.exec(['sync'], { signal })]);
  await dst.ctl.exec(['ip', 'addr', 'add', svc, 'dev', dst.iface], { signal });
  const handoverMs = Date.now() - handoverStart;

  const restoreCmd = criuRestore({ imagesDir: finalDir, logFile: 'restore.log', pidFile: `${finalDir}/restored.pid`, detach: true });
  const restoreAt = Date.now() - t0;
  const restored = await runCriu(dst, restoreCmd, join(hostDir, 'final', 'restore.log'), signal);
  const restoreStats = (await readStats(join(hostDir, 'final', 'stats-restore')))?.restore;
  steps.push({ kind: 'restore', index: last + 1, dir: finalDir, atMs: restoreAt, wallMs: restored.wallUs / 1000, maxRssKiB: restored.maxRssKiB, command: restoreCmd, restore: restoreStats });
  // Tell the bridge and the client where the address is now (gratuitous ARP, as QEMU's announce).
  await dst.ctl.exec(['arping', '-U', '-c', '1', '-I', dst.iface, serviceIp], { reject: false, signal });
  progress('restore', `restored on chost-dst in ${(restored.wallUs / 1000).toFixed(0)} ms (CRIU: ${ms(restoreStats?.restoreUs)?.toFixed(1) ?? '?'} ms)`);

  const after = await waitState(agent, 0, 30_000, signal);
  const totalMs = Date.now() - t0;
  await sleep(500, signal);
  probeRun = await probe.stop({ within: { fromMs: t0 + dumpAt - 50, toMs: Date.now() } });

  // The destination's NFS client holds the log's newest lines until it writes them back: flushed
  // first, so the file on the export has at least the values `after` counted.
  await dst.ctl.exec(['sync'], { signal });
  const log = await readFile(join(hostDir, 'seq.log'), 'utf8').catch((err: unknown) => {
    progress('verify', `cannot read the sequence log: ${describeError(err)}`);
    return undefined;
  });
  const verify = verifyContinuity({ mode: o.workload.mode, before, after, log });
  const frozen = steps.map((s) => s.dump?.frozenUs).filter((x): x is number => x !== undefined);
  const figures: ContainerFigures = {
    criuFrozenMs: ms(dumpStats?.frozenUs),
    criuFrozenTotalMs: frozen.length === steps.filter((s) => s.kind !== 'restore').length ? frozen.reduce((a, b) => a + b, 0) / 1000 : null,
    dumpWallMs: dumped.wallUs / 1000,
    handoverMs,
    restoreWallMs: restored.wallUs / 1000,
    criuRestoreMs: ms(restoreStats?.restoreUs),
    clientDowntimeMs: probeRun.silentAtEndMs !== null ? null : probeRun.longestGapMs,
    totalMs,
    imageBytes: steps.reduce((a, s) => a + (s.imageBytes ?? 0), 0),
    preDumpRounds: steps.filter((s) => s.kind === 'pre-dump').length,
  };
  return { hosts, steps, figures, before, after, verify, probe: probeRun, workloadCommand: launch, imagesDir: hostDir, stopReason };
}
