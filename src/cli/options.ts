// Command-line options declared as data, and their translation into the API's validated specs.
// Parsing errors become UsageErrors (one line, with the fix) before anything is started, and name
// the option and the value as typed (`--timeout 5: too short; ...`), never a field inside a spec.
import type { Options } from 'yargs';
import type { z } from 'zod';
import { MiglabError, UsageError } from '../errors.js';
import type { Accel, DiskInterface, NicModel } from '../machine/spec.js';
import { ACCELS, DISK_INTERFACES, NIC_MODELS } from '../machine/spec.js';
import { GUEST_STARTS, type GuestStart } from '../machine/warm-start.js';
import { CAPABILITIES, DEFAULT_MIGRATION_PORT, MONITORS, parseScenario, scenarioCapabilities, ScenarioSchema, type MonitorKind, type Scenario, type ScenarioInput } from '../migrate/scenario.js';
import { explainIssue } from '../util/validate.js';
import { parseWorkload } from '../workload/spec.js';
import { FAULT_FORMS, parseFault } from '../fault/spec.js';
import { checkPrefix } from '../lab/spec.js';
import { choiceText, parseQemuChoice, SYSTEM_QEMU } from '../qemu/build.js';
import { formatPolicy, parsePolicy, POLICY_FORMS } from '../switchover/spec.js';
import { parseBitRateMbps, parseDurationMs, parsePort, parseRateMiBps, parseSizeMiB, subject, UNIT_HINT, type UnitKind } from '../util/units.js';

export const SHAPING_OPTIONS = {
  bandwidth: { type: 'string', describe: 'limit each migration uplink: a link rate in bits per second, e.g. 100mbit or 1gbit (tc tbf)' },
  delay: { type: 'string', describe: 'one-way delay added on each uplink: a duration, e.g. 5ms (tc netem: needs the sch_netem kernel module; miglab doctor says)' },
  loss: { type: 'number', describe: 'random packet loss on each uplink, in percent (tc netem: needs sch_netem)' },
} as const satisfies Record<string, Options>;

export const GUEST_OPTIONS = {
  memory: { type: 'string', default: '256M', describe: 'guest RAM: a size, e.g. 256M or 1G (binary: M, MB and MiB are all MiB)' },
  vcpus: { type: 'number', default: 1, describe: 'virtual CPUs' },
  accel: { choices: ACCELS, default: 'auto', describe: 'accelerator; auto probes KVM with a real boot and falls back to TCG' },
  cpu: { type: 'string', default: 'qemu64', describe: 'QEMU CPU model (the same on both sides)' },
  nic: { choices: NIC_MODELS, default: 'virtio-net-pci', describe: 'guest NIC model' },
  disk: { choices: DISK_INTERFACES, default: 'virtio', describe: 'guest disk interface' },
  'disk-size': { type: 'string', default: '256M', describe: 'size of the qcow2 data disk on NFS: a size, e.g. 256M' },
  start: {
    choices: GUEST_STARTS,
    default: 'cold',
    describe: "how the source's guest starts: cold boots its kernel; warm loads the saved state of the same guest booted before (the first warm run makes it; this machine's lab only)",
  },
} as const satisfies Record<string, Options>;

/** --hosts on every command that runs guests: the user's own machines instead of the embedded lab. */
export const HOSTS_OPTION = { type: 'string', describe: 'run on your own machines over SSH, as this hosts file names them (examples/hosts/), instead of the embedded lab' } as const;

