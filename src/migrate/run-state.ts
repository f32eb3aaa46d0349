// What the phases of one run share (engine.ts orchestrates; phases/*.ts are the phases): the
// inputs, the alarm and the undo list, the samples and events as they come, what the run has
// started so far (for the watchers, a run that ends half-way, cleaning up), and the record of
// what the report will say, filled in as each phase learns it, so that a run that fails half-way
// keeps what was measured. What one phase hands the next is its typed result, not this.
import type { ProbeHandle } from '../guest/probe.js';
import { FaultRunner } from '../fault/runner.js';
import type { Injected } from '../fault/inject.js';
import type { FaultSpec } from '../fault/spec.js';
import type { Lab, SlotLease } from '../lab/index.js';
import type { AccelDecision } from '../machine/accel.js';
import type { MachineSpec } from '../machine/spec.js';
import type { Vm } from '../machine/vm.js';
import type { ExplainedCommand } from '../util/explained-command.js';
import type { MigrationInfo } from '../migration/info.js';
import { describeError, MiglabError } from '../errors.js';
import type { Teardown } from '../util/teardown.js';
import type { Mutable } from '../util/types.js';
import type { Progress } from '../progress/progress.js';
import type { EngineContext } from './engine.js';
import type { RunGuard } from './guard.js';
import type { EventRecord, RunOutputs, Sample, StartedBy, Verdict } from './report.js';
import type { Scenario } from './scenario.js';
import type { QemuPair, QemuRecord } from '../qemu/pair.js';

/** Monitor calls outside the migration loop. */
export const CALL = { timeoutMs: 10000 };

/** What the run has started so far: its watchers, the end of a failed run and cleaning up look at it. */
export interface Held {
  slot?: SlotLease;
  diskFile?: string;
  src?: Vm;
  dst?: Vm;
  probe?: ProbeHandle;
}

/** The report's inputs as the phases learn them (a run that fails half-way keeps what was learnt). */
export interface RunRecord {
  machine?: MachineSpec;
  accel?: AccelDecision;
  /** tcp:DST:PORT, the port shifted with the slot. */
  uri: string;
  qemu: QemuRecord;
  parametersInForce: Record<string, unknown>;
  capabilitiesInForce: Record<string, boolean>;
  migrateCommand: string;
  monitorCommands: string[];
  destinationMonitorCommands?: string[];
  startedBy: StartedBy;
  /** The command line of a QEMU that failed to start (a started one is its Vm's): the report keeps it. */
  failedLaunch: { source?: ExplainedCommand; destination?: ExplainedCommand };
}

/** Everything the phases of a run share; owned by runMigration. */
export interface Run {
  readonly ctx: EngineContext;
  readonly scenario: Scenario;
  readonly guard: RunGuard;
  readonly td: Teardown;
  readonly progress: Progress;
  readonly started: number;
  readonly out: Mutable<RunOutputs>;
  readonly phases: Record<string, number>;
  /** Each timed step in the order it ended (run.json's steps: where the wall time went). */
  readonly steps: RunStep[];
  /** How long this process had been running when the run started (run.json's processMsAtStart). */
  readonly processMsAtStart: number;
  readonly timeline: Sample[];
  readonly events: EventRecord[];
  readonly faults: FaultRunner;
  readonly held: Held;
  readonly record: RunRecord;
  /** The QEMU builds of both sides and their machine type, decided before the slot (src/qemu/pair.ts). */
  qemu?: QemuPair;
  /** Both sides trace where the switchover's downtime goes: both builds have the trace points (8.2 on). */
  traceDowntime?: boolean;
  /** The lab as this run sees it: processes it starts are recorded with its run id and slot. */
  lab: Lab;
  /** The phase a failure is recorded in (run.json's failedIn.phase): setup, boot, prepare, migrate, conclude, cleanup. */
  phase: string;
  /** QEMU's last record of the migration, once it ended. */
  final?: MigrationInfo;
  /** The source's MIGRATION event said `completed` (ms since migrate): the guest is the destination's now, even if the source dies before it is asked. */
  sourceCompletedAtMs?: number;
  verdict: Verdict;
  failure?: string;
  /** Where the run failed and how, for scripts (run.json's failedIn); the first failure wins. */
  failedIn?: FailedIn;
}

