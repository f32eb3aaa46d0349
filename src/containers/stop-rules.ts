// When an iterative container migration stops pre-dumping and takes the final dump. Pure: the
// strategies feed in what each round measured and act on the answer; the reason sentence goes
// into the round record and the report as it is.
import { UsageError } from '../errors.js';

// ---- P.Haul's rule (iterative) ----
// phaul/iters.py (checkpoint-restore/p.haul at 02199d8), class iter_consts and
// __check_live_iter_progress, checked in this order after every pre-dump:
//   1. stop if pages_written <= MIN_ITER_PAGES_COUNT (64)          "Small dump"
//   2. stop if a previous round exists and
//      (cur - prev) * 100 / prev > MAX_ITER_GROW_RATE (10)         "Iteration grows"
//   3. stop if index >= MAX_ITERS_COUNT (8)                         "Too many iterations"
// Two differences, on purpose:
// - P.Haul's `index` is the 0-based index of the pre-dump just taken, so it stops at index 8,
//   after the 9th pre-dump. Ours counts pre-dumps: it stops once `maxRounds` (8) pre-dumps ran, so
//   "at most 8 rounds" means 8 pre-dumps, then the final dump. P.Haul's check is ours with
//   maxRounds + 1.
// - P.Haul is Python 2 (`import criu_api`), where `delta * 100 / prev` is floor division: it goes
//   on at +10.9 % and stops from +11 %. Ours compares exactly: +10.5 % > 10 % stops.

export interface IterRules {
  /** Stop when a pre-dump wrote this many pages or fewer: the final dump will be small anyway. */
  readonly minPages: number;
  /** Stop when a pre-dump wrote more than this many percent more pages than the one before: it is not converging. */
  readonly maxGrowthPct: number;
  /** Stop after this many pre-dumps. */
  readonly maxRounds: number;
}

export const PHAUL_RULES: IterRules = { minPages: 64, maxGrowthPct: 10, maxRounds: 8 };

export interface StopDecision {
  readonly continue: boolean;
  readonly reason: string;
}

function checkRules(r: IterRules): void {
  if (!Number.isInteger(r.minPages) || r.minPages < 0) throw new UsageError(`min pages must be a whole number >= 0, got ${r.minPages}`, 'P.Haul uses 64');
  if (!Number.isFinite(r.maxGrowthPct) || r.maxGrowthPct < 0) throw new UsageError(`max growth must be a percentage >= 0, got ${r.maxGrowthPct}`, 'P.Haul uses 10');
  if (!Number.isInteger(r.maxRounds) || r.maxRounds < 0) throw new UsageError(`max rounds must be a whole number >= 0, got ${r.maxRounds}`, 'P.Haul uses 8');
}

/** `cur` against `prev` in percent; Infinity when it grew from 0. */
function growthPct(prev: number, cur: number): number {
  if (prev === 0) return cur === 0 ? 0 : Infinity;
  return ((cur - prev) * 100) / prev;
}

/** A growth as "+12%" or "-20%", with as many decimals as it takes not to look equal to `limit` when it is not. */
function pctText(pct: number, limit: number): string {
  if (pct === Infinity) return 'from 0';
  const sign = pct >= 0 ? '+' : '';
  for (let d = 0; d <= 6; d++) {
    const shown = Number(pct.toFixed(d));
    if (shown === pct || (d > 0 && Math.sign(shown - limit) === Math.sign(pct - limit))) return `${sign}${shown}%`;
  }
  return `${sign}${pct}%`;
}

/**
 * After a pre-dump: take another one, or the final dump? `rounds` holds every pre-dump so far,
 * oldest first (pagesWritten from its stats-dump). With no round yet it answers whether a first
 * pre-dump may run at all (not when maxRounds is 0).
 */
export function shouldContinue(rounds: readonly { readonly pagesWritten: number }[], rules: IterRules = PHAUL_RULES): StopDecision {
  checkRules(rules);
  const cur = rounds.at(-1);
  const prev = rounds.at(-2);
  if (cur && cur.pagesWritten <= rules.minPages) {
    return { continue: false, reason: `small dump: ${cur.pagesWritten} pages written <= ${rules.minPages}` };
  }
  const growth = cur && prev ? growthPct(prev.pagesWritten, cur.pagesWritten) : undefined;
  if (cur && prev && growth !== undefined && growth > rules.maxGrowthPct) {
    return {
      continue: false,
      reason: `iteration grows: ${prev.pagesWritten} -> ${cur.pagesWritten} pages (${pctText(growth, rules.maxGrowthPct)}) > ${rules.maxGrowthPct}%`,
    };
  }
  if (rounds.length >= rules.maxRounds) {
    return { continue: false, reason: `too many iterations: ${rounds.length} pre-dumps >= ${rules.maxRounds}` };
  }
  if (!cur) return { continue: true, reason: 'go on: no pre-dump yet' };
  const trend = growth === undefined ? 'first pre-dump' : pctText(growth, rules.maxGrowthPct);
  return { continue: true, reason: `go on: ${cur.pagesWritten} pages (${trend})` };
}

