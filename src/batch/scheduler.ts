// The fix for a stalling batch: decide, from samples already recorded, how many migrations may
// run at once, how much link each may take, in which order the guests go, and how to retry the
// ones that did not converge. Pure: the batch runner (run.ts, mode 'scheduled') executes a plan.
//
// The model is deliberately simple and stated in the plan's `reasons`:
//  - CPU: each guest pair in flight (TCG boot, then the source's migration thread and the
//    destination's receiver) costs `pairCores` of CPU, measured from the QEMU processes in the
//    samples; the host's own load is the idle baseline. Limit = (cpus x target - baseline) / pairCores.
//  - network: a migration converges only if its bandwidth beats the guest's dirty rate with a
//    margin; limit = link / that need, and each migration's max-bandwidth is its share of the link.
//  - memory: the same worst-case sizing as the guard.
//  - a resource seen saturated at concurrency c caps the limit at c - 1.
import type { Resource, SchedulePlan } from '../results/batch.js';
import type { BatchSample, MigrationAttempt } from './record.js';
import { mean, median } from '../stats/index.js';
import { maxPairsInMemory } from './stall.js';
import { mbitToMiBps } from '../util/units.js';

/** Share of the CPUs the scheduler plans to use, leaving room for the harness and the kernel. */
export const CPU_TARGET = 0.9;
/** Bandwidth over dirty rate a migration needs to converge in a few passes. */
export const CONVERGENCE_MARGIN = 2;
/** Floor of each migration's bandwidth, MiB/s: even an idle guest has RAM to send. */
export const MIN_MIGRATION_MiBps = 16;
/** Guests booted ahead of their migration, so the next migration starts as one ends. */
export const BOOT_AHEAD = 1;
/** Assumed cost of one guest pair in flight, in cores, when the samples show none (one TCG thread). */
export const DEFAULT_PAIR_CORES = 1;

export interface ResourceUse {
  readonly cpus: number;
  /** Busy cores with no guest QEMU running (harness, kernel, NFS server). */
  readonly baselineBusyCores: number;
  /** Mean CPU of the QEMU processes of one guest pair while any ran, in cores. */
  readonly pairCores: number;
  /** How many samples each figure rests on. */
  readonly baselineSamples: number;
  readonly pairSamples: number;
}

/** CPU use of the host and of a guest pair, from recorded samples. */
export function estimateResourceUse(samples: readonly BatchSample[], cpus: number): ResourceUse {
  const baseline: number[] = [];
  const perPair: number[] = [];
  for (const s of samples) {
    const total = s.cpus.find((c) => c.cpu === 'cpu')?.busyPct;
    const qemus = s.processes.filter((p) => p.alive && s.qemuLabels[String(p.pid)] !== undefined);
    if (qemus.length === 0) {
      if (total !== null && total !== undefined) baseline.push((total / 100) * cpus);
      continue;
    }
    const measured = qemus.filter((p) => p.cpuPct !== undefined);
    if (measured.length === 0) continue;
    const pairs = new Set(measured.map((p) => s.qemuLabels[String(p.pid)]!.split('-')[0])).size;
    perPair.push(measured.reduce((a, p) => a + p.cpuPct!, 0) / 100 / pairs);
  }
  // The median: the samples between steps include the previous step's teardown.
  const b = median(baseline);
  const p = mean(perPair);
  return {
    cpus,
    baselineBusyCores: b ?? 0,
    pairCores: p !== undefined && p > 0.05 ? p : DEFAULT_PAIR_CORES,
    baselineSamples: baseline.length,
    pairSamples: perPair.length,
  };
}

export interface ScheduleGuest {
  readonly guestIndex: number;
  readonly memoryMiB: number;
  readonly dirtyRateMiBps: number;
  /** It runs a workload (CPU, dirtying, network): waiting ready for its turn costs the host. */
  readonly busy?: boolean;
}

