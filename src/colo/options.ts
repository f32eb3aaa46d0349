// `miglab colo`'s options and what they become: kept apart from the run (cli.ts, run.ts) so that
// parsing the command line loads nothing else.
import type { Argv } from 'yargs';
import { HOSTS_OPTION, wholeNumberFromArgs } from '../cli/options.js';
import { UsageError } from '../errors.js';

export const COLO_FAILURES = ['kill', 'link'] as const;
export type ColoFailure = (typeof COLO_FAILURES)[number];

export interface ColoSettings {
  readonly memoryMiB: number;
  /** x-checkpoint-delay: the longest time between two checkpoints. */
  readonly checkpointMs: number;
  /** How long the pair runs in lock-step, with the workload, before the primary is killed. */
  readonly lockStepS: number;
  /** The guest's disk workload, whose records are checked after the failover (0: none). */
  readonly diskRateKiBps: number;
  /** The client's UDP probe interval. Each answer differs between the two guests, so each forces a checkpoint. */
  readonly probeIntervalMs: number;
  /** Seconds of iperf3 into the guest at the end of lock-step, and again without COLO after the failover (0: none). */
  readonly iperfS: number;
  /** How the primary is lost: its QEMU killed, or its host's link cut (its QEMU runs on, fenced once the secondary serves). */
  readonly failure: ColoFailure;
  /** Ports from here on: +0 incoming migration and +1 NBD on dst, +2 mirror and +3 comparator on src. */
  readonly basePort: number;
}

export const COLO_DEFAULTS: ColoSettings = { memoryMiB: 128, checkpointMs: 1000, lockStepS: 10, diskRateKiBps: 64, probeIntervalMs: 100, iperfS: 3, failure: 'kill', basePort: 4700 };

/** The most disk a run may make per image (four images, in the hosts' run directory: RAM on the embedded lab). */
export const MAX_DISK_MIB = 1024;

/** The data disk's size: room for the disk workload's records over the whole run (64 MiB at least). */
export function diskMiB(s: Pick<ColoSettings, 'diskRateKiBps' | 'lockStepS' | 'iperfS'>): number {
  // The workload writes from lock-step to the check after the failover: lock-step, both iperf3
  // runs, and a minute for the rest (start, failover, the window without COLO).
  const seconds = s.lockStepS + 2 * s.iperfS + 60;
  return Math.max(64, Math.ceil((s.diskRateKiBps * seconds) / 1024));
}

/** The build COLO works with here: 7.2 and 10.0.13 deadlock, 10.0.2 never enters COLO (docs/colo-trixie.md). */
export const COLO_QEMU = '11.1';

export function coloBuilder(y: Argv): Argv {
  return y
    .option('interval', { type: 'string', default: String(COLO_DEFAULTS.checkpointMs), describe: 'ms between checkpoints at the latest (x-checkpoint-delay); a miscompare forces one sooner. Several (100,1000,10000): a run for each, summed up per interval' })
    .option('repeat', { type: 'number', default: 1, describe: 'runs of each interval (the series sums them up: medians)' })
    .option('lockstep', { type: 'number', default: COLO_DEFAULTS.lockStepS, describe: 's in lock-step, with the workload, before the primary is killed' })
    .option('memory', { type: 'number', default: COLO_DEFAULTS.memoryMiB, describe: "the guest's RAM in MiB (the secondary holds it twice: COLO's RAM cache)" })
    .option('disk-rate', { type: 'number', default: COLO_DEFAULTS.diskRateKiBps, describe: 'KiB/s of records the guest writes to its replicated disk, checked after the failover (0: none)' })
    .option('probe-ms', { type: 'number', default: COLO_DEFAULTS.probeIntervalMs, describe: "ms between the client's UDP probes (each answer goes through colo-compare and, differing between the two guests, forces a checkpoint)" })
    .option('iperf', { type: 'number', default: COLO_DEFAULTS.iperfS, describe: 's of iperf3 TCP into the guest through colo-compare at the end of lock-step, and again without COLO after the failover (0: none)' })
    .option('failure', { choices: COLO_FAILURES, default: COLO_DEFAULTS.failure, describe: "how the primary is lost: kill (its QEMU, SIGKILL) or link (its host cut off the network; its QEMU, still running, is stopped once the secondary serves; the embedded lab only, refused with --hosts)" })
    .option('port', { type: 'number', default: COLO_DEFAULTS.basePort, describe: 'first of the four ports COLO uses (+0 migration and +1 NBD on dst, +2 mirror and +3 comparator on src)' })
    .option('qemu', { type: 'string', default: COLO_QEMU, describe: `the QEMU build of both sides (${COLO_QEMU}: Debian trixie-backports', fetched on first use; 7.2 and 10.0 deadlock or never enter COLO here)` })
    .option('results', { type: 'string', default: 'results', describe: 'directory for results/<run-id>/' })
    .option('prefix', { type: 'string', default: 'mlab', describe: 'lab to use: the one up with this prefix, or one brought up for the run' })
    .option('hosts', HOSTS_OPTION);
}

/** --interval: one checkpoint interval or several, comma-separated, each 10 ms to 10 min. */
export function intervalsFromArgs(a: Record<string, unknown>): number[] {
  const text = String(a.interval ?? '');
  const parts = text.split(',').map((p) => p.trim());
  const values = parts.map((p) => wholeNumberFromArgs({ interval: p }, 'interval', 10, 600_000));
  if (new Set(values).size !== values.length) throw new UsageError(`--interval ${text}: an interval is given twice`, 'give each once (--repeat runs each several times)');
  return values;
}

/** The options as settings (the first interval), each checked with a one-line error before anything starts. */
export function coloSettingsFromArgs(a: Record<string, unknown>): ColoSettings {
  const s = settingsOf(a);
  if (diskMiB(s) > MAX_DISK_MIB) {
    throw new UsageError(`--disk-rate ${s.diskRateKiBps} KiB/s over the run's length needs ${diskMiB(s)} MiB of disk per image, more than ${MAX_DISK_MIB}`, 'lower --disk-rate, --lockstep or --iperf');
  }
  return s;
}

function settingsOf(a: Record<string, unknown>): ColoSettings {
  return {
    checkpointMs: intervalsFromArgs(a)[0]!,
    lockStepS: wholeNumberFromArgs(a, 'lockstep', 1, 3600),
    memoryMiB: wholeNumberFromArgs(a, 'memory', 64, 4096),
    diskRateKiBps: wholeNumberFromArgs(a, 'disk-rate', 0, 65536),
    probeIntervalMs: wholeNumberFromArgs(a, 'probe-ms', 1, 10_000),
    iperfS: wholeNumberFromArgs(a, 'iperf', 0, 600),
    failure: COLO_FAILURES.find((f) => f === a.failure) ?? COLO_DEFAULTS.failure,
    basePort: wholeNumberFromArgs(a, 'port', 1024, 65532),
  };
}

