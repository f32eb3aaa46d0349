// Honest headline figures. QEMU flips a migration's status to `completed` a moment before it has
// computed that migration's total time and downtime (migration_calculate_complete runs after the
// state change), so a `query-migrate` that lands in between reads `completed` with zeros. Seen in
// 3 of 14 completed QMP runs under load. A figure QEMU did not give is missing, never 0: the
// engine asks again until the figures are there, else falls back to QEMU's own event timestamps
// and says which source each headline figure came from. Pure except `settleCompleted`.
import type { MigrationInfo } from '../migration/info.js';
import { sleep } from '../util/deadline.js';
import { downtimeFromEvents } from './downtimes.js';
import type { EventRecord, Sample } from './report.js';

/** Where a headline figure came from. */
export type FigureSource =
  /** QEMU's query-migrate on the source. */
  | 'qemu'
  /** QEMU's event timestamps (MIGRATION completed; STOP on the source to RESUME on the destination). */
  | 'events'
  /** Neither: the figure is absent from the report. */
  | 'missing';

/** A `completed` record whose time figures QEMU has not filled in yet. */
export function figuresPending(info: MigrationInfo): boolean {
  // A completed migration always took at least a millisecond; 0 (or absent) means "not yet".
  return info.status === 'completed' && !(info.totalTimeMs !== undefined && info.totalTimeMs > 0);
}

export interface SettleOptions {
  /** How long to keep asking (QEMU fills the figures in within milliseconds; a loaded host is slower). */
  readonly timeoutMs: number;
  readonly intervalMs?: number;
  readonly signal?: AbortSignal;
}

/**
 * Ask QEMU again while its `completed` record still lacks the time figures. Returns the last
 * record and how many times it asked again.
 */
export async function settleCompleted(info: MigrationInfo, query: () => Promise<MigrationInfo>, o: SettleOptions): Promise<{ info: MigrationInfo; requeries: number }> {
  let cur = info;
  let requeries = 0;
  const until = Date.now() + o.timeoutMs;
  while (figuresPending(cur) && Date.now() < until) {
    await sleep(o.intervalMs ?? 25, o.signal);
    cur = await query();
    requeries++;
  }
  return { info: cur, requeries };
}

export interface HeadlineFigures {
  readonly totalTimeMs?: number;
  readonly downtimeMs?: number;
  readonly setupTimeMs?: number;
  readonly sources: { readonly totalTimeMs: FigureSource; readonly downtimeMs: FigureSource };
  /** Extra query-migrate calls it took before QEMU's figures were filled in. */
  readonly requeries: number;
}

/**
 * Total time and downtime of a run: QEMU's when it gave them, else from its events (the source's
 * MIGRATION completed event after the migrate command; STOP on the source to RESUME on the
 * destination), else missing. Not completed: QEMU's figures where it has them (a cancelled run's
 * total time), no downtime (the guest never switched over).
 */
export function headlineFigures(final: MigrationInfo | undefined, events: readonly EventRecord[], requeries = 0): HeadlineFigures {
  if (!final) return { sources: { totalTimeMs: 'missing', downtimeMs: 'missing' }, requeries };
  const fromEvents = downtimeFromEvents(events);
  const qemuTotal = final.totalTimeMs !== undefined && final.totalTimeMs > 0 ? final.totalTimeMs : undefined;
  if (final.status !== 'completed') {
    return {
      totalTimeMs: qemuTotal,
      setupTimeMs: final.setupTimeMs,
      sources: { totalTimeMs: qemuTotal !== undefined ? 'qemu' : 'missing', downtimeMs: 'missing' },
      requeries,
    };
  }
  if (!figuresPending(final)) {
    return {
      totalTimeMs: final.totalTimeMs,
      // QEMU gave the total but no downtime (a record without it): its events stand in, and say so.
      downtimeMs: final.downtimeMs ?? fromEvents,
      setupTimeMs: final.setupTimeMs,
      sources: { totalTimeMs: 'qemu', downtimeMs: final.downtimeMs !== undefined ? 'qemu' : fromEvents === undefined ? 'missing' : 'events' },
      requeries,
    };
  }
  const completedAt = events.find((e) => e.side === 'source' && e.event === 'MIGRATION' && (e.data as { status?: string } | undefined)?.status === 'completed');
  const total = completedAt && completedAt.tMs > 0 ? completedAt.tMs : undefined;
  return {
    totalTimeMs: total,
    downtimeMs: fromEvents,
    setupTimeMs: final.setupTimeMs && final.setupTimeMs > 0 ? final.setupTimeMs : undefined,
    sources: { totalTimeMs: total !== undefined ? 'events' : 'missing', downtimeMs: fromEvents !== undefined ? 'events' : 'missing' },
    requeries,
  };
}

/**
 * The last sample taken while the migration was still running with QEMU's RAM figures: what a
 * cancelled or stalled run had left to send, at what dirty rate (the final record of a cancelled
 * migration has none of them).
 */
export function lastActiveSample(timeline: readonly Sample[]): Sample | undefined {
  for (let i = timeline.length - 1; i >= 0; i--) {
    const s = timeline[i]!;
    if ((s.status === 'active' || s.status === 'postcopy-active' || s.status === 'device') && s.remainingBytes !== undefined) return s;
  }
  return undefined;
}

/** Evidence that the migration stopped moving: no byte transferred for `forMs`. */
export interface StallEvidence {
  /** Since the migrate command (ms) when the transferred counter last changed. */
  readonly sinceMs: number;
  readonly forMs: number;
  readonly transferredBytes: number;
  readonly status: string;
  readonly samples: number;
}

/** Statuses in which bytes are expected to move (a migration in setup counts: it may never connect). */
const MOVING = new Set(['setup', 'active', 'postcopy-device', 'postcopy-active', 'postcopy-paused', 'postcopy-recover-setup', 'postcopy-recover', 'device', 'pre-switchover']);

/**
 * Whether the newest samples show a migration that has not moved a byte for at least
 * `stallAfterMs`, distinct from one that moves but never converges; only samples from `fromMs` on
 * count (after a post-copy recovery, its pause is no stall). Pure.
 */
export function detectStall(timeline: readonly Sample[], stallAfterMs: number, fromMs = 0): StallEvidence | undefined {
  const last = timeline[timeline.length - 1];
  if (!last || !MOVING.has(last.status) || last.tMs - fromMs < stallAfterMs) return undefined;
  const bytes = last.transferredBytes ?? 0;
  let since = last.tMs;
  let n = 0;
  for (let i = timeline.length - 1; i >= 0; i--) {
    const s = timeline[i]!;
    if (!MOVING.has(s.status) || (s.transferredBytes ?? 0) !== bytes || s.tMs < fromMs) break;
    since = s.tMs;
    n++;
  }
  // Counted from the first sample that showed this figure (or from the migrate command when the
  // counter never left zero): the counter may have stopped any time before that sample.
  const forMs = last.tMs - (bytes === 0 && n === timeline.length ? 0 : since);
  return forMs >= stallAfterMs ? { sinceMs: bytes === 0 && n === timeline.length ? 0 : since, forMs, transferredBytes: bytes, status: last.status, samples: n } : undefined;
}

/** A dirty rate QEMU has measured, or says that it had not yet (see measuredDirtyRate). */
export function dirtyRateText(pagesPerS: number | undefined): string {
  return pagesPerS === undefined ? 'dirty rate not measured yet' : `dirty rate ${pagesPerS} pages/s`;
}
