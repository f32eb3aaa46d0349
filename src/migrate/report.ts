// The record of one migration run. It holds every input and every sample; the summary, CSV,
// tables and plots read only this. Units are in the names. The shape is the zod schema in
// src/results/run.ts (run.json's contract); this module keeps the helpers that build it.
import type { MigrationInfo } from '../migration/info.js';
import type { EventRecord, PassRecord, Sample, SideAfter } from '../results/run.js';

export { RUN_SCHEMA, VERDICTS } from '../results/run.js';
export type { EventRecord, GuestTrouble, HostFacts, PassRecord, Relaunch, RunOutputs, RunReport, Sample, SideAfter, StartedBy, Verdict } from '../results/run.js';

/**
 * One side after the run in words: `short` for tables (`running, beating`), else with the detail
 * a reader needs (why a monitor did not answer, the migration status if it never ended).
 */
export function describeSide(a: SideAfter | undefined, short = false): string {
  if (!a) return 'not observed';
  if (a.process === 'not-started') return 'not started';
  if (a.process === 'exited') {
    if (short) return a.exit?.signal ? `killed (${a.exit.signal})` : `exited (${a.exit?.exitCode})`;
    return `QEMU ${a.exit?.signal ? `killed by ${a.exit.signal}` : `exited (code ${a.exit?.exitCode})`}`;
  }
  const state = a.status ?? (a.unanswered ? (short ? 'not answering' : `not answering (${a.unanswered})`) : 'running');
  const migration = !short && a.migrationStatus ? ` (migration ${a.migrationStatus})` : '';
  const beats = { continuing: short ? ', beating' : ', heartbeat going on', silent: short ? ', silent' : ', heartbeat SILENT', 'not-expected': '' };
  return `${state}${migration}${a.heartbeat ? beats[a.heartbeat] : ''}`;
}

/** Both sides as the run left them (observed before cleanup stopped them): "source ...; destination ...". */
export function describeSides(after: { readonly source?: SideAfter; readonly destination?: SideAfter }): string {
  return `source ${describeSide(after.source)}; destination ${describeSide(after.destination)}`;
}

/**
 * QEMU computes the dirty rate at a bitmap sync after the first (and then at most once a second);
 * until then it reports 0, which is "not measured yet", not a guest that dirties nothing.
 */
export function measuredDirtyRate(info: MigrationInfo): number | undefined {
  return (info.ram?.dirtySyncCount ?? 0) >= 2 ? info.ram?.dirtyPagesRate : undefined;
}

export function sampleOf(tMs: number, info: MigrationInfo): Sample {
  return {
    tMs,
    status: info.status,
    transferredBytes: info.ram?.transferredBytes,
    remainingBytes: info.ram?.remainingBytes,
    totalBytes: info.ram?.totalBytes,
    mbps: info.ram?.mbps,
    dirtyPagesRate: measuredDirtyRate(info),
    dirtySyncCount: info.ram?.dirtySyncCount,
    expectedDowntimeMs: info.expectedDowntimeMs,
    cpuThrottlePercent: info.cpuThrottlePercent,
  };
}

/**
 * Passes from MIGRATION_PASS events when QEMU sent them, else from the samples where
 * dirty-sync-count changed. Each pass takes the values of the nearest sample at or after it.
 */
export function derivePasses(timeline: readonly Sample[], events: readonly EventRecord[]): PassRecord[] {
  const at = (tMs: number) => timeline.find((s) => s.tMs >= tMs) ?? timeline[timeline.length - 1];
  const fromEvents = events.filter((e) => e.event === 'MIGRATION_PASS' && e.side === 'source');
  if (fromEvents.length > 0) {
    return fromEvents.map((e) => {
      const s = at(e.tMs);
      const pass = Number((e.data as { pass?: number } | undefined)?.pass ?? 0);
      return { pass, tMs: e.tMs, source: 'event', ...passValues(s) };
    });
  }
  const out: PassRecord[] = [];
  let last: number | undefined;
  for (const s of timeline) {
    if (s.dirtySyncCount !== undefined && s.dirtySyncCount !== last) {
      out.push({ pass: s.dirtySyncCount, tMs: s.tMs, source: 'dirty-sync-count', ...passValues(s) });
      last = s.dirtySyncCount;
    }
  }
  return out;
}

function passValues(s: Sample | undefined) {
  return {
    transferredBytes: s?.transferredBytes,
    remainingBytes: s?.remainingBytes,
    dirtyPagesRate: s?.dirtyPagesRate,
    mbps: s?.mbps,
    expectedDowntimeMs: s?.expectedDowntimeMs,
  };
}
