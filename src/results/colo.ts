// colo.json, schema miglab.colo/1: one `miglab colo` run (src/colo/run.ts): what was asked, the
// monitor commands sent, and what was measured in lock-step and at the failover. The run's
// report.md and a series' summary read only this.
import { z } from 'zod';
import type { ResultContract } from './contract.js';
import { ExplainedCommandSchema } from './run.js';
import { arr, bytes, count, epochMs, kibps, mbps, mib, ms, ratio, seconds, text } from './fields.js';

export const COLO_SCHEMA = 'miglab.colo/1';

const SpreadSchema = (what: string, unit: (d: string) => z.ZodNumber) =>
  z
    .object({
      count: count('How many'),
      median: unit('Median').optional(),
      mean: unit('Mean').optional(),
      p90: unit('90th percentile').optional(),
      max: unit('Largest').optional(),
    })
    .describe(what);

const ProbeWindowSchema = (what: string) =>
  z
    .object({
      sent: count('Probes sent in the window'),
      received: count('Answers'),
      rttMs: SpreadSchema('Round trips', ms),
    })
    .describe(what);

const IperfSchema = (what: string) =>
  z
    .object({
      mbps: mbps('What arrived in the guest'),
      retransmits: count("TCP's retransmits").optional(),
      seconds: seconds('How long iperf3 ran'),
    })
    .describe(what);

const StreamSchema = (what: string) =>
  z
    .object({
      bytesToSecondary: bytes('Bytes the primary sent that the secondary acknowledged'),
      bytesFromSecondary: bytes('Bytes the primary received'),
      mbpsToSecondary: mbps('The first over the window'),
    })
    .optional()
    .describe(what);

const GuestMarkSchema = z.object({ bootId: text("The guest's boot id"), seq: count('Its heartbeat sequence number') });

