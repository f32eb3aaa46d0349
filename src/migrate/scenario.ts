// A migration scenario: plain validated data saying what to migrate and how (guest shape,
// monitor, parameters, capabilities, sampling, deadline). The engine executes it; the report
// records it verbatim. Names of runs derive from these values, never typed by hand.
import { z } from 'zod';
import { UsageError } from '../errors.js';
import { parseInput } from '../util/validate.js';
import { ACCELS, DISK_INTERFACES, MACHINE_TYPE_RE, NIC_MODELS } from '../machine/spec.js';
import { GUEST_STARTS } from '../machine/warm-start.js';
import { maxDirtyWssMiB, memoryForDirtyWssMiB, WorkloadSpecSchema, workloadName } from '../workload/spec.js';
import { FaultSpecSchema, faultName, formatFault } from '../fault/spec.js';
import { parseQemuChoice, SYSTEM_QEMU } from '../qemu/build.js';
import { formatPolicy, parsePolicy, policyCapabilities, policyName, rampEndMs, type PolicySpec } from '../switchover/spec.js';

export const MONITORS = ['qmp', 'hmp'] as const;
export type MonitorKind = (typeof MONITORS)[number];

/**
 * Capabilities miglab knows how to set, by their QEMU names. Whether a QEMU build has one is asked
 * from that build before a run (src/qemu/offers.ts): compress is gone from 9.1 on; dirty-limit and
 * switchover-ack came in 8.1 (dirty-limit needs KVM's dirty ring: refused under TCG before a run boots).
 */
export const CAPABILITIES = ['xbzrle', 'auto-converge', 'multifd', 'postcopy-ram', 'postcopy-preempt', 'postcopy-blocktime', 'dirty-limit', 'switchover-ack', 'compress'] as const;
export type CapabilityName = (typeof CAPABILITIES)[number];

export const MigrationParametersSchema = z
  .object({
    maxBandwidthMiBps: z.number().positive().optional(),
    /** Post-copy's own cap (QEMU: max-postcopy-bandwidth; 0 there means none). */
    maxPostcopyBandwidthMiBps: z.number().positive().optional(),
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
    /**
     * QEMU's machine type on both sides: auto (pc; with two different QEMU builds, the type the
     * older one's pc stands for, which both know), pc (each build's own newest), or a versioned type.
     */
    machineType: z.string().regex(MACHINE_TYPE_RE, 'not a machine type name (lower case, as qemu-system-x86_64 -machine help lists them)').default('auto'),
    /** Start an iperf3 server in the guest (for traffic through its NIC during the run). */
    iperfServer: z.boolean().default(false),
    /**
     * How the source's guest starts: cold (boot the kernel) or warm (load the saved state of the
     * same guest booted before: src/machine/warm-start.ts; made by the first warm run).
     */
    start: z.enum(GUEST_STARTS).default('cold'),
  })
  .strict()
  .readonly();
export type GuestShape = z.infer<typeof GuestShapeSchema>;

/** The port the destination listens on for the migration stream when none is given (guest slot i: this + i). */
export const DEFAULT_MIGRATION_PORT = 4444;
/** The source's HMP telnet port of the homework by hand (`guests up`), on the source host. */
export const DEFAULT_HMP_PORT = 4445;

/** Which QEMU build each side runs (src/qemu/build.ts): system, a series of Debian's newer QEMU such as 10.0 or 11.1, or a path. */
export const QemuChoiceSchema = z
  .object({
    source: z.string().min(1).default(SYSTEM_QEMU),
    /** Absent: the source's build (a migration between two builds names it). */
    destination: z.string().min(1).optional(),
  })
  .strict()
  .readonly();

