// runBatch: migrate 1, 2, 4... guests at once until the host stalls. For each N it boots N guest
// pairs (each through migrateOnLab, with its own guest slot and migration port), migrates them
// per the mode, samples the host all along, and stops at the first stall, aborting whatever
// runs. A memory guard refuses a step that would not fit, before any of its QEMUs start. The
// record it returns (and writes as results/batch-<id>/) is all the diagnosis and report read.
import { setMaxListeners } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { migrateOnLab, newRunId, preflightFor, REPO_ROOT, useLab, type LabChoice } from '../api.js';
import { describeError, UsageError } from '../errors.js';
import type { ImageInfo } from '../image/build.js';
import type { Lab } from '../lab/index.js';
import { parseMeminfo } from '../measure/host-sampler.js';
import { scoped, type Progress } from '../progress/progress.js';
import { parseScenario, type Scenario } from '../migrate/scenario.js';
import { sleep, withDeadline } from '../util/deadline.js';
import { BootBarrier, MigrationSlots, type GuestGate } from './barrier.js';
import { withTeardown } from '../util/teardown.js';
import { diagnoseStep, type StepDiagnosis } from './diagnose.js';
import { attemptFromReport, BATCH_SCHEMA, type BatchRecord, type BatchSample, type MigrationAttempt, type StepRecord, type StepVariant, type StopReason } from './record.js';
import { writeBatchReport } from './report.js';
import { checkResultsDir } from '../report/results-dir.js';
import { startBatchSampler } from './sampler.js';
import { estimateResourceUse, planRetries, planSchedule, RETRIED, type SchedulePlan } from './scheduler.js';
import {
  assumedDirtyRateMiBps,
  expandSteps,
  guestScenario,
  guestShape,
  maxGuestMemoryMiB,
  modeName,
  parseBatchSpec,
  peakPairs,
  type BatchMode,
  type BatchSpec,
  type BatchSpecInput,
  type ScenarioOverrides,
} from './spec.js';
import { detectHostStall, hostBefore, hostSymptoms, memoryGuard, runStall, stallStopDetail, type MemoryGuardVerdict, type Stall } from './stall.js';

export interface BatchOptions {
  /** The batch goes to `<resultsRoot>/batch-<id>/` (default: results/ in the repository). */
  readonly resultsRoot?: string;
  readonly progress?: Progress;
  /** An outer abort (tests, the CLI); Ctrl-C is always handled. */
  readonly signal?: AbortSignal;
  /** MemAvailable now, MiB; tests stand a fake in. Default: the sampled host's /proc/meminfo. */
  readonly memAvailableMiB?: () => Promise<number>;
  /**
   * A hosts file: the batch runs on those machines over SSH instead of the embedded lab; the
   * source host is the one sampled and judged (stall, memory guard).
   */
  readonly hosts?: string;
}

export interface BatchResult {
  readonly record: BatchRecord;
  readonly diagnoses: readonly StepDiagnosis[];
  readonly dir: string;
  readonly markdownPath: string;
  readonly htmlPath: string;
}

/** This machine's MemAvailable, MiB: the embedded lab's guard before the lab is up. */
async function localMemAvailableMiB(): Promise<number> {
  return parseMeminfo(await readFile('/proc/meminfo', 'utf8')).memAvailableKiB / 1024;
}

/** Guest pairs the memory guard must plan for in a step of N (`naive`: the naive comparison still runs). */
function guardPairs(spec: BatchSpec, n: number, naive = true): number {
  // The scheduler keeps its own concurrency within memory; the naive comparison run does not.
  if (spec.mode === 'scheduled') return spec.compare && naive ? n : 1;
  return peakPairs(spec.mode, n);
}

function checkGuard(spec: BatchSpec, n: number, memAvailableMiB: number, qemusPerPair: 1 | 2 = 2, naive = true): MemoryGuardVerdict {
  return memoryGuard({ pairs: guardPairs(spec, n, naive), memoryMiB: maxGuestMemoryMiB(spec), memAvailableMiB, reserveMiB: spec.memoryReserveMiB, qemusPerPair });
}

