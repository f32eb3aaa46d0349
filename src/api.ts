// The programmatic API: what the CLI calls and what the tests call. Each function validates its
// input before starting anything, owns everything it starts, and stops it on success, failure
// and Ctrl-C.
import { rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError, MiglabError, UsageError } from './errors.js';
import { checkCpuModels } from './machine/cpu-models.js';
import { LocalHost } from './host/local.js';
import { assertImageIntact, findImage, type ImageInfo } from './image/build.js';
import type { ImageVariant } from './image/inputs.js';
import { attachLab, checkLabDependencies, checkRoot, labDown, labUp, parseLabSpec, parseShaping, type Lab, type LabSpecInput, type ShapingInput } from './lab/index.js';
import type { FaultKind } from './fault/spec.js';
import { runMigration, type MigrationHooks } from './migrate/engine.js';
import type { Progress } from './progress/progress.js';
import type { RunReport } from './migrate/report.js';
import { parseScenario, scenarioName, type Scenario, type ScenarioInput } from './migrate/scenario.js';
import { checkQemu } from './preflight.js';
import { checkResultsDir } from './report/results-dir.js';
import { makePrivateDir } from './util/private.js';
import { writeRunFiles } from './report/run-files.js';
import { FiguresAhead } from './report/figures-ahead.js';
import { withTeardown, type Teardown } from './util/teardown.js';
import { REPO_ROOT } from './util/repo.js';

export { REPO_ROOT };

export const IMAGE_CACHE_DIR = join(REPO_ROOT, 'vm-images', 'cache');

export interface MigrateRequest extends Omit<LabChoice, 'cpuModels'> {
  readonly scenario: ScenarioInput;
  readonly resultsRoot?: string;
  readonly progress?: Progress;
  /** An outer abort (tests); Ctrl-C is always handled. */
  readonly signal?: AbortSignal;
}

export interface MigrateResult {
  readonly report: RunReport;
  readonly dir: string;
}

const LAB_TIMEOUT_MS = 60000;

let runCounter = 0;

