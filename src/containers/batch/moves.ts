// Moving a step's containers from chost-src to chost-dst, one container at a time or many: each
// move is a `criu dump` on chost-src into the container's directory on the shared export, its
// files carried along (copied through the export, or flushed there), then a `criu restore -d` of
// those images on chost-dst. The naive modes run them as the homework does (one by one, all at
// once, in waves); `scheduled` runs the plan of schedule.ts: groups that take turns (dumps, then
// their restores), each group gated on the guests' latest samples. A guest's halt aborts the step's signal: what was in flight is recorded
// as it stood.
import { describeError, TimeoutError } from '../../errors.js';
import type { GuestExecResult } from '../../guest/control-client.js';
import { sleep } from '../../util/deadline.js';
import { criuDump, criuRestore } from '../criu-argv.js';
import type { ContainerHost } from '../hosts.js';
import { criuLogErrors, ms, readStats } from '../transfer.js';
import { chunks, CONTAINER_FILE_NAMES, type BatchContainer } from './fleet.js';
import { PSI_IO_LIMIT, PSI_MEMORY_LIMIT, RESERVE_MIB } from './schedule.js';
import type { BatchMode, ContainerMove, ContainerSchedulePlan, CriuCommandOutcome, GuestName, GuestSample } from './types.js';

/**
 * A CRIU command's deadline: long, because 400 dumps at once on one TCG vCPU take minutes each
 * (the naive batch must be allowed to fail its own way, not by our timer).
 */
export const CRIU_TIMEOUT_MS = 900_000;
/**
 * The scheduler's deadline for one CRIU command. Its moves go a few at a time, so one that runs
 * this long is stuck, not slow: at N=400 the slowest restore took 45 s (median 6 s at the end) on a
 * chost-dst at 99 % CPU pressure, while a restore stuck on a saturated export hung for more than
 * 4 minutes and the step with it. Past the deadline the scheduler gives the command up (the agent
 * kills it) and stops admitting, so the step ends with the evidence instead of waiting 15 minutes.
 */
export const SCHEDULED_CRIU_TIMEOUT_MS = 180_000;
/** How long the scheduler's gate waits for pressure to fall before it stops admitting. */
export const GATE_PATIENCE_MS = 60_000;

export interface MoveContext {
  readonly src: ContainerHost;
  readonly dst: ContainerHost;
  /** The step's start (Date.now()): startMs counts from it. */
  readonly stepT0: number;
  /** Aborted when a guest halts (and on Ctrl-C). */
  readonly signal: AbortSignal;
  readonly latest: (g: GuestName) => GuestSample | undefined;
  readonly progress: (line: string) => void;
  /** Each CRIU command's deadline: CRIU_TIMEOUT_MS for the naive modes, SCHEDULED_CRIU_TIMEOUT_MS for the scheduler. */
  readonly criuTimeoutMs: number;
}

interface Ran {
  readonly outcome: CriuCommandOutcome;
  readonly ok: boolean;
}

/** Run one CRIU command; a failure is an outcome with CRIU's words, never a throw (the batch counts them). */
async function runCriuStep(ctx: MoveContext, h: ContainerHost, argv: readonly string[], logOnHost: string): Promise<Ran> {
  const startMs = Date.now() - ctx.stepT0;
  let r: GuestExecResult | undefined;
  let failure: string | undefined;
  let gaveUp = false;
  try {
    r = await h.ctl.exec(argv, { reject: false, timeoutMs: ctx.criuTimeoutMs, signal: ctx.signal });
  } catch (err) {
    gaveUp = err instanceof TimeoutError && !ctx.signal.aborted;
    failure = ctx.signal.aborted
      ? 'not finished: the step was stopped (a guest halted, or Ctrl-C)'
      : gaveUp
        ? `still running after ${ctx.criuTimeoutMs / 1000} s: given up (stuck)`
        : describeError(err);
  }
  const ok = r !== undefined && r.exitCode === 0;
  const error = ok ? undefined : (failure ?? ((await criuLogErrors(logOnHost)) || (r!.signal ? `killed by signal ${r!.signal}` : r!.stderr.trim().slice(-300) || 'no error in its log')));
  return {
    ok,
    outcome: {
      startMs,
      wallMs: r ? r.wallUs / 1000 : null,
      exitCode: r && r.signal === 0 ? r.exitCode : null,
      signal: r && r.signal !== 0 ? r.signal : null,
      maxRssKiB: r ? r.maxRssKiB : null,
      ...(error !== undefined && { error }),
      ...(gaveUp && { gaveUpAfterMs: ctx.criuTimeoutMs }),
    },
  };
}

