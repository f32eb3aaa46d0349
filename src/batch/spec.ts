// A batch: plain validated data saying which guests to migrate, how many at a time (the steps of
// N), in which mode, under which deadlines, and when the host counts as stalled. runBatch (run.ts)
// executes it; the batch report records it verbatim.
import { z } from 'zod';
import { UsageError } from '../errors.js';
import { LabSpecSchema, ShapingSchema } from '../lab/index.js';
import { parseInput } from '../util/validate.js';
import { DEFAULT_MIGRATION_PORT, MigrationParametersSchema, type ScenarioInput } from '../migrate/scenario.js';

/** Host memory one QEMU needs beyond the guest's RAM (code, TCG translation cache, buffers). */
export const QEMU_OVERHEAD_MIB = 150;

export const StallThresholdsSchema = z
  .object({
    /** PSI cpu `some` avg10 (percent of time some task waited for a CPU). */
    psiCpuSomeAvg10: z.number().min(0).max(100).default(80),
    /** PSI memory `some` avg10. */
    psiMemorySomeAvg10: z.number().min(0).max(100).default(10),
    /** Run queue: load1 divided by the number of CPUs. */
    loadPerCpu: z.number().positive().default(4),
    /** Swap in use may grow by at most this much over the batch before it counts as a stall. */
    swapGrowthMiB: z.number().min(0).default(64),
    /** A host symptom must hold for this many consecutive samples (one spike is not a stall). */
    sustainSamples: z.number().int().min(1).default(3),
  })
  .strict()
  .readonly();
export type StallThresholds = z.infer<typeof StallThresholdsSchema>;

export const BatchGuestSchema = z
  .object({
    memoryMiB: z.number().int().min(64).max(65536).default(256),
    /**
     * What the guest does while it migrates. Opaque here: passed as `scenario.workload` when the
     * Scenario schema has that field. Absent means idle.
     */
    workload: z.unknown().optional(),
    /** Dirty rate the scheduler assumes for this guest, MiB/s; default: the workload's rateMiBps, else 0. */
    dirtyRateMiBps: z.number().min(0).optional(),
    accel: z.enum(['auto', 'kvm', 'tcg']).default('tcg'),
    diskSizeMiB: z.number().int().min(1).default(64),
    /**
     * Faults to inject into this guest's migration (`kill-dst@2s`...; the scenario validates them):
     * with a list of guests, only the guests whose entry names them.
     */
    faults: z.array(z.string()).optional(),
  })
  .strict()
  .readonly();
export type BatchGuest = z.infer<typeof BatchGuestSchema>;

const StepsSchema = z.union([
  z.array(z.number().int().min(1).max(64)).min(1),
  z
    .object({
      start: z.number().int().min(1).max(64),
      factor: z.number().gt(1).optional(),
      add: z.number().int().min(1).optional(),
      max: z.number().int().min(1).max(64),
    })
    .strict()
    .refine((g) => (g.factor === undefined) !== (g.add === undefined), { message: 'a growth rule needs exactly one of factor or add' })
    .refine((g) => g.max >= g.start, { message: 'max must be at least start' }),
]);

export const BATCH_MODES = ['sequential', 'parallel', 'scheduled'] as const;

export const BatchSpecSchema = z
  .object({
    /**
     * The guests' shape: one for all, or a list that guest i takes entry i mod length of (mixed
     * batches, which the scheduler orders).
     */
    guests: z.union([BatchGuestSchema, z.array(BatchGuestSchema).min(1)]).default(BatchGuestSchema.parse({})),
    mode: z.union([z.enum(BATCH_MODES), z.object({ waves: z.number().int().min(1) }).strict()]).default('parallel'),
    /** With mode 'scheduled': run naive parallel at the same N first, for the side-by-side comparison. */
    compare: z.boolean().default(false),
    steps: StepsSchema.default([1, 2]),
    /** Per-migration deadline: a migration not converged by then is cancelled (did-not-converge). */
    timeoutMs: z.number().int().min(1000).default(60000),
    /** The whole batch: when it passes, whatever runs is aborted and the batch stops. */
    deadlineMs: z.number().int().min(1000).default(20 * 60000),
    stall: StallThresholdsSchema.default(StallThresholdsSchema.parse({})),
    /** Host memory never to hand to guests: a step that would dip into it is refused. */
    memoryReserveMiB: z.number().int().min(0).default(1024),
    sampleIntervalMs: z.number().int().min(100).max(10000).default(500),
    /** Extra migration parameters for every guest (the scheduler may override max-bandwidth). */
    parameters: MigrationParametersSchema.optional(),
    lab: LabSpecSchema.optional(),
    shaping: ShapingSchema.optional(),
  })
  .strict()
  .readonly();

