// `miglab containers migrate` and `miglab containers check`: the checks that need nothing started,
// then the lab, the container hosts and the run, each torn down on failure or Ctrl-C; the run
// folder is written whatever happened (a failed run says why in run.json).
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IMAGE_CACHE_DIR, REPO_ROOT, newRunId, preflight, useLab } from '../api.js';
import { MiglabError, UsageError, describeError } from '../errors.js';
import type { LabSpecInput } from '../lab/spec.js';
import type { Progress } from '../progress/progress.js';
import { checkResultsDir } from '../report/results-dir.js';
import { withTeardown } from '../util/teardown.js';
import { startContainerHosts } from './hosts.js';
import { migrateContainer, type ContainerRunResult, type RunTrace } from './migrate.js';
import { MEM_ROUNDS_DEFAULTS, STRATEGIES, type MemRoundsRules, type Strategy } from './strategies.js';
import { checkpointDirOf, TRANSFERS, type TransferMode } from './transfer.js';
import { verdictOf, writeContainerRun, type ContainerRunHeader, type ContainerVerdict } from './record.js';
import { PHAUL_RULES, type IterRules } from './stop-rules.js';
import { formatWorkloadSpec, parseWorkloadSpec, type ContainerWorkload } from './workload.js';

/** What every container command takes besides its own choices: the guests' size, the lab, where results go. */
export interface ContainerCommandInput {
  /** RAM of each container-host guest, MiB. */
  readonly memoryMiB?: number;
  readonly vcpus?: number;
  /** The workload's period between values (default the mode's own). */
  readonly periodMs?: number;
  /** Keep CRIU's images in the lab's checkpoint export afterwards. */
  readonly keepImages?: boolean;
  readonly lab?: LabSpecInput;
  readonly resultsRoot?: string;
  readonly progress?: Progress;
  readonly signal?: AbortSignal;
}

export interface ContainerMigrateRequest extends ContainerCommandInput {
  /** Compact form: counter, natural, fibonacci, prime, mem:64M@16M/s. */
  readonly workload: string;
  readonly strategy: string;
  /** nfs (default) or page-server. */
  readonly transfer?: string;
  readonly rules?: Partial<IterRules>;
  /** mem-rounds: plateau and page budget (the rounds' limit is rules.maxRounds). */
  readonly memRounds?: Partial<MemRoundsRules>;
  readonly cpuModel?: string;
}

export interface ContainerMigrateOutcome {
  readonly runId: string;
  readonly dir: string;
  readonly verdict: ContainerVerdict;
  readonly result: ContainerRunResult;
}

function checkStrategy(s: string): Strategy {
  if (!(STRATEGIES as readonly string[]).includes(s)) throw new UsageError(`unknown strategy "${s}"`, `use one of ${STRATEGIES.join(', ')}`);
  return s as Strategy;
}

/** lazy serves the pages from the source itself: there is no transfer to choose. */
export function checkCombination(strategy: Strategy, transfer: TransferMode): void {
  if (strategy === 'lazy' && transfer !== 'nfs') {
    throw new UsageError('the lazy strategy takes no --transfer page-server', 'its pages come from the source\'s own dump on demand; drop --transfer');
  }
}

function checkTransfer(t: string): TransferMode {
  if (!(TRANSFERS as readonly string[]).includes(t)) throw new UsageError(`unknown transfer "${t}"`, `use one of ${TRANSFERS.join(', ')}`);
  return t as TransferMode;
}

function checkRules(r: IterRules): void {
  if (!Number.isInteger(r.maxRounds) || r.maxRounds < 1 || r.maxRounds > 100) throw new UsageError(`max rounds ${r.maxRounds} is out of range`, 'use 1 to 100 pre-dumps, e.g. --max-rounds 8 (P.Haul\'s)');
  if (!Number.isInteger(r.minPages) || r.minPages < 0) throw new UsageError(`min pages ${r.minPages} is not a whole number >= 0`, 'e.g. --min-pages 64 (P.Haul\'s)');
  if (!Number.isFinite(r.maxGrowthPct) || r.maxGrowthPct < 0) throw new UsageError(`max growth ${r.maxGrowthPct}% is not a percentage >= 0`, 'e.g. --max-growth 10 (P.Haul\'s)');
}