export interface Dumped {
  readonly dump: CriuCommandOutcome;
  readonly frozenMs: number | null;
  readonly ok: boolean;
}

export async function dumpContainer(ctx: MoveContext, c: BatchContainer): Promise<Dumped> {
  const cmd = criuDump({ pid: c.pid, imagesDir: `${c.guestDir}/img`, logFile: 'dump.log', preDump: false, trackMem: false });
  const ran = await runCriuStep(ctx, ctx.src, cmd.argv, `${c.hostDir}/img/dump.log`);
  if (ran.ok) await carryFiles(ctx, c);
  const stats = ran.ok ? await readStats(`${c.hostDir}/img/stats-dump`) : undefined;
  return { dump: ran.outcome, frozenMs: ms(stats?.dump?.frozenUs), ok: ran.ok };
}

/**
 * After the dump (the tree is gone, its files stand still): the files go where chost-dst will find
 * them, flushed by chost-src's NFS client, since CRIU's restore checks each one's size. In the
 * guest's memory: copied to files/ on the export, as a migration copies a rootfs. On the export:
 * only the log is flushed (a plain `sync` also flushed the other N-1 containers' logs, ~4.5 s a
 * container with 100 running). A failed copy shows as the restore's failure, in CRIU's words.
 */
async function carryFiles(ctx: MoveContext, c: BatchContainer): Promise<void> {
  const argv = c.filesInGuest ? copyFilesArgv(c.filesDir, `${c.guestDir}/files`) : ['sync', `${c.filesDir}/seq.log`];
  await ctx.src.ctl.exec(argv, { reject: false, signal: ctx.signal, timeoutMs: 120_000 }).catch(() => undefined);
}

/**
 * A container's files from one directory to another, made if missing, flushed where they land (to
 * the export: chost-src's NFS client writes them back; into a guest's memory it costs nothing).
 * The directories and names are positional arguments, never text in the script.
 */
function copyFilesArgv(from: string, to: string): string[] {
  return ['sh', '-c', 'from=$1 to=$2; shift 2; mkdir -p -- "$to" && for f; do cp -p -- "$from/$f" "$to/" || exit; done; cd "$to" && sync -- "$@"', 'sh', from, to, ...CONTAINER_FILE_NAMES];
}

export async function restoreContainer(ctx: MoveContext, c: BatchContainer): Promise<Ran> {
  if (c.filesInGuest) {
    // Its files into chost-dst's memory, at the paths its tree had them open.
    await ctx.dst.ctl.exec(copyFilesArgv(`${c.guestDir}/files`, c.filesDir), { reject: false, signal: ctx.signal, timeoutMs: 120_000 }).catch(() => undefined);
  }
  const cmd = criuRestore({ imagesDir: `${c.guestDir}/img`, logFile: 'restore.log', pidFile: 'restored.pid', detach: true });
  return runCriuStep(ctx, ctx.dst, cmd.argv, `${c.hostDir}/img/restore.log`);
}

/** A restore that never ran: the step stopped after the dump (the container was dumped and is lost). */
const neverRestored = (ctx: MoveContext): CriuCommandOutcome => ({ startMs: Date.now() - ctx.stepT0, wallMs: null, exitCode: null, signal: null, maxRssKiB: null, error: 'never started: a guest halted (the container was dumped and is lost)' });

