// The record of a batch: one entry per migration attempt, grouped into steps of N, the host
// samples on the same (epoch ms) time axis, and why the batch stopped. The diagnosis, the
// scheduler's later decisions, the tables, the CSV and the plots read only this.
import type { RunReport } from '../migrate/report.js';
import type { BatchEvent, MigrationAttempt } from '../results/batch.js';
import { runSymptom } from './stall.js';

// The shapes are batch.json's schema (src/results/batch.ts), so what is written is what is read back.
export { BATCH_SCHEMA } from '../results/batch.js';
export type { BatchEvent, BatchFile, BatchRecord, BatchSample, MigrationAttempt, StepRecord, StepVariant, StopReason } from '../results/batch.js';
export type AttemptOutcome = MigrationAttempt['outcome'];

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
