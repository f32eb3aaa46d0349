// When does a batch of migrations count as stalled? Pure functions over host samples and run
// reports: symptoms of the host (CPU and memory pressure, run queue, memory, swap) and of the
// runs (no convergence by the deadline, a broken heartbeat, a monitor that stopped answering).
// The batch runner (run.ts) evaluates them as samples and runs arrive and stops at the first;
// the memory guard here decides whether a step may start at all.
import type { HostSample } from '../measure/host-sampler.js';
import type { RunReport } from '../migrate/report.js';
import type { HostBefore, Stall } from '../results/batch.js';
import { QEMU_OVERHEAD_MIB, type StallThresholds } from './spec.js';

export const HOST_SYMPTOMS = ['psi-cpu', 'psi-memory', 'memory-available', 'swap-growing', 'run-queue'] as const;
export const RUN_SYMPTOMS = ['did-not-converge', 'migration-stalled', 'destination-not-resumed', 'qemu-did-not-start', 'heartbeat-broken', 'monitor-unresponsive', 'operation-timeout', 'migration-failed'] as const;
export type HostSymptom = (typeof HOST_SYMPTOMS)[number];
export type RunSymptom = (typeof RUN_SYMPTOMS)[number];
export type StallSymptom = Stall['symptom'];
// Why a step counts as stalled, and the host just before it: the shapes batch.json records.
export type { HostBefore, Stall };

export interface HostContext {
  readonly cpus: number;
  readonly memoryReserveMiB: number;
  /** Swap in use when the batch began, MiB. */
  readonly swapUsedAtStartMiB: number;
}

export interface Symptom {
  readonly symptom: HostSymptom;
  readonly detail: string;
  readonly evidence: Readonly<Record<string, number>>;
}

const KiB_PER_MiB = 1024;
const round1 = (x: number) => Math.round(x * 10) / 10;

export function swapUsedMiB(s: HostSample): number {
  return (s.memory.swapTotalKiB - s.memory.swapFreeKiB) / KiB_PER_MiB;
}

export function memAvailableMiB(s: HostSample): number {
  return s.memory.memAvailableKiB / KiB_PER_MiB;
}

/** Mean busy share of the individual CPUs (the "cpu" aggregate line is left out), percent. */
export function meanCpuBusyPct(s: HostSample): number | undefined {
  const per = s.cpus.filter((c) => c.cpu !== 'cpu' && c.busyPct !== null).map((c) => c.busyPct!);
  const all = s.cpus.find((c) => c.cpu === 'cpu')?.busyPct;
  if (per.length > 0) return per.reduce((a, b) => a + b, 0) / per.length;
  return all ?? undefined;
}

/** Every host symptom one sample shows against the thresholds. */
export function hostSymptoms(s: HostSample, t: StallThresholds, ctx: HostContext): Symptom[] {
  const out: Symptom[] = [];
  const cpuSome = s.pressure.cpu?.some.avg10;
  if (cpuSome !== undefined && cpuSome > t.psiCpuSomeAvg10) {
    out.push({ symptom: 'psi-cpu', detail: `PSI cpu some avg10 ${cpuSome} > ${t.psiCpuSomeAvg10}`, evidence: { psiCpuSomeAvg10: cpuSome, cpuBusyPct: round1(meanCpuBusyPct(s) ?? NaN) } });
  }
  const memSome = s.pressure.memory?.some.avg10;
  if (memSome !== undefined && memSome > t.psiMemorySomeAvg10) {
    out.push({ symptom: 'psi-memory', detail: `PSI memory some avg10 ${memSome} > ${t.psiMemorySomeAvg10}`, evidence: { psiMemorySomeAvg10: memSome } });
  }
  const avail = memAvailableMiB(s);
  if (avail < ctx.memoryReserveMiB) {
    out.push({ symptom: 'memory-available', detail: `MemAvailable ${Math.round(avail)} MiB < reserve ${ctx.memoryReserveMiB} MiB`, evidence: { memAvailableMiB: Math.round(avail) } });
  }
  const swapGrowth = swapUsedMiB(s) - ctx.swapUsedAtStartMiB;
  if (swapGrowth > t.swapGrowthMiB) {
    out.push({ symptom: 'swap-growing', detail: `swap in use grew by ${Math.round(swapGrowth)} MiB (> ${t.swapGrowthMiB})`, evidence: { swapGrowthMiB: Math.round(swapGrowth) } });
  }
  const perCpu = s.loadavg.load1 / Math.max(1, ctx.cpus);
  if (perCpu > t.loadPerCpu) {
    out.push({ symptom: 'run-queue', detail: `load1 ${s.loadavg.load1} on ${ctx.cpus} CPUs = ${round1(perCpu)} per CPU > ${t.loadPerCpu}`, evidence: { load1: s.loadavg.load1, loadPerCpu: round1(perCpu), runnable: s.loadavg.runnable } });
  }
  return out;
}

