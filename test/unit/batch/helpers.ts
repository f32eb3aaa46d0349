// Synthetic host samples and attempts for the batch unit tests: plain data in the shapes the
// sampler and the runner record.
import type { BatchSample, MigrationAttempt, StepRecord } from '../../../src/batch/index.js';

export interface SampleOpts {
  atMs: number;
  busyPct?: number;
  psiCpu?: number;
  psiMem?: number;
  load1?: number;
  memAvailableMiB?: number;
  swapUsedMiB?: number;
  /** pid -> [label, cpuPct] */
  qemu?: Record<number, [string, number]>;
  srcTxMbps?: number;
}

export function sample(o: SampleOpts): BatchSample {
  const busy = o.busyPct ?? 10;
  const psi = (avg10: number) => ({ some: { avg10, avg60: avg10, avg300: avg10, totalUs: 0 } });
  const qemu = Object.entries(o.qemu ?? {});
  return {
    atMs: o.atMs,
    intervalMs: 500,
    cpus: [
      { cpu: 'cpu', busyPct: busy, iowaitPct: 0, stealPct: 0 },
      { cpu: 'cpu0', busyPct: busy, iowaitPct: 0, stealPct: 0 },
      { cpu: 'cpu1', busyPct: busy, iowaitPct: 0, stealPct: 0 },
    ],
    loadavg: { load1: o.load1 ?? 0.5, load5: 0.5, load15: 0.5, runnable: 1, threads: 200 },
    pressure: { cpu: psi(o.psiCpu ?? 0), memory: psi(o.psiMem ?? 0), io: psi(0) },
    memory: { memTotalKiB: 24 * 1024 * 1024, memAvailableKiB: (o.memAvailableMiB ?? 20000) * 1024, swapTotalKiB: 4 * 1024 * 1024, swapFreeKiB: (4 * 1024 - (o.swapUsedMiB ?? 0)) * 1024 },
    processes: qemu.map(([pid, [, cpuPct]]) => ({ pid: Number(pid), alive: true, comm: 'qemu-system-x86', cpuPct, vmRssKiB: 200 * 1024 })),
    links: [
      { netns: 'mlbt-src', dev: 'up0', txBitsPerSecond: (o.srcTxMbps ?? 0) * 1e6, rxBitsPerSecond: 0 },
      { netns: 'mlbt-dst', dev: 'up0', txBitsPerSecond: 0, rxBitsPerSecond: (o.srcTxMbps ?? 0) * 1e6 },
    ],
    qemuLabels: Object.fromEntries(qemu.map(([pid, [label]]) => [pid, label])),
  };
}

export function attempt(o: Partial<MigrationAttempt> & { guestIndex: number }): MigrationAttempt {
  return { attempt: 1, startedAtMs: 0, endedAtMs: 1000, outcome: 'completed', memoryMiB: 128, timeoutMs: 60000, events: [], ...o };
}

export function step(o: Partial<StepRecord> & { n: number; attempts: MigrationAttempt[] }): StepRecord {
  return { mode: 'parallel', variant: 'as-specified', startedAtMs: 0, endedAtMs: 10000, guard: { needMiB: 0, usableMiB: 0, message: '' }, ...o };
}
