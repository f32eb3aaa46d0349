// The state of one run as the engine's phases fill it in (engine.ts orchestrates; boot.ts,
// drive.ts and conclude.ts are the phases): the inputs, the handles of what was started, and the
// outputs and samples the report is built from. Shared by the phases, owned by runMigration.
import type { FaultRunner } from '../fault/runner.js';
import type { AgentClient } from '../guest/agent-client.js';
import type { ProbeHandle } from '../guest/probe.js';
import type { Lab, SlotLease } from '../lab/index.js';
import type { AccelDecision } from '../machine/accel.js';
import type { MachineSpec } from '../machine/spec.js';
import type { Vm } from '../machine/vm.js';
import type { MigrationInfo } from '../migration/info.js';
import type { Teardown } from '../util/teardown.js';
import type { Mutable } from '../util/types.js';
import type { Progress } from '../progress/progress.js';
import type { EngineContext } from './engine.js';
import type { RunGuard } from './guard.js';
import type { MigrationDriver } from './monitor.js';
import type { EventRecord, RunOutputs, Sample, Verdict } from './report.js';
import type { Scenario } from './scenario.js';

/** Monitor calls outside the migration loop. */
export const CALL = { timeoutMs: 10000 };

/** Everything a run accumulates; the phases fill it in and buildReport reads it. */
export interface Run {
  readonly ctx: EngineContext;
  readonly scenario: Scenario;
  readonly guard: RunGuard;
  readonly td: Teardown;
  readonly progress: Progress;
  readonly started: number;
  readonly out: Mutable<RunOutputs>;
  readonly phases: Record<string, number>;
  readonly timeline: Sample[];
  readonly events: EventRecord[];
  readonly faults: FaultRunner;
  /** The lab as this run sees it: processes it starts are recorded with its run id and slot. */
  lab: Lab;
  phase: string;
  slot?: SlotLease;
  hmpTelnetPort?: number;
  /** tcp:DST:PORT, the port shifted with the slot. */
  uri: string;
  machine?: MachineSpec;
  accel?: AccelDecision;
  diskFile?: string;
  src?: Vm;
  dst?: Vm;
  agent?: AgentClient;
  driver?: MigrationDriver;
  probe?: ProbeHandle;
  qemu: { version: string; package?: string };
  parametersInForce: Record<string, unknown>;
  capabilitiesInForce: Record<string, boolean>;
  migrateCommand: string;
  monitorCommands: string[];
  final?: MigrationInfo;
  /** The source's MIGRATION event said `completed` (ms since migrate): the guest is the destination's now, even if the source dies before it is asked. */
  sourceCompletedAtMs?: number;
  verdict: Verdict;
  failure?: string;
  /** Where the run failed and how, for scripts (run.json's failedIn); the first failure wins. */
  failedIn?: FailedIn;
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
export function failRun(run: Run, code: string, text: string, watcher?: string): void {
  run.failure = text;
  run.failedIn ??= watcher ? { phase: run.phase, code, watcher } : { phase: run.phase, code };
}

export function mark(run: Run, name: string, since: number): void {
  run.phases[name] = Date.now() - since;
}

/** Whether the migration has completed, by QEMU's final record or by the source's own event. */
export function switchedOver(run: Run): boolean {
  return run.final?.status === 'completed' || (run.final === undefined && run.sourceCompletedAtMs !== undefined);
}
