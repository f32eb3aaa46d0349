// Arms a run's faults once the migrate command is sent and fires each exactly once when it is due
// (time faults on their own timer; pass, share and status faults as the engine reports samples and
// QMP events), undoes timed ones after their duration (and at teardown, whatever happened), and
// keeps one record per fault: when it fired, on what evidence, what was done and undone, or why
// it never fired. The engine turns an injection that fails into a failed run.
import { describeError } from '../errors.js';
import type { Teardown } from '../util/teardown.js';
import type { Mutable } from '../util/types.js';
import type { Injected } from './inject.js';
import { formatFault, type FaultSpec } from './spec.js';
import { describeTrigger, isDue, type Observation } from './trigger.js';

export interface FaultRecord {
  /** The fault in its compact form, e.g. `freeze-dst:5s@pass:2`. */
  readonly fault: string;
  readonly spec: FaultSpec;
  readonly fired: boolean;
  /** Since the migrate command was sent. */
  readonly firedAtMs?: number;
  /** What the run saw that made it due. */
  readonly trigger?: string;
  /** What was done. */
  readonly detail?: string;
  readonly undoneAtMs?: number;
  readonly undo?: string;
  /** The injection or its undo failed. */
  readonly error?: string;
  /** Why it never fired (the migration ended first, the run failed first). */
  readonly notFired?: string;
}


export interface FaultRunnerOptions {
  readonly inject: (f: FaultSpec) => Promise<Injected>;
  /** Undo steps of timed faults go here too, so they run at teardown whatever happened. */
  readonly teardown: Teardown;
  /** A fault could not be injected (or undone): the run cannot go on as the user asked. */
  readonly onError: (record: FaultRecord, err: unknown) => void;
  readonly onFired?: (record: FaultRecord) => void;
}

export class FaultRunner {
  private readonly entries: { spec: FaultSpec; rec: Mutable<FaultRecord>; timer?: NodeJS.Timeout }[];
  private readonly inFlight = new Set<Promise<void>>();
  private sentAt: number | undefined;
  private finished = false;

  constructor(
    faults: readonly FaultSpec[],
    private readonly opts: FaultRunnerOptions,
  ) {
    this.entries = faults.map((spec) => ({ spec, rec: { fault: formatFault(spec), spec, fired: false } }));
  }

  get records(): readonly FaultRecord[] {
    return this.entries.map((e) => ({ ...e.rec }));
  }

  get any(): boolean {
    return this.entries.length > 0;
  }

  /** The migrate command was sent at `sentAtMs` (epoch ms): time faults start their clocks. */
  arm(sentAtMs: number): void {
    this.sentAt = sentAtMs;
    for (const e of this.entries) {
      if (e.spec.when.kind !== 'time') continue;
      e.timer = timerAt(sentAtMs + e.spec.when.afterMs, (t) => (e.timer = t), () => this.fire(e, { tMs: Date.now() - sentAtMs }));
    }
  }

  /** A sample or an event: fire what has become due. */
  observe(o: Observation): void {
    if (this.sentAt === undefined || this.finished) return;
    for (const e of this.entries) if (!e.rec.fired && isDue(e.spec.when, o)) this.fire(e, o);
  }

  private fire(e: (typeof this.entries)[number], o: Observation): void {
    if (e.rec.fired || this.finished || this.sentAt === undefined) return;
    clearTimeout(e.timer);
    const sentAt = this.sentAt;
    e.rec.fired = true;
    const firedAt = Date.now();
    e.rec.firedAtMs = firedAt - sentAt;
    e.rec.trigger = describeTrigger(e.spec.when, { ...o, tMs: e.rec.firedAtMs });
    const job = (async () => {
      let injected: Injected;
      try {
        injected = await this.opts.inject(e.spec);
      } catch (err) {
        e.rec.error = `could not inject ${e.rec.fault}: ${describeError(err)}`;
        this.opts.onError({ ...e.rec }, err);
        return;
      }
      e.rec.detail = injected.detail;
      this.opts.onFired?.({ ...e.rec });
      const undo = injected.undo;
      if (!undo) return;
      let done = false;
      const runUndo = async () => {
        if (done) return;
        done = true;
        try {
          await undo.run();
          e.rec.undo = undo.what;
          e.rec.undoneAtMs = Date.now() - sentAt;
        } catch (err) {
          e.rec.error = `could not undo ${e.rec.fault} (${undo.what}): ${describeError(err)}`;
          throw err;
        }
      };
      const early = this.opts.teardown.defer(`undo fault ${e.rec.fault}: ${undo.what}`, runUndo);
      if (e.spec.durationMs !== undefined) {
        e.timer = timerAt(firedAt + e.spec.durationMs, (t) => (e.timer = t), () => {
          early().catch((err: unknown) => this.opts.onError({ ...e.rec }, err));
        });
      }
    })();
    this.inFlight.add(job);
    void job.finally(() => this.inFlight.delete(job));
  }

  /** Wait for injections under way (an undo timer may still be pending). */
  async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  /**
   * The migration phase is over: faults not yet fired never will be (`why` says what ended it).
   * Pending undo timers stay: a timed fault keeps its duration, and teardown undoes it anyway.
   */
  finish(why: string): void {
    this.finished = true;
    for (const e of this.entries) {
      if (e.rec.fired) continue;
      clearTimeout(e.timer);
      e.rec.notFired = why;
    }
  }

  /** Stop every timer (teardown undoes what is still in force). */
  dispose(): void {
    this.finished = true;
    for (const e of this.entries) clearTimeout(e.timer);
  }
}

/**
 * Run `fn` once the wall clock reaches `deadline` (epoch ms). Node's timers can wake a
 * millisecond before Date.now() reaches the deadline (CI saw a fault due at 30 ms recorded as
 * fired at 29 ms), so an early wake re-arms for the remainder: a record never says a fault fired
 * before it was due. `track` receives every timer set so the caller can clear the current one.
 */
function timerAt(deadline: number, track: (t: NodeJS.Timeout) => void, fn: () => void): NodeJS.Timeout {
  const wake = (): void => {
    const left = deadline - Date.now();
    if (left > 0) track(setTimeout(wake, left));
    else fn();
  };
  return setTimeout(wake, Math.max(0, deadline - Date.now()));
}
