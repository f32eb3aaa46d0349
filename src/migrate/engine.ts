// The migration engine: runs one scenario on a lab and returns its report. It only orchestrates
// the phases (phases/*.ts), each of which takes what the one before returned: claim a guest slot
// and decide the accelerator (boot.ts), boot the source in `src` and the destination (`-incoming`)
// in `dst` (-> Booted), configure both for the migration (-> Configured), instrument the guest
// with its agent, workload and probe (-> Instrumented), migrate (sample, inject faults, cancel a
// migration that stalls or does not converge; -> Migrated), verify (QEMU's final figures, then the
// guest on the destination or, if it never switched over, on the source; -> Verified), clean up
// (each side as the run left it, anything left behind: aftermath.ts) and record (-> RunReport).
// Watchers (watch.ts) end a run at once when something outside the migration breaks it; Ctrl-C
// ends it as `interrupted` with what had been measured; here a run that threw is given its
// reason. Everything it starts it also stops.
import { describeError, MiglabError } from '../errors.js';
import { injectFault, type FaultTargets } from '../fault/inject.js';
import type { ImageInfo } from '../image/build.js';
import type { Lab } from '../lab/index.js';
import type { AccelDecision } from '../machine/accel.js';
import type { MachineSpec } from '../machine/spec.js';
import type { Vm } from '../machine/vm.js';
import type { MigrationInfo } from '../migration/info.js';
import { withDeadline } from '../util/deadline.js';
import { makePrivateDir } from '../util/private.js';
import { Teardown } from '../util/teardown.js';
import type { Progress } from '../progress/progress.js';
import { leftovers, observeAfter } from './aftermath.js';
import { lastActiveSample } from './figures.js';
import { RunGuard, trippedError } from './guard.js';
import { boot, chooseAccel, chooseQemu, claimSlot, labGuests, type Slot } from './phases/boot.js';
import { configure } from './phases/configure.js';
import { checkWarmStart } from './phases/warm.js';
import { instrument } from './phases/instrument.js';
import { migrate } from './phases/migrate.js';
import { buildReport, hostFacts } from './phases/record.js';
import { verify } from './phases/verify.js';
import type { HostFacts, RunReport } from './report.js';
import { failRun, mark, newRun, switchedOver, timed, type Run } from './run-state.js';
import type { Scenario } from './scenario.js';

/**
 * Points where a caller can run its own measurements around a migration (iperf through the
 * guest's NIC, perf on the source QEMU...). A hook that throws fails the run like any step.
 */
export interface MigrationHooks {
  /** Both QEMUs are up and the guest's agent is ready on the source (at `guestIp`, its slot's address). */
  afterBoot?(p: { src: Vm; dst: Vm; machine: MachineSpec; lab: Lab; guestIp: string }): Promise<void>;
  /**
   * The guest is ready to migrate (both QEMUs configured, its agent reached, its workload at its
   * rate); the probe starts and the migrate command goes out as this resolves. A batch waits here
   * for its turn on the link, so a hand-over costs the next guest only the probe's start and its
   * migrate command.
   */
  beforeMigrate?(): Promise<void>;
  /** The migration has ended (any final status), before the destination is checked. */
  afterMigrate?(final: MigrationInfo): Promise<void>;
  /** A person sends the migrate command, not miglab (`miglab guests up`). */
  byHand?: ByHand;
  /**
   * The run has concluded (any verdict) and nothing is stopped yet. `report()` is the record so
   * far (without what cleaning up finds: each side afterwards, qemu-img check, leftovers); a hook
   * may write it and hold the guests. The run then cleans up and returns its final report.
   */
  afterConclude?(p: { report: () => Promise<RunReport>; runDir: string; signal: AbortSignal }): Promise<void>;
}

/**
 * The migration is started by a person at the source's monitor; the engine does everything else
 * as for any run (boot, capabilities, probe, sampling, deadlines, checks, record).
 */
export interface ByHand {
  /** The longest the person may take to start the migration (the client probe must outlast it). */
  readonly waitMs: number;
  /**
   * Everything is ready: tell the person, and resolve once their migration has begun, with what
   * the report should say was sent. `began` takes QEMU's time of the start (epoch ms) as soon as
   * it is known, so that the events after it are timed from it.
   */
  awaitMigrate(p: { src: Vm; dst: Vm; uri: string; signal: AbortSignal; began: (atMs: number) => void }): Promise<string>;
}

export interface EngineContext {
  readonly lab: Lab;
  readonly image: ImageInfo;
  /** Run files go to `<runDir>` (created). */
  readonly runDir: string;
  readonly runId: string;
  /** Where the KVM probe verdict is cached. */
  readonly cacheDir: string;
  readonly signal?: AbortSignal;
  readonly progress?: Progress;
  /** The guest slot this run prefers (its IP/MAC/tap/port); a busy one moves it to a free slot. */
  readonly guestIndex?: number;
  readonly hooks?: MigrationHooks;
}


