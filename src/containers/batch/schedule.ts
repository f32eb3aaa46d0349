// The fix for a container batch that halts its guests: how many containers move at once (their
// dumps together on chost-src, then their restores together on chost-dst), and how many chost-dst
// has room for, from figures measured in the same step (its first container moved alone) and the
// guests' memory at the step's start. Pure: moves.ts runs the plan, each group gated on fresh
// samples, the dumps that failed in contention retried alone.
//
// Why these rules, from what was measured here (TCG, 1 vCPU guests, 2-core host):
//  - CPU: 20 dumps at once took 8.2 s in all, 0.41 s a container, no faster than one at a time,
//    and each waited 5-8 s frozen instead of ~0.4 s; 1 to 4 of the 20 failed with compel's
//    "Message reply from daemon is trimmed" (the parasite's reply lost under contention). More
//    dumps than vCPUs only lengthen each one's freeze and risk failures: one per vCPU.
//  - NFS: dumps and restores do not overlap. Both guests writing to the lab's NFS server at once
//    were each about 4x slower than alone (200 appends: 0.8-0.9 s alone, 3.3-3.8 s together), and a
//    first scheduler that restored on chost-dst while chost-src dumped the next container froze
//    containers for 9-49 s instead of 0.4 s (N=5: 107 s against 6.7 s one by one).
//  - memory: every CRIU process holds its own ~6.7 MiB (ru_maxrss); N at once need N times that,
//    and chost-dst keeps each restored container for good. The plan admits what fits above a reserve.
import type { ContainerSchedulePlan } from './types.js';

/** Memory left free in each guest: below it the kernel reclaims hard and the OOM killer is near. */
export const RESERVE_MIB = 128;
/** The gate before each dump: past this memory pressure (PSI some avg10, %) the next one waits. */
export const PSI_MEMORY_LIMIT = 10;
/**
 * Past this I/O pressure the next one waits too: a scheduled ladder here stalled with both guests'
 * PSI io at 95-100 % (the shared NFS export saturated), and each dump or restore let in then only
 * queued behind it (one restore failed after 151 s with an I/O error).
 */
export const PSI_IO_LIMIT = 50;

export interface ScheduleInput {
  readonly count: number;
  readonly srcVcpus: number;
  readonly dstVcpus: number;
  /** MemAvailable of each guest once the step's containers run, MiB. */
  readonly srcAvailableMiB: number;
  readonly dstAvailableMiB: number;
  /** Peak RSS of the step's first dump and restore (run alone), MiB. */
  readonly dumpRssMiB: number;
  readonly restoreRssMiB: number;
  /** What one restored container costs chost-dst: its MemAvailable before and after the first restore, MiB. */
  readonly perContainerMiB: number;
  readonly reserveMiB?: number;
}

const floorAtLeast = (x: number, min: number) => Math.max(min, Math.floor(x));

export function planContainerSchedule(i: ScheduleInput): ContainerSchedulePlan {
  const reserve = i.reserveMiB ?? RESERVE_MIB;
  const reasons: string[] = [];
  const byMemory = (avail: number, rss: number) => floorAtLeast((avail - reserve) / Math.max(rss, 0.1), 0);
  const dumpMem = byMemory(i.srcAvailableMiB, i.dumpRssMiB);
  const restoreMem = byMemory(i.dstAvailableMiB, i.restoreRssMiB);
  const atOnce = Math.max(1, Math.min(i.srcVcpus, i.dstVcpus, dumpMem, restoreMem, i.count));
  reasons.push(
    `at once: ${atOnce} = min(${Math.min(i.srcVcpus, i.dstVcpus)} vCPU (more only lengthen each freeze), chost-src (${Math.round(i.srcAvailableMiB)} MiB available - ${reserve} reserve) / ${i.dumpRssMiB.toFixed(1)} MiB per criu dump = ${dumpMem}, chost-dst (${Math.round(i.dstAvailableMiB)} - ${reserve}) / ${i.restoreRssMiB.toFixed(1)} MiB per criu restore = ${restoreMem})`,
  );
  reasons.push('dumps and restores take turns: the two guests on the NFS server at once are each about 4x slower');
  // What stays on chost-dst: every restored container, plus the restores in flight.
  const room = i.dstAvailableMiB - reserve - atOnce * i.restoreRssMiB;
  const per = Math.max(i.perContainerMiB, 0.1);
  const fits = floorAtLeast(room / per, 0);
  const admit = Math.min(i.count, fits);
  reasons.push(
    admit < i.count
      ? `room on chost-dst: (${Math.round(i.dstAvailableMiB)} - ${reserve} - ${atOnce} x ${i.restoreRssMiB.toFixed(1)}) / ${per.toFixed(2)} MiB per container = ${fits}: ${admit} of ${i.count} are moved, the other ${i.count - admit} stay on chost-src rather than halt chost-dst`
      : `room on chost-dst for ${fits} containers at ${per.toFixed(2)} MiB each: all ${i.count} fit`,
  );
  reasons.push(`each group waits while either guest's memory pressure (PSI some avg10) is above ${PSI_MEMORY_LIMIT} %, its I/O pressure above ${PSI_IO_LIMIT} % or its MemAvailable below ${reserve} MiB`);
  return { atOnce, admit, reasons };
}
