// sweep.json, schema miglab.sweep/1: a sweep's spec, its expanded points and what happened to
// every repetition; what `miglab sweep` reads back to resume, and plot and compare to group runs.
// Each run's own figures are in its POINT/repK/run.json (src/results/run.ts).
import { z } from 'zod';
import { ShapingSchema } from '../lab/spec.js';
import { CAPABILITIES, MONITORS } from '../migrate/scenario.js';
import { DISK_INTERFACES, NIC_MODELS } from '../machine/spec.js';
import { GRID_DIMENSIONS, SweepSpecSchema, type PointScenarioInput } from '../sweep/spec.js';
import type { ResultContract } from './contract.js';
import { arr, count, mbps, mib, mibps, ms } from './fields.js';
import { VerdictSchema } from './run.js';

export const SWEEP_SCHEMA = 'miglab.sweep/1';


export const PointValuesSchema = z
  .object({
    memoryMiB: mib('Guest RAM').optional(),
    workload: z.union([z.string(), z.record(z.string(), z.unknown())]).optional().describe('The workload, compact (dirty:64M@32M/s) or as an object (the --workload forms)'),
    maxBandwidthMiBps: mibps("QEMU's max-bandwidth").optional(),
    downtimeLimitMs: ms("QEMU's downtime-limit").optional(),
    linkBandwidthMbit: mbps('tc rate limit of the migration uplinks (null: unshaped)').nullable().optional(),
    capabilities: arr(z.enum(CAPABILITIES)).optional().describe('Capabilities enabled at this point'),
    monitor: z.enum(MONITORS).optional().describe('Monitor that drives the migration'),
    faults: z.union([z.string(), arr(z.string())]).optional().describe('Faults injected (none, one, or a list fired in the same run)'),
    tls: z.boolean().optional().describe('The migration stream over TLS'),
    qemu: z.string().optional().describe('The QEMU build of both sides, or SOURCE->DESTINATION (system->10.0)'),
    machineType: z.string().optional().describe('The machine type asked for (auto, pc, or a versioned type)'),
    nicModel: z.enum(NIC_MODELS).optional().describe("The guest's NIC model"),
    diskInterface: z.enum(DISK_INTERFACES).optional().describe("The guest's disk interface"),
    switchover: z.string().optional().describe('The switchover policy'),
  })
  .describe('The grid values of one point (only the dimensions the grid names)');

const isObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);

export const SweepPointSchema = z.object({
  name: z.string().describe('Derived from the values that vary, e.g. mem512-caps-xbzrle; the point\'s folder'),
  index: count('Position in the grid\'s order'),
  values: PointValuesSchema,
  varying: arr(z.enum(GRID_DIMENSIONS)).describe('The dimensions that vary across the grid, in grid order'),
  scenario: z
    .custom<PointScenarioInput>(isObject, 'a point scenario is an object')
    .describe("The point's scenario input: the base merged with its values (validated whole by the migrate scenario when the point runs; its run.json holds the validated one)"),
  shaping: ShapingSchema.nullable().optional().describe('Shaping of the migration uplinks during this point (null: cleared; absent: left as it was)'),
});

export const RUN_OUTCOMES = ['skipped', 'ran', 'error', 'pending'] as const;

export const RunStatusSchema = z.object({
  point: z.string().describe('The point\'s name'),
  rep: count('Repetition, from 1'),
  dir: z.string().describe('The run folder, relative to the sweep folder (POINT/repK)'),
  outcome: z.enum(RUN_OUTCOMES).describe('skipped: complete from an earlier invocation; ran: ran now; error: could not produce a report (runs again next time); pending: not run yet'),
  verdict: VerdictSchema.optional(),
  ok: z.boolean().optional().describe('Its run.json\'s ok'),
  downtimeMs: ms("QEMU's downtime").optional(),
  totalTimeMs: ms('Total migration time').optional(),
  failure: z.string().optional().describe("Why a run that produced a report failed (its report's failure)"),
  error: z.string().optional().describe('Why a run could not produce a report'),
});

export const SweepFileSchema = z
  .object({
    schema: z.literal(SWEEP_SCHEMA).describe("Version of this file's format"),
    name: z.string().describe("The sweep's name (results/sweep-NAME/)"),
    spec: SweepSpecSchema.describe('The sweep spec as validated (name, repetitions, base, grid, timeoutMs: the YAML file)'),
    points: arr(SweepPointSchema).describe('Every point of the grid, in order'),
    runs: arr(RunStatusSchema).describe('What happened to every repetition of every point'),
    updatedAt: z.string().describe('ISO 8601, UTC: last written'),
    counts: z
      .object({
        total: count('Runs in the sweep'),
        ran: count('Ran in this invocation'),
        skipped: count('Complete from an earlier invocation'),
        errors: count('Could not produce a report'),
        pending: count('Not run yet'),
      })
      .describe('Runs by outcome'),
  })
  .describe('sweep.json: a sweep and the state of every run');

export type SweepFile = z.output<typeof SweepFileSchema>;
export type RunStatus = z.output<typeof RunStatusSchema>;
export type RunOutcome = (typeof RUN_OUTCOMES)[number];

export const SWEEP_CONTRACT: ResultContract<typeof SweepFileSchema> = { file: 'sweep.json', current: SWEEP_SCHEMA, schema: SweepFileSchema };