/** A command still running when the step stopped: it never returned, so it neither failed nor succeeded. */
const cutShort = (ctx: MoveContext, o: CriuCommandOutcome): boolean => ctx.signal.aborted && o.wallMs === null;

/**
 * Every container's dump at once, then every restore of those dumped at once: one wave (of one,
 * for one-by-one and the scheduler's retries).
 */
async function wave(ctx: MoveContext, cs: readonly BatchContainer[], attempt = 1): Promise<ContainerMove[]> {
  const dumped = await Promise.all(cs.map(async (c) => ({ c, d: await dumpContainer(ctx, c) })));
  return Promise.all(
    dumped.map(async ({ c, d }): Promise<ContainerMove> => {
      const base = { index: c.index, attempt, dump: d.dump, frozenMs: d.frozenMs };
      // A command the stop cut short never ran to an outcome of its own.
      if (!d.ok) return { ...base, outcome: cutShort(ctx, d.dump) ? 'cut-short' : 'dump-failed' };
      if (ctx.signal.aborted) return { ...base, outcome: 'restore-failed', restore: neverRestored(ctx) };
      const r = await restoreContainer(ctx, c);
      return { ...base, outcome: r.ok ? 'migrated' : cutShort(ctx, r.outcome) ? 'cut-short' : 'restore-failed', restore: r.outcome };
    }),
  );
}

/** Dump then restore one container: one move. */
export async function moveOne(ctx: MoveContext, c: BatchContainer, attempt = 1): Promise<ContainerMove> {
  return (await wave(ctx, [c], attempt))[0]!;
}

/** How often a long step says how far it got (a scheduled N=400 runs for a quarter of an hour). */
const PROGRESS_EVERY_MS = 15_000;

/** A progress line at most every PROGRESS_EVERY_MS: containers tried so far, and what became of them. */
function tally(ctx: MoveContext, total: number, before: readonly ContainerMove[]): (moves: readonly ContainerMove[]) => void {
  let last = Date.now();
  return (moves) => {
    if (Date.now() - last < PROGRESS_EVERY_MS) return;
    last = Date.now();
    const all = [...before, ...moves];
    const migrated = all.filter((m) => m.outcome === 'migrated').length;
    ctx.progress(`${all.length} of ${total} tried after ${((Date.now() - ctx.stepT0) / 1000).toFixed(0)} s: ${migrated} migrated, ${all.length - migrated} not`);
  };
}

export const notAttempted = (c: BatchContainer): ContainerMove => ({ index: c.index, attempt: 1, outcome: 'not-attempted' });

/** The naive modes: as the homework does them, with no regard for the guests. */
export async function moveNaive(ctx: MoveContext, mode: Exclude<BatchMode, 'scheduled'>, cs: readonly BatchContainer[], waveSize: number): Promise<ContainerMove[]> {
  if (mode === 'all-at-once') return wave(ctx, cs);
  const size = mode === 'one-by-one' ? 1 : waveSize;
  const moves: ContainerMove[] = [];
  const report = tally(ctx, cs.length, []);
  for (const group of chunks(cs, size)) {
    if (ctx.signal.aborted) moves.push(...group.map(notAttempted));
    else moves.push(...(await wave(ctx, group)));
    report(moves);
  }
  return moves;
}

/** The first command of these moves the scheduler gave up on, said in words; undefined when none. */
export function stuckCommand(moves: readonly ContainerMove[]): string | undefined {
  for (const m of moves) {
    for (const [kind, o] of [['dump', m.dump], ['restore', m.restore]] as const) {
      if (o?.gaveUpAfterMs !== undefined) return `c${m.index}'s ${kind} was still running after ${o.gaveUpAfterMs / 1000} s`;
    }
  }
  return undefined;
}

