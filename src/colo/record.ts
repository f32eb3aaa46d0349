// What a COLO run measured (colo.json) and its summary in words (report.md). Every figure here is
// read from QEMU (its trace, its events, its answers), the guest (heartbeat, agent, disk records)
// or the client's probe; one that could not be read is absent, never estimated.
import { max, mean, median, percentile } from '../stats/index.js';
import type { ExplainedCommand } from '../util/explained-command.js';
import type { ColoSettings } from './options.js';
import type { ColoStep, Failover } from './steps.js';
import type { PrimaryTrace, SecondaryTrace } from './trace.js';

export interface Spread {
  readonly count: number;
  readonly median?: number;
  readonly mean?: number;
  readonly p90?: number;
  readonly max?: number;
}

export function spread(xs: readonly number[]): Spread {
  const r = (x: number | undefined) => (x === undefined ? undefined : Math.round(x * 10) / 10);
  return { count: xs.length, median: r(median(xs)), mean: r(mean(xs)), p90: r(percentile(xs, 90)), max: r(max(xs)) };
}

export interface CheckpointFigures {
  /** Checkpoints the primary asked for while in lock-step (its trace). */
  readonly count: number;
  /** From the first copy done (checkpoint-ready) to the primary's loss. */
  readonly lockStepMs: number;
  readonly intervalMs: Spread;
  /** How long the primary's guest was paused for each checkpoint. */
  readonly pauseMs: Spread;
  /** The share of the lock-step's wall time the primary's guest was paused. */
  readonly pausedShare?: number;
  /** Pages the secondary flushed per checkpoint (its trace). */
  readonly dirtyPages: Spread;
  /** Miscompares colo-compare reported, and the checkpoints they forced (within 20 ms before). */
  readonly miscompares: number;
  readonly forced: number;
}

export function checkpointFigures(p: PrimaryTrace, s: SecondaryTrace, lostAtMs: number): CheckpointFigures | undefined {
  if (p.readyAtMs === undefined) return undefined;
  const inLockStep = p.checkpoints.filter((c) => c.atMs >= p.readyAtMs! && c.atMs <= lostAtMs);
  const intervals = inLockStep.slice(1).map((c, i) => c.atMs - inLockStep[i]!.atMs);
  const pauses = inLockStep.map((c) => c.pauseMs).filter((x): x is number => x !== undefined);
  const lockStepMs = Math.max(0, lostAtMs - p.readyAtMs);
  return {
    count: inLockStep.length,
    lockStepMs: Math.round(lockStepMs),
    intervalMs: spread(intervals),
    pauseMs: spread(pauses),
    pausedShare: lockStepMs > 0 ? Math.round((pauses.reduce((a, b) => a + b, 0) / lockStepMs) * 1000) / 1000 : undefined,
    dirtyPages: spread(s.dirtyPages),
    miscompares: p.miscompares.filter((m) => m >= p.readyAtMs! && m <= lostAtMs).length,
    forced: inLockStep.filter((c) => c.forced).length,
  };
}

export interface ProbeWindow {
  readonly sent: number;
  readonly received: number;
  readonly rttMs: Spread;
}

export interface IperfFigures {
  /** What arrived in the guest, Mbit/s. */
  readonly mbps: number;
  readonly retransmits?: number;
  readonly seconds: number;
}

export interface ColoRecord {
  readonly kind: 'colo';
  readonly runId: string;
  readonly verdict: 'failed-over' | 'failed' | 'interrupted';
  readonly failure?: string;
  readonly startedAt: string;
  /** The run's settings (its ports aside), and what it ran. */
  readonly inputs: Omit<ColoSettings, 'basePort'> & {
    readonly qemu: { readonly choice: string; readonly version: string; readonly origin: string };
    readonly failure: 'kill-primary';
    readonly capabilities?: { readonly primary: readonly string[]; readonly secondary: readonly string[] };
    readonly commands: { readonly primary?: ExplainedCommand; readonly secondary?: ExplainedCommand };
  };
  readonly steps: readonly ColoStep[];
  readonly outputs: {
    /** From migrate to query-migrate saying "colo": the first full copy. */
    readonly lockStepAfterMs?: number;
    readonly checkpoints?: CheckpointFigures;
    /** The client's probe through colo-compare while in lock-step, and on the secondary alone after the failover (the same guest without COLO). */
    readonly probeInLockStep?: ProbeWindow;
    readonly probeAfter?: ProbeWindow;
    /** iperf3 TCP from the client into the guest: through colo-compare at the end of lock-step, and after the failover without COLO. */
    readonly iperfInLockStep?: IperfFigures;
    readonly iperfWithoutColo?: IperfFigures;
    /** The primary's QEMU was killed at (epoch ms); the secondary saw its stream end (last COLO message received). */
    readonly primaryKilledAtMs?: number;
    readonly failover?: Failover & { readonly pausedMs?: number };
    /** The client's view: from the last answer before the kill to the first from the secondary; the probes lost. */
    readonly clientSilenceMs?: number;
    readonly probesLost?: number;
    /** From the kill to the first answer from the secondary. */
    readonly serviceBackAfterKillMs?: number;
    /** The guest before COLO and after the failover: the same boot, its heartbeat going on. */
    readonly guestBefore?: { readonly bootId: string; readonly seq: number };
    readonly guestAfter?: { readonly bootId: string; readonly seq: number };
    readonly sameBoot?: boolean;
    /** The primary's last heartbeat on its console, and the secondary's first after the failover. */
    readonly heartbeat?: { readonly primaryLast?: { readonly seq: number; readonly bootId: string }; readonly secondaryFirst?: { readonly seq: number; readonly bootId: string } };
    /** The disk workload's records, checked on the secondary after the failover. */
    readonly disk?: { readonly records: number; readonly bad: number; readonly gaps: number; readonly lastSeq: number };
  };
  readonly phasesMs: Readonly<Record<string, number>>;
}

