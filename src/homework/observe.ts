// Short observations computed from the measured numbers (never typed by hand): ratios between
// accelerators and devices, and what the migration did to throughput and CPU. Pure.
import { fmtMbps, fmtMs, fmtPct, fmtRatio } from '../report/markdown.js';
import type { AccelRow } from './accel-compare.js';
import type { NicRow } from './device-compare.js';
import type { DuringMigration } from './during-migration.js';

const fmtNum = (v: number | undefined, digits = 0) => (v === undefined || !Number.isFinite(v) ? '–' : v.toLocaleString('en-US', { maximumFractionDigits: digits }));

export function accelObservations(rows: readonly AccelRow[]): string[] {
  const kvm = rows.find((r) => r.accel === 'kvm');
  const tcg = rows.find((r) => r.accel === 'tcg');
  const out: string[] = [];
  if (kvm?.available && tcg?.available && kvm.cpuOpsPerS && tcg.cpuOpsPerS) {
    out.push(`With KVM the guest's CPU benchmark ran ${fmtRatio(kvm.cpuOpsPerS / tcg.cpuOpsPerS)} as fast as under TCG, and its memory copy ${fmtRatio((kvm.memMiBps ?? 0) / (tcg.memMiBps ?? 1))} as fast: KVM runs guest instructions natively on the host CPU, TCG translates each block of guest code first.`);
  } else if (kvm && !kvm.available) {
    out.push(`KVM could not be used on this host, so there is no KVM measurement: ${kvm.reason.replace(/\.$/, "")}. Every other figure in this report was measured under TCG.`);
  }
  if (tcg?.perf) {
    const p = tcg.perf;
    out.push(
      `Under TCG, QEMU kept ${fmtNum((p.cpusUtilized ?? NaN) * 100)}% of a host CPU busy while the guest benchmarked (perf task-clock), with ${fmtNum(p.contextSwitchesPerS ?? undefined)} context switches per second and ${fmtNum(p.pageFaults ?? undefined)} page faults.`,
    );
    const unsupported = [p.cycles.supported ? undefined : 'cycles', p.instructions.supported ? undefined : 'instructions'].filter(Boolean);
    if (unsupported.length) out.push(`perf reports ${unsupported.join(' and ')} as "not supported" on this host (no hardware counters are exposed to it); they are shown as such, not as zero.`);
  }
  return out;
}

export function deviceObservations(rows: readonly NicRow[]): string[] {
  const out: string[] = [];
  const v = rows.find((r) => r.nic === 'virtio-net-pci');
  for (const r of rows) {
    if (!v || r === v) continue;
    out.push(
      `virtio-net carried ${fmtRatio(v.tcpToGuestMbps / r.tcpToGuestMbps)} the TCP throughput of ${r.nic} into the guest (${fmtNum(v.tcpToGuestMbps)} vs ${fmtNum(r.tcpToGuestMbps)} Mbit/s) and ${fmtRatio(v.tcpFromGuestMbps / r.tcpFromGuestMbps)} out of it: a paravirtual NIC hands whole buffers to QEMU through shared rings, an emulated one makes QEMU emulate every register access of a real card.`,
    );
  }
  const vd = rows.find((r) => r.disk === 'virtio');
  const ide = rows.find((r) => r.disk === 'ide');
  if (vd && ide) {
    out.push(`virtio-blk wrote ${fmtRatio(vd.diskWriteMiBps / ide.diskWriteMiBps)} as fast as IDE and read ${fmtRatio(vd.diskReadMiBps / ide.diskReadMiBps)} as fast (both over the same NFS-backed qcow2).`);
  }
  const udp = rows.filter((r) => r.udpJitterMs !== undefined);
  if (udp.length > 1) {
    out.push(`UDP at ${fmtNum(udp[0]!.udpTargetMbps)} Mbit/s: ${udp.map((r) => `${r.nic} jitter ${fmtMs(r.udpJitterMs)}, loss ${fmtPct(r.udpLostPct)}`).join('; ')}.`);
  }
  return out;
}

export function duringObservations(d: DuringMigration): string[] {
  const o = d.report.outputs;
  const out: string[] = [];
  out.push(
    `The migration of the ${d.report.inputs.scenario.guest.memoryMiB} MiB guest took ${fmtMs(o.totalTimeMs)} in all with ${o.dirtySyncCount ?? '–'} dirty-memory syncs, and QEMU reports ${fmtMs(o.downtimeMs)} of downtime; the guest's heartbeat resumed on the destination ${fmtMs(o.heartbeat?.hostGapMs)} after its last beat on the source.`,
  );
  const i = d.iperf;
  if (i.meanBeforeMbps !== undefined && i.meanDuringMbps !== undefined && i.minDuringMbps !== undefined) {
    out.push(
      `iperf3 through the guest's NIC averaged ${fmtNum(i.meanBeforeMbps)} Mbit/s before the migration, ${fmtNum(i.meanDuringMbps)} Mbit/s while it ran and ${fmtNum(i.meanAfterMbps)} Mbit/s after; ${lowestInterval(d, i.minDuringMbps, i.meanBeforeMbps)}.`,
    );
  }
  const c = d.cpu;
  if (c.srcMeanBeforePct !== undefined && c.srcMeanDuringPct !== undefined) {
    const diff = c.srcMeanDuringPct - c.srcMeanBeforePct;
    const trend = diff > 5 ? `${fmtNum(diff)} points more during pre-copy` : diff < -5 ? `${fmtNum(-diff)} points less during pre-copy` : 'about the same during pre-copy';
    out.push(`perf on the source QEMU: ${fmtNum(c.srcMeanBeforePct)}% of a CPU before the migration, ${fmtNum(c.srcMeanDuringPct)}% while it ran (${trend}); the destination QEMU used ${fmtNum(c.dstMeanAfterPct)}% after taking over.`);
  }
  if (d.unsupportedPerfEvents.length) out.push(`perf events not supported on this host: ${d.unsupportedPerfEvents.join(', ')}.`);
  return out;
}

/**
 * Where the lowest iperf3 interval of the migration fell, from the figures alone: the interval
 * that holds the switchover, or how long before or after it. Says nothing of why.
 */
function lowestInterval(d: DuringMigration, minMbps: number, beforeMbps: number): string {
  const iperf = d.rows.filter((r) => r.series === 'iperf');
  const k = iperf.findIndex((r) => r.tS > 0 && r.throughputMbps === minMbps);
  const share = `${fmtPct((minMbps / beforeMbps) * 100, 0)} of the rate before`;
  const low = iperf[k];
  const prev = iperf[k - 1];
  const stop = d.marks.find((m) => m.kind === 'switchover')?.tS;
  const resume = d.marks.find((m) => m.kind === 'resume')?.tS ?? stop;
  if (!low || !prev || stop === undefined || resume === undefined) return `its lowest interval while migrating carried ${fmtMbps(minMbps)}, ${share}`;
  // An interval's row is stamped at its end; it began at the row before.
  const span = `${fmtNum(prev.tS, 1)}–${fmtNum(low.tS, 1)} s`;
  const where =
    low.tS >= stop && prev.tS <= resume
      ? `the interval that holds the switchover (QEMU's downtime ${fmtMs(d.report.outputs.downtimeMs)} of its ${fmtMs((low.tS - prev.tS) * 1000)})`
      : low.tS < stop
        ? `${fmtNum(stop - low.tS, 1)} s before the switchover, during pre-copy`
        : `${fmtNum(prev.tS - resume, 1)} s after the resume on the destination`;
  return `its lowest interval while migrating (${span}) carried ${fmtMbps(minMbps)}, ${share}: ${where}`;
}
