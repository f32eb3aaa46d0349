// What happened at each N of a batch, and why it stopped: counts, times and downtimes of the
// migrations, failures by kind, and at the stall which resource was saturated, with the sample
// values that show it. Pure: reads only a batch record's steps and samples.
import { SWITCH_PORTS } from '../lab/spec.js';
import { mbitToMiBps } from '../util/units.js';
import type { Distribution, Resource, Saturation, StepDiagnosis } from '../results/batch.js';
import type { BatchRecord, BatchSample, MigrationAttempt, StepRecord } from './record.js';
import { hostBefore, meanCpuBusyPct, memAvailableMiB, stallPredatesStep, swapUsedMiB } from './stall.js';

// What a diagnosis holds: the shapes of batch.json's `diagnoses` (src/results/batch.ts).
export type { Distribution, Resource, Saturation, StepDiagnosis };

/** Thresholds for calling a resource saturated (not for stopping: that is stall.ts). */
export const SATURATION = { cpuBusyPct: 90, psiCpuSomeAvg10: 20, linkShare: 0.85, psiMemorySomeAvg10: 10, memReserveFactor: 1.5 } as const;
/** How far before a stall the evidence window reaches. */
export const EVIDENCE_WINDOW_MS = 5000;

export function distribution(xs: readonly (number | undefined)[]): Distribution | undefined {
  const v = xs.filter((x): x is number => x !== undefined && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = Math.floor(v.length / 2);
  const median = v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { min: v[0]!, median, max: v[v.length - 1]!, count: v.length };
}

export interface SaturationContext {
  readonly cpus: number;
  readonly linkBandwidthMbit?: number;
  readonly memoryReserveMiB: number;
}

function maxOf<T>(xs: readonly T[], f: (x: T) => number | undefined): { value: number; at: T } | undefined {
  let best: { value: number; at: T } | undefined;
  for (const x of xs) {
    const v = f(x);
    if (v !== undefined && Number.isFinite(v) && (!best || v > best.value)) best = { value: v, at: x };
  }
  return best;
}

/** The peers of src's and dst's uplinks on the lab's switch. */
const SRC_PORT = SWITCH_PORTS.src;
const DST_PORT = SWITCH_PORTS.dst;

/**
 * What src sent and dst received over the migration link in a sample, Mbit/s. Read on the
 * switch (sampler.ts): src's port receives what src sends, dst's port sends what dst receives,
 * both from one read. Records from before that read src's and dst's uplinks in two commands, at
 * two moments, and batches on hosts from a hosts file (each end read on its own host); for them
 * the smaller of the two is taken, since the larger may count bytes of a longer interval than
 * the one it is divided by.
 */
export function linkRatesMbps(s: BatchSample): { srcTxMbps?: number; dstRxMbps?: number } {
  const mbps = (v: number | undefined) => (v === undefined ? undefined : v / 1e6);
  const srcPort = s.links.find((l) => l.dev === SRC_PORT);
  const dstPort = s.links.find((l) => l.dev === DST_PORT);
  if (srcPort || dstPort) return { srcTxMbps: mbps(srcPort?.rxBitsPerSecond), dstRxMbps: mbps(dstPort?.txBitsPerSecond) };
  // Hosts from a hosts file: each end on its own host, read apart.
  const srcEnd = s.links.find((l) => l.role === 'src');
  const dstEnd = s.links.find((l) => l.role === 'dst');
  if (srcEnd || dstEnd) return { srcTxMbps: mbps(srcEnd?.txBitsPerSecond), dstRxMbps: mbps(dstEnd?.rxBitsPerSecond) };
  return {
    srcTxMbps: mbps(s.links.find((l) => l.netns?.endsWith('-src'))?.txBitsPerSecond),
    dstRxMbps: mbps(s.links.find((l) => l.netns?.endsWith('-dst'))?.rxBitsPerSecond),
  };
}

/** Throughput of the migration path in a sample, Mbit/s (see linkRatesMbps). */
export function migrationLinkMbps(s: BatchSample): number | undefined {
  return migrationMbpsOf(s, linkRatesMbps(s));
}

/** migrationLinkMbps from the sample's linkRatesMbps, for a caller that has them already. */
export function migrationMbpsOf(s: BatchSample, { srcTxMbps, dstRxMbps }: ReturnType<typeof linkRatesMbps>): number | undefined {
  const v = [srcTxMbps, dstRxMbps].filter((x): x is number => x !== undefined);
  if (v.length === 0) return undefined;
  const onSwitch = s.links.some((l) => l.dev === SRC_PORT || l.dev === DST_PORT);
  return onSwitch ? Math.max(...v) : Math.min(...v);
}

/** Which resource was saturated in `samples`, with the evidence. */
export function saturation(samples: readonly BatchSample[], ctx: SaturationContext, t0Ms: number): Saturation {
  const at = (s: BatchSample) => `${((s.atMs - t0Ms) / 1000).toFixed(1)} s`;
  const cpu = maxOf(samples, meanCpuBusyPct);
  const psiCpu = maxOf(samples, (s) => s.pressure.cpu?.some.avg10);
  const psiMem = maxOf(samples, (s) => s.pressure.memory?.some.avg10);
  const minMem = maxOf(samples, (s) => -memAvailableMiB(s));
  const link = maxOf(samples, migrationLinkMbps);
  const load = maxOf(samples, (s) => s.loadavg.load1);
  const sat: Resource[] = [];
  const ev: string[] = [];
  const memLow = minMem !== undefined && -minMem.value < ctx.memoryReserveMiB * SATURATION.memReserveFactor;
  const memPsi = psiMem !== undefined && psiMem.value >= SATURATION.psiMemorySomeAvg10;
  if (memLow || memPsi) {
    sat.push('memory');
    if (minMem) ev.push(`MemAvailable fell to ${Math.round(-minMem.value)} MiB at ${at(minMem.at)} (reserve ${ctx.memoryReserveMiB} MiB)`);
    if (psiMem) ev.push(`PSI memory some avg10 ${psiMem.value} at ${at(psiMem.at)}`);
  }
  if (link && ctx.linkBandwidthMbit !== undefined && link.value >= SATURATION.linkShare * ctx.linkBandwidthMbit) {
    sat.push('network');
    ev.push(`migration link at ${link.value.toFixed(1)} Mbit/s at ${at(link.at)}, ${Math.round((100 * link.value) / ctx.linkBandwidthMbit)} % of the shaped ${ctx.linkBandwidthMbit} Mbit/s (${mbitToMiBps(ctx.linkBandwidthMbit).toFixed(1)} MiB/s)`);
  }
  if (cpu && psiCpu && cpu.value >= SATURATION.cpuBusyPct && psiCpu.value >= SATURATION.psiCpuSomeAvg10) {
    sat.push('cpu');
    ev.push(`CPU busy ${cpu.value.toFixed(1)} % (mean of ${ctx.cpus} CPUs) at ${at(cpu.at)}, PSI cpu some avg10 ${psiCpu.value} at ${at(psiCpu.at)}${load ? `, load1 ${load.value}` : ''}`);
  }
  if (sat.length === 0) {
    ev.push(
      `no resource saturated: peak CPU busy ${cpu ? cpu.value.toFixed(1) : '?'} %, PSI cpu ${psiCpu?.value ?? '?'}, min MemAvailable ${minMem ? Math.round(-minMem.value) : '?'} MiB, peak link ${link ? link.value.toFixed(1) : '?'} Mbit/s`,
    );
  }
  return {
    resource: sat[0] ?? 'none',
    saturated: sat,
    evidence: ev.join('; '),
    peak: {
      cpuBusyPct: cpu?.value,
      psiCpuSomeAvg10: psiCpu?.value,
      psiMemorySomeAvg10: psiMem?.value,
      minMemAvailableMiB: minMem ? -minMem.value : undefined,
      linkMbps: link?.value,
      load1: load?.value,
    },
  };
}

/** Time on the migration link and its lower bound (bytes at the shaped rate), for one step. */
export function linkUse(attempts: readonly MigrationAttempt[], linkBandwidthMbit: number | undefined): Pick<StepDiagnosis, 'migratingMs' | 'transferredMiB' | 'lowerBoundMs' | 'vsLowerBound'> {
  const sent = attempts.map((a) => a.migrateSentAtMs).filter((t): t is number => t !== undefined);
  const ends = attempts.flatMap((a) => a.events.filter((e) => e.event === 'migration-end').map((e) => e.atMs));
  const migratingMs = sent.length > 0 && ends.length > 0 ? Math.max(...ends) - Math.min(...sent) : undefined;
  const bytes = attempts.map((a) => a.transferredMiB).filter((m): m is number => m !== undefined);
  const transferredMiB = bytes.length > 0 ? bytes.reduce((x, y) => x + y, 0) : undefined;
  if (transferredMiB === undefined || linkBandwidthMbit === undefined) return { migratingMs, transferredMiB };
  const lowerBoundMs = (transferredMiB / mbitToMiBps(linkBandwidthMbit)) * 1000;
  return { migratingMs, transferredMiB, lowerBoundMs, vsLowerBound: migratingMs === undefined || lowerBoundMs <= 0 ? undefined : migratingMs / lowerBoundMs };
}

export function diagnoseStep(step: StepRecord, samples: readonly BatchSample[], ctx: SaturationContext, batchT0Ms: number): StepDiagnosis {
  const inStep = samples.filter((s) => s.atMs >= step.startedAtMs && s.atMs <= step.endedAtMs);
  const window = step.stall ? inStep.filter((s) => s.atMs >= step.stall!.atMs - EVIDENCE_WINDOW_MS && s.atMs <= step.stall!.confirmedAtMs + 1000) : inStep;
  const ok = step.attempts.filter((a) => a.outcome === 'completed');
  const failuresByKind: Record<string, number> = {};
  // A guest that failed once and then migrated on retry counts as migrated, and its first failure still shows.
  for (const a of step.attempts) if (a.outcome !== 'completed') failuresByKind[a.outcome] = (failuresByKind[a.outcome] ?? 0) + 1;
  return {
    n: step.n,
    mode: step.mode,
    variant: step.variant,
    wallMs: step.endedAtMs - step.startedAtMs,
    attempted: new Set(step.attempts.map((a) => a.guestIndex)).size,
    migrated: new Set(ok.map((a) => a.guestIndex)).size,
    migratedOnRetry: ok.filter((a) => a.attempt > 1).length,
    failuresByKind,
    totalTimeMs: distribution(ok.map((a) => a.totalTimeMs)),
    downtimeMs: distribution(ok.map((a) => a.downtimeMs)),
    bootToHeartbeatMs: distribution(step.attempts.map((a) => a.bootToHeartbeatMs)),
    stall: step.stall,
    saturation: saturation(window.length > 0 ? window : inStep, ctx, batchT0Ms),
    concurrency: step.plan?.concurrency,
    ...linkUse(step.attempts, ctx.linkBandwidthMbit),
    before: step.before,
    stallPredatesStep: stallPredatesStep(step.stall, step.before),
  };
}

/** Every step of a batch record diagnosed: what the report, the CLI and `miglab plot` read. */
export function diagnoseBatch(r: Pick<BatchRecord, 'steps' | 'samples' | 'startedAt' | 'host' | 'spec'>): StepDiagnosis[] {
  const ctx = { cpus: r.host.cpus, linkBandwidthMbit: r.host.linkBandwidthMbit, memoryReserveMiB: r.spec.memoryReserveMiB };
  const first = r.samples[0];
  const hostCtx = { ...ctx, swapUsedAtStartMiB: first ? swapUsedMiB(first) : 0 };
  // Records written before steps carried `before` still hold the samples it is read from.
  return r.steps.map((s) => diagnoseStep(s.before ? s : { ...s, before: hostBefore(r.samples, s.startedAtMs, r.spec.stall, hostCtx) }, r.samples, ctx, Date.parse(r.startedAt)));
}

export interface ComparisonRow {
  readonly n: number;
  readonly variant: string;
  readonly migrated: number;
  readonly wallMs: number;
  readonly migratingMs?: number;
  readonly lowerBoundMs?: number;
  readonly vsLowerBound?: number;
  readonly worstDowntimeMs?: number;
  readonly failures: number;
  readonly stalled: string;
  readonly concurrency: string;
}

/** Naive parallel against the scheduler at each N where both ran. */
export function compareSteps(diagnoses: readonly StepDiagnosis[]): ComparisonRow[] {
  const byN = new Map<number, StepDiagnosis[]>();
  for (const d of diagnoses) byN.set(d.n, [...(byN.get(d.n) ?? []), d]);
  const rows: ComparisonRow[] = [];
  for (const [n, ds] of [...byN].sort((a, b) => a[0] - b[0])) {
    if (ds.length < 2) continue;
    for (const d of ds) {
      rows.push({
        n,
        variant: d.variant === 'naive-parallel' ? 'naive parallel' : d.mode,
        migrated: d.migrated,
        wallMs: d.wallMs,
        migratingMs: d.migratingMs,
        lowerBoundMs: d.lowerBoundMs,
        vsLowerBound: d.vsLowerBound,
        worstDowntimeMs: d.downtimeMs?.max,
        failures: Object.values(d.failuresByKind).reduce((a, b) => a + b, 0),
        stalled: d.stall ? `${d.stall.symptom}` : 'no',
        concurrency: d.concurrency !== undefined ? String(d.concurrency) : d.variant === 'naive-parallel' ? String(n) : '–',
      });
    }
  }
  return rows;
}