/** The last sample at or before `atMs` (epoch), read as the host's state before a step. Pure. */
export function hostBefore(
  samples: readonly (HostSample & { readonly qemuLabels?: Readonly<Record<string, string>> })[],
  atMs: number,
  t: StallThresholds,
  ctx: HostContext,
): HostBefore | undefined {
  let s: (typeof samples)[number] | undefined;
  for (const x of samples) if (x.atMs <= atMs) s = x;
  if (!s) return undefined;
  const found = hostSymptoms(s, t, ctx);
  const labels = s.qemuLabels ?? {};
  const batchQemus = s.processes.filter((p) => p.alive && labels[String(p.pid)] !== undefined).length;
  const busy = meanCpuBusyPct(s);
  return {
    atMs: s.atMs,
    psiCpuSomeAvg10: s.pressure.cpu?.some.avg10,
    psiMemorySomeAvg10: s.pressure.memory?.some.avg10,
    psiIoSomeAvg10: s.pressure.io?.some.avg10,
    cpuBusyPct: busy === undefined ? undefined : round1(busy),
    load1: s.loadavg.load1,
    memAvailableMiB: Math.round(memAvailableMiB(s)),
    batchQemus,
    symptoms: found.map((x) => x.symptom),
    detail: found.length > 0 ? found.map((x) => x.detail).join('; ') : 'no stall symptom',
  };
}

/**
 * Whether a step's stall is one the host already showed before the step began: then the stall
 * says more about the host than about N.
 */
export function stallPredatesStep(stall: Stall | undefined, before: HostBefore | undefined): boolean {
  return stall !== undefined && before !== undefined && (before.symptoms as readonly string[]).includes(stall.symptom);
}

/** The one line that says why a step stopped the batch, and whether the host was busy before it. */
export function stallStopDetail(n: number, stall: Stall, before: HostBefore | undefined): string {
  const base = `N=${n}: ${stall.symptom}: ${stall.detail}`;
  if (!stallPredatesStep(stall, before)) return base;
  const ours = before!.batchQemus === 0 ? 'with none of this batch\'s guests running' : `with ${before!.batchQemus} of this batch's QEMUs still running`;
  return `${base}; but the host already showed ${stall.symptom} before N=${n} started (${before!.detail}, ${ours}): the pressure was there before this step, so it does not show that N=${n} is too many`;
}

/** Memory and swap are emergencies: no waiting for a second sample before stopping. */
const IMMEDIATE: ReadonlySet<HostSymptom> = new Set(['memory-available', 'swap-growing']);

/**
 * The first host stall in `samples` (oldest first): the first symptom that held for
 * `sustainSamples` consecutive samples (memory and swap at once). Ties go to the symptom that
 * began earlier.
 */
export function detectHostStall(samples: readonly HostSample[], t: StallThresholds, ctx: HostContext): Stall | undefined {
  const runStart = new Map<HostSymptom, { index: number; first: Symptom; atMs: number }>();
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i]!;
    const now = hostSymptoms(s, t, ctx);
    const present = new Set(now.map((x) => x.symptom));
    for (const k of [...runStart.keys()]) if (!present.has(k)) runStart.delete(k);
    for (const x of now) if (!runStart.has(x.symptom)) runStart.set(x.symptom, { index: i, first: x, atMs: s.atMs });
    const confirmed = now
      .filter((x) => IMMEDIATE.has(x.symptom) || i - runStart.get(x.symptom)!.index + 1 >= t.sustainSamples)
      .map((x) => ({ x, start: runStart.get(x.symptom)! }))
      .sort((a, b) => a.start.atMs - b.start.atMs);
    const c = confirmed[0];
    if (c) {
      return { symptom: c.x.symptom, atMs: c.start.atMs, confirmedAtMs: s.atMs, detail: c.x.detail, evidence: { ...c.start.first.evidence, ...prefixKeys('confirmed', c.x.evidence) } };
    }
  }
  return undefined;
}

function prefixKeys(prefix: string, o: Readonly<Record<string, number>>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [`${prefix}${k[0]!.toUpperCase()}${k.slice(1)}`, v]));
}

/** What of a run report the stall check reads. */
export type RunOutcome = Pick<RunReport, 'verdict' | 'failure' | 'finishedAt'> & {
  readonly outputs: Pick<RunReport['outputs'], 'heartbeat' | 'migrateSentAtMs'>;
  readonly timeline: readonly { readonly tMs: number }[];
};