const f = (x: number | undefined, unit = '') => (x === undefined ? 'n/a' : `${x}${unit}`);

/** The run in words: what happened, then the figures, then how each was measured. */
export function coloMarkdown(r: ColoRecord): string {
  const o = r.outputs;
  const c = o.checkpoints;
  const lines = [
    `# COLO run ${r.runId}`,
    '',
    r.verdict === 'failed-over'
      ? `The guest ran in lock-step on two QEMUs (${r.inputs.qemu.version}), the primary's QEMU was killed, and the secondary carried the guest on${o.sameBoot ? ' (the same boot)' : ''}.`
      : `The run ${r.verdict}: ${r.failure ?? 'no reason recorded'}.`,
    '',
    `Guest ${r.inputs.memoryMiB} MiB, checkpoint every ${r.inputs.checkpointMs} ms at the latest, ${r.inputs.lockStepS} s in lock-step with a disk workload of ${r.inputs.diskRateKiBps} KiB/s and a UDP probe every ${r.inputs.probeIntervalMs} ms, then the primary killed (SIGKILL).`,
    '',
    '## Lock-step',
    '',
    `| figure | value |`,
    `|---|---|`,
    `| first full copy (migrate -> "colo") | ${f(o.lockStepAfterMs, ' ms')} |`,
  ];
  if (c) {
    lines.push(
      `| checkpoints in ${(c.lockStepMs / 1000).toFixed(1)} s | ${c.count} (${c.forced} forced by ${c.miscompares} miscompares) |`,
      `| interval median / max | ${f(c.intervalMs.median, ' ms')} / ${f(c.intervalMs.max, ' ms')} |`,
      `| guest paused per checkpoint, median / p90 / max | ${f(c.pauseMs.median, ' ms')} / ${f(c.pauseMs.p90, ' ms')} / ${f(c.pauseMs.max, ' ms')} |`,
      `| share of wall time paused | ${c.pausedShare === undefined ? 'n/a' : `${(c.pausedShare * 100).toFixed(1)} %`} |`,
      `| pages flushed per checkpoint (secondary), median | ${f(c.dirtyPages.median)} |`,
    );
  }
  if (o.probeInLockStep) lines.push(`| probe round trip through colo-compare, median / p90 | ${f(o.probeInLockStep.rttMs.median, ' ms')} / ${f(o.probeInLockStep.rttMs.p90, ' ms')} (${o.probeInLockStep.received}/${o.probeInLockStep.sent} answered) |`);
  if (o.probeAfter) lines.push(`| the same guest without COLO (after the failover), median / p90 | ${f(o.probeAfter.rttMs.median, ' ms')} / ${f(o.probeAfter.rttMs.p90, ' ms')} (${o.probeAfter.received}/${o.probeAfter.sent}) |`);
  if (o.iperfInLockStep) lines.push(`| iperf3 TCP into the guest through colo-compare | ${o.iperfInLockStep.mbps} Mbit/s (${f(o.iperfInLockStep.retransmits)} retransmits) |`);
  if (o.iperfWithoutColo) lines.push(`| the same without COLO (after the failover) | ${o.iperfWithoutColo.mbps} Mbit/s (${f(o.iperfWithoutColo.retransmits)} retransmits) |`);
  lines.push('', '## Failover', '', '| figure | value |', '|---|---|');
  if (o.failover) {
    lines.push(`| the secondary's guest paused around the failover (its last STOP -> the RESUME on x-colo-lost-heartbeat, QEMU's events) | ${f(o.failover.pausedMs, ' ms')} |`);
    if (o.failover.status) lines.push(`| query-colo-status after | \`${JSON.stringify(o.failover.status)}\` |`);
  }
  lines.push(
    `| client silence (last answer from the primary -> first from the secondary) | ${f(o.clientSilenceMs, ' ms')} (${f(o.probesLost)} probes lost) |`,
    `| kill -> service back | ${f(o.serviceBackAfterKillMs, ' ms')} |`,
    `| heartbeat: primary's last -> secondary's first after failover | ${o.heartbeat?.primaryLast ? `seq ${o.heartbeat.primaryLast.seq}` : 'n/a'} -> ${o.heartbeat?.secondaryFirst ? `seq ${o.heartbeat.secondaryFirst.seq}${o.heartbeat.primaryLast && o.heartbeat.secondaryFirst.bootId === o.heartbeat.primaryLast.bootId ? ' (same boot)' : ''}` : 'n/a'} |`,
    `| guest before / after | ${o.guestBefore ? `boot ${o.guestBefore.bootId} seq ${o.guestBefore.seq}` : 'n/a'} / ${o.guestAfter ? `boot ${o.guestAfter.bootId} seq ${o.guestAfter.seq}` : 'n/a'} |`,
    `| disk records checked on the secondary | ${o.disk ? `${o.disk.records} records, ${o.disk.bad} bad, ${o.disk.gaps} gaps` : 'n/a'} |`,
    '',
    '## Commands sent',
    '',
    '| side | command | ms | why |',
    '|---|---|---|---|',
    ...r.steps.map((s) => `| ${s.side} | \`${s.command.replaceAll('|', '\\|')}\` | ${s.ms}${s.error ? ` (refused: ${s.error})` : ''} | ${s.why} |`),
    '',
    'Checkpoints, pauses and miscompares are read from QEMU\'s COLO trace points (primary.colo.trace, secondary.colo.trace); the client figures from the UDP probe (probe.csv); the failover pause from the secondary\'s STOP and RESUME events.',
    '',
  );
  return lines.join('\n');
}
