// `miglab containers batch`: the companion lab's "many images, one by one or in a batch, until
// your system halts". The two container hosts boot once; each step of the ladder (1, 10, 100,
// 400 ... containers) starts N counters on chost-src, moves them to chost-dst in the chosen mode,
// checks them, and ends them; the guests and the host are sampled throughout, and the ladder stops
// at the first step where a guest halts. The record says when, how and why (diagnose.ts).
import { setMaxListeners } from 'node:events';
import { cp, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT, newRunId, preflight, useLab } from '../../api.js';
import { MiglabError, TimeoutError, UsageError, describeError } from '../../errors.js';
import { CommandError } from '../../host/local.js';
import type { Progress } from '../../progress/progress.js';
import { checkResultsDir } from '../../report/results-dir.js';
import { withTeardown } from '../../util/teardown.js';
import { GUEST_CKPT_DIR, startContainerHosts, type ContainerHost } from '../hosts.js';
import { checkMemory, type ContainerCommandInput } from '../run.js';
import { checkpointDirOf } from '../transfer.js';
import { diagnoseBatch } from './diagnose.js';
import { checkMigrated, endFleet, MAX_BATCH_COUNT, startFleet, waitFleetWriting, type BatchContainer } from './fleet.js';
import { CRIU_TIMEOUT_MS, moveNaive, moveOne, moveScheduled, notAttempted, SCHEDULED_CRIU_TIMEOUT_MS, stuckCommand, type MoveContext } from './moves.js';
import { writeBatchRecord, CONTAINER_BATCH_SCHEMA } from './record.js';
import { planContainerSchedule } from './schedule.js';
import { guestSignalsArgv, parseGuestSignals, startBatchWatch, type BatchWatch } from './signals.js';
import { BATCH_MODES, CONTAINER_FILES, type BatchMode, type ContainerFiles, type BatchStep, type ContainerBatchRecord, type ContainerBatchRequest, type ContainerMove, type ContainerSchedulePlan, type GuestName } from './types.js';

export interface ContainerBatchInput extends ContainerCommandInput {
  /** The ladder: "1,10,100,400" or the numbers. */
  readonly counts: string | readonly number[];
  readonly mode: string;
  readonly waveSize?: number;
  /** Resident memory each counter holds, MiB (the workload's --rss-mib; 0: the counter's own). */
  readonly rssMiB?: number;
  /** guest (default) or export: where the containers' own files live (types.ts CONTAINER_FILES). */
  readonly files?: string;
}

export interface ContainerBatchOutcome {
  readonly batchId: string;
  readonly dir: string;
  readonly record: ContainerBatchRecord;
}

/** Where the containers' files live in each guest's own memory (--files guest). */
export const GUEST_FILES_DIR = '/run/miglab-batch';

/** CRIU's peak RSS assumed when the calibration's own dump or restore failed (measured: 6.4-6.9 MiB). */
export const FALLBACK_CRIU_RSS_MIB = 8;

export function parseCounts(counts: string | readonly number[]): number[] {
  const list = typeof counts === 'string' ? counts.split(',').map((s) => s.trim()) : counts.map(String);
  const out = list.map((s) => {
    const n = Number(s);
    if (s === '' || !Number.isInteger(n) || n < 1 || n > MAX_BATCH_COUNT) throw new UsageError(`container count "${s}" is not a whole number from 1 to ${MAX_BATCH_COUNT}`, 'give the ladder as counts, e.g. --counts 1,10,100,400');
    return n;
  });
  if (out.length === 0) throw new UsageError('no container counts given', 'e.g. --counts 1,10,100,400');
  for (let i = 1; i < out.length; i++) {
    if (out[i]! <= out[i - 1]!) throw new UsageError(`the counts ${out.join(',')} do not rise: ${out[i]} follows ${out[i - 1]}`, 'give the ladder in rising order, e.g. --counts 1,10,100,400');
  }
  return out;
}

