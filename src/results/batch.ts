// batch.json, schema miglab.batch/1: a batch's every migration attempt grouped into steps of N,
// the host samples on the same (epoch ms) time axis, why it stopped, and the diagnosis of each
// step. The batch report, its CSVs and plots read only this; each attempt's own figures are in
// its run folder's run.json.
import { z } from 'zod';
import { HOST_SYMPTOMS, RUN_SYMPTOMS } from '../batch/stall.js';
import { BatchSpecSchema } from '../batch/spec.js';
import type { ResultContract } from './contract.js';
import { arr, bitsPerS, bytes, count, epochMs, kib, mbps, measured, mib, mibps, ms, pct, ratio, seconds, text, us } from './fields.js';

export const BATCH_SCHEMA = 'miglab.batch/1';

export const STALL_SYMPTOMS = [...HOST_SYMPTOMS, ...RUN_SYMPTOMS, 'batch-deadline'] as const;
/** naive-parallel: the comparison run made next to a scheduled one at the same N. */
export const STEP_VARIANTS = ['naive-parallel', 'as-specified'] as const;
export const RESOURCES = ['cpu', 'network', 'memory', 'none'] as const;
export const ATTEMPT_OUTCOMES = ['completed', ...RUN_SYMPTOMS, 'aborted', 'error'] as const;

export const StallSchema = z
  .object({
    symptom: z.enum(STALL_SYMPTOMS).describe('What showed the stall: a host symptom (PSI, memory, swap, run queue), a run symptom, or the batch deadline'),
    atMs: epochMs('When the symptom began'),
    confirmedAtMs: epochMs('When it was confirmed (held for sustainSamples, or the run ended)'),
    detail: text('In words'),
    evidence: z.record(z.string(), z.union([z.number(), z.string()])).describe('The sample values behind the verdict, by name'),
    guestIndex: count('The guest whose run showed it').optional(),
  })
  .describe('Why a step counts as stalled');

const EventSchema = z.object({
  atMs: epochMs('When'),
  guestIndex: count('Guest'),
  event: z.enum(['migrate-sent', 'pass', 'migration-end', 'guest-up']).describe('What happened'),
  detail: text('Pass number or final status').optional(),
});

export const AttemptSchema = z.object({
  guestIndex: count('Guest (g0, g1... in the report)'),
  attempt: count("1 for the first try, 2 for the scheduler's retry"),
  startedAtMs: epochMs('Attempt start'),
  endedAtMs: epochMs('Attempt end'),
  outcome: z.enum(ATTEMPT_OUTCOMES).describe('completed, the run symptom it showed, aborted (the batch stopped it) or error'),
  failure: text('Why it failed').optional(),
  memoryMiB: mib('Guest RAM'),
  maxBandwidthMiBps: mibps("QEMU's max-bandwidth for this migration").optional(),
  autoConverge: z.boolean().optional().describe('auto-converge enabled'),
  timeoutMs: ms('Migration deadline'),
  bootToHeartbeatMs: ms('Boot to the guest agent\'s heartbeat').optional(),
  migrationMs: ms('The engine\'s migration phase').optional(),
  totalTimeMs: ms("QEMU's total time").optional(),
  downtimeMs: ms("QEMU's downtime").optional(),
  transferredMiB: mib('RAM sent').optional(),
  migrateSentAtMs: epochMs('When the migrate command was sent').optional(),
  dir: text('Its run folder').optional(),
  events: arr(EventSchema).describe('Its migration events on the batch\'s time axis'),
});