function checkPeriod(periodMs: number | undefined): number | undefined {
  if (periodMs !== undefined && (!Number.isInteger(periodMs) || periodMs < 1 || periodMs > 60_000)) {
    throw new UsageError(`workload period ${periodMs} ms is out of range`, 'use 1 to 60000 ms, e.g. --period-ms 10');
  }
  return periodMs;
}

function checkMemRounds(m: MemRoundsRules): void {
  if (!Number.isInteger(m.budgetPages) || m.budgetPages < 1) throw new UsageError(`page budget ${m.budgetPages} is not a whole number >= 1`, 'give the pages the final dump may carry, e.g. --budget-pages 1024 (4 MiB)');
  if (!Number.isFinite(m.plateauPct) || m.plateauPct < 0 || m.plateauPct > 100) throw new UsageError(`plateau ${m.plateauPct}% is out of range`, 'use 0 to 100, e.g. --plateau-pct 10');
  if (!Number.isInteger(m.maxRounds) || m.maxRounds < 1) throw new UsageError(`max rounds ${m.maxRounds} is not a whole number >= 1`, 'e.g. --max-rounds 8');
}

/**
 * Room in each container host: the guest's own ~160 MiB (kernel, initramfs, CRIU), the container's
 * working set, and on the destination the images in its memory with a page server (one more copy).
 */
export const GUEST_OWN_MIB = 160;

function checkFits(w: ContainerWorkload, memoryMiB: number, transfer: TransferMode): void {
  if (w.mode !== 'mem') return;
  const need = GUEST_OWN_MIB + w.wssMiB * (transfer === 'page-server' ? 2 : 1);
  if (need > memoryMiB) {
    throw new UsageError(
      `a ${w.wssMiB} MiB working set does not fit in ${memoryMiB} MiB container hosts${transfer === 'page-server' ? ' (with a page server the destination holds the images too)' : ''}`,
      `give them at least ${need} MiB (--memory ${Math.ceil(need / 64) * 64}) or a smaller working set`,
    );
  }
}

export function checkMemory(memoryMiB: number): number {
  if (!Number.isInteger(memoryMiB) || memoryMiB < 256 || memoryMiB > 16384) throw new UsageError(`container-host memory ${memoryMiB} MiB is out of range`, 'use 256 to 16384 MiB');
  return memoryMiB;
}

