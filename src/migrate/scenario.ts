// A migration scenario: plain validated data saying what to migrate and how (guest shape,
// monitor, parameters, capabilities, sampling, deadline). The engine executes it; the report
// records it verbatim. Names of runs derive from these values, never typed by hand.
import { z } from 'zod';
import { UsageError } from '../errors.js';
import { parseInput } from '../util/validate.js';
import { ACCELS, DISK_INTERFACES, NIC_MODELS } from '../machine/spec.js';
import { WorkloadSpecSchema, workloadName } from '../workload/spec.js';

export const MONITORS = ['qmp', 'hmp'] as const;
export type MonitorKind = (typeof MONITORS)[number];

/** Capabilities miglab knows how to set, by their QEMU names. */
export const CAPABILITIES = ['xbzrle', 'auto-converge', 'multifd', 'postcopy-ram'] as const;
export type CapabilityName = (typeof CAPABILITIES)[number];

export const MigrationParametersSchema = z
  .object({
    maxBandwidthMiBps: z.number().positive().optional(),
    downtimeLimitMs: z.number().int().min(1).max(2000000).optional(),
    multifdChannels: z.number().int().min(1).max(255).optional(),
    xbzrleCacheMiB: z.number().int().min(1).optional(),
  })
  .strict()
  .readonly();
export type MigrationParameters = z.infer<typeof MigrationParametersSchema>;

export const GuestShapeSchema = z
  .object({
    accel: z.enum(ACCELS).default('auto'),
    cpuModel: z.string().default('qemu64'),
    memoryMiB: z.number().int().min(64).max(65536).default(256),
    vcpus: z.number().int().min(1).max(64).default(1),
    nicModel: z.enum(NIC_MODELS).default('virtio-net-pci'),
    diskInterface: z.enum(DISK_INTERFACES).default('virtio'),
    diskSizeMiB: z.number().int().min(1).max(1048576).default(256),
    /** Start an iperf3 server in the guest (for traffic through its NIC during the run). */
    iperfServer: z.boolean().default(false),
  })
  .strict()
  .readonly();
export type GuestShape = z.infer<typeof GuestShapeSchema>;

export const ScenarioSchema = z
  .object({
    guest: GuestShapeSchema.default(GuestShapeSchema.parse({})),
    /** What the guest does while it migrates (compact form or object): idle, dirty, cpu, disk, net. */
    workload: WorkloadSpecSchema.default({ kind: 'idle' }),
    monitor: z.enum(MONITORS).default('qmp'),
    /** TCP port the destination listens on for the migration stream. */
    port: z.number().int().min(1024).max(65535).default(4444),
    /** Expose the source's HMP on telnet 127.0.0.1:PORT inside the src namespace (homework style). */
    hmpTelnetPort: z.number().int().min(1024).max(65535).optional(),
    parameters: MigrationParametersSchema.default({}),
    capabilities: z.partialRecord(z.enum(CAPABILITIES), z.boolean()).default({}),
    /** With postcopy-ram: switch to post-copy after this long in pre-copy. */
    postcopyAfterMs: z.number().int().min(0).optional(),
    sampleIntervalMs: z.number().int().min(10).max(60000).default(100),
    /** The client-side downtime probe: UDP echo to the guest agent from the lab's client host. */
    clientProbe: z.boolean().default(true),
    probeIntervalUs: z.number().int().min(100).max(1000000).default(1000),
    timeoutMs: z.number().int().min(1000).default(120000),
  })
  .strict()
  .readonly();

export type Scenario = z.infer<typeof ScenarioSchema>;
export type ScenarioInput = z.input<typeof ScenarioSchema>;

export function parseScenario(input: ScenarioInput): Scenario {
  const s = parseInput(ScenarioSchema, input, 'migration scenario');
  if (s.postcopyAfterMs !== undefined && !s.capabilities['postcopy-ram']) {
    throw new UsageError('postcopyAfterMs needs the postcopy-ram capability', 'add --capability postcopy-ram');
  }
  if (s.hmpTelnetPort !== undefined && s.hmpTelnetPort === s.port) {
    throw new UsageError(`the HMP telnet port and the migration port are both ${s.port}`, 'choose two different ports');
  }
  return s;
}

/** A run's name, derived from the values that distinguish it. */
export function scenarioName(s: Scenario): string {
  const parts = [`${s.guest.memoryMiB}m`, workloadName(s.workload), s.guest.nicModel.replace('-net-pci', ''), s.guest.diskInterface, s.monitor];
  if (s.parameters.maxBandwidthMiBps !== undefined) parts.push(`bw${s.parameters.maxBandwidthMiBps}`);
  if (s.parameters.downtimeLimitMs !== undefined) parts.push(`dl${s.parameters.downtimeLimitMs}`);
  for (const [cap, on] of Object.entries(s.capabilities)) if (on) parts.push(cap);
  return parts.join('-');
}
