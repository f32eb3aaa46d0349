// Section 5 of the homework report: its closing questions, E (what live migration is and why one
// needs it) and F (what fault tolerance is, and how COLO relates to live migration), answered in
// words built only from this run's figures: the migration of section 3 and the COLO run of
// section 5. A figure the run did not give is said to be missing, never filled in.
import { fmtKiB } from '../report/markdown.js';
import type { FaultTolerance, HomeworkResults } from '../results/homework.js';

const ms = (x: number | undefined) => (x === undefined ? 'n/a' : `${Math.round(x)} ms`);
const kib = (b: number | undefined) => (b === undefined ? 'n/a' : fmtKiB(b, 0));
const mib = (b: number | undefined) => (b === undefined ? 'n/a' : `${(b / 1048576).toFixed(0)} MiB`);

/** Question E, from section 3's migration. */
export function liveMigrationAnswer(r: Pick<HomeworkResults, 'during'>): string[] {
  const rep = r.during.report;
  const o = rep.outputs;
  const mem = rep.inputs.scenario?.guest?.memoryMiB;
  return [
    `**What it did in this run.** In section 3 the guest${mem ? ` (${mem} MiB)` : ''} moved from host src to host dst while it ran and served iperf3: QEMU sent ${mib(o.transferredBytes)} in ${o.dirtySyncCount ?? 'n/a'} pre-copy passes over ${ms(o.totalTimeMs)}, and stopped the guest only for the switchover, ${ms(o.downtimeMs)} by QEMU's count${o.clientDowntimeMs !== undefined ? ` (${ms(o.clientDowntimeMs)} of silence as the client's probe heard it)` : ''}. Its disk did not move: both hosts opened the same qcow2 over NFS.`,
    "**Why one needs it.** A host can be emptied without stopping its guests: for maintenance (a kernel or QEMU upgrade), to balance load, to save power, or to leave a host that shows signs of failing. The move is planned: it needs the source host alive until the switchover, and a host that dies during it takes the guest with it.",
  ];
}

/** Question F, from section 5's COLO run. */
export function faultToleranceAnswer(ft: FaultTolerance | undefined, r: Pick<HomeworkResults, 'during'>): string[] {
  const intro =
    '**What fault tolerance is, and why it is needed.** A guest that survives the unplanned loss of its host (a crash, a power cut, a lost link) with no work lost and clients served on: live migration cannot do this, because a dead host can no longer send anything. COLO (COarse-grained LOck-stepping) keeps a second copy of the guest, the secondary, running on another host, in step with the primary, so that it can take over at once.';
  if (!ft) return [intro, 'This homework file predates section 5: it has no COLO run.'];
  if (!ft.ran) return [intro, `COLO was not run here: ${ft.why ?? 'no reason recorded'}.`];
  const downtime = r.during.report.outputs.downtimeMs;
  const lines = [
    intro,
    `**How COLO reuses live migration, as this run did it.** It starts as a live migration over the same channel: the first full copy of the guest took ${ms(ft.firstCopyMs)}. Then, instead of switching over, both guests run, and every ${ft.checkpointMs} ms at the latest the primary pauses its guest and sends what changed since the last checkpoint (dirty pages and device state, the migration stream's own format) while block replication mirrors every disk write to the secondary. colo-compare holds each packet the primary's guest sends until the secondary's guest has sent the same; a packet that differs forces a checkpoint at once.`,
    `**What it cost here (TCG, ${ft.qemuVersion ?? 'n/a'}).** ${ft.checkpoints ?? 'n/a'} checkpoints in ${ft.lockStepMs === undefined ? 'n/a' : (ft.lockStepMs / 1000).toFixed(1)} s of lock-step, ${ft.forcedCheckpoints ?? 'n/a'} of them forced by ${ft.miscompares ?? 'n/a'} miscompares (the guest agent's answers carry its own clock, so the two guests never answer alike). Each checkpoint paused the primary's guest ${ms(ft.pauseMedianMs)} (median; ${ms(ft.pauseP90Ms)} at the 90th percentile), ${ft.pausedShare === undefined ? 'n/a' : `${(ft.pausedShare * 100).toFixed(0)} %`} of the time, and carried ${kib(ft.checkpointMeanBytes)} on average over the migration connection (${ft.checkpointStreamMbps === undefined ? 'n/a' : `${ft.checkpointStreamMbps} Mbit/s`} of them in lock-step before iperf3; the kernel's TCP counters, QEMU giving no size). A client's request took ${ms(ft.rttLockStepMs)} through the comparator, against ${ms(ft.rttWithoutColoMs)} for the same guest without COLO${ft.iperfLockStepMbps !== undefined && ft.iperfWithoutColoMbps !== undefined ? `; iperf3 pushed ${ft.iperfLockStepMbps} Mbit/s into it, against ${ft.iperfWithoutColoMbps} Mbit/s without COLO` : ''}.`,
    ft.verdict === 'failed-over'
      ? `**What it bought.** The primary's QEMU was killed (SIGKILL). The secondary was told to fail over (x-colo-lost-heartbeat) and ran on from the last checkpoint: its guest was paused ${ms(ft.failoverPauseMs)} by QEMU's events, the client was silent ${ms(ft.clientSilenceMs)} and answered ${ms(ft.serviceBackAfterKillMs)} after the kill, the guest was ${ft.sameBoot ? 'the same boot' : 'NOT the same boot'}, and its disk held ${ft.diskRecords ?? 'n/a'} records with ${ft.diskBad ?? 'n/a'} damaged and ${ft.diskGaps ?? 'n/a'} missing.`
      : `**The failover did not succeed:** ${ft.why ?? 'no reason recorded'}.`,
    `**Where they differ.** Live migration is planned and one-shot: it moves the guest once, paying ${ms(downtime)} of downtime in this run, and needs the source alive to the end. COLO is continuous: it pays at every checkpoint, all the time (here ${ms(ft.pauseMedianMs)} per checkpoint and a slower network), and in return the guest survives a host lost without warning.`,
  ];
  return lines;
}

/** One figure of section 5's table, as the report shows it. */
export interface ColoFigureRow {
  readonly figure: string;
  readonly withColo: string;
  readonly withoutColo: string;
}

/** Section 5's table: COLO's figures beside the same guest's without it, where the run has both. */
export function faultToleranceRows(ft: FaultTolerance): ColoFigureRow[] {
  const n = (x: number | undefined, unit: string) => (x === undefined ? 'n/a' : `${x} ${unit}`);
  return [
    { figure: 'first full copy (migrate -> lock-step)', withColo: ms(ft.firstCopyMs), withoutColo: '–' },
    { figure: 'checkpoints (forced by a miscompare)', withColo: ft.checkpoints === undefined ? 'n/a' : `${ft.checkpoints} (${ft.forcedCheckpoints ?? 'n/a'})`, withoutColo: '–' },
    { figure: "guest paused per checkpoint, median / 90th percentile", withColo: `${ms(ft.pauseMedianMs)} / ${ms(ft.pauseP90Ms)}`, withoutColo: '–' },
    { figure: 'checkpoint size, mean (migration connection, kernel counters)', withColo: kib(ft.checkpointMeanBytes), withoutColo: '–' },
    { figure: 'share of the time paused', withColo: ft.pausedShare === undefined ? 'n/a' : `${(ft.pausedShare * 100).toFixed(0)} %`, withoutColo: '–' },
    { figure: "client's round trip, median", withColo: n(ft.rttLockStepMs, 'ms'), withoutColo: n(ft.rttWithoutColoMs, 'ms') },
    { figure: 'iperf3 TCP into the guest', withColo: n(ft.iperfLockStepMbps, 'Mbit/s'), withoutColo: n(ft.iperfWithoutColoMbps, 'Mbit/s') },
    { figure: 'failover: client silent / answered after the loss', withColo: `${ms(ft.clientSilenceMs)} / ${ms(ft.serviceBackAfterKillMs)}`, withoutColo: '–' },
  ];
}
