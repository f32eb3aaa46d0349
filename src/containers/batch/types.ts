// What a container batch records (batch.json, schema miglab.container-batch/1): the steps of the
// ladder (N containers each), every container's move with CRIU's outcome in its own words, the
// two guests' and the host's signals sampled through the run, and the verdict: whether a guest
// halted, when, how and why, with the evidence it rests on. The engine (run.ts) fills it; the
// report (report.ts) and the CSV files are drawn from it alone.

/**
 * How a step moves its N containers. one-by-one: dump one, restore it, then the next. all-at-once:
 * every dump at once, then every restore at once (the homework's "in a batch"). waves: --wave-size
 * dumps at once, then their restores, wave after wave. scheduled: the fix (schedule.ts).
 */
export const BATCH_MODES = ['one-by-one', 'all-at-once', 'waves', 'scheduled'] as const;
export type BatchMode = (typeof BATCH_MODES)[number];

/**
 * Where each container's own files (its log, its output) live. guest: in the memory of the guest
 * that runs it, copied with its images when it moves, as a real migration copies a container's
 * rootfs (the default). export: on the shared checkpoint export, written by the running counters
 * over NFS from both guests: how the first batches ran, kept to show the bottleneck (a scheduled
 * N=100 stalled twice with both guests' PSI io at 95-100 %).
 */
export const CONTAINER_FILES = ['guest', 'export'] as const;
export type ContainerFiles = (typeof CONTAINER_FILES)[number];

export type GuestName = 'chost-src' | 'chost-dst';

/** What became of one container of a step. */
export type MoveOutcome =
  /** Dumped on chost-src and restored on chost-dst. */
  | 'migrated'
  /** The dump failed: CRIU leaves the tree running on chost-src (unless it was killed). */
  | 'dump-failed'
  /** Dumped (the tree is gone from chost-src) but the restore failed: the container is lost. */
  | 'restore-failed'
  /** Its dump or restore was running when the step stopped (a guest halted, or Ctrl-C): its fate is unknown. */
  | 'cut-short'
  /** Never tried: the step stopped first (a guest halted, or the scheduler found no room). */
  | 'not-attempted';

export interface CriuCommandOutcome {
  /** Milliseconds from the step's start. */
  readonly startMs: number;
  /** The command's wall time as the agent timed it; null when it never returned (the guest halted). */
  readonly wallMs: number | null;
  readonly exitCode: number | null;
  /** Set when a signal ended it (9: the OOM killer or a deadline). */
  readonly signal: number | null;
  /** CRIU's peak resident memory (wait4's ru_maxrss), KiB. */
  readonly maxRssKiB: number | null;
  /** On failure: the last error lines of its log, or why there is no log. */
  readonly error?: string;
  /** Set when miglab stopped waiting for it at its deadline (ms; the scheduler's 180 s, the naive modes' 900 s): still running, stuck. */
  readonly gaveUpAfterMs?: number;
}

export interface ContainerMove {
  /** 0-based, within its step. */
  readonly index: number;
  /** 1, or 2 for the scheduler's retry alone. */
  readonly attempt: number;
  readonly outcome: MoveOutcome;
  readonly dump?: CriuCommandOutcome;
  /** CRIU's frozen time for this dump (stats-dump), ms; null when it wrote none. */
  readonly frozenMs?: number | null;
  readonly restore?: CriuCommandOutcome;
  /** The migrated container checked afterwards: running on chost-dst, its log whole and growing. */
  readonly check?: { readonly ok: boolean; readonly detail: string };
}

/** One sample of a guest, read through its control port. */
export interface GuestSample {
  /** Milliseconds from the batch's start. */
  readonly atMs: number;
  readonly guest: GuestName;
  /** Round trip of the read; null when the guest did not answer in time (then no other figure). */
  readonly rttMs: number | null;
  readonly memAvailableMiB?: number;
  readonly memTotalMiB?: number;
  readonly swapTotalMiB?: number;
  readonly swapFreeMiB?: number;
  /** PSI, the share of the last 10 s some task waited (percent). */
  readonly psiMemSome10?: number;
  readonly psiMemFull10?: number;
  readonly psiCpuSome10?: number;
  readonly psiIoSome10?: number;
  readonly load1?: number;
  /** Tasks in the guest (loadavg's second field's total). */
  readonly tasks?: number;
}