export const ColoRecordSchema = z
  .object({
    schema: z.literal(COLO_SCHEMA).describe("Version of this file's format"),
    kind: z.literal('colo').describe('A COLO run'),
    runId: text('`<UTC date>-<time>-colo-<suffix>`: the run folder\'s name'),
    verdict: z.enum(['failed-over', 'failed', 'interrupted']).describe('failed-over: the secondary carried the guest on (same boot, disk records intact); failed: `failure` says why'),
    failure: text('Why the run failed or was interrupted, in one line').optional(),
    startedAt: text('ISO 8601, UTC'),
    inputs: z
      .object({
        memoryMiB: mib("The guest's RAM"),
        checkpointMs: ms('x-checkpoint-delay: the longest time between two checkpoints'),
        lockStepS: seconds('Time in lock-step before the planned failure'),
        diskRateKiBps: kibps('The guest\'s disk workload (0: none)'),
        probeIntervalMs: ms("The client's UDP probe interval"),
        iperfS: seconds('iperf3 into the guest at the end of lock-step and again after the failover (0: none)'),
        failure: z.enum(['kill', 'link']).describe("How the primary is lost: its QEMU killed (SIGKILL), or its host's link cut"),
        qemu: z.object({ choice: text('As --qemu named it'), version: text('major.minor.micro'), origin: text('Where the build came from') }).describe('The QEMU build of both sides'),
        capabilities: z.object({ primary: arr(text('A capability')), secondary: arr(text('A capability')) }).optional().describe('The migration capabilities set on each side (return-path only where QEMU required it with x-colo)'),
        commands: z.object({ primary: ExplainedCommandSchema.optional(), secondary: ExplainedCommandSchema.optional() }).describe("Both QEMUs' command lines, each argument explained"),
      })
      .describe('What was asked, and what ran'),
    steps: arr(
      z.object({
        side: z.enum(['primary', 'secondary']).describe('Which QEMU'),
        command: text('The QMP command and its arguments (HMP through human-monitor-command)'),
        why: text('Why it is sent'),
        atMs: epochMs('When it was sent'),
        ms: ms('How long QEMU took to answer'),
        error: text("QEMU's refusal, word for word").optional(),
      }),
    ).describe('Every monitor command of the run, in order'),
    outputs: z
      .object({
        lockStepAfterMs: ms('From migrate to query-migrate saying "colo": the first full copy').optional(),
        checkpoints: z
          .object({
            count: count('Checkpoints the primary asked for in lock-step (its COLO trace)'),
            lockStepMs: ms('From checkpoint-ready to the loss of the primary (or the run\'s failure)'),
            intervalMs: SpreadSchema('Time between checkpoints', ms),
            pauseMs: SpreadSchema("How long each paused the primary's guest ('run' => 'stop' to 'stop' => 'run')", ms),
            pausedShare: ratio("Share of the lock-step's wall time the primary's guest was paused").optional(),
            dirtyPages: SpreadSchema("What the secondary's colo_flush_ram_cache_begin says per checkpoint; with QEMU 11.1.3 about 14,700 whatever the guest does, so not a checkpoint's size", count),
            miscompares: count('Packets colo-compare found different ("packet different")'),
            forced: count('Checkpoints asked for within 20 ms after a miscompare'),
          })
          .optional()
          .describe("Lock-step, from QEMU's COLO trace (query-migrate says only \"colo\")"),
        streams: z
          .object({
            fromMs: epochMs('The window began: lock-step reached'),
            toMs: epochMs('It ended: the lock-step held, before iperf3 and the failure'),
            checkpoints: count("Checkpoints the primary's trace counted in the window").optional(),
            checkpointMeanBytes: bytes("The migration stream's bytes in the window over those checkpoints: a checkpoint's mean size on the wire (RAM and device state)").optional(),
            migration: StreamSchema('The migration connection: checkpoints to the secondary, its replies back'),
            nbd: StreamSchema("Block replication: the primary's writes into the secondary's NBD export"),
            mirror: StreamSchema("filter-mirror: the client's packets, copied to the secondary"),
            compare: StreamSchema("The secondary's guest's output, sent to the primary's colo-compare (bytesFromSecondary)"),
          })
          .optional()
          .describe("What COLO's connections carried in lock-step, from the kernel's TCP counters on the primary's host (ss -ti: bytes_acked, bytes_received); QEMU gives no checkpoint size"),
        probeInLockStep: ProbeWindowSchema('The client\'s probe through colo-compare, in lock-step (iperf3\'s time left out)').optional(),
        probeAfter: ProbeWindowSchema('The same guest without COLO, on the secondary after the failover').optional(),
        iperfInLockStep: IperfSchema('iperf3 TCP into the guest through colo-compare').optional(),
        iperfWithoutColo: IperfSchema('The same without COLO, after the failover').optional(),
        primaryLostAtMs: epochMs("When the primary was lost: its QEMU killed, or its host's link cut").optional(),
        failedAtMs: epochMs('When the run failed').optional(),
        primaryLostUnplanned: text('The primary was lost before the planned failure, this way; the failover followed at once').optional(),
        coloExits: arr(
          z.object({ side: z.enum(['primary', 'secondary']).describe('Which QEMU'), atMs: epochMs("QEMU's event time"), mode: text('The COLO mode it left'), reason: text("QEMU's reason, request or error. A secondary's is error when the primary's stream broke first (a kill), and can be error after x-colo-lost-heartbeat too: QEMU shuts the stream before it marks the failover complete. query-colo-status after the failover says request reliably") }),
        )
          .optional()
          .describe('COLO_EXIT events of both QEMUs'),
        failover: z
          .object({
            commandAtMs: epochMs('x-colo-lost-heartbeat sent'),
            stopAtMs: epochMs("The secondary's last STOP before it resumed").optional(),
            resumeAtMs: epochMs('Its RESUME after the failover command').optional(),
            status: z.record(z.string(), z.unknown()).optional().describe('query-colo-status afterwards'),
            pausedMs: ms('STOP to RESUME').optional(),
          })
          .optional()
          .describe('The failover on the secondary, from its events'),
        clientSilenceMs: ms('The client\'s silence: its last answer before the takeover to the first after it').optional(),
        probesLost: count('Probes unanswered in that silence').optional(),
        serviceBackAfterKillMs: ms('From the loss of the primary to the first answer from the secondary').optional(),
        guestBefore: GuestMarkSchema.optional().describe("The agent's `info` before the failure"),
        guestAfter: GuestMarkSchema.optional().describe('The same after the failover, from the secondary'),
        sameBoot: z.boolean().optional().describe('The same boot, its heartbeat not gone back'),
        heartbeat: z
          .object({ primaryLast: GuestMarkSchema.optional().describe("The primary's last heartbeat before the loss"), secondaryFirst: GuestMarkSchema.optional().describe("The secondary's first after the failover") })
          .optional()
          .describe('The serial heartbeat across the failover'),
        disk: z
          .object({ records: count('Records on the disk'), bad: count('Damaged'), gaps: count('Missing in the sequence'), lastSeq: count('The last record\'s sequence number') })
          .optional()
          .describe("The disk workload's records, checked on the secondary after the failover"),
      })
      .describe('What was measured'),
    phasesMs: z.record(z.string(), ms('Duration')).describe('How long each step took (disks, boot, entering COLO, lock-step, failover, ...)'),
  })
  .describe('colo.json: one COLO run');

export type ColoRecordFile = z.output<typeof ColoRecordSchema>;

export const COLO_CONTRACT: ResultContract<typeof ColoRecordSchema> = {
  file: 'colo.json',
  current: COLO_SCHEMA,
  schema: ColoRecordSchema,
};