/** Why the gate holds the next dump back, or undefined when it may go. */
export function gateReason(s: GuestSample | undefined, guest: GuestName, reserveMiB = RESERVE_MIB): string | undefined {
  if (!s) return undefined;
  if (s.psiMemSome10 !== undefined && s.psiMemSome10 > PSI_MEMORY_LIMIT) return `${guest}'s memory pressure is ${s.psiMemSome10} % (PSI some avg10 > ${PSI_MEMORY_LIMIT})`;
  if (s.psiIoSome10 !== undefined && s.psiIoSome10 > PSI_IO_LIMIT) return `${guest}'s I/O pressure is ${s.psiIoSome10} % (PSI some avg10 > ${PSI_IO_LIMIT}): the shared export is saturated`;
  if (s.memAvailableMiB !== undefined && s.memAvailableMiB < reserveMiB) return `${guest} has ${s.memAvailableMiB} MiB available (< ${reserveMiB} reserve)`;
  return undefined;
}

/**
 * The scheduled mode: the first `plan.admit` containers in groups of `plan.atOnce` (dumps
 * together, then restores together: the two guests never compete for the NFS server), each group
 * after the gate has looked at both guests' latest samples. A dump that failed with the tree still
 * running (CRIU's error, not a kill) is retried once, alone, at the end. `before`: the step's moves
 * made already (the first container, alone), counted in its progress lines.
 */
export async function moveScheduled(ctx: MoveContext, plan: ContainerSchedulePlan, cs: readonly BatchContainer[], before: readonly ContainerMove[] = []): Promise<{ moves: ContainerMove[]; stoppedEarly?: string }> {
  const moves: ContainerMove[] = [];
  const admitted = cs.slice(0, plan.admit);
  const stops: string[] = plan.admit < cs.length ? [`${cs.length - plan.admit} containers left on chost-src: chost-dst has no room for them (the plan)`] : [];
  const gate = async (): Promise<string | undefined> => {
    const until = Date.now() + GATE_PATIENCE_MS;
    for (;;) {
      const why = gateReason(ctx.latest('chost-src'), 'chost-src') ?? gateReason(ctx.latest('chost-dst'), 'chost-dst');
      if (!why || Date.now() > until) return why;
      await sleep(500, ctx.signal);
    }
  };
  let next = 0;
  // The step's progress counts the moves made before this plan (the scheduler's first, alone) too.
  const report = tally(ctx, before.length + cs.length, before);
  while (next < admitted.length && !ctx.signal.aborted) {
    const held = await gate().catch(() => undefined);
    if (held) {
      stops.push(`the gate stopped admitting after ${GATE_PATIENCE_MS / 1000} s: ${held}`);
      break;
    }
    const group = admitted.slice(next, next + plan.atOnce);
    next += group.length;
    const done = await wave(ctx, group);
    moves.push(...done);
    report(moves);
    const stuck = stuckCommand(done);
    if (stuck) {
      stops.push(`${stuck}: the scheduler gave it up and stopped admitting (a command stuck that long means a guest or the export stalled)`);
      break;
    }
  }
  for (const c of admitted.slice(next)) moves.push(notAttempted(c));
  // The second tries, alone: a dump that failed in contention (not killed) gets the guest to itself;
  // none once a command stuck (each would wait out its deadline on the same stalled guest or export).
  const retry = stuckCommand(moves) ? [] : moves.filter((m) => m.outcome === 'dump-failed' && m.dump?.signal === null && m.dump.exitCode !== null);
  for (const m of retry) {
    if (ctx.signal.aborted) break;
    ctx.progress(`c${m.index}: retrying its dump alone`);
    const again = await moveOne(ctx, cs.find((c) => c.index === m.index)!, 2);
    moves.push(again);
    const stuck = stuckCommand([again]);
    if (stuck) {
      stops.push(`${stuck} (its second try): the scheduler gave it up and tried no more`);
      break;
    }
  }
  for (const c of cs.slice(plan.admit)) moves.push(notAttempted(c));
  return { moves: moves.sort((a, b) => a.index - b.index || a.attempt - b.attempt), ...(stops.length > 0 && { stoppedEarly: stops.join('; ') }) };
}