/** One sample of the machine the guests run on. */
export interface HostSignals {
  readonly atMs: number;
  readonly cpuBusyPct: number | null;
  readonly memAvailableMiB: number | null;
  readonly psiMemSome10: number | null;
  readonly psiCpuSome10: number | null;
  readonly load1: number | null;
}

/** A line of a guest's console that says it is in trouble (console-trouble.ts). */
export interface ConsoleEvent {
  readonly guest: GuestName;
  /** Milliseconds from the batch's start when the line reached the host. */
  readonly atMs: number;
  readonly kind: 'oom' | 'panic' | 'crash' | 'agent-exit' | 'initramfs';
  readonly line: string;
}

/** How a guest halted, and what shows it. */
export interface GuestHalt {
  readonly guest: GuestName;
  /** Milliseconds from the batch's start when it was seen. */
  readonly atMs: number;
  readonly how: 'qemu-exited' | 'no-answer' | 'kernel-panic' | 'agent-killed';
  readonly detail: string;
}

/** The scheduler's plan for a step: how many at once, and why (schedule.ts). */
export interface ContainerSchedulePlan {
  /** Containers moved at once: their dumps together on chost-src, then their restores together on chost-dst. */
  readonly atOnce: number;
  /** Containers chost-dst has room for; the rest stay on chost-src, said so, rather than halting it. */
  readonly admit: number;
  /** Each figure the plan rests on, and the rule, one sentence each. */
  readonly reasons: readonly string[];
}

export interface BatchStep {
  /** N: containers started on chost-src for this step. */
  readonly count: number;
  readonly mode: BatchMode;
  /** Milliseconds from the batch's start. */
  readonly startMs: number;
  readonly durationMs: number;
  /** Starting the N containers, ms (spawn to every one writing). */
  readonly startContainersMs: number;
  readonly moves: readonly ContainerMove[];
  readonly plan?: ContainerSchedulePlan;
  readonly migrated: number;
  readonly dumpFailures: number;
  readonly restoreFailures: number;
  /** Migrated containers whose check passed. */
  readonly intact: number;
  readonly console: readonly ConsoleEvent[];
  readonly halt?: GuestHalt;
  /** Why the step ended early, when it did (a halt, no room). */
  readonly stoppedEarly?: string;
}

export interface ContainerBatchRequest {
  readonly counts: readonly number[];
  readonly mode: BatchMode;
  readonly waveSize?: number;
  readonly memoryMiB: number;
  readonly vcpus: number;
  /** Resident memory each container holds (the workload's --rss-mib; 0: the counter's own). */
  readonly rssMiB: number;
  readonly periodMs: number;
  readonly files: ContainerFiles;
}

export interface BatchVerdict {
  /** N of the step where a guest halted; undefined when none did. */
  readonly haltedAt?: number;
  readonly halt?: GuestHalt;
  /** Containers migrated (and checked intact) in the largest step that ended without a halt. */
  readonly bestIntact: number;
  /** One paragraph each: when it failed, how, and why, every figure from the record. */
  readonly when: string;
  readonly how: string;
  readonly why: string;
  /** The samples and lines the explanation rests on. */
  readonly evidence: readonly string[];
}

export interface ContainerBatchRecord {
  readonly schema: 'miglab.container-batch/1';
  readonly batchId: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly request: ContainerBatchRequest;
  readonly imageHash: string;
  readonly criuVersion: string;
  readonly lab: string;
  readonly steps: readonly BatchStep[];
  readonly guestSamples: readonly GuestSample[];
  readonly hostSamples: readonly HostSignals[];
  readonly verdict: BatchVerdict;
  /** Set when the batch itself failed (not a guest halting: that is a result). */
  readonly failure?: string;
}
