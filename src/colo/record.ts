// What a COLO run measured (colo.json) and its summary in words (report.md). Every figure here is
// read from QEMU (its trace, its events, its answers), the guest (heartbeat, agent, disk records)
// or the client's probe; one that could not be read is absent, never estimated.
import { max, mean, median, percentile } from '../stats/index.js';
import type { ColoRecordFile } from '../results/colo.js';
import { fmtKiB, fmtMbps } from '../report/markdown.js';
import type { PrimaryTrace, SecondaryTrace } from './trace.js';

/** A COLO run as colo.json holds it (its schema: src/results/colo.ts). */
export type ColoRecord = ColoRecordFile;
export type ColoOutputs = ColoRecord['outputs'];
export type CheckpointFigures = NonNullable<ColoOutputs['checkpoints']>;
export type ProbeWindow = NonNullable<ColoOutputs['probeInLockStep']>;
export type IperfFigures = NonNullable<ColoOutputs['iperfInLockStep']>;
export type Spread = CheckpointFigures['pauseMs'];

export function spread(xs: readonly number[]): Spread {
  const r = (x: number | undefined) => (x === undefined ? undefined : Math.round(x * 10) / 10);
  return { count: xs.length, median: r(median(xs)), mean: r(mean(xs)), p90: r(percentile(xs, 90)), max: r(max(xs)) };
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

const f = (x: number | undefined, unit = '') => (x === undefined ? 'n/a' : `${x}${unit}`);

/** The run in words: what happened, then the figures, then how each was measured. */
export function coloMarkdown(r: ColoRecord): string {
  const o = r.outputs;
  const c = o.checkpoints;
  const lines = [
    `# COLO run ${r.runId}`,
    '',
    r.verdict === 'failed-over'
      ? `The guest ran in lock-step on two QEMUs (${r.inputs.qemu.version}), the primary was ${r.inputs.failure === 'kill' ? "killed" : 'cut off'}, and the secondary carried the guest on${o.sameBoot ? ' (the same boot)' : ''}.`
      : `The run ${r.verdict === 'interrupted' ? 'was interrupted' : 'failed'}: ${r.failure ?? 'no reason recorded'}.`,
    '',
    `Guest ${r.inputs.memoryMiB} MiB, checkpoint every ${r.inputs.checkpointMs} ms at the latest, ${r.inputs.lockStepS} s in lock-step with a disk workload of ${r.inputs.diskRateKiBps} KiB/s and a UDP probe every ${r.inputs.probeIntervalMs} ms, then the primary to be ${r.inputs.failure === 'kill' ? 'killed (SIGKILL)' : "cut off the network (its host's link down)"}${o.primaryLostUnplanned ? `; it was lost before that: ${o.primaryLostUnplanned}` : ''}.`,
    '',
    `Each answer to the probe differs between the two guests (it carries the guest's clock), so colo-compare forces a checkpoint for each: with a probe every ${r.inputs.probeIntervalMs} ms, checkpoints come that often whatever the interval, which then matters only while the guest is quiet. The client figures are as fine as the probe's interval.`,
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
    );
  }
  const w = o.streams;
  if (w) {
    const secs = ((w.toMs - w.fromMs) / 1000).toFixed(1);
    if (w.checkpointMeanBytes !== undefined) lines.push(`| checkpoint size, mean (the migration connection's bytes in ${secs} s over the ${w.checkpoints} checkpoints in them) | ${fmtKiB(w.checkpointMeanBytes)} |`);
    // Small streams (the probe's packets) in kbit/s: 0.0 Mbit/s would say nothing.
    const rate = (x: { bytesToSecondary: number } | undefined) => {
      if (x === undefined) return 'n/a';
      const bitsPerS = (x.bytesToSecondary * 8) / ((w.toMs - w.fromMs) / 1000);
      return bitsPerS >= 1e6 ? fmtMbps(bitsPerS / 1e6) : `${(bitsPerS / 1000).toFixed(1)} kbit/s`;
    };
    lines.push(`| to the secondary in those ${secs} s: checkpoints / disk writes (NBD) / the client's packets (mirror) | ${rate(w.migration)} / ${rate(w.nbd)} / ${rate(w.mirror)} |`);
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
    `| client silence (last answer from the primary -> first from the secondary) | ${o.clientSilenceMs === undefined ? 'n/a' : `${o.clientSilenceMs} ms (${o.probesLost ?? 0} probes lost)`} |`,
    `| primary lost -> service back | ${f(o.serviceBackAfterKillMs, ' ms')} |`,
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
    'Checkpoints, pauses and miscompares are read from QEMU\'s COLO trace points (primary.colo.trace, secondary.colo.trace); what the connections carried from the kernel\'s TCP counters on the primary\'s host (ss -ti), QEMU giving no checkpoint size; the client figures from the UDP probe (probe.csv); the failover pause from the secondary\'s STOP and RESUME events.',
    '',
  );
  return lines.join('\n');
}