export function checkBatchRequest(i: ContainerBatchInput): ContainerBatchRequest {
  const counts = parseCounts(i.counts);
  if (!(BATCH_MODES as readonly string[]).includes(i.mode)) throw new UsageError(`unknown batch mode "${i.mode}"`, `use one of ${BATCH_MODES.join(', ')}`);
  const mode = i.mode as BatchMode;
  if (i.waveSize !== undefined && mode !== 'waves') throw new UsageError(`--wave-size is for --mode waves, not ${mode}`, 'drop --wave-size or use --mode waves');
  const waveSize = mode === 'waves' ? (i.waveSize ?? 10) : undefined;
  if (waveSize !== undefined && (!Number.isInteger(waveSize) || waveSize < 1)) throw new UsageError(`wave size ${waveSize} is not a whole number >= 1`, 'e.g. --wave-size 10');
  // 2 GiB by default: the reference report's VMs.
  const memoryMiB = checkMemory(i.memoryMiB ?? 2048);
  const vcpus = i.vcpus ?? 1;
  if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > 8) throw new UsageError(`${vcpus} vCPUs is out of range`, 'use 1 to 8');
  const rssMiB = i.rssMiB ?? 0;
  if (!Number.isInteger(rssMiB) || rssMiB < 0 || rssMiB > 1024) throw new UsageError(`per-container memory ${rssMiB} MiB is out of range`, 'use 0 (the counter\'s own) to 1024 MiB, e.g. --rss-mib 12 for a Go program\'s');
  const periodMs = i.periodMs ?? 1000;
  if (!Number.isInteger(periodMs) || periodMs < 100 || periodMs > 60_000) throw new UsageError(`counter period ${periodMs} ms is out of range`, 'use 100 to 60000 ms (the report\'s counter: 1000)');
  const files = i.files ?? 'guest';
  if (!(CONTAINER_FILES as readonly string[]).includes(files)) throw new UsageError(`unknown place for the containers' files "${files}"`, `use one of ${CONTAINER_FILES.join(', ')}`);
  return { counts, mode, ...(waveSize !== undefined && { waveSize }), memoryMiB, vcpus, rssMiB, periodMs, files: files as ContainerFiles };
}

interface StepContext {
  readonly batchId: string;
  readonly req: ContainerBatchRequest;
  readonly src: ContainerHost;
  readonly dst: ContainerHost;
  readonly hostRoot: string;
  readonly t0: number;
  readonly watch: BatchWatch;
  readonly signal: AbortSignal;
  readonly dir: string;
  readonly keepImages: boolean;
  readonly progress: (phase: string, line: string) => void;
}

/** MemAvailable of a guest now (a fresh read, not the sampler's last). */
async function availableMiB(h: ContainerHost, signal: AbortSignal): Promise<number> {
  const asked = Date.now();
  const r = await h.ctl.exec(guestSignalsArgv(), { reject: false, signal, timeoutMs: 30_000 });
  const s = parseGuestSignals(r.stdout, { atMs: 0, guest: h.name as GuestName, rttMs: Date.now() - asked });
  if (s.memAvailableMiB === undefined) throw new MiglabError('COMMAND_FAILED', `${h.name}'s /proc/meminfo has no MemAvailable`);
  return s.memAvailableMiB;
}

const mibOf = (kib: number | null | undefined) => (kib === null || kib === undefined ? undefined : kib / 1024);

