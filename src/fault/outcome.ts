// The outcome each fault must have, and whether a run had it. One table of expectations serves
// the integration tests, the fault sweep's fault x outcome table and `bench --which faults`, so
// what "miglab survives this fault" means is written down once:
// - the destination killed, frozen or cut off for longer than the run waits: the migration fails
//   or is cancelled, the source keeps running with its heartbeat, its workload intact there;
// - the source killed: failed, and the destination stops (QEMU ends an incoming migration whose
//   stream broke);
// - a short freeze or outage: the migration completes, the guest intact on the destination;
// - the NFS server gone, the guest out of memory: failed, the failure naming the cause;
// - once post-copy has begun nobody can fall back to the source: a short outage or freeze is
//   paused and recovered (completed), a lost QEMU or a link that stays down loses the guest.
// Pure: reads a fault, the scenario's limits and a run report.
import { CALL_MS } from '../migrate/drive.js';
import { destinationResumed } from '../migrate/downtimes.js';
import type { RunReport, Verdict } from '../migrate/report.js';
import type { Scenario } from '../migrate/scenario.js';
import { formatFault, type FaultSpec } from './spec.js';

/** A frozen QEMU or NFS server shorter than this leaves the monitor time to answer (drive.ts's limit, less a margin). */
const MONITOR_PATIENCE_MS = CALL_MS - 2000;

export interface FaultExpectation {
  readonly fault: string;
  /** Verdicts that are right for this fault. */
  readonly verdicts: readonly Verdict[];
  /** The source QEMU runs the guest afterwards, its heartbeat going on (no switchover happened). */
  readonly sourceRunsOn: boolean;
  /** The destination QEMU has stopped by itself. */
  readonly destinationStops: boolean;
  /** A word the run's failure must contain: it names the cause. */
  readonly names?: string;
  /** In words, for tables. */
  readonly text: string;
}

type Limits = Pick<Scenario, 'stallAfterMs' | 'postcopyStallMs' | 'postcopyRecoverWithinMs'>;

function outcome(f: FaultSpec, verdicts: Verdict[], more: Partial<Omit<FaultExpectation, 'fault' | 'verdicts' | 'text'>> = {}): FaultExpectation {
  const sourceRunsOn = more.sourceRunsOn ?? !verdicts.includes('completed');
  const parts = [verdicts.join(' or ')];
  if (sourceRunsOn) parts.push('the source runs on');
  if (more.destinationStops) parts.push('the destination stops');
  if (verdicts.length === 1 && verdicts[0] === 'completed') parts.push('the guest intact on the destination');
  if (more.names) parts.push(`the failure names ${more.names}`);
  return { fault: formatFault(f), verdicts, sourceRunsOn, destinationStops: more.destinationStops ?? false, ...(more.names ? { names: more.names } : {}), text: parts.join('; ') };
}

/**
 * What a run with this fault must end as. `inPostcopy`: it fired once post-copy had begun (a fault
 * timed by seconds or progress may land there; one waiting for a post-copy status always does).
 */
export function expectedOutcome(f: FaultSpec, limits: Limits, inPostcopy = false): FaultExpectation {
  if (inPostcopy || (f.when.kind === 'status' && f.when.status.startsWith('postcopy'))) return postcopyOutcome(f, limits);
  const d = f.durationMs;
  switch (f.kind) {
    case 'kill-dst':
      // After the switchover the destination holds the guest: killing it loses the guest.
      if (f.when.kind === 'status' && f.when.status === 'completed') return outcome(f, ['failed'], { sourceRunsOn: false });
      return outcome(f, ['failed']);
    case 'kill-src':
      // After the switchover the guest is the destination's: losing the source is harmless.
      if (f.when.kind === 'status' && f.when.status === 'completed') return outcome(f, ['completed']);
      return outcome(f, ['failed'], { sourceRunsOn: false, destinationStops: true });
    case 'freeze-dst':
      // Frozen, the destination stops reading: the source's socket fills and no byte moves.
      if (d !== undefined && d < limits.stallAfterMs / 2) return outcome(f, ['completed']);
      if (d === undefined || d >= limits.stallAfterMs) return outcome(f, ['stalled', 'did-not-converge']);
      return outcome(f, ['completed', 'stalled'], { sourceRunsOn: false });
    case 'freeze-src':
      // The source's monitor does not answer while it is frozen.
      if (d !== undefined && d < MONITOR_PATIENCE_MS) return outcome(f, ['completed']);
      return outcome(f, ['failed'], { sourceRunsOn: false, names: 'source' });
    case 'link-down':
      // TCP retransmits with a doubling timeout, so after an outage of d the next try may come up
      // to about d later (measured after 3 s outages: 0.2 s). Shorter than 2d + 1 s against the
      // stall limit, the migration must complete.
      if (d !== undefined && 2 * d + 1000 < limits.stallAfterMs) return outcome(f, ['completed']);
      if (d === undefined || d >= limits.stallAfterMs) return outcome(f, ['stalled', 'did-not-converge']);
      return outcome(f, ['completed', 'stalled'], { sourceRunsOn: false });
    case 'link-loss':
      if ((f.lossPercent ?? 100) <= 50) return outcome(f, ['completed']);
      return outcome(f, ['completed', 'stalled', 'did-not-converge'], { sourceRunsOn: false });
    case 'nfs-down':
      return outcome(f, ['failed'], { sourceRunsOn: false, names: 'NFS' });
    case 'nfs-freeze':
      if (d !== undefined && d < MONITOR_PATIENCE_MS) return outcome(f, ['completed']);
      return outcome(f, ['completed', 'failed', 'stalled'], { sourceRunsOn: false });
    case 'guest-oom':
      return outcome(f, ['failed'], { sourceRunsOn: false, names: 'OOM' });
  }
}

