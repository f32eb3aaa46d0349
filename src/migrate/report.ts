// The record of one migration run. It holds every input and every sample; the summary, CSV,
// tables and plots read only this. Units are in the names.
import type { FaultRecord } from '../fault/runner.js';
import type { AccelDecision } from '../machine/accel.js';
import type { ExplainedCommand } from '../util/explained-command.js';
import type { HeartbeatContinuity } from '../machine/heartbeat.js';
import type { MachineSpec } from '../machine/spec.js';
import type { MigrationInfo, MigrationStatus } from '../migration/info.js';
import type { ProbeResult } from '../guest/probe.js';
import type { IntegrityResult, WorkloadStatus } from '../workload/run.js';
import type { FigureSource, StallEvidence } from './figures.js';
import type { Incident } from './guard.js';
import type { Scenario } from './scenario.js';

/** Version 2: verdicts stalled and interrupted; figures QEMU did not give are absent, never 0. */
export const RUN_SCHEMA = 'miglab.run/2';

/** One `query-migrate` (or `info migrate`) sample. */
export interface Sample {
  /** Since the migrate command was sent. */
  readonly tMs: number;
  readonly status: MigrationStatus;
  readonly transferredBytes?: number;
  readonly remainingBytes?: number;
  readonly totalBytes?: number;
  readonly mbps?: number;
  readonly dirtyPagesRate?: number;
  readonly dirtySyncCount?: number;
  readonly expectedDowntimeMs?: number;
  readonly cpuThrottlePercent?: number;
}

/** One pre-copy pass: from a MIGRATION_PASS event, or a change of dirty-sync-count. */
export interface PassRecord {
  readonly pass: number;
  readonly tMs: number;
  readonly source: 'event' | 'dirty-sync-count';
  readonly transferredBytes?: number;
  readonly remainingBytes?: number;
  readonly dirtyPagesRate?: number;
  readonly mbps?: number;
  readonly expectedDowntimeMs?: number;
}

export interface EventRecord {
  readonly tMs: number;
  readonly side: 'source' | 'destination';
  readonly event: string;
  readonly data?: unknown;
}

/**
 * completed: QEMU completed and every check after it passed. did-not-converge: bytes moved but
 * pre-copy had not converged by the deadline (cancelled; the source kept running). stalled: no
 * byte moved for the stall limit (cancelled). failed: QEMU failed the migration, or a check or a
 * watcher failed the run. interrupted: the user stopped it (Ctrl-C, SIGTERM).
 */
export const VERDICTS = ['completed', 'did-not-converge', 'stalled', 'failed', 'interrupted'] as const;
export type Verdict = (typeof VERDICTS)[number];

/** A QEMU that hung while starting and was launched once more, and where it hung. */
export interface Relaunch {
  readonly side: 'source' | 'destination';
  readonly where: string;
}

/** One side after the run, before miglab stopped anything. */
export interface SideAfter {
  /** running: the QEMU process was alive (status is QEMU's run state); exited: it was gone. */
  readonly process: 'running' | 'exited' | 'not-started';
  /** QEMU's run state (query-status): running, postmigrate, inmigrate, paused... */
  readonly status?: string;
  /** The process ran but its monitor did not answer (frozen, or its main loop blocked): why. */
  readonly unanswered?: string;
  readonly exit?: { readonly exitCode: number | null; readonly signal: string | null };
  /** Source only, when the run ended before QEMU reached a final status: query-migrate's status then. */
  readonly migrationStatus?: string;
  /** Whether the guest's heartbeat went on on this side after the migration ended. */
  readonly heartbeat?: 'continuing' | 'silent' | 'not-expected';
}

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

/** The guest in trouble, as its serial console said it. */
export interface GuestTrouble {
  readonly side: 'source' | 'destination';
  readonly kind: string;
  /** The line that said so, and the lines before it. */
  readonly lines: readonly string[];
}

export interface HostFacts {
  readonly kernel: string;
  readonly cpuModel: string;
  readonly cpus: number;
  readonly memTotalMiB: number;
  readonly nodeVersion: string;
}