export const MIGRATE_OPTIONS = {
  ...GUEST_OPTIONS,
  qemu: { type: 'string', default: SYSTEM_QEMU, describe: "the QEMU build both sides run: system (this host's), a series of Debian's newer QEMU such as 10.0 (bookworm-backports) or 11.1 (trixie-backports, run with its own libraries), fetched once into vm-images/cache/qemu (miglab qemu list), or the path of a qemu-system-x86_64" },
  'qemu-dst': { type: 'string', describe: 'the destination runs this build instead, for a migration from one QEMU to another (same forms as --qemu)' },
  'machine-type': { type: 'string', default: 'auto', describe: "QEMU machine type on both sides: auto (pc; with two builds, the older one's pc-i440fx-X.Y, which both know), pc (each build's own newest: two builds then fail), or a versioned type" },
  workload: { type: 'string', default: 'idle', describe: 'what the guest does meanwhile: idle, cpu, dirty:512M@200M/s,random, disk:1M/s, net' },
  monitor: { choices: MONITORS, default: 'qmp', describe: 'drive the migration through QMP (migrate/query-migrate) or HMP (migrate -d/info migrate)' },
  port: { type: 'string', default: String(DEFAULT_MIGRATION_PORT), describe: 'TCP port the destination listens on (-incoming tcp:DST:PORT)' },
  'hmp-port': { type: 'string', describe: "also open the source's HMP on telnet 127.0.0.1:PORT inside the src namespace" },
  'max-bandwidth': { type: 'string', describe: 'migration max-bandwidth: a rate in bytes per second, e.g. 1G/s (binary: M/s, MB/s and MiB/s are all MiB/s; QEMU default 128M/s; a link rate like 100mbit is --bandwidth)' },
  'max-postcopy-bandwidth': { type: 'string', describe: "post-copy's own cap (max-postcopy-bandwidth), a rate like --max-bandwidth's (QEMU default: none)" },
  'downtime-limit': { type: 'string', describe: 'migration downtime-limit: a duration, e.g. 300ms (QEMU default 300ms)' },
  'multifd-channels': { type: 'number', describe: 'parallel channels with the multifd capability' },
  capability: { type: 'array', string: true, choices: CAPABILITIES, default: [] as string[], describe: 'enable a migration capability (repeatable)' },
  tls: { type: 'boolean', default: false, describe: "encrypt the migration stream with TLS (QEMU's tls-creds-x509, certificates made per lab, both sides verified)" },
  'postcopy-after': { type: 'string', describe: 'with postcopy-ram: switch to post-copy after this long, a duration like 2s' },
  'postcopy-stall': { type: 'string', describe: 'in post-copy, no byte moving this long pauses the migration and recovers it (migrate-pause, migrate-recover, migrate resume), a duration (default 2s)' },
  'postcopy-recover-within': { type: 'string', describe: 'give a broken post-copy up (the guest is lost) when it is not running again this long after it stalled (default 60s)' },
  switchover: { type: 'string', default: 'qemu-default', describe: `when QEMU may stop the guest and switch over, a policy fed the pass figures: ${POLICY_FORMS}` },
  'sample-interval': { type: 'string', default: '100ms', describe: 'how often to sample query-migrate: a duration, e.g. 100ms' },
  timeout: { type: 'string', default: '120s', describe: 'cancel the migration if it has not converged by then, a duration like 90s or 2m (the source keeps running)' },
  // No yargs default: the check below must tell a --stall-after the user gave from the default.
  'stall-after': { type: 'string', describe: 'cancel and report the migration as stalled when no byte has moved for this long, a duration like 15s (default 15s)' },
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

/**
 * Run a parser of one option's value; its error is reported against the option and the value as
 * typed: `fault "bar": say when...` becomes `--fault bar: say when...`, `invalid lab prefix "BAD";
 * use...` becomes `--prefix BAD: not a valid lab prefix; use...`.
 */
export function asOption<T>(flag: string, value: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (!(err instanceof MiglabError) || err.code !== 'BAD_INPUT' || err.message.startsWith(`${flag} `) || err.message.startsWith(`${flag}:`)) throw err;
    const head = subject(flag, value);
    const quoted = `"${value}"`;
    const at = err.message.indexOf(quoted);
    if (at < 0) throw new UsageError(`${head}: ${err.message}`);
    const before = err.message.slice(0, at).trim();
    const after = err.message.slice(at + quoted.length);
    // `fault "bar": the problem` names the value only to say what follows is about it.
    if (after.startsWith(':')) throw new UsageError(`${head}${after}`);
    throw new UsageError(`${head}: ${before.replace(/^invalid /, 'not a valid ')}${after}`);
  }
}

