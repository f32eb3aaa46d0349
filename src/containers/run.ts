// `miglab containers migrate` and `miglab containers check`: the checks that need nothing started,
// then the lab, the container hosts and the run, each torn down on failure or Ctrl-C; the run
// folder is written whatever happened (a failed run says why in run.json).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IMAGE_CACHE_DIR, REPO_ROOT, newRunId, preflight, useLab } from '../api.js';
import { UsageError, describeError } from '../errors.js';
import type { LabSpecInput } from '../lab/spec.js';
import type { Progress } from '../progress/progress.js';
import { checkResultsDir } from '../report/results-dir.js';
import { withTeardown } from '../util/teardown.js';
import { startContainerHosts } from './hosts.js';
import { migrateContainer, STRATEGIES, type ContainerRunResult, type Strategy } from './migrate.js';
import { verdictOf, writeContainerRun, type ContainerRunHeader, type ContainerVerdict } from './record.js';
import { PHAUL_RULES, type IterRules } from './stop-rules.js';
import { formatWorkloadSpec, parseWorkloadSpec } from './workload.js';

export interface ContainerMigrateRequest {
  /** Compact form: counter, natural, fibonacci, prime, mem:64M@16M/s. */
  readonly workload: string;
  readonly strategy: string;
  readonly rules?: Partial<IterRules>;
  readonly memoryMiB?: number;
  readonly vcpus?: number;
  readonly cpuModel?: string;
  readonly periodMs?: number;
  readonly keepImages?: boolean;
  readonly lab?: LabSpecInput;
  readonly resultsRoot?: string;
  readonly progress?: Progress;
  readonly signal?: AbortSignal;
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

function checkMemory(memoryMiB: number): number {
  if (!Number.isInteger(memoryMiB) || memoryMiB < 256 || memoryMiB > 16384) throw new UsageError(`container-host memory ${memoryMiB} MiB is out of range`, 'use 256 to 16384 MiB');
  return memoryMiB;
}

export async function containersMigrate(req: ContainerMigrateRequest): Promise<ContainerMigrateOutcome> {
  // Everything the user gave is checked before anything starts.
  const workload = parseWorkloadSpec(req.workload);
  const strategy = checkStrategy(req.strategy);
  const rules: IterRules = { ...PHAUL_RULES, ...req.rules };
  const memoryMiB = checkMemory(req.memoryMiB ?? 512);
  const vcpus = req.vcpus ?? 1;
  const cpuModel = req.cpuModel ?? 'qemu64';
  const name = `ctr-${workload.mode}-${strategy}`;
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
    request: { workload, strategy, rules, memoryMiB, vcpus, cpuModel },
    imageHash: image.hash,
    lab: req.lab?.prefix ?? 'mlab',
  });
  return withTeardown(async (td, ctrlC) => {
    const signal = req.signal ? AbortSignal.any([req.signal, ctrlC]) : ctrlC;
    const lab = await useLab(td, { lab: req.lab, cpuModels: [cpuModel] }, signal);
    let result: ContainerRunResult;
    try {
      result = await migrateContainer({
        runId,
        runDir: dir,
        lab,
        image,
        cacheDir: IMAGE_CACHE_DIR,
        workload,
        strategy,
        rules,
        memoryMiB,
        vcpus,
        cpuModel,
        periodMs: req.periodMs,
        keepImages: req.keepImages,
        td,
        signal,
        progress: (phase, line) => progress(phase, line),
      });
    } catch (err) {
      await writeContainerRun(dir, header(), undefined, describeError(err)).catch(() => undefined);
      throw err;
    }
    await writeContainerRun(dir, header(), result);
    progress('done', `${formatWorkloadSpec(workload)} ${strategy}: ${verdictOf(result)}; results in ${dir}`);
    return { runId, dir, verdict: verdictOf(result), result };
  });
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
      lines.push(`${h.name} (${h.ip} on ${h.side}): criu check: ${h.criuCheck.words}; ${features.join(', ')}; control port after ${h.bootMs} ms; /ckpt mounted`);
    }
    return { lines, ok: hosts.src.criuCheck.ok && hosts.dst.criuCheck.ok };
  });
}