export interface RunReport {
  readonly schema: typeof RUN_SCHEMA;
  readonly runId: string;
  readonly name: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly wallMs: number;
  /** True when QEMU completed the migration and every check after it passed. */
  readonly ok: boolean;
  readonly verdict: Verdict;
  readonly failure?: string;
  readonly inputs: {
    readonly scenario: Scenario;
    readonly machine: MachineSpec;
    readonly lab: unknown;
    /** Shaping of the migration uplinks in force during the run (none: unshaped). */
    readonly shaping?: unknown;
    readonly image: { readonly hash: string; readonly kernelVersion: string; readonly inputs: unknown };
    readonly qemu: { readonly version: string; readonly package?: string };
    readonly host: HostFacts;
    readonly accel: AccelDecision;
    readonly parametersInForce: Record<string, unknown>;
    readonly capabilitiesInForce: Record<string, boolean>;
    readonly commands: { readonly source: ExplainedCommand; readonly destination: ExplainedCommand };
    /** The literal command that started the migration (HMP line or QMP JSON). */
    readonly migrateCommand: string;
    /** Every command sent to the source's monitor to set up and start the migration, in order. */
    readonly monitorCommands: readonly string[];
    readonly migrationUri: string;
  };
  readonly outputs: RunOutputs;
  readonly phases: Record<string, number>;
  readonly timeline: readonly Sample[];
  readonly passes: readonly PassRecord[];
  readonly events: readonly EventRecord[];
  readonly files: Record<string, string>;
}

export interface RunOutputs {
  readonly final?: MigrationInfo;
  readonly status?: MigrationStatus;
  readonly totalTimeMs?: number;
  readonly downtimeMs?: number;
  readonly setupTimeMs?: number;
  readonly transferredBytes?: number;
  readonly totalBytes?: number;
  readonly remainingBytes?: number;
  /** QEMU's last throughput figure. */
  readonly throughputMbps?: number;
  /** Transferred bytes over total time, as the run saw it. */
  readonly averageThroughputMiBps?: number;
  readonly dirtySyncCount?: number;
  readonly duplicatePages?: number;
  /** Wall-clock time (epoch ms) the migrate command was sent: t=0 of timeline, passes and events. */
  readonly migrateSentAtMs?: number;
  readonly normalPages?: number;
  readonly destinationStatus?: string;
  readonly sourceStatusAfter?: string;
  readonly heartbeat?: HeartbeatContinuity;
  /** From the source's STOP event to the destination's RESUME event (QEMU's timestamps). */
  readonly eventDowntimeMs?: number;
  /** Downtime as a client of the guest feels it: the longest silence of the 1 ms UDP probe from the source's STOP to 2 s after the destination's RESUME. */
  readonly clientDowntimeMs?: number;
  readonly clientProbe?: ProbeResult;
  /** The guest workload's own figures just before the migration and at its end. */
  readonly workloadBefore?: WorkloadStatus;
  readonly workloadAfter?: WorkloadStatus;
  /** Memory or disk integrity, checked in the guest on the destination. */
  readonly integrity?: IntegrityResult;
  /** `qemu-img check` of the shared qcow2 after both QEMUs exited. */
  readonly qemuImgCheck?: { readonly ok: boolean; readonly exitCode: number; readonly meaning: string };
  /** QEMUs that hung while starting (where, from /proc and gdb) and were launched once more. */
  readonly relaunched?: readonly Relaunch[];
  /** Where totalTimeMs and downtimeMs came from (a figure QEMU did not give is absent, never 0). */
  readonly figureSources?: { readonly totalTimeMs: FigureSource; readonly downtimeMs: FigureSource };
  /** Extra query-migrate calls before QEMU had filled in a completed migration's figures. */
  readonly figureRequeries?: number;
  /** The last sample while the migration still ran: what a cancelled run had left, and at what dirty rate. */
  readonly lastActive?: Sample;
  /** No byte moved for the stall limit: the evidence. */
  readonly stall?: StallEvidence;
  /** The faults the run injected, when each fired and what was done. */
  readonly faults?: readonly FaultRecord[];
  /** Each side just after the migration ended, before miglab stopped anything. */
  readonly after?: { readonly source: SideAfter; readonly destination: SideAfter };
  /** Where the guest's integrity was checked: the destination after a switchover, else the source. */
  readonly integrityCheckedOn?: 'source' | 'destination';
  /** The guest's console reported an OOM kill, a kernel panic or crash, or its agent exiting. */
  readonly guestTrouble?: GuestTrouble;
  /** What the run's watchers saw, in order (QEMU exits, console trouble, NFS, stall, faults). */
  readonly incidents?: readonly Incident[];
  /** Undo steps that failed while the run cleaned up. */
  readonly teardownProblems?: readonly string[];
  /** What the run started and found still there after cleaning up (the aim is none). */
  readonly leftovers?: readonly string[];
  /** The signal that interrupted the run. */
  readonly interruptedBy?: string;
  /** CPU time (user + system) each QEMU used from the migrate command to the migration's end. */
  readonly qemuCpuMs?: { readonly source?: number; readonly destination?: number };
  /** What a killed miglab had left in the run's guest slot, cleaned before this run took it. */
  readonly reclaimed?: readonly string[];
  /** The lab's guest slot the run used (its tap, IP, MAC and port offset). */
  readonly slot?: number;
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