const PlanSchema = z
  .object({
    concurrency: count('Migrations on the link at once'),
    inFlight: count('Guests booting or migrating at once'),
    readyAhead: z
      .boolean()
      .optional()
      .describe('The next guest waits for its turn ready (workload running; its probe starts at its turn), not only booted'),
    overlapsChecks: z
      .boolean()
      .optional()
      .describe("A guest's place in flight is given to the next guest once its migration ends, its checks and cleanup going on beside (memory holds those pairs too)"),
    limitedBy: z.enum(['cpu', 'network', 'memory', 'saturation', 'guests']).describe('What set the concurrency'),
    limits: z
      .object({ cpu: count('Allowed by CPU'), network: count('Allowed by the link'), memory: count('Allowed by memory'), saturation: count('Allowed by an earlier saturation') })
      .describe('Concurrency each resource allows'),
    order: arr(count('Guest')).describe('Guest indices in the order they start'),
    maxBandwidthMiBps: mibps('Per-migration max-bandwidth (absent: QEMU\'s default on an unshaped link)').optional(),
    timeoutMs: ms('Per-migration deadline'),
    reasons: arr(z.string()).describe('The arithmetic behind each limit, in words'),
  })
  .describe("The scheduler's plan for the step");

/** src/batch/stall.ts HostBefore: the last host sample before a step, read for stall symptoms. */
const HostBeforeSchema = z
  .object({
    atMs: epochMs('When the sample was taken'),
    psiCpuSomeAvg10: pct('PSI cpu some avg10').optional(),
    psiMemorySomeAvg10: pct('PSI memory some avg10').optional(),
    psiIoSomeAvg10: pct('PSI io some avg10').optional(),
    cpuBusyPct: pct('CPU busy, mean of the CPUs').optional(),
    load1: count('1 min load'),
    memAvailableMiB: mib('MemAvailable'),
    batchQemus: count("This batch's QEMUs alive then (0: the pressure came from elsewhere)"),
    symptoms: arr(z.enum(HOST_SYMPTOMS)).describe('Stall symptoms the host already showed'),
    detail: text('The symptoms in words, with their values'),
  })
  .describe('The host just before the step: a step that began on a host already under pressure is not blamed for it');

export const StepSchema = z.object({
  n: count('Guests in the step (N)'),
  mode: text('sequential | parallel | waves-K | scheduled'),
  variant: z.enum(STEP_VARIANTS).describe('naive-parallel: the comparison run made next to a scheduled one at the same N'),
  startedAtMs: epochMs('Step start'),
  endedAtMs: epochMs('Step end'),
  attempts: arr(AttemptSchema).describe('Every migration attempt of the step'),
  guard: z.object({ needMiB: mib('Memory the step needs'), usableMiB: mib('Memory available minus the reserve'), message: text('The guard\'s verdict') }).describe('The memory guard before the step'),
  stall: StallSchema.optional(),
  plan: PlanSchema.optional(),
  settleMs: ms('How long the batch waited for host pressure to fall before the step').optional(),
  before: HostBeforeSchema.optional(),
});

const StopSchema = z
  .discriminatedUnion('kind', [
    z.object({ kind: z.literal('finished').describe('Why it stopped'), detail: text('In words') }),
    z.object({ kind: z.literal('stall').describe('Why it stopped'), n: count('At N'), stall: StallSchema, detail: text('In words') }),
    z.object({ kind: z.literal('refused').describe('Why it stopped'), n: count('At N'), detail: text('Why the memory guard refused the step') }),
    z.object({ kind: z.literal('deadline').describe('Why it stopped'), n: count('At N'), detail: text('In words') }),
    z.object({ kind: z.literal('aborted').describe('Why it stopped'), n: count('At N'), detail: text('In words') }),
  ])
  .describe('Why the batch stopped: finished, stall, refused (memory guard), deadline, aborted');

const PressureLineSchema = z.object({ avg10: pct('Share of time stalled, 10 s average'), avg60: pct('60 s average'), avg300: pct('300 s average'), totalUs: us('Total stall time since boot') });
const PressureSchema = z.object({ some: PressureLineSchema.describe('Some task waited'), full: PressureLineSchema.optional().describe('All tasks waited') });

