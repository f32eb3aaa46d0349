// Migrate: the migrate command (sent by miglab, or by a person at the source's monitor when the
// run is by hand), the faults armed from it, the migration driven to its end (drive.ts), and
// what it cost each QEMU in CPU.
import { processCpuMs } from '../../measure/host-sampler.js';
import { withDeadline } from '../../util/deadline.js';
import type { EngineContext } from '../engine.js';
import { driveMigration, type DriveResult } from '../drive.js';
import { CALL, type Run } from '../run-state.js';
import type { Booted } from './boot.js';
import type { SwitchoverDecision } from '../../switchover/policies.js';
import { readInForce, type Configured } from './configure.js';
import type { PostcopyRecovery } from '../postcopy-recovery.js';
import type { RunOutputs } from '../report.js';
import { destinationResumed } from '../downtimes.js';

/** The migration has ended (any final status). */
export interface Migrated {
  readonly drive: DriveResult;
  /** The literal command that started it (by hand: what miglab saw of it). */
  readonly migrateCommand: string;
  /** CPU time each QEMU used during the migration (TLS, compression and multifd show here). */
  readonly qemuCpuMs: { readonly source?: number; readonly destination?: number };
  /** By hand: what the source says is in force once the person started (they may have changed it). */
  readonly inForce?: Pick<Configured, 'parametersInForce' | 'capabilitiesInForce'>;
}

export type MigrateRun = Pick<Run, 'scenario' | 'guard' | 'faults' | 'timeline' | 'events' | 'progress' | 'record' | 'out' | 'final' | 'sourceCompletedAtMs'> & {
  readonly ctx: Pick<EngineContext, 'hooks'>;
};

/** The port of a tcp:ADDRESS:PORT migration URI. */
function portOf(uri: string): string {
  return uri.slice(uri.lastIndexOf(':') + 1);
}

/** Send the migrate command (or wait for the person's), arm the faults, and drive the migration to its end. */
export async function migrate(run: MigrateRun, booted: Booted, configured: Configured): Promise<Migrated> {
  const { scenario, guard } = run;
  const { src, dst, slot } = booted;
  const { driver } = configured;
  const byHand = run.ctx.hooks?.byHand;
  run.progress('migrate', byHand ? `waiting for a migration to ${slot.uri} started by hand` : `${scenario.monitor.toUpperCase()}: migrating to ${slot.uri}`);
  const cpuNow = () => Promise.all([src, dst].map((vm) => processCpuMs(vm.host, vm.process.pid)));
  let cpuBefore = await cpuNow();
  let inForce: Migrated['inForce'];
  if (byHand) {
    const began = (atMs: number) => (guard.migrateSentAt ||= atMs);
    run.record.migrateCommand = await byHand.awaitMigrate({ src, dst, uri: slot.uri, signal: guard.signal, began });
    began(Date.now());
    // Read as the migration begins, not while the guests waited for the person.
    cpuBefore = await cpuNow();
    // The person may have changed parameters or capabilities at the monitor before migrating.
    inForce = await readInForce(run, src);
  } else {
    guard.migrateSentAt = Date.now();
    run.record.migrateCommand = await withDeadline('the migrate command', driver.start(slot.uri), { timeoutMs: CALL.timeoutMs, signal: guard.signal });
  }
  run.faults.arm(guard.migrateSentAt);
  // The record's list, filled in place as the loop decides (a run that ends early keeps what it decided).
  const decisions: SwitchoverDecision[] = [];
  if (run.out.switchover) run.out.switchover = { ...run.out.switchover, decisions };
  // Post-copy's record, its recoveries filled in place like the decisions.
  const recoveries: PostcopyRecovery[] = [];
  // What QEMU says is in force (a person may have set it at the monitor), not what was asked.
  const caps = inForce?.capabilitiesInForce ?? configured.capabilitiesInForce;
  const preempt = caps['postcopy-preempt'] === true;
  const postcopy = (): NonNullable<RunOutputs['postcopy']> => (run.out.postcopy ??= { preempt, recoveries });
  const drive = await driveMigration({
    driver,
    scenario,
    guard,
    faults: run.faults,
    timeline: run.timeline,
    progress: run.progress,
    sentAt: guard.migrateSentAt,
    completedByEvent: () => run.sourceCompletedAtMs !== undefined,
    policy: configured.policy,
    passStartedAt: (pass) => run.events.find((e) => e.side === 'source' && e.event === 'MIGRATION_PASS' && (e.data as { pass?: unknown } | undefined)?.pass === pass)?.tMs,
    onDecision: (d) => decisions.push(d),
    onPostcopy: (atMs) => {
      run.out.postcopy = { ...postcopy(), startedAtMs: atMs };
    },
    onPostcopyEntered: (atMs) => {
      run.out.postcopy = { ...postcopy(), enteredAtMs: atMs };
    },
    recovery: {
      destination: configured.dstDriver,
      uri: slot.uri,
      destinationRuns: () => destinationResumed(run.events),
      // A resume's connect still waiting for the destination's SYN-ACK (7.2 shows none of it in its status).
      connectPending: async () => {
        const r = await src.host.run(['ss', '-Htn', 'state', 'syn-sent', 'dst', `${slot.dstAddress}:${portOf(slot.uri)}`], { timeoutMs: 5000 });
        return r.stdout.trim() !== '';
      },
      gone: () => [src, dst].filter((vm) => vm.process.hasExited).map((vm) => `QEMU ${vm.label} has exited: the guest's memory is lost with it`)[0],
    },
    onRecovery: (r) => {
      postcopy();
      recoveries.push(r);
    },
  });
  run.final = drive.final;
  const cpuAfter = await cpuNow();
  const used = (i: number) => {
    const before = cpuBefore[i];
    const after = cpuAfter[i];
    return before !== undefined && after !== undefined ? after - before : undefined;
  };
  const qemuCpuMs = { source: used(0), destination: used(1) };
  run.out.qemuCpuMs = qemuCpuMs;
  guard.note('migration', `QEMU reports ${drive.final.status}${drive.final.errorDesc ? `: ${drive.final.errorDesc}` : ''}`);
  await run.ctx.hooks?.afterMigrate?.(drive.final);
  return { drive, migrateCommand: run.record.migrateCommand, qemuCpuMs, inForce };
}