/** The first step's guard, as a one-line refusal. */
function refuseFirstStep(spec: BatchSpec, memAvailableMiB: number, qemusPerPair: 1 | 2): void {
  const n = expandSteps(spec.steps)[0]!;
  const g = checkGuard(spec, n, memAvailableMiB, qemusPerPair);
  if (!g.ok) throw new UsageError(`batch step N=${n}: ${g.message}`, 'use smaller guests, fewer at once, or a smaller memory reserve');
}

/**
 * Validate the batch and, given the host's memory, refuse its first step if it cannot fit:
 * nothing is started (no lab, no QEMU) when this throws.
 */
export async function checkBatch(input: BatchSpecInput, memAvailableMiB?: () => Promise<number>): Promise<BatchSpec> {
  const spec = parseBatchSpec(input);
  const ns = expandSteps(spec.steps);
  // Each guest's scenario is valid (ports, workload support) before anything starts.
  for (let i = 0; i < Math.max(...ns); i++) parseScenario(guestScenario(spec, i));
  if (memAvailableMiB) refuseFirstStep(spec, await memAvailableMiB(), 2);
  return spec;
}

export async function runBatch(input: BatchSpecInput, opts: BatchOptions = {}): Promise<BatchResult> {
  const onHosts = opts.hosts !== undefined;
  // The embedded lab's guard reads this machine now, before the lab is up; on hosts it reads the
  // source host once connected, still before any QEMU starts.
  const spec = await checkBatch(input, onHosts ? undefined : (opts.memAvailableMiB ?? localMemAvailableMiB));
  const root = await checkResultsDir(opts.resultsRoot ?? join(REPO_ROOT, 'results'));
  const scenarios = Array.from({ length: Math.max(...expandSteps(spec.steps)) }, (_, i) => parseScenario(guestScenario(spec, i)));
  const where: LabChoice = { lab: spec.lab, hosts: opts.hosts, shaping: spec.shaping, cpuModels: new Set(scenarios.map((s) => s.guest.cpuModel)) };
  const image = await preflightFor(
    where,
    scenarios.flatMap((s) => s.faults),
  );
  const progress = opts.progress ?? (() => undefined);
  const batchId = newRunId(modeName(spec.mode));
  const dir = join(root, `batch-${batchId}`);
  return withTeardown(async (td, interrupted) => {
    // A batch judged by samples it no longer gets would run on blind: losing the sampler stops it
    // at once (its migrations too), and the batch fails with the sampler's error.
    const samplingLost = new AbortController();
    const signal = AbortSignal.any([interrupted, samplingLost.signal]);
    const started = Date.now();
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new Error(`the batch deadline of ${spec.deadlineMs} ms passed`)), spec.deadlineMs);
    td.defer('clear the batch deadline', () => clearTimeout(timer));

    const lab = await useLab(td, where, signal);
    const linkBandwidthMbit = (spec.shaping ?? lab.shaping)?.bandwidthMbit;
    // The host the batch is sampled on and judged by: this machine, or the source host.
    const sampling = lab.batchSampling();
    td.defer('end the batch sampling', () => sampling.close());
    const host0 = await sampling.host(signal);
    const { qemusPerPair } = sampling;
    const memNow = opts.memAvailableMiB ?? (async () => (await sampling.host(signal)).memAvailableMiB);
    if (onHosts) refuseFirstStep(spec, await memNow(), qemusPerPair);
    const hostCtx = {
      cpus: host0.cpus,
      memoryReserveMiB: spec.memoryReserveMiB,
      swapUsedAtStartMiB: host0.swapUsedMiB,
    };

    // The host stall check runs on every sample, against the samples of the step in progress.
    let watch: { startMs: number; onStall: (s: Stall) => void } | undefined;
    const sampler = startBatchSampler({
      intervalMs: spec.sampleIntervalMs,
      sampling,
      sinceMs: started,
      onMissed: (why) => progress('batch', `a host sample was missed (${why}); sampling goes on`),
      onFailure: (err) => {
        progress('batch', `sampling the host failed (${describeError(err)}); the batch stops`);
        samplingLost.abort(err);
      },
      onSample: () => {
        if (!watch) return;
        const w = watch;
        const stall = detectHostStall(sampler.samples.filter((s) => s.atMs >= w.startMs), spec.stall, hostCtx);
        if (stall) w.onStall(stall);
      },
    });
    td.defer('stop the batch sampler', () => sampler.stop().then(() => undefined));
    // An idle baseline for the scheduler and the plots: two samples before the first guest.
    while (sampler.samples.length < 2 && !signal.aborted) await sleep(100, signal).catch(() => undefined);

    const ctx: StepContext = { spec, scenarios, lab, image, dir, signal, deadline: deadline.signal, progress, linkBandwidthMbit, sampler, setWatch: (w) => (watch = w), hostCtx };
    const steps: StepRecord[] = [];
    let stop: StopReason | undefined;
    // Naive parallel, compared beside the scheduler, runs until its first stall: past it, its
    // failure is established and a larger N would only spend minutes of timeouts on it again.
    let naiveStalledAt: number | undefined;
    for (const n of expandSteps(spec.steps)) {
      if (samplingLost.signal.aborted) break;
      const g = checkGuard(spec, n, await memNow(), qemusPerPair, naiveStalledAt === undefined);
      if (!g.ok) {
        progress('batch', `N=${n}: ${g.message}`);
        stop = { kind: 'refused', n, detail: `N=${n}: ${g.message}` };
        break;
      }
      const compare = spec.mode === 'scheduled' && spec.compare;
      if (compare && naiveStalledAt !== undefined) progress('batch', `N=${n}: naive parallel not run again (it stalled at N=${naiveStalledAt})`);
      const variants: [StepVariant, BatchMode][] =
        compare && naiveStalledAt === undefined ? [['naive-parallel', 'parallel'], ['as-specified', 'scheduled']] : [['as-specified', spec.mode]];
      let last: StepRecord | undefined;
      for (const [variant, mode] of variants) {
        if (signal.aborted || deadline.signal.aborted) break;
        const settleMs = await settle(sampler, spec, hostCtx, signal, progress);
        const previous = steps[steps.length - 1];
        const hint = previous?.stall ? diagnoseStep(previous, sampler.samples, { cpus: hostCtx.cpus, linkBandwidthMbit, memoryReserveMiB: spec.memoryReserveMiB }, started) : undefined;
        const before = hostBefore(sampler.samples, Date.now(), spec.stall, hostCtx);
        last = { ...(await runStep(ctx, n, variant, mode, g, hint && previous ? { resource: hint.saturation.resource, concurrency: previous.plan?.concurrency ?? previous.n } : undefined)), settleMs, before };
        steps.push(last);
        if (variant === 'naive-parallel' && last.stall) naiveStalledAt ??= n;
      }
      // Without samples: sampler.stop() below rethrows why.
      if (samplingLost.signal.aborted) break;
      if (signal.aborted) stop = { kind: 'aborted', n, detail: `stopped from outside during N=${n}: ${describeError(signal.reason)}` };
      else if (deadline.signal.aborted) stop = { kind: 'deadline', n, detail: `N=${n}: ${describeError(deadline.signal.reason)}` };
      else if (last?.stall) stop = { kind: 'stall', n, stall: last.stall, detail: stallStopDetail(n, last.stall, last.before) };
      if (stop) break;
    }
    stop ??= { kind: 'finished', detail: 'every step ran without a stall' };
    progress('batch', `stopped: ${stop.kind}: ${stop.detail}`);
    const samples = await sampler.stop();
    const record: BatchRecord = {
      schema: BATCH_SCHEMA,
      batchId,
      startedAt: new Date(started).toISOString(),
      wallMs: Date.now() - started,
      spec,
      host: { where: host0.where, cpus: host0.cpus, memTotalMiB: host0.memTotalMiB, linkBandwidthMbit, kernel: host0.kernel },
      steps,
      stop,
      samples,
    };
    return { dir, ...(await writeBatchReport(dir, record)) };
  }, opts.signal);
}