/**
 * A fault once post-copy has begun. The recovery (src/migrate/postcopy-recovery.ts) pauses after
 * postcopyStallMs and its resume's connect retries the SYN with a doubling wait, so after an
 * outage of d it may connect up to about d later: an outage shorter than (window - stall - 5 s) / 2
 * must be recovered.
 */
function postcopyOutcome(f: FaultSpec, limits: Limits): FaultExpectation {
  const d = f.durationMs;
  const recoverable = d !== undefined && 2 * d + limits.postcopyStallMs + 5000 < limits.postcopyRecoverWithinMs;
  const lost = { sourceRunsOn: false, names: 'lost' } as const;
  switch (f.kind) {
    case 'kill-dst':
      return outcome(f, ['failed'], lost);
    case 'kill-src':
      return outcome(f, ['failed'], { sourceRunsOn: false });
    case 'freeze-src':
      // Its monitor does not answer while it is frozen.
      if (d !== undefined && d < MONITOR_PATIENCE_MS) return outcome(f, ['completed']);
      return outcome(f, ['failed'], { sourceRunsOn: false });
    case 'freeze-dst':
    case 'link-down':
    case 'nfs-freeze':
      if (recoverable) return outcome(f, ['completed']);
      if (d === undefined) return outcome(f, ['failed'], f.kind === 'nfs-freeze' ? { sourceRunsOn: false } : lost);
      return outcome(f, ['completed', 'failed'], { sourceRunsOn: false });
    case 'link-loss':
      if ((f.lossPercent ?? 100) <= 50) return outcome(f, ['completed']);
      return outcome(f, ['completed', 'failed'], { sourceRunsOn: false });
    case 'nfs-down':
      // The disk was handed to the destination at post-copy's start: only its I/O fails.
      return outcome(f, ['completed', 'failed'], { sourceRunsOn: false });
    case 'guest-oom':
      return outcome(f, ['failed'], { sourceRunsOn: false, names: 'OOM' });
  }
}

export interface FaultJudgement {
  readonly fault: string;
  readonly expected: string;
  /** The run ended as expected in every respect. */
  readonly met: boolean;
  /** What differed, one line each. */
  readonly misses: readonly string[];
  /** From the fault's firing to the run's first reaction (an incident after it), ms. */
  readonly detectMs?: number;
  readonly detectedAs?: string;
}

/** Whether `report` ended as its faults require, fault by fault. */
export function judgeFaults(report: RunReport): FaultJudgement[] {
  const o = report.outputs;
  return (o.faults ?? []).map((rec) => {
    // In post-copy from when QEMU was seen there (records before enteredAtMs: when miglab asked),
    // and only where the destination then ran the guest: before that, all of it is still the source's.
    const entered = o.postcopy?.enteredAtMs ?? o.postcopy?.startedAtMs;
    const e = expectedOutcome(rec.spec, report.inputs.scenario, entered !== undefined && destinationResumed(report.events) && rec.firedAtMs !== undefined && rec.firedAtMs >= entered);
    const misses: string[] = [];
    if (!rec.fired) misses.push(`it never fired (${rec.notFired ?? 'unknown'})`);
    if (rec.error) misses.push(rec.error);
    if (!e.verdicts.includes(report.verdict)) misses.push(`verdict ${report.verdict}, expected ${e.verdicts.join(' or ')}`);
    const src = o.after?.source;
    if (e.sourceRunsOn && !(src?.process === 'running' && src.status === 'running' && src.heartbeat === 'continuing')) {
      misses.push(`the source did not run on (${src ? `${src.process}${src.status ? ` ${src.status}` : ''}, heartbeat ${src.heartbeat ?? '?'}` : 'not observed'})`);
    }
    if (e.sourceRunsOn && o.integrity && !o.integrity.ok) misses.push(`integrity on the ${o.integrityCheckedOn ?? '?'}: ${o.integrity.detail}`);
    if (e.destinationStops && o.after?.destination.process !== 'exited') misses.push(`the destination did not stop (${o.after?.destination.process ?? 'not observed'})`);
    if (e.names && !(report.failure ?? '').includes(e.names)) misses.push(`the failure does not name ${e.names}: ${report.failure ?? '(none)'}`);
    if (o.leftovers && o.leftovers.length > 0) misses.push(`left behind: ${o.leftovers.join('; ')}`);
    const firedAt = rec.firedAtMs;
    // The first thing the run noticed after the fault; a migration that simply completed noticed nothing.
    const reaction = firedAt === undefined ? undefined : o.incidents?.find((i) => i.tMs > firedAt && i.source !== 'fault' && !(i.source === 'migration' && /completed/.test(i.what)));
    return {
      fault: rec.fault,
      expected: e.text,
      met: misses.length === 0,
      misses,
      ...(reaction && firedAt !== undefined ? { detectMs: reaction.tMs - firedAt, detectedAs: `${reaction.source}: ${reaction.what}` } : {}),
    };
  });
}