export async function containersMigrate(req: ContainerMigrateRequest): Promise<ContainerMigrateOutcome> {
  // Everything the user gave is checked before anything starts.
  const workload = parseWorkloadSpec(req.workload);
  const strategy = checkStrategy(req.strategy);
  const transfer = checkTransfer(req.transfer ?? 'nfs');
  checkCombination(strategy, transfer);
  const rules: IterRules = { ...PHAUL_RULES, ...req.rules };
  checkRules(rules);
  const periodMs = checkPeriod(req.periodMs);
  const memRounds: MemRoundsRules = { ...MEM_ROUNDS_DEFAULTS, maxRounds: rules.maxRounds, ...req.memRounds };
  checkMemRounds(memRounds);
  const memoryMiB = checkMemory(req.memoryMiB ?? 512);
  checkFits(workload, memoryMiB, transfer);
  const vcpus = req.vcpus ?? 1;
  const cpuModel = req.cpuModel ?? 'qemu64';
  const name = `ctr-${workload.mode}-${strategy}${transfer === 'nfs' ? '' : `-${transfer}`}`;
  const runId = newRunId(name);
  const resultsRoot = await checkResultsDir(req.resultsRoot ?? join(REPO_ROOT, 'results'));
  const dir = join(resultsRoot, runId);
  const image = await preflight([cpuModel], 'chost');
  const progress: Progress = req.progress ?? (() => undefined);
  const startedAt = new Date().toISOString();
  const header = (): ContainerRunHeader => ({
    runId,
    startedAt,
    finishedAt: new Date().toISOString(),
    request: { workload, strategy, transfer, rules, ...(strategy === 'mem-rounds' ? { memRounds } : {}), memoryMiB, vcpus, cpuModel },
    imageHash: image.hash,
    lab: req.lab?.prefix ?? 'mlab',
  });
  return withTeardown(async (td, signal) => {
    const lab = await useLab(td, { lab: req.lab, cpuModels: [cpuModel] }, signal);
    let result: ContainerRunResult;
    const trace: RunTrace = { phase: 'starting', steps: [] };
    // The run folder first: the probe and the guests' consoles write into it as the run goes.
    await mkdir(dir, { recursive: true });
    try {
      result = await migrateContainer({
        runId,
        runDir: dir,
        lab,
        image,
        cacheDir: IMAGE_CACHE_DIR,
        workload,
        strategy,
        transfer,
        rules,
        memRounds,
        memoryMiB,
        vcpus,
        cpuModel,
        periodMs,
        keepImages: req.keepImages,
        td,
        signal,
        progress: (phase, line) => progress(phase, line),
        trace,
      });
    } catch (err) {
      const failure = `during ${trace.phase}: ${describeError(err)}`;
      await writeContainerRun(dir, header(), checkpointDirOf(lab, runId), undefined, { failure, steps: trace.steps }).catch(() => undefined);
      throw err instanceof MiglabError && !(err instanceof UsageError) && !signal.aborted ? new MiglabError(err.code, `${runId} failed during ${trace.phase}: ${err.message}`, { cause: err, context: err.context }) : err;
    }
    await writeContainerRun(dir, header(), result.imagesDir, result);
    progress('done', `${formatWorkloadSpec(workload)} ${strategy}: ${verdictOf(result)}; results in ${dir}`);
    return { runId, dir, verdict: verdictOf(result), result };
  }, req.signal);
}

/** `containers check`: boot the pair, report what CRIU says on each, take them down. */
export async function containersCheck(req: { lab?: LabSpecInput; memoryMiB?: number; progress?: Progress }): Promise<{ lines: string[]; ok: boolean }> {
  const memoryMiB = checkMemory(req.memoryMiB ?? 512);
  const image = await preflight(['qemu64'], 'chost');
  const progress: Progress = req.progress ?? (() => undefined);
  return withTeardown(async (td, signal) => {
    const lab = await useLab(td, { lab: req.lab, cpuModels: ['qemu64'] }, signal);
    const runId = newRunId('ctr-check');
    // The guests' serial logs: kept only while they run.
    const runDir = await mkdtemp(join(tmpdir(), 'miglab-ctr-check-'));
    td.defer(`remove ${runDir}`, () => rm(runDir, { recursive: true, force: true }));
    const hosts = await startContainerHosts({ lab, image, td, runId, runDir, memoryMiB, vcpus: 1, cpuModel: 'qemu64', signal, progress: (p, l) => progress(p, l) });
    const lines = [`criu ${hosts.criuVersion}; image ${image.hash}`];
    for (const h of [hosts.src, hosts.dst]) {
      const features = await Promise.all(
        ['mem_dirty_track', 'uffd-noncoop'].map(async (f) => {
          const r = await h.ctl.exec(['criu', 'check', '--feature', f], { reject: false, signal });
          return `${f} ${r.exitCode === 0 ? 'supported' : 'NOT supported'}`;
        }),
      );
      lines.push(`${h.name} (${h.ip} on ${h.side}): criu check says "${h.criuCheck.words}"; ${features.join(', ')}; control port after ${h.bootMs} ms; /ckpt mounted`);
    }
    return { lines, ok: hosts.src.criuCheck.ok && hosts.dst.criuCheck.ok };
  });
}