/** The scheduled mode: the first container moved alone measures what the plan needs, the rest follow the plan. */
async function moveStepScheduled(c: StepContext, ctx: MoveContext, cs: readonly BatchContainer[], perContainerMiB: number): Promise<{ moves: ContainerMove[]; plan?: ContainerSchedulePlan; stoppedEarly?: string }> {
  const first = await moveOne(ctx, cs[0]!);
  const stuck = stuckCommand([first]);
  if (stuck) return { moves: [first, ...cs.slice(1).map(notAttempted)], stoppedEarly: `${stuck}: the scheduler gave it up and admitted no more` };
  if (cs.length === 1 || ctx.signal.aborted) return { moves: [first] };
  const [srcAvail, dstAvail] = await Promise.all([availableMiB(c.src, ctx.signal), availableMiB(c.dst, ctx.signal)]);
  const dumpRss = mibOf(first.dump?.maxRssKiB);
  const restoreRss = mibOf(first.restore?.maxRssKiB);
  const plan = planContainerSchedule({
    count: cs.length - 1,
    srcVcpus: c.req.vcpus,
    dstVcpus: c.req.vcpus,
    srcAvailableMiB: srcAvail,
    dstAvailableMiB: dstAvail,
    dumpRssMiB: dumpRss ?? FALLBACK_CRIU_RSS_MIB,
    restoreRssMiB: restoreRss ?? FALLBACK_CRIU_RSS_MIB,
    perContainerMiB,
  });
  const calibration = `measured on c0, moved alone: criu dump ${dumpRss === undefined ? `gave no RSS (${FALLBACK_CRIU_RSS_MIB} MiB assumed)` : `${dumpRss.toFixed(1)} MiB`}, criu restore ${restoreRss === undefined ? `gave no RSS (${FALLBACK_CRIU_RSS_MIB} MiB assumed)` : `${restoreRss.toFixed(1)} MiB`}; each container cost chost-src ${perContainerMiB.toFixed(2)} MiB (MemAvailable before and after starting them, / N)`;
  const withCalibration: ContainerSchedulePlan = { ...plan, reasons: [calibration, ...plan.reasons] };
  c.progress('schedule', `N=${cs.length}: ${plan.atOnce} at once, ${plan.admit + 1} admitted; ${withCalibration.reasons.join('; ')}`);
  const rest = await moveScheduled(ctx, withCalibration, cs.slice(1), [first]);
  return { moves: [first, ...rest.moves], plan: { ...withCalibration, admit: withCalibration.admit + 1 }, ...(rest.stoppedEarly && { stoppedEarly: rest.stoppedEarly }) };
}

/** Keep CRIU's logs of the moves that failed: the evidence in CRIU's words. */
async function keepFailedLogs(c: StepContext, n: number, cs: readonly BatchContainer[], moves: readonly ContainerMove[]): Promise<void> {
  const failed = new Set(moves.filter((m) => m.outcome === 'dump-failed' || m.outcome === 'restore-failed').map((m) => m.index));
  for (const x of cs.filter((x) => failed.has(x.index)).slice(0, 50)) {
    await cp(join(x.hostDir, 'img'), join(c.dir, 'criu', `n${n}`, `c${x.index}`), { recursive: true, filter: (f) => !f.endsWith('.img') }).catch(() => undefined);
  }
}

/** The step could not go on, and that is its result (the ladder stops), not the batch's failure. */
class StepBrokeDown extends Error {}

/** A guest that did not answer in time, or a command that failed in it: the step's trouble, kept as its result; anything else is a bug and throws. */
const guestTrouble = (err: unknown): boolean => err instanceof TimeoutError || err instanceof CommandError;