interface StepContext {
  readonly spec: BatchSpec;
  /** Each guest's scenario as the batch gives it (before a retry's overrides), parsed once. */
  readonly scenarios: readonly Scenario[];
  readonly lab: Lab;
  readonly image: ImageInfo;
  readonly dir: string;
  readonly signal: AbortSignal;
  readonly deadline: AbortSignal;
  readonly progress: Progress;
  readonly linkBandwidthMbit?: number;
  readonly sampler: { readonly samples: readonly BatchSample[] };
  readonly setWatch: (w: { startMs: number; onStall: (s: Stall) => void } | undefined) => void;
  readonly hostCtx: { readonly cpus: number };
}

/** Longest wait for the host to calm down before a step. */
export const SETTLE_MAX_MS = 60000;

/**
 * Wait until the newest host sample shows no stall symptom, so a step does not inherit the
 * pressure of the one before (PSI avg10 decays over about 10 s, and a step that starts right
 * after a stalled one would be called stalled by the previous step's load). Returns the wait.
 */
async function settle(
  sampler: { readonly samples: readonly BatchSample[] },
  spec: BatchSpec,
  hostCtx: Parameters<typeof hostSymptoms>[2],
  signal: AbortSignal,
  progress: Progress,
): Promise<number> {
  const t0 = Date.now();
  const symptoms = () => {
    const last = sampler.samples[sampler.samples.length - 1];
    return last ? hostSymptoms(last, spec.stall, hostCtx).map((x) => x.symptom) : [];
  };
  let now = symptoms();
  if (now.length === 0) return 0;
  progress('batch', `waiting for the host to settle before the next step: ${now.join(', ')}`);
  try {
    while (now.length > 0 && Date.now() - t0 < SETTLE_MAX_MS && !signal.aborted) {
      progress.live?.({ topic: 'settle', status: { kind: 'settle', waitingFor: now, startedAt: t0, deadlineAt: t0 + SETTLE_MAX_MS } });
      await sleep(spec.sampleIntervalMs, signal).catch(() => undefined);
      now = symptoms();
    }
  } finally {
    progress.live?.({ topic: 'settle' });
  }
  const waited = Date.now() - t0;
  progress('batch', now.length > 0 ? `host still busy after ${waited} ms (${now.join(', ')}); starting anyway` : `host settled after ${waited} ms`);
  return waited;
}

