// What a long operation tells the person waiting for it, in two kinds: notes (a line that stays:
// "guest up at 10.77.0.10 after 3120 ms") and live figures (the state of something that is
// going on: a migration's pass, MiB left and rates, a boot or a settle wait against its
// deadline, a sweep's run k of n). On a terminal the CLI rewrites the live figures in place as
// one line; elsewhere it prints them as a plain line now and then (src/progress/render.ts).
// This module sits below everything that reports progress (the engine, sweeps, batches, the
// homework, the CLI) and imports nothing of theirs.

/** A migration, from the monitor's last `query-migrate` / `info migrate` sample. */
export interface MigrationLive {
  readonly kind: 'migration';
  /** QEMU's migration status (setup, active, postcopy-active...). */
  readonly status: string;
  /** Pre-copy pass: QEMU's dirty-sync count. */
  readonly pass?: number;
  readonly remainingBytes?: number;
  /** Bytes sent per second over the last second of samples; absent until two samples. */
  readonly sentBytesPerS?: number;
  /**
   * Pages the guest dirties per second, as QEMU measured it: absent until QEMU has measured it
   * (at its second dirty sync), because before that QEMU reports 0, which is not a rate.
   */
  readonly dirtyPagesPerS?: number;
  readonly pageSizeBytes?: number;
  /** Epoch ms when miglab cancels a migration that has not converged (--timeout). */
  readonly deadlineAt: number;
}

/** A boot stage (QEMU starting, the guest's first heartbeat), against its own deadline. */
export interface BootLive {
  readonly kind: 'boot';
  readonly stage: string;
  /** Epoch ms. */
  readonly startedAt: number;
  readonly deadlineAt: number;
}

/** Waiting for the host to calm down before a batch step. */
export interface SettleLive {
  readonly kind: 'settle';
  /** The symptoms still seen (PSI cpu, load...). */
  readonly waitingFor: readonly string[];
  readonly startedAt: number;
  readonly deadlineAt: number;
}

/** A sweep: run k of n (the runs still to do), with an estimate from the runs done so far. */
export interface SweepLive {
  readonly kind: 'sweep';
  readonly run: number;
  readonly of: number;
  /** The run's folder inside the sweep (POINT/repK). */
  readonly name: string;
  readonly runStartedAt: number;
  /** Mean wall time of the runs this sweep has done; absent before the first one ended. */
  readonly meanRunMs?: number;
}

export type LiveStatus = MigrationLive | BootLive | SettleLive | SweepLive;

/**
 * Which live figure an update replaces: a run's (boot, then its migration), a sweep's, a batch's
 * settle wait. Each scope (a batch's guest g0, g1...) has its own.
 */
export type LiveTopic = 'run' | 'sweep' | 'settle';

export interface LiveUpdate {
  readonly topic: LiveTopic;
  /** Whose figure this is, when several run at once ("g1"). */
  readonly scope?: string;
  /** The new state; absent when the thing has ended (its figure is removed). */
  readonly status?: LiveStatus;
}

/**
 * Where progress goes: called as a function for a note; `live`, when the receiver shows live
 * figures, for the state of what is going on. A plain `(phase, detail) => ...` is a Progress that
 * takes notes only, so tests and library callers need nothing more.
 */
export interface Progress {
  (phase: string, detail?: string): void;
  readonly live?: (update: LiveUpdate) => void;
}

/**
 * The same progress for one of several things running at once: its notes' phases and its live
 * figures are labelled with `scope` ("g1 boot ...").
 */
export function scoped(progress: Progress, scope: string): Progress {
  const note = (phase: string, detail?: string) => progress(`${scope} ${phase}`, detail);
  const live = progress.live;
  if (!live) return note;
  return Object.assign(note, { live: (u: LiveUpdate) => live({ ...u, scope: u.scope ? `${scope} ${u.scope}` : scope }) });
}