const LinkCountersSchema = z.object({
  dev: text('Device'),
  operstate: text('up, down...'),
  rxBytes: bytes('Received'),
  txBytes: bytes('Sent'),
  rxPackets: count('Packets received'),
  txPackets: count('Packets sent'),
  rxDropped: count('Dropped on receive'),
  txDropped: count('Dropped on send'),
  rxErrors: count('Receive errors'),
  txErrors: count('Send errors'),
});

export const BatchSampleSchema = z
  .object({
    atMs: epochMs('When the host was read'),
    intervalMs: ms('Since the read rates are relative to'),
    cpus: arr(
      z.object({
        cpu: text('cpu (all) or cpuN'),
        busyPct: pct('Busy share of the interval').nullable(),
        iowaitPct: pct('I/O wait share').nullable(),
        stealPct: pct('Steal share').nullable(),
      }),
    ).describe('/proc/stat utilisation per CPU'),
    loadavg: z.object({ load1: count('1 min load'), load5: count('5 min load'), load15: count('15 min load'), runnable: count('Runnable tasks'), threads: count('Threads') }).describe('/proc/loadavg'),
    pressure: z.object({ cpu: PressureSchema.optional().describe('/proc/pressure/cpu'), memory: PressureSchema.optional().describe('/proc/pressure/memory'), io: PressureSchema.optional().describe('/proc/pressure/io') }).describe('PSI (absent where the kernel has none)'),
    memory: z.object({ memTotalKiB: kib('MemTotal'), memAvailableKiB: kib('MemAvailable'), swapTotalKiB: kib('SwapTotal'), swapFreeKiB: kib('SwapFree') }).describe('/proc/meminfo'),
    processes: arr(
      z.object({
        pid: count('Process id'),
        alive: z.boolean().describe('false once gone: its figures are then absent'),
        comm: text('Command name').optional(),
        state: text('Process state').optional(),
        threads: count('Threads').optional(),
        cpuTimeS: seconds('CPU time so far').optional(),
        cpuPct: pct('CPU since the previous sample, 100 = one CPU').optional(),
        vmRssKiB: kib('Resident memory').optional(),
        fdCount: count('Open files').optional(),
      }),
    ).describe('Each QEMU process'),
    links: arr(
      z.object({
        netns: text('Namespace (absent: the host\'s)').optional(),
        dev: text('Device'),
        role: z.enum(['src', 'dst']).optional().describe('On hosts from a hosts file, the host it is on: src sends the migration stream, dst receives it (absent: the embedded lab\'s switch)'),
        counters: LinkCountersSchema.optional().describe('The raw counters read'),
        rxBitsPerSecond: bitsPerS('Receive rate').optional(),
        txBitsPerSecond: bitsPerS('Send rate').optional(),
        error: text('Why the counters could not be read').optional(),
      }),
    ).describe('The migration links'),
    qemuLabels: z.record(z.string(), z.string()).describe('pid -> which QEMU it is (g3-source), from QEMU\'s -name'),
  })
  .describe('One host sample');

const DistributionSchema = (unit: string) =>
  z.object({ min: measured('Smallest', unit), median: measured('Median', unit), max: measured('Largest', unit), count: count('Values') });

