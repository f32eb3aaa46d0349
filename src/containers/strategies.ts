// The pre-dump rounds before the final dump, one control loop per strategy: iterative (P.Haul's
// rules on the pages each round wrote) and mem-rounds (the final dump triggered by rounds of memory
// change: the container's soft-dirty count read after each pre-dump). stop-and-copy has none.
import { criuDump } from './criu-argv.js';
import type { ContainerHost } from './hosts.js';
import type { CriuStep } from './migrate.js';
import { memRoundDecision, shouldContinue, type DirtyPoll, type IterRules } from './stop-rules.js';
import { ms, type Transfer } from './transfer.js';

export const STRATEGIES = ['stop-and-copy', 'iterative', 'mem-rounds', 'lazy'] as const;
export type Strategy = (typeof STRATEGIES)[number];

export interface MemRoundsRules {
  /** A round's change that falls by no more than this many percent against the round before: final dump. */
  readonly plateauPct: number;
  /** The final dump once the change after a pre-dump fits in this many pages (not a cap: the other rules may dump more). */
  readonly budgetPages: number;
  readonly maxRounds: number;
}

// 10 %, P.Haul's growth limit, by choice (not tuned): another pre-dump costs a freeze and an image
// layer for the restore to read, so it goes only while it shrinks the change by more than that.
export const MEM_ROUNDS_DEFAULTS: MemRoundsRules = { plateauPct: 10, budgetPages: 1024, maxRounds: 8 };

/** What a strategy's loop works with. */
export interface RoundsContext {
  readonly transfer: Transfer;
  readonly rootPid: number;
  readonly src: ContainerHost;
  readonly t0: number;
  readonly steps: CriuStep[];
  readonly signal: AbortSignal;
  readonly progress: (phase: string, line: string) => void;
  readonly at: (phase: string) => void;
}

/** One pre-dump round k into r<k>, its parent the round before. */
function preDump(x: RoundsContext, k: number) {
  return x.transfer.dump(`r${k}`, k, (to) =>
    criuDump({ pid: x.rootPid, imagesDir: to.imagesDir, logFile: 'criu.log', preDump: true, trackMem: true, prevImagesDir: k > 1 ? `../r${k - 1}` : undefined, pageServer: to.pageServer }),
  );
}

/**
 * iterative: pre-dump rounds while the tree runs on; each writes only the pages changed since the
 * last (soft-dirty tracking), until P.Haul's rules say the next would not help. Returns why they stopped.
 */
export async function iterativeRounds(x: RoundsContext, rules: IterRules): Promise<string> {
  for (let k = 1; ; k++) {
    x.at(`pre-dump ${k}`);
    const atMs = Date.now() - x.t0;
    const { result: r, command, stats, imageBytes } = await preDump(x, k);
    const rounds = [...x.steps.map((s) => ({ pagesWritten: s.dump?.pagesWritten ?? 0 })), { pagesWritten: stats?.pagesWritten ?? 0 }];
    const decision = shouldContinue(rounds, rules);
    x.steps.push({ kind: 'pre-dump', index: k, dir: `r${k}`, atMs, wallMs: r.wallUs / 1000, maxRssKiB: r.maxRssKiB, command, dump: stats, imageBytes, decision: decision.reason });
    x.progress('rounds', `pre-dump ${k}: ${stats?.pagesWritten ?? '?'} pages written, frozen ${ms(stats?.frozenUs)?.toFixed(1) ?? '?'} ms; ${decision.continue ? 'another round' : 'final dump'}: ${decision.reason}`);
    if (!decision.continue) return decision.reason;
  }
}

/**
 * mem-rounds: the final dump is triggered by rounds of memory change, not by a count of rounds.
 * Right after each pre-dump (which clears the soft-dirty bits) the tree's soft-dirty count is read
 * once: the change a final dump now would carry; memRoundDecision says whether it goes now.
 */
export async function memRounds(x: RoundsContext, rules: MemRoundsRules): Promise<string> {
  let previous: number | undefined;
  for (let k = 1; ; k++) {
    const name = `r${k}`;
    x.at(`pre-dump ${k}`);
    const atMs = Date.now() - x.t0;
    const { result: r, command, stats, imageBytes } = await preDump(x, k);
    const { pages } = await x.src.ctl.softDirty(x.rootPid, x.signal);
    const poll: DirtyPoll = { atMs: Date.now() - x.t0, dirtyPages: pages };
    const decision = memRoundDecision(pages, previous, { plateauPct: rules.plateauPct, budgetPages: rules.budgetPages, maxRounds: rules.maxRounds, round: k });
    previous = pages;
    x.steps.push({ kind: 'pre-dump', index: k, dir: name, atMs, wallMs: r.wallUs / 1000, maxRssKiB: r.maxRssKiB, command, dump: stats, imageBytes, decision: decision.reason, dirtyPolls: [poll] });
    x.progress('rounds', `pre-dump ${k}: ${stats?.pagesWritten ?? '?'} pages written; ${decision.reason}`);
    if (decision.decision === 'final-dump') return decision.reason;
  }
}