export interface ScheduleInput {
  readonly guests: readonly ScheduleGuest[];
  readonly use: ResourceUse;
  /** Shaped bandwidth of the migration link, Mbit/s; undefined when unshaped. */
  readonly linkBandwidthMbit?: number;
  readonly memAvailableMiB: number;
  readonly memoryReserveMiB: number;
  /** What the last run at this or a smaller N saturated, and at which concurrency. */
  readonly saturated?: { readonly resource: Resource; readonly concurrency: number };
  readonly timeoutMs: number;
}

// The plan is recorded with its step (batch.json's `plan`): its shape is that schema's.
export type { SchedulePlan };

export function planSchedule(i: ScheduleInput): SchedulePlan {
  const n = i.guests.length;
  const reasons: string[] = [];
  const u = i.use;
  const cpuRoom = u.cpus * CPU_TARGET - u.baselineBusyCores;
  const cpu = Math.max(1, Math.floor(cpuRoom / u.pairCores));
  reasons.push(
    `CPU: ${u.cpus} CPUs x ${CPU_TARGET} - ${u.baselineBusyCores.toFixed(2)} busy at idle = ${cpuRoom.toFixed(2)} cores; a guest pair in flight used ${u.pairCores.toFixed(2)} cores (${u.pairSamples} samples) -> ${cpu} at once`,
  );

  const maxDirty = Math.max(0, ...i.guests.map((g) => g.dirtyRateMiBps));
  const needMiBps = Math.max(MIN_MIGRATION_MiBps, maxDirty * CONVERGENCE_MARGIN);
  let network = n;
  let linkMiBps: number | undefined;
  if (i.linkBandwidthMbit !== undefined) {
    linkMiBps = mbitToMiBps(i.linkBandwidthMbit);
    network = Math.max(1, Math.floor(linkMiBps / needMiBps));
    reasons.push(`network: link ${i.linkBandwidthMbit} Mbit/s = ${linkMiBps.toFixed(1)} MiB/s; each migration needs ${needMiBps.toFixed(1)} MiB/s (dirty rate ${maxDirty} MiB/s x ${CONVERGENCE_MARGIN}, at least ${MIN_MIGRATION_MiBps}) -> ${network} at once`);
  } else {
    reasons.push('network: the link is not shaped, so it sets no limit here');
  }

  const memory = maxPairsInMemory(Math.max(...i.guests.map((g) => g.memoryMiB)), i.memAvailableMiB, i.memoryReserveMiB);
  reasons.push(`memory: ${Math.round(i.memAvailableMiB)} MiB available - ${i.memoryReserveMiB} reserve -> ${memory} pair(s)`);

  const saturation = i.saturated && i.saturated.resource !== 'none' ? Math.max(1, i.saturated.concurrency - 1) : n;
  if (i.saturated && i.saturated.resource !== 'none') reasons.push(`${i.saturated.resource} was saturated with ${i.saturated.concurrency} at once -> at most ${saturation}`);

  const limits = { cpu, network, memory: Math.max(1, memory), saturation };
  const candidates: [SchedulePlan['limitedBy'], number][] = [['guests', n], ['cpu', cpu], ['network', network], ['memory', limits.memory], ['saturation', saturation]];
  const [limitedBy, concurrency] = candidates.reduce((best, c) => (c[1] < best[1] ? c : best));

  // Slowly dirtying and small guests first: they converge fast and free their share early.
  const order = [...i.guests].sort((a, b) => a.dirtyRateMiBps - b.dirtyRateMiBps || a.memoryMiB - b.memoryMiB || a.guestIndex - b.guestIndex).map((g) => g.guestIndex);
  const maxBandwidthMiBps = linkMiBps === undefined ? undefined : Math.max(1, Math.floor(linkMiBps / concurrency));
  if (maxBandwidthMiBps !== undefined) reasons.push(`max-bandwidth ${maxBandwidthMiBps} MiB/s each (the link shared by ${concurrency})`);
  const inFlight = Math.min(n, limits.memory, concurrency + BOOT_AHEAD);
  if (inFlight > concurrency) reasons.push(`pipeline: ${inFlight} guests in flight, the next ${inFlight - concurrency} booting while ${concurrency} migrate${concurrency === 1 ? 's' : ''}, so the link does not wait for boots`);
  // A migrated guest's checks and cleanup (about 1.5 s here) overlap the next guest's boot when
  // memory holds those pairs too; else its place in flight is free only once it is gone. Measured
  // without the overlap: every other hand-over waited 1.1-3.0 s for the next guest to boot.
  const overlapsChecks = inFlight > concurrency && limits.memory >= inFlight + concurrency;
  if (overlapsChecks) reasons.push(`hand-over: a guest's place in flight is free once its migration ends; its checks and cleanup go on beside the next boot (memory holds ${inFlight + concurrency} pairs)`);
  // The next guest waits for its turn ready (workload at its rate; the probe starts at its turn),
  // so its hand-over is the probe's start and its migrate command; a busy guest does so only where the CPU holds every
  // pair in flight running, else it waits booted and starts its workload at its turn (its start
  // and WORKLOAD_SETTLE_MS are then part of the hand-over; 1.2 s when that settle was 1 s).
  const busy = i.guests.some((g) => g.busy === true);
  const readyAhead = inFlight > concurrency && (!busy || Math.floor(cpuRoom / u.pairCores) >= inFlight);
  if (inFlight > concurrency) {
    reasons.push(
      readyAhead
        ? `the next guest waits ready (workload running; its probe starts at its turn): its hand-over is the probe's start and its migrate command`
        : `the next guest waits booted, its workload not started: the CPU (${cpuRoom.toFixed(2)} cores) does not hold ${inFlight} busy pairs running (${u.pairCores.toFixed(2)} each)`,
    );
  }
  return { concurrency, inFlight, limitedBy, limits, order, maxBandwidthMiBps, timeoutMs: i.timeoutMs, reasons, overlapsChecks, readyAhead };
}