// ---- mem-rounds (plan 5.4) ----
// The final dump is triggered by rounds of memory change, read live: right after each pre-dump
// (criu with --track-mem clears the soft-dirty bits) the controller reads the tree's soft-dirty
// page count once: the pages changed since that pre-dump, which a final dump taken now would carry.
// The count only grows until the next clear, so the moment right after a pre-dump is the
// cheapest one in its round: waiting can only add pages (the first version polled until the count
// stopped growing, and its final dumps carried more than iterative's, measured in session 9's
// bench). Then:
//   1. count <= budgetPages: the final dump now ("fits the budget").
//   2. the count did not fall by more than plateauPct against the count after the pre-dump before:
//      the rounds of change have converged, another pre-dump would carry as much again ("stopped
//      shrinking"), so the final dump now, with fewer image layers for the restore to read.
//   3. maxRounds pre-dumps ran: the final dump now.
//   4. otherwise another pre-dump.
// Where iterative (P.Haul) judges a round by the pages the pre-dump itself wrote (the change
// before it), this judges it by the change after it: what the container would lose now.

export interface DirtyPoll {
  /** When the count was taken, in ms on any monotonic clock. */
  readonly atMs: number;
  /** Pages whose soft-dirty bit is set, summed over the tree. */
  readonly dirtyPages: number;
}

export interface MemRoundOptions {
  /** The final dump once a round's change falls by no more than this many percent against the round before. */
  readonly plateauPct: number;
  /** At or under this many changed pages the final dump goes (not a cap: the other rules may dump more). */
  readonly budgetPages: number;
  /** At most this many pre-dumps. */
  readonly maxRounds: number;
  /** Pre-dumps taken so far (the count was read after the last of them). */
  readonly round: number;
}

export type MemRoundAction = 'final-dump' | 'pre-dump-again';

export interface MemRoundDecision {
  readonly decision: MemRoundAction;
  readonly reason: string;
}

function checkMemOptions(o: MemRoundOptions): void {
  if (!Number.isFinite(o.plateauPct) || o.plateauPct < 0) throw new UsageError(`plateau must be a percentage >= 0, got ${o.plateauPct}`, 'the default is 10');
  if (!Number.isInteger(o.budgetPages) || o.budgetPages < 0) throw new UsageError(`page budget must be a whole number >= 0, got ${o.budgetPages}`);
  if (!Number.isInteger(o.maxRounds) || o.maxRounds < 1) throw new UsageError(`max rounds must be a whole number >= 1, got ${o.maxRounds}`);
  if (!Number.isInteger(o.round) || o.round < 1) throw new UsageError(`round must be a whole number >= 1 (the pre-dumps taken), got ${o.round}`);
}

/**
 * After pre-dump `opts.round`: the soft-dirty count read right after it, and the one read after the
 * pre-dump before (undefined after the first). Final dump now, or another pre-dump?
 */
export function memRoundDecision(dirtyPages: number, previous: number | undefined, opts: MemRoundOptions): MemRoundDecision {
  checkMemOptions(opts);
  const { budgetPages: budget, round, maxRounds } = opts;
  const changed = `${dirtyPages} pages changed since pre-dump ${round}`;
  if (dirtyPages <= budget) return { decision: 'final-dump', reason: `${changed} <= budget ${budget}: final dump` };
  const growth = previous === undefined ? undefined : growthPct(previous, dirtyPages);
  const trend = growth === undefined ? 'the first round' : `${previous} -> ${dirtyPages} (${pctText(growth, -opts.plateauPct)})`;
  if (growth !== undefined && growth >= -opts.plateauPct) {
    return { decision: 'final-dump', reason: `${changed} > budget ${budget}, stopped shrinking: ${trend}, not below -${opts.plateauPct}%: final dump` };
  }
  if (round >= maxRounds) return { decision: 'final-dump', reason: `${changed} > budget ${budget}, ${trend}, but ${round} pre-dumps >= ${maxRounds}: final dump` };
  return { decision: 'pre-dump-again', reason: `${changed} > budget ${budget}, ${trend}: pre-dump ${round + 1} of at most ${maxRounds}` };
}
