// Command-line options declared as data, and their translation into the API's validated specs.
// Parsing errors become UsageErrors (one line, with the fix) before anything is started.
import type { Options } from 'yargs';
import { UsageError } from '../errors.js';
import type { Accel, DiskInterface, NicModel } from '../machine/spec.js';
import { ACCELS, DISK_INTERFACES, NIC_MODELS } from '../machine/spec.js';
import { CAPABILITIES, MONITORS, parseScenario, ScenarioSchema, type MonitorKind, type Scenario, type ScenarioInput } from '../migrate/scenario.js';
import { explainIssue } from '../util/validate.js';
import { parseWorkload } from '../workload/spec.js';
import { FAULT_FORMS, parseFault } from '../fault/spec.js';
import { parseBitRateMbps, parseDurationMs, parsePort, parseRateMiBps, parseSizeMiB } from '../util/units.js';

export const SHAPING_OPTIONS = {
  bandwidth: { type: 'string', describe: 'limit each migration uplink, e.g. 100mbit or 1gbit (tc tbf)' },
  delay: { type: 'string', describe: 'one-way delay added on each uplink, e.g. 5ms (tc netem: needs the sch_netem kernel module)' },
  loss: { type: 'number', describe: 'random packet loss on each uplink, in percent (tc netem: needs sch_netem)' },
} as const satisfies Record<string, Options>;

export const GUEST_OPTIONS = {
  memory: { type: 'string', default: '256M', describe: 'guest RAM, e.g. 256M or 1G' },
  vcpus: { type: 'number', default: 1, describe: 'virtual CPUs' },
  accel: { choices: ACCELS, default: 'auto', describe: 'accelerator; auto probes KVM with a real boot and falls back to TCG' },
  cpu: { type: 'string', default: 'qemu64', describe: 'QEMU CPU model (the same on both sides)' },
  nic: { choices: NIC_MODELS, default: 'virtio-net-pci', describe: 'guest NIC model' },
  disk: { choices: DISK_INTERFACES, default: 'virtio', describe: 'guest disk interface' },
  'disk-size': { type: 'string', default: '256M', describe: 'size of the qcow2 data disk on NFS' },
} as const satisfies Record<string, Options>;

export const MIGRATE_OPTIONS = {
  ...GUEST_OPTIONS,
  workload: { type: 'string', default: 'idle', describe: 'what the guest does meanwhile: idle, cpu, dirty:512M@200M/s,random, disk:1M/s, net' },
  monitor: { choices: MONITORS, default: 'qmp', describe: 'drive the migration through QMP (migrate/query-migrate) or HMP (migrate -d/info migrate)' },
  port: { type: 'string', default: '4444', describe: 'TCP port the destination listens on (-incoming tcp:DST:PORT)' },
  'hmp-port': { type: 'string', describe: "also open the source's HMP on telnet 127.0.0.1:PORT inside the src namespace" },
  'max-bandwidth': { type: 'string', describe: 'migration max-bandwidth, e.g. 1G/s (QEMU default 128M/s)' },
  'downtime-limit': { type: 'string', describe: 'migration downtime-limit, e.g. 300ms (QEMU default 300)' },
  'multifd-channels': { type: 'number', describe: 'parallel channels with the multifd capability' },
  capability: { type: 'array', string: true, choices: CAPABILITIES, default: [] as string[], describe: 'enable a migration capability (repeatable)' },
  tls: { type: 'boolean', default: false, describe: "encrypt the migration stream with TLS (QEMU's tls-creds-x509, certificates made per lab, both sides verified)" },
  'postcopy-after': { type: 'string', describe: 'with postcopy-ram: switch to post-copy after this long, e.g. 2s' },
  'sample-interval': { type: 'string', default: '100ms', describe: 'how often to sample query-migrate' },
  timeout: { type: 'string', default: '120s', describe: 'cancel the migration if it has not converged by then (the source keeps running)' },
  'stall-after': { type: 'string', default: '15s', describe: 'cancel and report the migration as stalled when no byte has moved for this long' },
  fault: {
    type: 'array',
    string: true,
    default: [] as string[],
    describe: `inject a fault, ${FAULT_FORMS}`,
  },
  results: { type: 'string', default: 'results', describe: 'directory for results/<run-id>/' },
  ...SHAPING_OPTIONS,
} as const satisfies Record<string, Options>;

type Raw = Record<string, unknown>;
const str = (v: unknown) => (v === undefined || v === null ? undefined : String(v));