async function runStep(
  c: StepContext,
  n: number,
  variant: StepVariant,
  mode: BatchMode,
  guard: MemoryGuardVerdict,
  saturated: { resource: StepDiagnosis['saturation']['resource']; concurrency: number } | undefined,
): Promise<StepRecord> {
  const { spec } = c;
  const startedAtMs = Date.now();
  const stepAc = new AbortController();
  const signal = AbortSignal.any([c.signal, c.deadline, stepAc.signal]);
  // Every guest of the step (and each of their waits) listens on this one signal.
  setMaxListeners(0, signal);
  const name = modeName(mode);
  const stepDir = join(c.dir, `n${n}-${variant === 'naive-parallel' ? 'naive-parallel' : name}`);
  let stall: Stall | undefined;
  const onStall = (s: Stall) => {
    if (stall) return;
    stall = s;
    c.progress('stall', `N=${n} ${name}: ${s.symptom}: ${s.detail}; aborting what runs`);
    stepAc.abort(new Error(`stall: ${s.symptom}`));
  };
  c.setWatch({ startMs: startedAtMs, onStall });
  c.progress('batch', `N=${n} ${name}: ${guard.message}`);

  const attempts: MigrationAttempt[] = [];
  const scheduled = mode === 'scheduled';
  const launch = async (i: number, attempt: number, o: ScenarioOverrides, gate?: GuestGate, waitBooted = false): Promise<void> => {
    if (signal.aborted) {
      gate?.done();
      return;
    }
    // With a gate, the guest waits for its turn to migrate (the whole group, or a free migration
    // slot) and says when its migration has ended. It waits ready (its workload at its rate: its
    // hand-over is then the probe's start and its migrate command), or, when the scheduler
    // says the CPU cannot hold its workload running meanwhile, booted.
    const turn = () => withDeadline(`g${i} waiting for its turn to migrate in N=${n}`, gate!.ready(), { timeoutMs: spec.deadlineMs, signal });
    const hooks = gate ? { ...(waitBooted ? { afterBoot: turn } : { beforeMigrate: turn }), afterMigrate: async () => gate.migrated() } : undefined;
    const scenario = parseScenario(guestScenario(spec, i, o));
    const base = {
      guestIndex: i,
      attempt,
      startedAtMs: Date.now(),
      memoryMiB: scenario.guest.memoryMiB,
      maxBandwidthMiBps: scenario.parameters.maxBandwidthMiBps,
      autoConverge: o.autoConverge,
      timeoutMs: scenario.timeoutMs,
    };
    try {
      const res = await migrateOnLab({
        lab: c.lab,
        image: c.image,
        scenario,
        dir: stepDir,
        runDirName: attempt > 1 ? `g${i}-retry${attempt - 1}` : `g${i}`,
        signal,
        progress: scoped(c.progress, `g${i}`),
        guestIndex: i,
        hooks,
      });
      const a = attemptFromReport(res.report, base, res.dir, Date.now());
      attempts.push(a);
      c.progress('batch', `N=${n} g${i}: ${a.outcome}${a.totalTimeMs !== undefined ? ` in ${a.totalTimeMs} ms, downtime ${a.downtimeMs} ms` : ''}`);
      const s = runStall(res.report, i);
      // Under the scheduler a first non-convergence is retried, not a stall.
      if (s && !(scheduled && attempt === 1 && RETRIED.has(s.symptom))) onStall(s);
    } catch (err) {
      const aborted = signal.aborted;
      attempts.push({ ...base, endedAtMs: Date.now(), outcome: aborted ? 'aborted' : 'error', failure: describeError(err), events: [] });
      if (!aborted) onStall({ symptom: 'migration-failed', atMs: Date.now(), confirmedAtMs: Date.now(), guestIndex: i, detail: `g${i}: ${describeError(err)}`, evidence: {} });
    } finally {
      // A guest that never booted, or failed, must not hold the others up.
      gate?.done();
    }
  };

  const all = Array.from({ length: n }, (_, i) => i);
  let plan: SchedulePlan | undefined;
  try {
    if (mode === 'sequential') {
      for (const i of all) await launch(i, 1, {});
    } else if (mode === 'parallel') {
      const barrier = new BootBarrier(n);
      await Promise.allSettled(all.map((i) => launch(i, 1, {}, barrier.gate())));
    } else if (typeof mode === 'object') {
      for (let k = 0; k < n; k += mode.waves) {
        const wave = all.slice(k, k + mode.waves);
        const barrier = new BootBarrier(wave.length);
        await Promise.allSettled(wave.map((i) => launch(i, 1, {}, barrier.gate())));
      }
    } else {
      plan = planSchedule({
        guests: all.map((i) => {
          const g = guestShape(spec, i);
          return { guestIndex: i, memoryMiB: g.memoryMiB, dirtyRateMiBps: assumedDirtyRateMiBps(g), busy: c.scenarios[i]!.workload.kind !== 'idle' };
        }),
        use: estimateResourceUse(c.sampler.samples, c.hostCtx.cpus),
        linkBandwidthMbit: c.linkBandwidthMbit,
        memAvailableMiB: guard.usableMiB + spec.memoryReserveMiB,
        memoryReserveMiB: spec.memoryReserveMiB,
        saturated,
        timeoutMs: spec.timeoutMs,
      });
      c.progress('schedule', `N=${n}: ${plan.concurrency} at once (limited by ${plan.limitedBy}); ${plan.reasons.join('; ')}`);
      const queue = [...plan.order];
      const p = plan;
      // inFlight guests are booting or migrating at once; of those, at most `concurrency` migrate.
      const slots = new MigrationSlots(plan.concurrency);
      const runs: Promise<void>[] = [];
      await Promise.allSettled(
        Array.from({ length: plan.inFlight }, async () => {
          for (let i = queue.shift(); i !== undefined && !signal.aborted; i = queue.shift()) {
            const gate = slots.gate();
            const run = launch(i, 1, { maxBandwidthMiBps: p.maxBandwidthMiBps }, gate, p.readyAhead === false);
            runs.push(run);
            // With the overlap, the next guest boots as soon as this one's migration has ended
            // (its place given back), else once its checks and cleanup are done too.
            await (p.overlapsChecks ? Promise.race([run, gate.released]) : run);
          }
        }),
      );
      await Promise.allSettled(runs);
      for (const r of planRetries(attempts, plan, c.linkBandwidthMbit)) {
        c.progress('schedule', r.reason);
        await launch(r.guestIndex, 2, r);
      }
    }
  } finally {
    c.setWatch(undefined);
  }
  return { n, mode: name, variant, startedAtMs, endedAtMs: Date.now(), attempts, guard: { needMiB: guard.needMiB, usableMiB: guard.usableMiB, message: guard.message }, stall, plan };
}