export async function runMigration(ctx: EngineContext, scenario: Scenario): Promise<RunReport> {
  await makePrivateDir(ctx.runDir);
  const guard = new RunGuard(ctx.signal);
  const td = new Teardown();
  // Faults act on the guests, which exist only once instrumented: a fault fires after the migrate
  // command, long after that.
  let targets: FaultTargets | undefined;
  const run = newRun(ctx, scenario, guard, td, (f) =>
    targets ? injectFault(f, targets) : Promise.reject(new MiglabError('INTERNAL', `fault ${f.kind} fired before the guests were ready`)),
  );

  // What must hold before anything runs (a guest slot and its port, the accelerator): a problem
  // here is the user's to fix and is thrown, as bad input is, once the slot is given back.
  let slot: Slot;
  let accel: AccelDecision;
  // Read at the start: at the end the source host may be out of reach (a lost connection).
  let facts: Promise<HostFacts> | undefined;
  try {
    checkWarmStart(run);
    await timed(run, 'qemuBuilds', () => chooseQemu(run));
    slot = await timed(run, 'slot', () => claimSlot(run));
    facts = hostFacts(run.lab.hosts.src.host);
    accel = await timed(run, 'accel', () => chooseAccel(run));
  } catch (err) {
    await td.run();
    throw err;
  }

  try {
    run.phase = 'boot';
    let t: number;
    const booted = await boot(run, slot, accel, labGuests(run.lab));
    // Configure and instrument are recorded as one phase, `prepare` (run.json's failedIn.phase).
    run.phase = 'prepare';
    const configured = await timed(run, 'configure', () => configure(run, booted));
    const instrumented = await timed(run, 'instrument', () => instrument(run, booted));
    targets = { lab: run.lab, src: booted.src, dst: booted.dst, agent: instrumented.agent };
    run.phase = 'migrate';
    t = Date.now();
    const migrated = await migrate(run, booted, configured);
    mark(run, 'migrationMs', t);
    // Verify is recorded as `conclude`.
    run.phase = 'conclude';
    t = Date.now();
    await verify(run, booted, instrumented, migrated);
    mark(run, 'verifyMs', t);
    const hook = ctx.hooks?.afterConclude;
    if (hook) await timed(run, 'afterConclude', () => hook({ report: async () => buildReport(run, { accel, host: await facts!, finishedAtMs: Date.now() }), runDir: ctx.runDir, signal: guard.signal }));
  } catch (err) {
    await fail(run, err);
  } finally {
    if (guard.migrateSentAt) {
      // A run a watcher (or the user) ended mid-migration keeps what its samples said.
      run.phases.migrationMs ??= Date.now() - guard.migrateSentAt;
      if (!switchedOver(run)) run.out.lastActive ??= lastActiveSample(run.timeline);
    }
    run.faults.finish(run.verdict === 'completed' ? 'the migration completed first' : `the run ended first (${run.phase})`);
    await run.faults.settle().catch(() => undefined);
    run.faults.dispose();
    if (run.held.src || run.held.dst) run.out.after = await observeAfter(run);
    const t = Date.now();
    run.phase = 'cleanup';
    run.progress('cleanup', 'stopping QEMU, removing taps and the data disk');
    const problems = await timed(run, 'teardown', () => td.run());
    // Added to what a warm start's saving guest may have left (phases/warm.ts).
    if (problems.length > 0) run.out.teardownProblems = [...(run.out.teardownProblems ?? []), ...problems];
    run.out.leftovers = await timed(run, 'leftovers', () => leftovers(run));
    mark(run, 'cleanupMs', t);
  }
  return buildReport(run, { accel, host: await facts!, finishedAtMs: Date.now() });
}

/** A run that threw: say why in the run's own words (interrupted, a watcher's alarm, the error). */
async function fail(run: Run, err: unknown): Promise<void> {
  const { guard } = run;
  // A monitor connection that broke is how a dying QEMU is often noticed first; its exit (and the
  // watcher that names it, registered on the same promise earlier, so run before this wait ends)
  // follows within moments, and is the reason to give.
  if (!guard.tripped && err instanceof MiglabError && err.code === 'QMP_DISCONNECTED') {
    const exits = [run.held.src, run.held.dst].filter((vm): vm is Vm => vm !== undefined).map((vm) => vm.process.exited);
    await withDeadline('a QEMU to exit', Promise.race(exits), { timeoutMs: 5000 }).catch(() => undefined);
  }
  // `lab down --force` marks the lab going down before it stops the run's QEMUs; the lab watcher
  // polls, so the broken monitor may surface first. The lab going is then the reason to give.
  if (!guard.tripped && !guard.interrupted) {
    const gone = labGone(run);
    if (gone) guard.trip('lab', trippedError('lab', `${gone} during the run`));
  }
  if (guard.interrupted) {
    run.verdict = 'interrupted';
    run.out.interruptedBy = guard.interruptedBy;
    failRun(run, 'ABORTED', `interrupted by ${guard.interruptedBy} during ${run.phase}`);
    return;
  }
  run.verdict = 'failed';
  // A watcher's alarm is the cause; the error that surfaced is only how the run noticed.
  if (guard.tripped) failRun(run, guard.tripped.error.code, guard.tripped.error.message, guard.tripped.source);
  else failRun(run, err instanceof MiglabError ? err.code : 'INTERNAL', describeError(err));
  if (!guard.tripped) {
    // Name what the lab looked like when a step hung: a frozen NFS server explains a silent QEMU.
    const nfs = run.lab.nfsServerState();
    if (nfs.state !== 'running' && nfs.state !== 'none') run.failure += `; the lab's NFS server (pid ${nfs.pid}) is ${nfs.state === 'stopped' ? 'stopped (SIGSTOP)' : 'gone'}`;
  }
}

function labGone(run: Run): string | undefined {
  try {
    return run.lab.stillUp();
  } catch {
    return undefined;
  }
}