export const ScenarioSchema = z
  .object({
    guest: GuestShapeSchema.default(GuestShapeSchema.parse({})),
    qemu: QemuChoiceSchema.default({ source: SYSTEM_QEMU }),
    /** What the guest does while it migrates (compact form or object): idle, dirty, cpu, disk, net. */
    workload: WorkloadSpecSchema.default({ kind: 'idle' }),
    monitor: z.enum(MONITORS).default('qmp'),
    /**
     * TCP port the destination listens on for the migration stream, in the run's preferred guest
     * slot. A run moved to another slot (its own was taken by another run on the lab) shifts the
     * port by as many slots, so concurrent runs never share one.
     */
    port: z.number().int().min(1024).max(65535).default(DEFAULT_MIGRATION_PORT),
    /** Expose the source's HMP on telnet 127.0.0.1:PORT inside the src namespace (homework style). */
    hmpTelnetPort: z.number().int().min(1024).max(65535).optional(),
    parameters: MigrationParametersSchema.default({}),
    capabilities: z.partialRecord(z.enum(CAPABILITIES), z.boolean()).default({}),
    /** With postcopy-ram: switch to post-copy after this long in pre-copy. */
    postcopyAfterMs: z.number().int().min(0).optional(),
    /**
     * In post-copy, no byte moving this long pauses the migration and recovers it (migrate-pause,
     * migrate-recover, migrate resume): it can no longer be cancelled.
     */
    postcopyStallMs: z.number().int().min(200).default(2000),
    /** A broken post-copy not running again this long after it stalled is given up: the guest is lost. */
    postcopyRecoverWithinMs: z.number().int().min(1000).default(60000),
    /** Encrypt the migration stream with TLS (tls-creds-x509, the lab's certificates, both sides verified). */
    tls: z.boolean().default(false),
    sampleIntervalMs: z.number().int().min(10).max(60000).default(100),
    /** The client-side downtime probe: UDP echo to the guest agent from the lab's client host. */
    clientProbe: z.boolean().default(true),
    probeIntervalUs: z.number().int().min(100).max(1000000).default(1000),
    timeoutMs: z.number().int().min(1000).default(120000),
    /** No byte moved for this long: the migration is stalled (cancelled, reported apart from did-not-converge). */
    stallAfterMs: z.number().int().min(1000).default(15000),
    /** The switchover policy in its compact form (src/switchover/spec.ts): qemu-default, local-minimum:max=1s, ... */
    switchover: z.string().min(1).default('qemu-default'),
    /** Faults to inject during the migration (`kill-dst@2s`, `link-down:5s@pass:2`...). */
    faults: z.array(FaultSpecSchema).default([]),
  })
  .strict()
  .readonly();

export type Scenario = z.infer<typeof ScenarioSchema>;
export type ScenarioInput = z.input<typeof ScenarioSchema>;

export function parseScenario(input: ScenarioInput): Scenario {
  const s = parseInput(ScenarioSchema, input, 'migration scenario');
  // The policy spelt out once (every parameter), so two spellings of one policy are one policy.
  const policy = parsePolicy(s.switchover);
  const s2: Scenario = { ...s, switchover: formatPolicy(policy) };
  checkPolicy(s2, policy);
  parseQemuChoice(s.qemu.source);
  if (s.qemu.destination !== undefined) parseQemuChoice(s.qemu.destination);
  return checkRest(s2);
}

/** What a switchover policy cannot be combined with, refused in the scenario's terms. */
function checkPolicy(s: Scenario, policy: PolicySpec): void {
  const text = `--switchover ${s.switchover}`;
  const postcopy = policy.kind === 'postcopy-after' || policy.kind === 'auto';
  if (postcopy && s.postcopyAfterMs !== undefined) throw new UsageError(`${text} and --postcopy-after both say when to start post-copy`, 'keep one of them');
  for (const c of policyCapabilities(policy)) {
    if (s.capabilities[c] === false) throw new UsageError(`${text} needs the ${c} capability, which the scenario turns off`, 'drop that capability setting');
  }
  if (policy.kind === 'downtime-steps' && s.parameters.downtimeLimitMs !== undefined) throw new UsageError(`${text} sets downtime-limit itself, step by step`, 'drop --downtime-limit, or give downtime-steps its max (downtime-steps:max=500ms)');
  const caps = scenarioCapabilities(s);
  if (caps['dirty-limit'] && caps['auto-converge']) throw new UsageError('dirty-limit and auto-converge together: QEMU refuses the pair', 'keep one of them');
  if (policy.kind === 'downtime-steps') {
    const end = rampEndMs(policy, s.guest.memoryMiB);
    if (end > s.timeoutMs) {
      throw new UsageError(
        `${text} reaches its max ${end / 1000} s after the migrate command (${policy.steps} steps of ${policy.delayPerGiBMs / 1000} s per GiB of a ${s.guest.memoryMiB} MiB guest), after the ${s.timeoutMs / 1000} s deadline`,
        'give a shorter delay-per-gib, fewer steps, or a longer --timeout',
      );
    }
  }
}