/** A whole-number option (`--repetitions 3`) within a range, or one line about it. */
export function wholeNumberFromArgs(a: Raw, flag: string, min: number, max: number): number {
  const n = Number(a[flag]);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${subject(`--${flag}`, String(a[flag]))}: ${Number.isInteger(n) ? (n < min ? 'too small' : 'too large') : 'not a whole number'}`, `give a whole number from ${min} to ${max}`);
  return n;
}

/** The lab prefix option, checked before anything starts (it names namespaces and /run/miglab/PREFIX). */
export function prefixFromArgs(a: Raw): string {
  const prefix = String(a.prefix ?? 'mlab');
  return asOption('--prefix', prefix, () => checkPrefix(prefix));
}

export function scenarioFromArgs(a: Raw): ScenarioInput {
  const parameters: Record<string, number> = {};
  const maxBw = str(a['max-bandwidth']);
  if (maxBw !== undefined) parameters.maxBandwidthMiBps = parseRateMiBps(maxBw, '--max-bandwidth');
  const maxPcBw = str(a['max-postcopy-bandwidth']);
  if (maxPcBw !== undefined) parameters.maxPostcopyBandwidthMiBps = parseRateMiBps(maxPcBw, '--max-postcopy-bandwidth');
  const dl = str(a['downtime-limit']);
  if (dl !== undefined) parameters.downtimeLimitMs = parseDurationMs(dl, '--downtime-limit');
  if (a['multifd-channels'] !== undefined) parameters.multifdChannels = Number(a['multifd-channels']);
  const caps = (a.capability as string[] | undefined) ?? [];
  const hmpPort = str(a['hmp-port']);
  const postcopyAfter = str(a['postcopy-after']);
  const workload = String(a.workload ?? 'idle');
  return {
    guest: {
      accel: a.accel as Accel,
      cpuModel: String(a.cpu),
      memoryMiB: parseSizeMiB(String(a.memory), '--memory'),
      vcpus: Number(a.vcpus),
      nicModel: a.nic as NicModel,
      diskInterface: a.disk as DiskInterface,
      diskSizeMiB: parseSizeMiB(String(a['disk-size']), '--disk-size'),
      start: (a.start ?? 'cold') as GuestStart,
      machineType: String(a['machine-type'] ?? 'auto'),
    },
    qemu: qemuFromArgs(a),
    workload: asOption('--workload', workload, () => parseWorkload(workload)),
    monitor: a.monitor as MonitorKind,
    port: parsePort(String(a.port), '--port'),
    hmpTelnetPort: hmpPort === undefined ? undefined : parsePort(hmpPort, '--hmp-port'),
    parameters,
    capabilities: Object.fromEntries(caps.map((c) => [c, true])),
    tls: a.tls === true,
    postcopyAfterMs: postcopyAfter === undefined ? undefined : parseDurationMs(postcopyAfter, '--postcopy-after'),
    switchover: asOption('--switchover', String(a.switchover ?? 'qemu-default'), () => formatPolicy(parsePolicy(String(a.switchover ?? 'qemu-default')))),
    sampleIntervalMs: parseDurationMs(String(a['sample-interval']), '--sample-interval'),
    timeoutMs: parseDurationMs(String(a.timeout), '--timeout'),
    stallAfterMs: parseDurationMs(String(a['stall-after'] ?? '15s'), '--stall-after'),
    postcopyStallMs: parseDurationMs(String(a['postcopy-stall'] ?? '2s'), '--postcopy-stall'),
    postcopyRecoverWithinMs: parseDurationMs(String(a['postcopy-recover-within'] ?? '60s'), '--postcopy-recover-within'),
    faults: ((a.fault as string[] | undefined) ?? []).map((f) => asOption('--fault', f, () => parseFault(f))),
  };
}

/** --qemu and --qemu-dst, each checked (a path made absolute: the run may read it from elsewhere). */
function qemuFromArgs(a: Raw): ScenarioInput['qemu'] {
  const one = (flag: string) => {
    const v = str(a[flag]);
    return v === undefined ? undefined : asOption(`--${flag}`, v, () => choiceText(parseQemuChoice(v)));
  };
  return { source: one('qemu') ?? SYSTEM_QEMU, destination: one('qemu-dst') };
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
  if (loss !== undefined && (!Number.isFinite(loss) || loss < 0 || loss > 100)) throw new UsageError(`${subject('--loss', String(loss))}: not a percentage`, 'give a number from 0 to 100');
  const bandwidthMbit = bw === undefined ? undefined : parseBitRateMbps(bw, '--bandwidth');
  if (bandwidthMbit !== undefined && !(bandwidthMbit > 0 && bandwidthMbit <= 1_000_000)) throw new UsageError(`${subject('--bandwidth', bw!)}: out of range`, `give more than 0 and at most 1000gbit (${UNIT_HINT.bitrate})`);
  const delayMs = delay === undefined ? undefined : parseDurationMs(delay, '--delay');
  if (delayMs !== undefined && delayMs > 60_000) throw new UsageError(`${subject('--delay', delay!)}: too long`, `give at most 60s (${UNIT_HINT.duration})`);
  return { bandwidthMbit, delayMs, lossPct: loss };
}

/** What an option takes, for a message about a value out of range: the kind of value and its range. */
export interface OptionRange {
  readonly flag: string;
  readonly kind?: UnitKind;
  /** The range in the user's terms: "from 64M to 64G", "at least 1s". */
  readonly range: string;
}

/**
 * The first issue of validating a spec built from options, as one line about the option and the
 * value as typed (`--timeout 5: too short (a bare number is milliseconds); give at least 1s (a
 * duration like 500ms, 90s or 2m)`). `table` maps each spec field an option fills to that option;
 * the path may have a numeric tail (`steps.0`: one value of a list option). Undefined when the
 * issue is about no option in the table (then the spec's own message says what is wrong).
 */
export function optionIssue(issues: readonly z.core.$ZodIssue[], table: Readonly<Record<string, OptionRange>>, a: Raw): UsageError | undefined {
  const { path, message } = explainIssue(issues[0]!);
  const key = path.map(String).join('.');
  const field = table[key] ? key : path.filter((p) => typeof p !== 'number').map(String).join('.');
  const r = table[field];
  if (!r) return undefined;
  const raw = a[r.flag];
  const value = Array.isArray(raw) ? raw.join(',') : String(raw);
  const issue = issues[0]!;
  const long = r.kind === 'duration';
  let problem = issue.code === 'too_small' ? (long ? 'too short' : 'too small') : issue.code === 'too_big' ? (long ? 'too long' : 'too large') : message.replace(/^Invalid input: /, '').toLowerCase();
  if (issue.code === 'invalid_type') problem = /\bint\b/.test(message) ? 'not a whole number' : 'not a number';
  if (long && /^\s*\d+(\.\d+)?\s*$/.test(value)) problem += ' (a bare number is milliseconds)';
  return new UsageError(`${subject(`--${r.flag}`, value)}: ${problem}`, `give ${r.range}${r.kind ? ` (${UNIT_HINT[r.kind]})` : ''}`);
}

/** The option behind each scenario field, and the range it takes, for errors in the user's terms. */
const SCENARIO_OPTION_OF: Readonly<Record<string, OptionRange>> = {
  'guest.memoryMiB': { flag: 'memory', kind: 'size', range: 'from 64M to 64G' },
  'guest.vcpus': { flag: 'vcpus', range: 'a whole number from 1 to 64' },
  'guest.diskSizeMiB': { flag: 'disk-size', kind: 'size', range: 'from 1M to 1T' },
  'guest.machineType': { flag: 'machine-type', range: 'auto, pc, or a versioned type such as pc-i440fx-7.2' },
  'parameters.maxBandwidthMiBps': { flag: 'max-bandwidth', kind: 'rate', range: 'more than 0' },
  'parameters.maxPostcopyBandwidthMiBps': { flag: 'max-postcopy-bandwidth', kind: 'rate', range: 'more than 0' },
  'parameters.downtimeLimitMs': { flag: 'downtime-limit', kind: 'duration', range: 'from 1ms to 2000s' },
  'parameters.multifdChannels': { flag: 'multifd-channels', range: 'a whole number from 1 to 255' },
  port: { flag: 'port', range: 'a port from 1024 to 65535' },
  hmpTelnetPort: { flag: 'hmp-port', range: 'a port from 1024 to 65535' },
  postcopyAfterMs: { flag: 'postcopy-after', kind: 'duration', range: '0s or more' },
  sampleIntervalMs: { flag: 'sample-interval', kind: 'duration', range: 'from 10ms to 60s' },
  timeoutMs: { flag: 'timeout', kind: 'duration', range: 'at least 1s' },
  stallAfterMs: { flag: 'stall-after', kind: 'duration', range: 'at least 1s' },
  postcopyStallMs: { flag: 'postcopy-stall', kind: 'duration', range: 'at least 200ms' },
  postcopyRecoverWithinMs: { flag: 'postcopy-recover-within', kind: 'duration', range: 'at least 1s' },
};

/**
 * The scenario the command line asks for, validated; a value out of range is reported against the
 * option and the value as typed (`--timeout 5: too short ...`), not the field inside. Options that
 * only make sense together are checked here too, in option names.
 */
export function scenarioFromArgsChecked(a: Raw): Scenario {
  const input = scenarioFromArgs(a);
  const r = ScenarioSchema.safeParse(input);
  if (!r.success) {
    const e = optionIssue(r.error.issues, SCENARIO_OPTION_OF, a);
    if (e) throw e;
  }
  const caps = (a.capability as string[] | undefined) ?? [];
  if (a['postcopy-after'] !== undefined && !caps.includes('postcopy-ram')) throw new UsageError(`${subject('--postcopy-after', String(a['postcopy-after']))}: post-copy is not enabled`, 'add --capability postcopy-ram');
  const postcopy = scenarioCapabilities({ capabilities: Object.fromEntries(caps.map((c) => [c, true])), switchover: input.switchover ?? 'qemu-default' })['postcopy-ram'];
  for (const flag of ['postcopy-stall', 'postcopy-recover-within', 'max-postcopy-bandwidth']) {
    if (a[flag] !== undefined && !postcopy) throw new UsageError(`${subject(`--${flag}`, String(a[flag]))}: post-copy is not enabled`, 'add --capability postcopy-ram');
  }
  if (a['multifd-channels'] !== undefined && !caps.includes('multifd')) throw new UsageError(`${subject('--multifd-channels', String(a['multifd-channels']))}: multifd is not enabled`, 'add --capability multifd');
  // A stall window as long as the deadline never fires: the deadline cancels first, and a stalled
  // migration would be reported as one that did not converge in time. Only a window the user gave
  // is refused: with the default, a short --timeout alone is a fine request.
  if (a['stall-after'] !== undefined && (input.stallAfterMs ?? 0) >= (input.timeoutMs ?? Infinity)) {
    throw new UsageError(`${subject('--stall-after', String(a['stall-after'] ?? '15s'))}: not shorter than ${subject('--timeout', String(a.timeout))}, so a stall could never be caught`, 'give a --stall-after shorter than --timeout, or a longer --timeout');
  }
  if (a['hmp-port'] !== undefined && input.hmpTelnetPort === input.port) throw new UsageError(`--hmp-port ${input.hmpTelnetPort}: the same port as --port`, 'choose two different ports');
  return parseScenario(input);
}