export type BatchSpec = z.infer<typeof BatchSpecSchema>;
export type BatchSpecInput = z.input<typeof BatchSpecSchema>;
export type BatchMode = BatchSpec['mode'];

export function parseBatchSpec(input: BatchSpecInput): BatchSpec {
  const spec = parseInput(BatchSpecSchema, input, 'batch');
  if (spec.compare && spec.mode !== 'scheduled') throw new UsageError('compare needs mode scheduled', 'it runs naive parallel next to the scheduler');
  return spec;
}

/** The values of N a batch goes through, in order. */
export function expandSteps(steps: BatchSpec['steps']): number[] {
  if (Array.isArray(steps)) return [...steps];
  const out: number[] = [];
  for (let n = steps.start; n <= steps.max; ) {
    out.push(n);
    const next = steps.factor !== undefined ? Math.ceil(n * steps.factor) : n + steps.add!;
    n = next > n ? next : n + 1;
  }
  return out;
}

export function modeName(mode: BatchMode): string {
  return typeof mode === 'string' ? mode : `waves-${mode.waves}`;
}

/** How many guest pairs are alive at once in a step of N under `mode` (the memory guard's N). */
export function peakPairs(mode: BatchMode, n: number, scheduledLimit?: number): number {
  if (mode === 'sequential') return 1;
  if (typeof mode === 'object') return Math.min(mode.waves, n);
  if (mode === 'scheduled') return Math.min(scheduledLimit ?? n, n);
  return n;
}

/** The shape of guest `index` (guests cycle through the spec's list). */
export function guestShape(spec: BatchSpec, index: number): BatchGuest {
  const list = Array.isArray(spec.guests) ? spec.guests : [spec.guests as BatchGuest];
  return list[index % list.length]!;
}

/** The largest guest memory of the batch (what the memory guard plans for). */
export function maxGuestMemoryMiB(spec: BatchSpec): number {
  const list = Array.isArray(spec.guests) ? spec.guests : [spec.guests as BatchGuest];
  return Math.max(...list.map((g) => g.memoryMiB));
}

export interface ScenarioOverrides {
  readonly maxBandwidthMiBps?: number;
  readonly timeoutMs?: number;
  readonly autoConverge?: boolean;
}

/** The scenario of guest `index` in a batch: its own migration port, its shape, the batch's deadline. */
export function guestScenario(spec: BatchSpec, index: number, overrides: ScenarioOverrides = {}): ScenarioInput {
  const g = guestShape(spec, index);
  const parameters = { ...(spec.parameters ?? {}) };
  if (overrides.maxBandwidthMiBps !== undefined) parameters.maxBandwidthMiBps = overrides.maxBandwidthMiBps;
  const scenario: Record<string, unknown> = {
    guest: { memoryMiB: g.memoryMiB, accel: g.accel, diskSizeMiB: g.diskSizeMiB },
    monitor: 'qmp',
    // Guest i's destination listens on its own port.
    port: DEFAULT_MIGRATION_PORT + index,
    parameters,
    capabilities: overrides.autoConverge ? { 'auto-converge': true } : {},
    timeoutMs: overrides.timeoutMs ?? spec.timeoutMs,
  };
  if (g.workload !== undefined) scenario.workload = g.workload;
  if (g.faults !== undefined) scenario.faults = g.faults;
  return scenario as ScenarioInput;
}

/** The dirty rate the scheduler assumes for a guest: its own figure, else its workload's rate, else 0. */
export function assumedDirtyRateMiBps(g: BatchGuest): number {
  if (g.dirtyRateMiBps !== undefined) return g.dirtyRateMiBps;
  const w = g.workload as { rateMiBps?: unknown } | undefined;
  return typeof w?.rateMiBps === 'number' ? w.rateMiBps : 0;
}