/** The kind of a run's failure, from its verdict and failure text; undefined for a good run. */
export function runSymptom(r: RunOutcome): RunSymptom | undefined {
  if (r.verdict === 'completed' && !r.failure) return undefined;
  // Stopped from outside (the batch's own abort, Ctrl-C): not a symptom of the host or the run.
  if (r.verdict === 'interrupted') return undefined;
  if (r.verdict === 'did-not-converge') return 'did-not-converge';
  // No byte moved for the stall limit: the link or the destination, not the dirty rate.
  if (r.verdict === 'stalled') return 'migration-stalled';
  if (r.outputs.heartbeat && !r.outputs.heartbeat.continuous) return 'heartbeat-broken';
  const f = r.failure ?? '';
  // QEMU finished sending but the destination had not resumed when checked: a starved destination.
  if (/the destination is (inmigrate|paused|prelaunch)/i.test(f)) return 'destination-not-resumed';
  if (/heartbeat did not continue/i.test(f)) return 'heartbeat-broken';
  // Checked before the QMP pattern: a QEMU that never opened its monitor socket did not start.
  if (/QEMU for .* did not start/i.test(f)) return 'qemu-did-not-start';
  if (/\bQMP\b|monitor/i.test(f)) return 'monitor-unresponsive';
  if (/did not finish within|timed? ?out/i.test(f)) return 'operation-timeout';
  return 'migration-failed';
}

/** A stall shown by one finished run, or undefined if the run went well. */
export function runStall(r: RunOutcome, guestIndex: number): Stall | undefined {
  const symptom = runSymptom(r);
  if (!symptom) return undefined;
  const finished = Date.parse(r.finishedAt);
  const last = r.timeline[r.timeline.length - 1];
  // The moment QEMU's last state was seen, not the end of cleanup.
  const atMs = r.outputs.migrateSentAtMs !== undefined && last ? r.outputs.migrateSentAtMs + last.tMs : finished;
  return { symptom, atMs, confirmedAtMs: finished, guestIndex, detail: `g${guestIndex}: ${r.failure ?? symptom}`, evidence: { verdict: r.verdict } };
}

/** The stall that began first, or undefined. */
export function firstStall(stalls: readonly (Stall | undefined)[]): Stall | undefined {
  return stalls.filter((s): s is Stall => s !== undefined).sort((a, b) => a.atMs - b.atMs || a.confirmedAtMs - b.confirmedAtMs)[0];
}

// ---------------------------------------------------------------- the memory guard

export interface MemoryGuardInput {
  /** Guest pairs alive at once. */
  readonly pairs: number;
  readonly memoryMiB: number;
  readonly memAvailableMiB: number;
  readonly reserveMiB: number;
  readonly overheadMiB?: number;
  /**
   * QEMUs of a pair on the host whose memory is checked: 2 when source and destination share it
   * (the embedded lab), 1 on hosts from a hosts file (the source host; destinations run on dst).
   */
  readonly qemusPerPair?: 1 | 2;
}

export interface MemoryGuardVerdict {
  readonly ok: boolean;
  readonly needMiB: number;
  /** MemAvailable minus the reserve. */
  readonly usableMiB: number;
  readonly message: string;
}

/**
 * Whether `pairs` source+destination QEMUs fit in memory without touching the reserve. Sized for
 * the worst case (every guest page resident on both sides), so a step that passes never swaps.
 */
export function memoryGuard(g: MemoryGuardInput): MemoryGuardVerdict {
  const per = g.memoryMiB + (g.overheadMiB ?? QEMU_OVERHEAD_MIB);
  const qemus = g.qemusPerPair ?? 2;
  const needMiB = g.pairs * qemus * per;
  const usableMiB = Math.floor(g.memAvailableMiB - g.reserveMiB);
  const ok = needMiB <= usableMiB;
  const sum = `${g.pairs} pair(s) x ${qemus === 2 ? '2 QEMUs' : '1 QEMU (the source)'} x (${g.memoryMiB} MiB + ${g.overheadMiB ?? QEMU_OVERHEAD_MIB} MiB overhead) = ${needMiB} MiB`;
  const message = ok
    ? `${sum} fits in ${usableMiB} MiB (MemAvailable ${Math.round(g.memAvailableMiB)} MiB minus reserve ${g.reserveMiB} MiB)`
    : `refused: ${sum} does not fit in ${usableMiB} MiB (MemAvailable ${Math.round(g.memAvailableMiB)} MiB minus reserve ${g.reserveMiB} MiB); starting it could push the host into swap`;
  return { ok, needMiB, usableMiB, message };
}

/** The largest number of pairs that fit (0 if not even one). */
export function maxPairsInMemory(memoryMiB: number, memAvailableMiB: number, reserveMiB: number, overheadMiB = QEMU_OVERHEAD_MIB): number {
  return Math.max(0, Math.floor((memAvailableMiB - reserveMiB) / (2 * (memoryMiB + overheadMiB))));
}