/** First-attempt outcomes the scheduler retries instead of calling a stall. */
export const RETRIED: ReadonlySet<string> = new Set(['did-not-converge', 'destination-not-resumed']);

export interface RetryDecision {
  readonly guestIndex: number;
  readonly maxBandwidthMiBps?: number;
  readonly timeoutMs: number;
  readonly autoConverge: boolean;
  readonly reason: string;
}

/**
 * Second tries, alone (so the whole link and the CPUs are theirs), for the migrations that did not
 * converge (with twice the bandwidth, capped by the link, twice the deadline, and auto-converge to
 * throttle the guest) and for those whose destination had not resumed when checked (starved of
 * CPU). Other failures are not retried: more time does not fix a broken heartbeat.
 */
export function planRetries(attempts: readonly MigrationAttempt[], plan: SchedulePlan, linkBandwidthMbit?: number): RetryDecision[] {
  const cap = linkBandwidthMbit === undefined ? undefined : Math.floor(mbitToMiBps(linkBandwidthMbit));
  return attempts
    .filter((a) => a.attempt === 1 && RETRIED.has(a.outcome))
    .map((a) => {
      const doubled = (a.maxBandwidthMiBps ?? plan.maxBandwidthMiBps ?? 128) * 2;
      const bw = cap === undefined ? doubled : Math.min(doubled, cap);
      return {
        guestIndex: a.guestIndex,
        maxBandwidthMiBps: bw,
        timeoutMs: a.timeoutMs * 2,
        autoConverge: true,
        reason: `g${a.guestIndex} ${a.outcome === 'did-not-converge' ? `did not converge in ${a.timeoutMs} ms` : 'had a destination that did not resume'}: retry alone with ${bw} MiB/s, ${a.timeoutMs * 2} ms and auto-converge`,
      };
    });
}
