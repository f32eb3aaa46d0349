// When a fault is due: pure checks of a fault's WHEN against what the run has seen so far (time
// since migrate, QEMU's pass count, the share of RAM sent, the migration status). The engine
// feeds it samples and QMP events; src/fault/runner.ts fires what is due.
import type { FaultWhen } from './spec.js';

/** What the run knows at one moment, since the migrate command was sent. */
export interface Observation {
  readonly tMs: number;
  readonly status?: string;
  /** The pass pre-copy is in: MIGRATION_PASS's `pass`, or dirty-sync-count. */
  readonly pass?: number;
  readonly totalBytes?: number;
  readonly remainingBytes?: number;
}

/** Share of RAM that has been through the migration once, in percent (undefined before QEMU says). */
export function progressPercent(o: Observation): number | undefined {
  if (o.totalBytes === undefined || o.remainingBytes === undefined || o.totalBytes <= 0) return undefined;
  return (100 * (o.totalBytes - o.remainingBytes)) / o.totalBytes;
}

export function isDue(when: FaultWhen, o: Observation): boolean {
  switch (when.kind) {
    case 'time':
      return o.tMs >= when.afterMs;
    case 'pass':
      return o.pass !== undefined && o.pass >= when.pass;
    case 'progress': {
      const p = progressPercent(o);
      return p !== undefined && p >= when.percent;
    }
    case 'status':
      return o.status === when.status;
  }
}

/** What was seen when it fired, in words for the record: "pass 2 began at 1834 ms". */
export function describeTrigger(when: FaultWhen, o: Observation): string {
  const at = `(${Math.round(o.tMs)} ms after migrate)`;
  switch (when.kind) {
    case 'time':
      return `${Math.round(o.tMs)} ms after migrate`;
    case 'pass':
      return `when pass ${o.pass} began ${at}`;
    case 'progress':
      return `when ${(progressPercent(o) ?? 0).toFixed(1)} % of RAM was sent ${at}`;
    case 'status':
      return `when the migration became ${o.status} ${at}`;
  }
}
