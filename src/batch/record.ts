// The record of a batch: one entry per migration attempt, grouped into steps of N, the host
// samples on the same (epoch ms) time axis, and why the batch stopped. The diagnosis, the
// scheduler's later decisions, the tables, the CSV and the plots read only this.
import type { HostSample } from '../measure/host-sampler.js';
import type { RunReport } from '../migrate/report.js';
import type { SchedulePlan } from './scheduler.js';
import type { BatchSpec } from './spec.js';
import { runSymptom, type HostBefore, type RunSymptom, type Stall } from './stall.js';

export const BATCH_SCHEMA = 'miglab.batch/1';

/** A host sample plus which QEMU each sampled pid is (`g3-source`), from QEMU's `-name`. */
export type BatchSample = HostSample & { readonly qemuLabels: Readonly<Record<string, string>> };

export type AttemptOutcome = 'completed' | RunSymptom | 'aborted' | 'error';

/** A migration event on the batch's time axis. */
export interface BatchEvent {
  readonly atMs: number;
  readonly guestIndex: number;
  readonly event: 'migrate-sent' | 'pass' | 'migration-end' | 'guest-up';
  readonly detail?: string;
}

export interface MigrationAttempt {
  readonly guestIndex: number;
  /** 1 for the first try, 2 for the scheduler's retry. */
  readonly attempt: number;
  readonly startedAtMs: number;
  readonly endedAtMs: number;
  readonly outcome: AttemptOutcome;
  readonly failure?: string;
  readonly memoryMiB: number;
  readonly maxBandwidthMiBps?: number;
  readonly autoConverge?: boolean;
  readonly timeoutMs: number;
  readonly bootToHeartbeatMs?: number;
  readonly migrationMs?: number;
  readonly totalTimeMs?: number;
  readonly downtimeMs?: number;
  readonly transferredMiB?: number;
  readonly migrateSentAtMs?: number;
  readonly dir?: string;
  readonly events: readonly BatchEvent[];
}

export type StepVariant = 'naive-parallel' | 'as-specified';

export interface StepRecord {
  readonly n: number;
  /** sequential | parallel | waves-K | scheduled */
  readonly mode: string;
  /** `naive-parallel` is the comparison run made next to a scheduled one at the same N. */
  readonly variant: StepVariant;
  readonly startedAtMs: number;
  readonly endedAtMs: number;
  readonly attempts: readonly MigrationAttempt[];
  readonly guard: { readonly needMiB: number; readonly usableMiB: number; readonly message: string };
  readonly stall?: Stall;
  readonly plan?: SchedulePlan;
  /** How long the batch waited for host pressure to fall before this step started. */
  readonly settleMs?: number;
  /**
   * The host as the last sample before the step showed it: a step that began on a host already
   * under pressure (another lab, a build) must not have that pressure blamed on its N.
   */
  readonly before?: HostBefore;
}

export type StopReason =
  | { readonly kind: 'finished'; readonly detail: string }
  | { readonly kind: 'stall'; readonly n: number; readonly stall: Stall; readonly detail: string }
  | { readonly kind: 'refused'; readonly n: number; readonly detail: string }
  | { readonly kind: 'deadline'; readonly n: number; readonly detail: string }
  | { readonly kind: 'aborted'; readonly n: number; readonly detail: string };

export interface BatchRecord {
  readonly schema: typeof BATCH_SCHEMA;
  readonly batchId: string;
  readonly startedAt: string;
  readonly wallMs: number;
  readonly spec: BatchSpec;
  readonly host: { readonly cpus: number; readonly memTotalMiB: number; readonly linkBandwidthMbit?: number; readonly kernel: string };
  readonly steps: readonly StepRecord[];
  readonly stop: StopReason;
  readonly samples: readonly BatchSample[];
}

/** The attempt's record from its run report (absolute times from `migrateSentAtMs`). */
export function attemptFromReport(
  r: RunReport,
  base: Pick<MigrationAttempt, 'guestIndex' | 'attempt' | 'startedAtMs' | 'memoryMiB' | 'maxBandwidthMiBps' | 'autoConverge' | 'timeoutMs'>,
  dir: string,
  endedAtMs: number,
): MigrationAttempt {
  const sent = r.outputs.migrateSentAtMs;
  const events: BatchEvent[] = [];
  if (sent !== undefined) {
    events.push({ atMs: sent, guestIndex: base.guestIndex, event: 'migrate-sent' });
    for (const p of r.passes) events.push({ atMs: sent + p.tMs, guestIndex: base.guestIndex, event: 'pass', detail: `pass ${p.pass}` });
    const last = r.timeline[r.timeline.length - 1];
    const endT = r.outputs.totalTimeMs || last?.tMs;
    if (endT !== undefined) events.push({ atMs: sent + endT, guestIndex: base.guestIndex, event: 'migration-end', detail: r.outputs.status });
  }
  return {
    ...base,
    endedAtMs,
    outcome: r.verdict === 'interrupted' ? 'aborted' : (runSymptom(r) ?? 'completed'),
    failure: r.failure,
    bootToHeartbeatMs: r.phases.bootToHeartbeatMs,
    migrationMs: r.phases.migrationMs,
    // The report never holds a figure QEMU did not give (src/migrate/figures.ts).
    totalTimeMs: r.outputs.totalTimeMs,
    downtimeMs: r.outputs.downtimeMs,
    transferredMiB: r.outputs.transferredBytes === undefined ? undefined : r.outputs.transferredBytes / 1024 / 1024,
    migrateSentAtMs: sent,
    dir,
    events,
  };
}