function checkRest(s: Scenario): Scenario {
  if (s.parameters.maxPostcopyBandwidthMiBps !== undefined && !scenarioCapabilities(s)['postcopy-ram']) {
    throw new UsageError('max-postcopy-bandwidth caps post-copy, which this run never enters', 'add --capability postcopy-ram');
  }
  if (s.postcopyAfterMs !== undefined && !s.capabilities['postcopy-ram']) {
    throw new UsageError('postcopyAfterMs needs the postcopy-ram capability', 'add --capability postcopy-ram');
  }
  if (s.hmpTelnetPort !== undefined && s.hmpTelnetPort === s.port) {
    throw new UsageError(`the HMP telnet port and the migration port are both ${s.port}`, 'choose two different ports');
  }
  if (s.workload.kind === 'dirty' && s.workload.wssMiB > maxDirtyWssMiB(s.guest.memoryMiB)) {
    throw new UsageError(
      `a dirty working set of ${s.workload.wssMiB} MiB does not fit in a ${s.guest.memoryMiB} MiB guest (at most ${maxDirtyWssMiB(s.guest.memoryMiB)} MiB does: its kernel and initramfs take about 100 MiB)`,
      `give the guest at least ${memoryForDirtyWssMiB(s.workload.wssMiB)} MiB (--memory ${memoryForDirtyWssMiB(s.workload.wssMiB)}M; guest.memoryMiB in a spec), or dirty a smaller working set`,
    );
  }
  for (const f of s.faults) {
    const text = formatFault(f);
    if (f.when.kind === 'status' && f.when.status.startsWith('postcopy') && !scenarioCapabilities(s)['postcopy-ram']) {
      throw new UsageError(`fault ${text} waits for post-copy, which this run never enters`, 'add --capability postcopy-ram and --postcopy-after');
    }
    if (f.when.kind === 'time' && f.when.afterMs >= s.timeoutMs) {
      throw new UsageError(`fault ${text} would fire after the migration's deadline (${s.timeoutMs} ms)`, 'fire it earlier or raise --timeout');
    }
  }
  return s;
}

/**
 * The capabilities a run sets: those asked for, and those its switchover policy needs. A run that
 * may enter post-copy also measures how long the destination's vCPUs wait for pages
 * (postcopy-blocktime), unless the scenario turns that off.
 */
export function scenarioCapabilities(s: Pick<Scenario, 'capabilities' | 'switchover'>): Partial<Record<CapabilityName, boolean>> {
  const caps: Partial<Record<CapabilityName, boolean>> = { ...s.capabilities, ...Object.fromEntries(policyCapabilities(parsePolicy(s.switchover)).map((c) => [c, true])) };
  if (caps['postcopy-ram'] && caps['postcopy-blocktime'] === undefined) caps['postcopy-blocktime'] = true;
  return caps;
}

/**
 * Capabilities QEMU wants on the destination before it listens (10.0 refuses them after: "Multifd
 * must be set before incoming starts"): a run with one starts the destination with
 * `-incoming defer` and has it listen (migrate-incoming) once they are set.
 */
export const BEFORE_INCOMING: readonly CapabilityName[] = ['multifd', 'postcopy-preempt'];

export function deferIncoming(s: Pick<Scenario, 'capabilities' | 'switchover'>): boolean {
  const caps = scenarioCapabilities(s);
  return BEFORE_INCOMING.some((c) => caps[c]);
}

/** A run's name, derived from the values that distinguish it. */
export function scenarioName(s: Scenario): string {
  const parts = [`${s.guest.memoryMiB}m`, workloadName(s.workload), s.guest.nicModel.replace('-net-pci', ''), s.guest.diskInterface, s.monitor];
  const q = qemuName(s.qemu);
  if (q) parts.push(q);
  if (s.guest.machineType !== 'auto') parts.push(s.guest.machineType);
  // A warm start changes QEMU's figures (bench --which runs): its runs are never mistaken for cold ones.
  if (s.guest.start === 'warm') parts.push('warm');
  if (s.parameters.maxBandwidthMiBps !== undefined) parts.push(`bw${s.parameters.maxBandwidthMiBps}`);
  if (s.parameters.maxPostcopyBandwidthMiBps !== undefined) parts.push(`pcbw${s.parameters.maxPostcopyBandwidthMiBps}`);
  if (s.parameters.downtimeLimitMs !== undefined) parts.push(`dl${s.parameters.downtimeLimitMs}`);
  for (const [cap, on] of Object.entries(s.capabilities)) if (on) parts.push(cap);
  if (s.tls) parts.push('tls');
  if (s.switchover !== 'qemu-default') parts.push(`sw-${policyName(s.switchover)}`);
  for (const f of s.faults) parts.push(faultName(f));
  return parts.join('-');
}

/** "qemu10.0", "qemu7.2-to-10.0" (a path shows as "path"); nothing for the system's on both sides. */
function qemuName(q: Scenario['qemu']): string | undefined {
  const label = (c: string) => (c.includes('/') ? 'path' : c);
  const dst = q.destination ?? q.source;
  if (q.source === SYSTEM_QEMU && dst === SYSTEM_QEMU) return undefined;
  return q.source === dst ? `qemu${label(q.source)}` : `qemu${label(q.source)}-to-${label(dst)}`;
}