export const StepDiagnosisSchema = z.object({
  n: count('N'),
  mode: text('Mode'),
  variant: z.enum(STEP_VARIANTS).describe('As in the step'),
  wallMs: ms('Step wall time'),
  attempted: count('Guests attempted'),
  migrated: count('Guests migrated'),
  migratedOnRetry: count("Migrated on the scheduler's retry"),
  failuresByKind: z.record(z.string(), count('Attempts')).describe('Failed attempts by outcome'),
  totalTimeMs: DistributionSchema('ms').optional().describe('Total time of the completed migrations'),
  downtimeMs: DistributionSchema('ms').optional().describe('Downtime of the completed migrations'),
  bootToHeartbeatMs: DistributionSchema('ms').optional().describe('Boot to heartbeat'),
  stall: StallSchema.optional(),
  saturation: z
    .object({
      resource: z.enum(RESOURCES).describe('The primary saturated resource'),
      saturated: arr(z.enum(RESOURCES)).describe('Every resource over its line in the window'),
      evidence: text('The sample values, quoted'),
      peak: z
        .object({
          cpuBusyPct: pct('CPU busy').optional(),
          psiCpuSomeAvg10: pct('PSI cpu some avg10').optional(),
          psiMemorySomeAvg10: pct('PSI memory some avg10').optional(),
          minMemAvailableMiB: mib('Lowest MemAvailable').optional(),
          linkMbps: mbps('Migration link').optional(),
          load1: count('1 min load').optional(),
        })
        .describe('Peaks in the window'),
    })
    .describe('Which resource ran out'),
  concurrency: count('Migrations at once').optional(),
  migratingMs: ms('From the first migrate sent to the last migration\'s end').optional(),
  transferredMiB: mib("RAM QEMU sent over the step's attempts").optional(),
  lowerBoundMs: ms("Every byte sent at the shaped link's rate, nothing else in the way (absent: unshaped)").optional(),
  vsLowerBound: ratio('migratingMs over lowerBoundMs (1: a perfectly used link)').optional(),
  before: HostBeforeSchema.optional(),
  stallPredatesStep: z.boolean().optional().describe("The step's stall is a symptom the host already showed before the step began (absent in batches recorded before miglab measured it)"),
});

export const BatchRecordSchema = z
  .object({
    schema: z.literal(BATCH_SCHEMA).describe("Version of this file's format"),
    batchId: text('`<UTC date>-<time>-<mode>-<suffix>`: the folder is batch-BATCHID'),
    startedAt: text('ISO 8601, UTC'),
    wallMs: ms('The whole batch'),
    spec: BatchSpecSchema.describe('The batch spec as validated (guests, mode, steps, deadlines, stall thresholds, memory reserve)'),
    host: z
      .object({
        where: text('The host sampled and judged: this machine (the embedded lab), or the source host of a hosts file (absent in batches recorded before --hosts)').optional(),
        cpus: count('Host CPUs'),
        memTotalMiB: mib('Host RAM'),
        linkBandwidthMbit: mbps('Shaped migration link (absent: unshaped)').optional(),
        kernel: text('Host kernel'),
      })
      .describe('The host'),
    steps: arr(StepSchema).describe('Every step, in order'),
    stop: StopSchema,
    samples: arr(BatchSampleSchema).describe('Every host sample'),
  })
  .describe('The batch record');

/** batch.json: the record plus the diagnosis of each step (derived from it when written). */
export const BatchFileSchema = BatchRecordSchema.extend({
  diagnoses: arr(StepDiagnosisSchema).describe('Each step diagnosed (what migrated, distributions, saturation, link use)'),
}).describe('batch.json: a batch and its diagnosis');

export type BatchRecord = z.output<typeof BatchRecordSchema>;
export type BatchFile = z.output<typeof BatchFileSchema>;
export type MigrationAttempt = z.output<typeof AttemptSchema>;
export type StepRecord = z.output<typeof StepSchema>;
export type StopReason = z.output<typeof StopSchema>;
export type BatchSample = z.output<typeof BatchSampleSchema>;
export type BatchEvent = MigrationAttempt['events'][number];
export type StepVariant = StepRecord['variant'];
// The batch's own types are these schemas' outputs (src/batch/* uses them), so what it computes
// is what batch.json holds and reads back: no interface beside a schema to drift from it.
export type Stall = z.output<typeof StallSchema>;
export type HostBefore = z.output<typeof HostBeforeSchema>;
export type SchedulePlan = z.output<typeof PlanSchema>;
export type StepDiagnosis = z.output<typeof StepDiagnosisSchema>;
export type Distribution = z.output<ReturnType<typeof DistributionSchema>>;
export type Saturation = StepDiagnosis['saturation'];
export type Resource = (typeof RESOURCES)[number];

export const BATCH_CONTRACT: ResultContract<typeof BatchFileSchema> = { file: 'batch.json', current: BATCH_SCHEMA, schema: BatchFileSchema };