async function runStep(c: StepContext, n: number): Promise<BatchStep> {
  const { src, dst, req, signal } = c;
  const stepT0 = Date.now();
  const startMs = stepT0 - c.t0;
  const guestDir = `${GUEST_CKPT_DIR}/${c.batchId}/n${n}`;
  const hostDir = join(c.hostRoot, `n${n}`);
  // The containers' own files in the guests' memory (tmpfs-backed rootfs), unless asked on the export.
  const localDir = req.files === 'guest' ? `${GUEST_FILES_DIR}/${c.batchId}/n${n}` : undefined;
  let cs: BatchContainer[] = [];
  let moves: ContainerMove[] = [];
  let plan: ContainerSchedulePlan | undefined;
  let stoppedEarly: string | undefined;
  let startContainersMs = 0;
  try {
    c.progress('step', `N=${n}: starting ${n} counter container(s) on chost-src`);
    const before = await availableMiB(src, signal);
    const fleet = await startFleet({ src, count: n, guestDir, hostDir, localDir, rssMiB: req.rssMiB, periodMs: req.periodMs, signal });
    cs = fleet.containers;
    if (fleet.failure !== undefined) throw new StepBrokeDown(`chost-src could not start ${n} containers (${cs.length} started): ${fleet.failure}`);
    const silent = await waitFleetWriting(src, cs, req.periodMs, signal);
    if (silent !== undefined) throw new StepBrokeDown(`chost-src started ${n} containers but ${silent}`);
    startContainersMs = Date.now() - stepT0;
    const perContainerMiB = Math.max(0, (before - (await availableMiB(src, signal))) / n);
    c.progress('step', `N=${n}: all writing after ${startContainersMs} ms; moving them (${req.mode}${req.waveSize ? `, waves of ${req.waveSize}` : ''})`);
    const ctx: MoveContext = { src, dst, stepT0, signal, latest: (g) => c.watch.latest(g), progress: (l) => c.progress('move', l), criuTimeoutMs: req.mode === 'scheduled' ? SCHEDULED_CRIU_TIMEOUT_MS : CRIU_TIMEOUT_MS };
    if (req.mode === 'scheduled') ({ moves, plan, stoppedEarly } = await moveStepScheduled(c, ctx, cs, perContainerMiB));
    else moves = await moveNaive(ctx, req.mode, cs, req.waveSize ?? 1);
    if (!signal.aborted) {
      // A check that cannot read the logs (the export stalled) leaves the moves unchecked: the
      // step's result, said so, not the batch's failure.
      moves = await checkMigrated(dst, cs, moves, req.periodMs, signal).catch((err: unknown) => {
        if (signal.aborted || !guestTrouble(err)) throw err;
        throw new StepBrokeDown(`${stoppedEarly ? `${stoppedEarly}; then ` : ''}the migrated containers could not be checked: ${describeError(err)}`);
      });
    }
  } catch (err) {
    if (err instanceof StepBrokeDown) stoppedEarly = err.message;
    else if (!signal.aborted) throw err;
    else stoppedEarly = `stopped ${c.watch.halt() ? `because ${c.watch.halt()!.guest} halted` : 'by Ctrl-C'} while ${cs.length < n ? 'starting the containers' : moves.length === 0 ? 'moving them' : 'checking them'}: ${describeError(err)}`;
  }
  // Stopped with its moves unfinished or unchecked: said, so an unchecked container is not read as a broken one.
  if (signal.aborted && !stoppedEarly) stoppedEarly = `stopped ${c.watch.halt() ? `because ${c.watch.halt()!.guest} halted` : 'by Ctrl-C'} before the migrated containers were checked`;
  // Containers never reached by a move (the step stopped first) are recorded as such.
  const seen = new Set(moves.map((m) => m.index));
  for (let i = 0; i < n; i++) if (!seen.has(i)) moves.push({ index: i, attempt: 1, outcome: 'not-attempted' });
  moves.sort((a, b) => a.index - b.index || a.attempt - b.attempt);
  await keepFailedLogs(c, n, cs, moves);
  const halt = c.watch.halt();
  if (!signal.aborted) {
    // On a stalled guest ending the fleet can time out too: said, and the step kept.
    await endFleet({ src, dst, cs, moves, localDir, signal }).catch((err: unknown) => {
      if (signal.aborted || !guestTrouble(err)) throw err;
      stoppedEarly = `${stoppedEarly ? `${stoppedEarly}; ` : ''}its containers could not all be ended: ${describeError(err)}`;
    });
    if (!c.keepImages) await rm(hostDir, { recursive: true, force: true });
  }
  const final = (i: number) => moves.filter((m) => m.index === i).at(-1)!;
  const finals = Array.from({ length: n }, (_, i) => final(i));
  return {
    count: n,
    mode: req.mode,
    startMs,
    durationMs: Date.now() - stepT0,
    startContainersMs,
    moves,
    ...(plan && { plan }),
    migrated: finals.filter((m) => m.outcome === 'migrated').length,
    dumpFailures: moves.filter((m) => m.outcome === 'dump-failed').length,
    restoreFailures: moves.filter((m) => m.outcome === 'restore-failed').length,
    intact: finals.filter((m) => m.check?.ok).length,
    console: c.watch.consoleEvents.filter((e) => e.atMs >= startMs),
    ...(halt && halt.atMs >= startMs && { halt }),
    ...(stoppedEarly && { stoppedEarly }),
  };
}

