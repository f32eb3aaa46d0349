// homework.json, schema miglab.homework/1: every figure of `miglab homework` (KVM vs TCG, virtio
// vs emulated devices, perf and iperf during a migration, the commands explained). The report,
// its tables and plots read only this. Files from before the format had a version (no `schema`
// field) are read as miglab.homework/0, which has the same shape.
import { z } from 'zod';
import { DISK_INTERFACES, NIC_MODELS } from '../machine/spec.js';
import type { ResultContract } from './contract.js';
import { ExplainedCommandSchema, RunReportSchema } from './run.js';
import { arr, bytes, count, mbps, mib, mibps, ms, pct, perS, ratio, seconds, text } from './fields.js';

export const HOMEWORK_SCHEMA = 'miglab.homework/1';

const Counter = (d: string) =>
  z
    .object({ value: count('The count').nullable(), supported: z.boolean().describe('false where the host has no such counter (then value is null, never 0)') })
    .describe(d);

const PerfFiguresSchema = z
  .object({
    taskClockMs: ms('CPU time of the QEMU process (perf task-clock)').nullable(),
    cpusUtilized: ratio('task-clock over wall time: 1.0 is one CPU busy all the time').nullable(),
    contextSwitchesPerS: perS('Context switches per second').nullable(),
    pageFaults: count('Page faults').nullable(),
    cycles: Counter('CPU cycles (hardware counter)'),
    instructions: Counter('Instructions (hardware counter)'),
  })
  .describe('perf stat on the QEMU process during the benchmark');

export const AccelRowSchema = z.object({
  accel: z.enum(['kvm', 'tcg']).describe('Accelerator'),
  available: z.boolean().describe('Usable on this host (KVM: decided by a real boot probe)'),
  reason: text('Why (the probe\'s finding when KVM cannot be used)'),
  cpuOpsPerS: perS("The guest's CPU benchmark: xorshift64* steps per second").optional(),
  memMiBps: mibps("The guest's memory benchmark").optional(),
  perf: PerfFiguresSchema.optional(),
  bootMs: ms('Boot to the guest agent\'s heartbeat').optional(),
});

export const NicRowSchema = z.object({
  nic: z.enum(NIC_MODELS).describe('Guest NIC model'),
  disk: z.enum(DISK_INTERFACES).describe('Guest disk interface'),
  tcpToGuestMbps: mbps('iperf3 TCP, client -> guest (the guest NIC receives)'),
  tcpFromGuestMbps: mbps('iperf3 TCP, guest -> client (-R)'),
  tcpRetransmits: count('TCP retransmits').optional(),
  udpTargetMbps: mbps('iperf3 UDP rate asked for'),
  udpReceivedMbps: mbps('iperf3 UDP rate that arrived'),
  udpJitterMs: ms('UDP jitter').optional(),
  udpLostPct: pct('UDP loss').optional(),
  diskWriteMiBps: mibps("The guest's sequential disk write"),
  diskReadMiBps: mibps("The guest's sequential disk read"),
  diskDevice: text('The guest block device benchmarked'),
});

const DuringRowSchema = z.object({
  tS: seconds('Since the migrate command'),
  series: z.enum(['iperf', 'perf-src', 'perf-dst']).describe('Which series the row belongs to'),
  throughputMbps: mbps('iperf3 throughput to the guest').optional(),
  srcCpuPct: pct('Source QEMU CPU (100 = one CPU)').optional(),
  dstCpuPct: pct('Destination QEMU CPU (100 = one CPU)').optional(),
});

const MarkSchema = z.object({
  tS: seconds('Since the migrate command'),
  label: text('As drawn on the plots'),
  kind: z.enum(['pass', 'switchover', 'resume']).describe('A pre-copy pass, the switchover (STOP) or the resume on the destination'),
});

export const DuringMigrationSchema = z
  .object({
    report: RunReportSchema.describe("The migration's own run report (as in its run.json)"),
    runDir: text("The migration's run folder"),
    rows: arr(DuringRowSchema).describe('The shared timeline of iperf3 and perf samples'),
    marks: arr(MarkSchema).describe('Passes, switchover and resume on that timeline'),
    iperf: z
      .object({
        meanBeforeMbps: mbps('Mean before the migrate command').optional(),
        meanDuringMbps: mbps('Mean while migrating').optional(),
        meanAfterMbps: mbps('Mean after the switchover').optional(),
        minDuringMbps: mbps('Lowest interval while migrating').optional(),
        summaryMbps: mbps("iperf3's own total"),
      })
      .describe('iperf3 to the guest, around the migration'),
    cpu: z
      .object({
        srcMeanBeforePct: pct('Source QEMU CPU before the migration').optional(),
        srcMeanDuringPct: pct('Source QEMU CPU while migrating').optional(),
        dstMeanAfterPct: pct('Destination QEMU CPU after the switchover').optional(),
      })
      .describe('QEMU CPU (perf task-clock), 100 = one CPU'),
    unsupportedPerfEvents: arr(z.string()).describe('perf events this host cannot count (reported as such, never as 0)'),
  })
  .describe('Section 3: a migration with iperf3 and perf running');