export function scenarioFromArgs(a: Raw): ScenarioInput {
  const parameters: Record<string, number> = {};
  const maxBw = str(a['max-bandwidth']);
  if (maxBw !== undefined) parameters.maxBandwidthMiBps = parseRateMiBps(maxBw, '--max-bandwidth');
  const dl = str(a['downtime-limit']);
  if (dl !== undefined) parameters.downtimeLimitMs = parseDurationMs(dl, '--downtime-limit');
  if (a['multifd-channels'] !== undefined) parameters.multifdChannels = Number(a['multifd-channels']);
  const caps = (a.capability as string[] | undefined) ?? [];
  const hmpPort = str(a['hmp-port']);
  const postcopyAfter = str(a['postcopy-after']);
  return {
    guest: {
      accel: a.accel as Accel,
      cpuModel: String(a.cpu),
      memoryMiB: parseSizeMiB(String(a.memory), '--memory'),
      vcpus: Number(a.vcpus),
      nicModel: a.nic as NicModel,
      diskInterface: a.disk as DiskInterface,
      diskSizeMiB: parseSizeMiB(String(a['disk-size']), '--disk-size'),
    },
    workload: parseWorkload(String(a.workload ?? 'idle')),
    monitor: a.monitor as MonitorKind,
    port: parsePort(String(a.port), '--port'),
    hmpTelnetPort: hmpPort === undefined ? undefined : parsePort(hmpPort, '--hmp-port'),
    parameters,
    capabilities: Object.fromEntries(caps.map((c) => [c, true])),
    tls: a.tls === true,
    postcopyAfterMs: postcopyAfter === undefined ? undefined : parseDurationMs(postcopyAfter, '--postcopy-after'),
    sampleIntervalMs: parseDurationMs(String(a['sample-interval']), '--sample-interval'),
    timeoutMs: parseDurationMs(String(a.timeout), '--timeout'),
    stallAfterMs: parseDurationMs(String(a['stall-after'] ?? '15s'), '--stall-after'),
    faults: ((a.fault as string[] | undefined) ?? []).map((f) => parseFault(f)),
  };
}

export interface ShapingArgs {
  bandwidthMbit?: number;
  delayMs?: number;
  lossPct?: number;
}

export function shapingFromArgs(a: Raw): ShapingArgs | undefined {
  const bw = str(a.bandwidth);
  const delay = str(a.delay);
  const loss = a.loss as number | undefined;
  if (bw === undefined && delay === undefined && loss === undefined) return undefined;
  if (loss !== undefined && (!Number.isFinite(loss) || loss < 0 || loss > 100)) throw new UsageError(`invalid --loss "${loss}"`, 'use a percentage from 0 to 100');
  return {
    bandwidthMbit: bw === undefined ? undefined : parseBitRateMbps(bw, '--bandwidth'),
    delayMs: delay === undefined ? undefined : parseDurationMs(delay, '--delay'),
    lossPct: loss,
  };
}

/** The option behind each scenario field, and the range it takes, for errors in the user's terms. */
const FLAG_OF: Readonly<Record<string, { readonly flag: string; readonly hint: string }>> = {
  'guest.memoryMiB': { flag: 'memory', hint: 'give 64M to 64G' },
  'guest.vcpus': { flag: 'vcpus', hint: 'give 1 to 64' },
  'guest.diskSizeMiB': { flag: 'disk-size', hint: 'give 1M to 1T' },
  'parameters.maxBandwidthMiBps': { flag: 'max-bandwidth', hint: 'give a rate above 0, e.g. 128M/s' },
  'parameters.downtimeLimitMs': { flag: 'downtime-limit', hint: 'give 1ms or more, e.g. 300ms' },
  'parameters.multifdChannels': { flag: 'multifd-channels', hint: 'give 1 to 255' },
  port: { flag: 'port', hint: 'give 1024 to 65535' },
  hmpTelnetPort: { flag: 'hmp-port', hint: 'give 1024 to 65535' },
  sampleIntervalMs: { flag: 'sample-interval', hint: 'give 10ms to 60s' },
  timeoutMs: { flag: 'timeout', hint: 'give 1s or more, e.g. 120s' },
  stallAfterMs: { flag: 'stall-after', hint: 'give 1s or more, e.g. 15s' },
};

/**
 * The scenario the command line asks for, validated; a value out of range is reported against the
 * option and the value as typed (`invalid --timeout "5": give 1s or more`), not the field inside.
 */
export function scenarioFromArgsChecked(a: Raw): Scenario {
  const input = scenarioFromArgs(a);
  const r = ScenarioSchema.safeParse(input);
  if (!r.success) {
    const { path } = explainIssue(r.error.issues[0]!);
    const f = FLAG_OF[path.map(String).join('.')];
    if (f) throw new UsageError(`invalid --${f.flag} "${String(a[f.flag])}"`, f.hint);
  }
  return parseScenario(input);
}