/** Unique per process and run: several runs may start in the same second (batches). */
export function newRunId(name: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${stamp}-${name}-${process.pid.toString(36)}${(runCounter++).toString(36)}`;
}

/**
 * The built guest image, checked against the sizes and hashes recorded when it was built (a
 * truncated initrd boots into a kernel panic), or a one-line error saying how to build it.
 */
export async function requireImage(variant: ImageVariant = 'base'): Promise<ImageInfo> {
  const image = await findImage({ cacheDir: IMAGE_CACHE_DIR, variant });
  if (!image) {
    throw variant === 'base'
      ? new UsageError('the guest image is not built', 'build it with: miglab image build (or make image)')
      : new UsageError(`the ${variant} image (a container host) is not built`, `build it with: miglab image build --variant ${variant} (or make image-${variant})`);
  }
  return assertImageIntact(image);
}

/** Checks that need nothing started: root, programs, the guests' CPU models, the image. */
export async function preflight(cpuModels: Iterable<string> = [], variant: ImageVariant = 'base'): Promise<ImageInfo> {
  checkRoot();
  const local = new LocalHost();
  await checkQemu(local);
  await checkLabDependencies(local);
  await checkCpuModels(local, cpuModels);
  return requireImage(variant);
}

/** Where a command runs: the embedded lab (by prefix), or hosts from a hosts file over SSH. */
export interface LabChoice {
  /** The embedded lab: the one up with this prefix, or one brought up for the command. */
  readonly lab?: LabSpecInput;
  /** A hosts file: the machines it names, over SSH, instead of the embedded lab. */
  readonly hosts?: string;
  /** Shaping of the migration uplinks for the command (the embedded lab only). */
  readonly shaping?: ShapingInput;
  /** CPU models the command's guests use, checked against QEMU where they run. */
  readonly cpuModels?: Iterable<string>;
}

/**
 * The checks that need nothing started, where the command runs: on this machine for the
 * embedded lab; for hosts from a hosts file only the image here (QEMU is checked on the hosts
 * once connected, by useLab), after refusing what those hosts cannot give.
 */
export async function preflightFor(where: LabChoice, faults: readonly { readonly kind: FaultKind }[] = []): Promise<ImageInfo> {
  if (where.hosts === undefined) return preflight(where.cpuModels);
  (await import('./hosts/use.js')).checkRunOnHosts({ shaping: where.shaping, faults });
  return requireImage();
}

/**
 * Use the lab the command runs on (preflightFor has refused what it cannot give). The embedded lab: the one up with this prefix, or one brought
 * up for the duration of `td` and taken down when `td` runs (a lab the user brought up is left as
 * it was found, shaping restored). Hosts from a hosts file: connected over SSH for the duration
 * of `td`, QEMU and the CPU models checked there.
 */
export async function useLab(td: Teardown, where: LabChoice, signal: AbortSignal, opts: { readonly sharedWithOtherProcesses?: boolean } = {}): Promise<Lab> {
  if (where.hosts !== undefined) {
    // ssh2 and yaml take ~0.15 s to load (measured 94-118 + 58-68 ms): only commands on hosts load them.
    const { useHostsLab } = await import('./hosts/use.js');
    return useHostsLab(td, where.hosts, { signal, cpuModels: where.cpuModels });
  }
  const { shaping } = where;
  const parsed = parseLabSpec(where.lab ?? {});
  const existing = await attachLab(parsed.prefix, { stateRoot: parsed.stateRoot });
  if (existing) {
    if (shaping) {
      const before = existing.shaping;
      await existing.shapeLinks(parseShaping(shaping));
      td.defer('restore link shaping', () => (before ? existing.shapeLinks(before) : existing.clearShaping()));
    }
    return existing;
  }
  // Other miglab processes may run on a lab brought up for them (a benchmark's commands); one
  // brought up for this process's own runs refuses them.
  const lab = await labUp({ ...parsed, shaping: shaping ? parseShaping(shaping) : parsed.shaping }, { timeoutMs: LAB_TIMEOUT_MS, signal, ephemeral: !opts.sharedWithOtherProcesses });
  td.defer(`take lab ${parsed.prefix} down`, () => labDown(parsed.prefix, { stateRoot: parsed.stateRoot, timeoutMs: LAB_TIMEOUT_MS }).then(() => undefined));
  return lab;
}

export async function migrate(req: MigrateRequest): Promise<MigrateResult> {
  const scenario: Scenario = parseScenario(req.scenario);
  if (req.shaping) parseShaping(req.shaping);
  const where: LabChoice = { lab: req.lab, hosts: req.hosts, shaping: req.shaping, cpuModels: [scenario.guest.cpuModel] };
  const dir = await checkResultsDir(req.resultsRoot ?? join(REPO_ROOT, 'results'));
  const image = await preflightFor(where, scenario.faults);
  return withTeardown(async (td, signal) => {
    const lab = await useLab(td, where, signal);
    // One run alone: its figures cost well under a second (measured 0.3-0.6 s), so they are drawn now.
    return migrateOnLab({ lab, image, scenario, dir, signal, progress: req.progress, figures: true });
  }, req.signal);
}

export interface MigrateOnLabRequest {
  readonly lab: Lab;
  readonly image: ImageInfo;
  readonly scenario: Scenario;
  /** The run goes to `<dir>/<runDir ?? run id>/`. */
  readonly dir: string;
  readonly runDirName?: string;
  /** The name in the run's id (default the scenario's name). */
  readonly runName?: string;
  readonly signal?: AbortSignal;
  readonly progress?: Progress;
  /** Guest slot in the lab (IP, MAC, tap); lets several migrations share one lab. */
  readonly guestIndex?: number;
  readonly hooks?: MigrationHooks;
  /**
   * Draw the run report's figures at the end (plots/). Off by default: sweeps and batches run
   * many, and drawing holds Node's event loop for a while in the middle of other runs' sampling.
   */
  readonly figures?: boolean;
}

/**
 * One migration on a lab that is already up (sweeps and batches call this many times). The run's
 * folder is checked (writable, room) before anything starts; a run whose files cannot be written
 * at the end fails with that reason, its QEMUs already stopped.
 */
export async function migrateOnLab(r: MigrateOnLabRequest): Promise<MigrateResult> {
  const runId = newRunId(r.runName ?? scenarioName(r.scenario));
  const dir = join(r.dir, r.runDirName ?? runId);
  await checkResultsDir(r.dir);
  await makePrivateDir(dir);
  // The figures are drawn in a thread while the run cleans up (figures-ahead.ts).
  const ahead = r.figures ? new FiguresAhead(dir) : undefined;
  const hooks = ahead ? ahead.hooks(r.hooks) : r.hooks;
  try {
    const report = await runMigration(
      { lab: r.lab, image: r.image, runDir: dir, runId, cacheDir: IMAGE_CACHE_DIR, signal: r.signal, progress: r.progress, guestIndex: r.guestIndex, hooks },
      r.scenario,
    ).catch(async (err: unknown) => {
      // Refused before it started (a build without the capability, a port taken): no run, so no
      // folder. rmdir removes only an empty one: whatever the run did write stays.
      await rmdir(dir).catch(() => undefined);
      throw err;
    });
    try {
      return { report: await writeRunFiles(report, dir, { figures: r.figures, ahead }), dir };
    } catch (err) {
      const why = report.failure ? ` (${report.failure})` : '';
      throw new MiglabError('RESULTS', `run ${runId} ended ${report.verdict}${why}, but its results could not be written to ${dir}: ${describeError(err)}; free space, or choose another folder with --results DIR`, {
        cause: err,
        context: { report },
      });
    }
  } finally {
    await ahead?.close();
  }
}
