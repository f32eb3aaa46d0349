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
    const dip = i.minDuringMbps / i.meanBeforeMbps;
    const effect =
      dip < 0.8
        ? `its lowest interval during the migration fell to ${fmtPct(dip * 100, 0)} of the rate before: the switchover pause stalls the TCP stream and the migration thread competes with the vCPU that runs the guest's network stack`
        : `no interval during the migration fell below 80% of the rate before, so at this sampling (0.5 s) the switchover pause (${fmtMs(d.report.outputs.downtimeMs)}) is too short to show`;
    out.push(
      `iperf3 through the guest's NIC averaged ${fmtNum(i.meanBeforeMbps)} Mbit/s before the migration, ${fmtNum(i.meanDuringMbps)} Mbit/s while it ran (its lowest 0.5 s interval ${fmtMbps(i.minDuringMbps)}) and ${fmtNum(i.meanAfterMbps)} Mbit/s after; ${effect}.`,
    );
  }
  const c = d.cpu;
  if (c.srcMeanBeforePct !== undefined && c.srcMeanDuringPct !== undefined) {
    const diff = c.srcMeanDuringPct - c.srcMeanBeforePct;
    const trend = diff > 5 ? `${fmtNum(diff)} points more during pre-copy, the cost of the migration thread reading and sending dirty pages` : diff < -5 ? `${fmtNum(-diff)} points less during pre-copy, as the vCPU got less host time` : 'about the same during pre-copy';
    out.push(`perf on the source QEMU: ${fmtNum(c.srcMeanBeforePct)}% of a CPU before the migration, ${fmtNum(c.srcMeanDuringPct)}% while it ran (${trend}); the destination QEMU used ${fmtNum(c.dstMeanAfterPct)}% after taking over.`);
  }
  if (d.unsupportedPerfEvents.length) out.push(`perf events not supported on this host: ${d.unsupportedPerfEvents.join(', ')}.`);
  return out;
}