export const FaultToleranceSchema = z
  .object({
    ran: z.boolean().describe('false: COLO could not be tried here (why says why)'),
    verdict: z.enum(['failed-over', 'failed', 'interrupted']).optional().describe('failed-over: the secondary carried the guest on after the primary was killed'),
    why: text("Why it did not run, or why it failed, in QEMU's or the check's words").optional(),
    qemuVersion: text('The QEMU build of both sides').optional(),
    checkpointMs: ms('x-checkpoint-delay: the longest time between two checkpoints').optional(),
    lockStepS: seconds('Time in lock-step before the primary was killed').optional(),
    firstCopyMs: ms('From migrate to query-migrate saying "colo": the first full copy').optional(),
    lockStepMs: ms('Measured: from the first copy done (checkpoint-ready) to the primary\'s kill').optional(),
    checkpoints: count('Checkpoints in lock-step (QEMU\'s COLO trace)').optional(),
    forcedCheckpoints: count('Checkpoints a miscompare forced before the period').optional(),
    miscompares: count("Packets colo-compare found different between the two guests' output").optional(),
    pauseMedianMs: ms("The primary's guest paused per checkpoint, median").optional(),
    pauseP90Ms: ms('The same, 90th percentile').optional(),
    pausedShare: ratio("Share of lock-step's wall time the primary's guest was paused").optional(),
    dirtyPagesMedian: count('Pages the secondary flushed per checkpoint, median').optional(),
    checkpointMeanBytes: bytes("A checkpoint's mean size on the wire: the migration connection's bytes in lock-step over its checkpoints (kernel TCP counters)").optional(),
    checkpointStreamMbps: mbps('What the migration connection carried to the secondary in lock-step, before iperf3').optional(),
    rttLockStepMs: ms('Client probe round trip through colo-compare, median').optional(),
    rttWithoutColoMs: ms('The same guest without COLO (on the secondary after the failover), median').optional(),
    iperfLockStepMbps: mbps('iperf3 TCP into the guest through colo-compare').optional(),
    iperfWithoutColoMbps: mbps('The same guest without COLO (after the failover)').optional(),
    clientSilenceMs: ms("The client's silence: last answer from the primary to the first from the secondary").optional(),
    serviceBackAfterKillMs: ms("From the primary's kill to the first answer from the secondary").optional(),
    failoverPauseMs: ms("The secondary's guest paused around the failover (QEMU's STOP and RESUME)").optional(),
    sameBoot: z.boolean().optional().describe('The guest after the failover is the one before it (boot id, heartbeat going on)'),
    diskRecords: count("Disk workload records checked on the secondary's disk after the failover").optional(),
    diskBad: count('Of those, damaged').optional(),
    diskGaps: count('Records missing in the sequence').optional(),
  })
  .describe('Section 5: fault tolerance with COLO (the primary killed, failover on the secondary); absent in files from before it');

export type FaultTolerance = z.output<typeof FaultToleranceSchema>;

export const HomeworkResultsSchema = z
  .object({
    schema: z.literal(HOMEWORK_SCHEMA).describe("Version of this file's format"),
    runId: text('`<UTC date>-<time>-homework-<suffix>`: the folder\'s name'),
    startedAt: text('ISO 8601, UTC'),
    wallMs: ms('The whole homework, up to writing the report'),
    sectionsMs: z.record(z.string(), ms('Duration')).describe('How long each section took'),
    environment: z
      .object({
        qemuVersion: text("QEMU's version"),
        kernel: text('Host kernel'),
        cpuModel: text('Host CPU'),
        cpus: count('Host CPUs'),
        memTotalMiB: mib('Host RAM'),
        imageHash: text("The guest image's hash"),
        guestKernel: text('Guest kernel version'),
        accelUsed: text('Accelerator used'),
        kvmUsable: z.boolean().optional().describe('KVM found usable by a real boot probe'),
        accelReason: text('Why that accelerator'),
      })
      .describe('Where it ran'),
    accel: arr(AccelRowSchema).describe('Section 1: KVM vs TCG, one row per accelerator'),
    devices: arr(NicRowSchema).describe('Section 2: virtio vs emulated devices, one row per NIC model'),
    during: DuringMigrationSchema,
    commands: arr(
      z.object({
        title: text('What the command does'),
        where: text('Where it runs: which host (namespace) or monitor'),
        command: ExplainedCommandSchema,
        perLine: z.boolean().optional().describe('Monitor commands: argv holds one command per element, each typed or pasted on its own line (absent: argv is one shell command)'),
        note: text('A paragraph shown before the command (what to do first)').optional(),
      }),
    ).describe(
      'Section 4: every command the run used, argument by argument',
    ),
    colo: FaultToleranceSchema.optional(),
    ganeshaConfig: text("The NFS server's configuration file as used (absent on hosts from a hosts file: their NFS server is the user's, not miglab's)").optional(),
  })
  .describe('homework.json: the homework\'s figures');

export type HomeworkResults = z.output<typeof HomeworkResultsSchema>;
export type AccelRow = z.output<typeof AccelRowSchema>;
export type PerfFigures = z.output<typeof PerfFiguresSchema>;
export type NicRow = z.output<typeof NicRowSchema>;
export type DuringMigration = z.output<typeof DuringMigrationSchema>;
export type DuringRow = DuringMigration['rows'][number];
export type Mark = DuringMigration['marks'][number];
export type CommandExplanation = HomeworkResults['commands'][number];

export const HOMEWORK_CONTRACT: ResultContract<typeof HomeworkResultsSchema> = {
  file: 'homework.json',
  current: HOMEWORK_SCHEMA,
  schema: HomeworkResultsSchema,
  unversioned: 'miglab.homework/0',
  // Version 0 is version 1 without the version field.
  migrate: { 'miglab.homework/0': (raw) => ({ ...raw, schema: HOMEWORK_SCHEMA }) },
};