export async function containersBatch(input: ContainerBatchInput): Promise<ContainerBatchOutcome> {
  // Everything the user gave is checked before anything starts.
  const req = checkBatchRequest(input);
  const batchId = newRunId(`ctr-batch-${req.mode}`);
  const resultsRoot = await checkResultsDir(input.resultsRoot ?? join(REPO_ROOT, 'results'));
  const dir = join(resultsRoot, batchId);
  const image = await preflight(['qemu64'], 'chost');
  const progress: Progress = input.progress ?? (() => undefined);
  const startedAt = new Date().toISOString();
  return withTeardown(async (td, signal) => {
    const lab = await useLab(td, { lab: input.lab, cpuModels: ['qemu64'] }, signal);
    await mkdir(dir, { recursive: true });
    const hostRoot = checkpointDirOf(lab, batchId);
    await mkdir(hostRoot, { recursive: true });
    if (!input.keepImages) td.defer(`remove the batch's checkpoint directory ${hostRoot}`, () => rm(hostRoot, { recursive: true, force: true }));
    const steps: BatchStep[] = [];
    const record = (watch: BatchWatch | undefined, criuVersion: string, failure?: string): ContainerBatchRecord => {
      const guestSamples = watch?.guestSamples ?? [];
      const hostSamples = watch?.hostSamples ?? [];
      return {
        schema: CONTAINER_BATCH_SCHEMA,
        batchId,
        startedAt,
        finishedAt: new Date().toISOString(),
        request: req,
        imageHash: image.hash,
        criuVersion,
        lab: input.lab?.prefix ?? 'mlab',
        steps,
        guestSamples,
        hostSamples,
        verdict: diagnoseBatch(steps, guestSamples, hostSamples, req),
        ...(failure && { failure }),
      };
    };
    let watch: BatchWatch | undefined;
    let criuVersion = '';
    try {
      const hosts = await startContainerHosts({ lab, image, td, runId: batchId, runDir: dir, memoryMiB: req.memoryMiB, vcpus: req.vcpus, cpuModel: 'qemu64', signal, progress: (p, l) => progress(p, l) });
      criuVersion = hosts.criuVersion;
      const t0 = Date.now();
      // A guest's halt ends the ladder: what runs in the guests is cut short and recorded as it stood.
      const halted = new AbortController();
      watch = startBatchWatch({ guests: [hosts.src, hosts.dst], t0, onHalt: (h) => halted.abort(new MiglabError('COMMAND_FAILED', `${h.guest} halted: ${h.detail}`)), progress: (l) => progress('watch', l) });
      td.defer('stop sampling the guests and the host', () => watch!.stop());
      const stepSignal = AbortSignal.any([signal, halted.signal]);
      // Every CRIU command of a step listens to it: hundreds at once in the naive modes.
      setMaxListeners(4 * MAX_BATCH_COUNT, stepSignal);
      const c: StepContext = { batchId, req, src: hosts.src, dst: hosts.dst, hostRoot, t0, watch, signal: stepSignal, dir, keepImages: input.keepImages ?? false, progress: (p, l) => progress(p, l) };
      for (const n of req.counts) {
        const step = await runStep(c, n);
        steps.push(step);
        progress('step', `N=${n}: ${step.migrated} migrated, ${step.intact} intact, ${step.dumpFailures} dump and ${step.restoreFailures} restore failure(s) in ${(step.durationMs / 1000).toFixed(1)} s${step.stoppedEarly ? `; ${step.stoppedEarly}` : ''}`);
        if (signal.aborted) throw signal.reason;
        if (watch.halt()) break;
        // A step that moved none of its containers has broken down without halting a guest: a
        // bigger one would only take longer to move none.
        if (step.migrated === 0 && n > 1) {
          progress('step', `N=${n} moved none of its containers: the ladder stops here`);
          break;
        }
        // A step that could not finish (a command stuck, the gate closed, no room) would not finish bigger.
        if (step.stoppedEarly !== undefined) {
          progress('step', `N=${n} stopped early: the ladder stops here`);
          break;
        }
      }
      await watch.stop();
    } catch (err) {
      await watch?.stop();
      await writeBatchRecord(dir, record(watch, criuVersion, describeError(err))).catch(() => undefined);
      throw err;
    }
    const r = record(watch, criuVersion);
    await writeBatchRecord(dir, r);
    progress('done', `${r.verdict.when} Results in ${dir}`);
    return { batchId, dir, record: r };
  }, input.signal);
}