/** How a run's faults reach what they act on (the guests exist only once booted). */
export type FaultInjector = (f: FaultSpec) => Promise<Injected>;

/** Who starts the migration: a person when the run is by hand, else miglab. */
export function startedByOf(hooks: EngineContext['hooks']): StartedBy {
  return hooks?.byHand ? 'hand' : 'miglab';
}

/** A run's shared state before anything is started. */
export function newRun(ctx: EngineContext, scenario: Scenario, guard: RunGuard, td: Teardown, inject: FaultInjector): Run {
  const progress = ctx.progress ?? (() => undefined);
  return {
    ctx,
    scenario,
    guard,
    td,
    progress,
    started: Date.now(),
    out: {},
    phases: {},
    steps: [],
    processMsAtStart: Math.round(performance.now()),
    timeline: [],
    events: [],
    faults: new FaultRunner(scenario.faults, {
      inject,
      teardown: td,
      onFired: (r) => {
        guard.note('fault', `${r.fault}: ${r.detail ?? ''} (${r.trigger ?? ''})`);
        progress('fault', `${r.fault} fired ${r.trigger ?? ''}: ${r.detail ?? ''}`);
      },
      onError: (r, err) => guard.trip('fault', new MiglabError('MIGRATION_FAILED', r.error ?? `fault ${r.fault}: ${describeError(err)}`, { cause: err })),
    }),
    held: {},
    record: {
      uri: '',
      qemu: { version: 'unknown' },
      parametersInForce: {},
      capabilitiesInForce: {},
      migrateCommand: '',
      monitorCommands: [],
      startedBy: startedByOf(ctx.hooks),
      failedLaunch: {},
    },
    lab: ctx.lab,
    phase: 'setup',
    verdict: 'failed',
  };
}

/**
 * What ended a run that did not complete, as data: the engine's phase and a code. The code is a
 * MiglabError code for a thrown error (TIMEOUT, QMP_DISCONNECTED...), or one of the run's own
 * verdict reasons (STALLED, NOT_CONVERGED, QEMU_FAILED, INTEGRITY, DESTINATION_NOT_RUNNING,
 * HEARTBEAT, SOURCE_CHECK); `watcher` names the watcher whose alarm stopped the run.
 */
export interface FailedIn {
  readonly phase: string;
  readonly code: string;
  readonly watcher?: string;
}

/** Record a run's failure: the text for people, and (the first time) its phase and code. */
export function failRun(run: Pick<Run, 'phase' | 'failure' | 'failedIn'>, code: string, text: string, watcher?: string): void {
  run.failure = text;
  run.failedIn ??= watcher ? { phase: run.phase, code, watcher } : { phase: run.phase, code };
}

export function mark(run: Pick<Run, 'phases' | 'steps' | 'started'>, name: string, since: number): void {
  run.phases[name] = Date.now() - since;
  step(run, name.replace(/Ms$/, ''), since);
}

/** One timed step of a run: its name, when it started (ms from the run's start) and how long it took. */
export interface RunStep {
  readonly step: string;
  readonly startMs: number;
  readonly ms: number;
}

/** Records a step that began at `since` (epoch ms) and ends now; not one of run.json's phases. */
export function step(run: Pick<Run, 'steps' | 'started'>, name: string, since: number): void {
  run.steps.push({ step: name, startMs: since - run.started, ms: Date.now() - since });
}

/** Runs `fn` as a timed step. */
export async function timed<T>(run: Pick<Run, 'steps' | 'started'>, name: string, fn: () => Promise<T>): Promise<T> {
  const since = Date.now();
  try {
    return await fn();
  } finally {
    step(run, name, since);
  }
}

/** Whether the migration has completed, by QEMU's final record or by the source's own event. */
export function switchedOver(run: Pick<Run, 'final' | 'sourceCompletedAtMs'>): boolean {
  return run.final?.status === 'completed' || (run.final === undefined && run.sourceCompletedAtMs !== undefined);
}
