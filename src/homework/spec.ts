// What the homework run measures and for how long: plain validated data. `quick` is the reduced
// homework the integration suite runs (same sections, short durations).
import { z } from 'zod';
import { UsageError } from '../errors.js';
import { parseInput } from '../util/validate.js';
import { NIC_MODELS } from '../machine/spec.js';

export const HomeworkSpecSchema = z
  .object({
    /** Guest RAM for the benchmark guests. */
    memoryMiB: z.number().int().min(64).max(8192).default(256),
    /** Length of each guest CPU and memory benchmark. */
    benchMs: z.number().int().min(100).max(60000).default(3000),
    memBenchMiB: z.number().int().min(1).max(1024).default(64),
    diskBenchMiB: z.number().int().min(1).max(1024).default(64),
    /** Length of each iperf3 run in the device comparison. */
    iperfSeconds: z.number().int().min(1).max(120).default(5),
    /** UDP target rate for jitter and loss. */
    udpBitrate: z.string().regex(/^\d+[KMG]?$/).default('200M'),
    nics: z.array(z.enum(NIC_MODELS)).min(1).default([...NIC_MODELS]),
    migration: z
      .object({
        memoryMiB: z.number().int().min(64).max(8192).default(512),
        /** iperf3 runs this long in all; the migration starts `leadInS` into it. */
        iperfSeconds: z.number().int().min(3).max(300).default(20),
        leadInS: z.number().min(0.5).max(60).default(3),
        /** Slower than the link so pre-copy lasts long enough to watch. */
        maxBandwidthMiBps: z.number().positive().default(48),
        perfIntervalMs: z.number().int().min(100).max(5000).default(200),
        /** The guest keeps dirtying this much memory at this rate while it migrates (0: idle). */
        dirtyWssMiB: z.number().int().min(0).max(8192).default(128),
        dirtyRateMiBps: z.number().min(0).max(10000).default(16),
      })
      .strict()
      .default({ memoryMiB: 512, iperfSeconds: 20, leadInS: 3, maxBandwidthMiBps: 48, perfIntervalMs: 200, dirtyWssMiB: 128, dirtyRateMiBps: 16 }),
    /** Section 5, COLO: how long the pair runs in lock-step before the primary is killed, and its checkpoint period. */
    colo: z
      .object({
        lockStepS: z.number().int().min(1).max(600).default(8),
        checkpointMs: z.number().int().min(10).max(60000).default(1000),
        /** iperf3 into the guest through colo-compare, and again without COLO after the failover. */
        iperfS: z.number().int().min(0).max(120).default(3),
      })
      .strict()
      .default({ lockStepS: 8, checkpointMs: 1000, iperfS: 3 }),
  })
  .strict()
  .readonly();

export type HomeworkSpec = z.infer<typeof HomeworkSpecSchema>;
export type HomeworkSpecInput = z.input<typeof HomeworkSpecSchema>;

export const QUICK_HOMEWORK: HomeworkSpecInput = {
  benchMs: 500,
  memBenchMiB: 16,
  diskBenchMiB: 16,
  iperfSeconds: 1,
  udpBitrate: '50M',
  nics: ['virtio-net-pci', 'e1000'],
  migration: { memoryMiB: 256, iperfSeconds: 8, leadInS: 1.5, maxBandwidthMiBps: 48, perfIntervalMs: 200, dirtyWssMiB: 64, dirtyRateMiBps: 8 },
  colo: { lockStepS: 4, checkpointMs: 1000, iperfS: 2 },
};

export function parseHomeworkSpec(input: HomeworkSpecInput): HomeworkSpec {
  const spec = parseInput(HomeworkSpecSchema, input, 'homework spec');
  if (spec.migration.leadInS >= spec.migration.iperfSeconds) {
    throw new UsageError('migration.leadInS must be shorter than migration.iperfSeconds', 'iperf3 must still run when the migration starts');
  }
  return spec;
}
