// `miglab colo`'s options and what they become: kept apart from the run (cli.ts, run.ts) so that
// parsing the command line loads nothing else.
import type { Argv } from 'yargs';
import { HOSTS_OPTION, wholeNumberFromArgs } from '../cli/options.js';

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
  /** Ports from here on: +0 incoming migration and +1 NBD on dst, +2 mirror and +3 comparator on src. */
  readonly basePort: number;
}

export const COLO_DEFAULTS: ColoSettings = { memoryMiB: 128, checkpointMs: 1000, lockStepS: 10, diskRateKiBps: 64, probeIntervalMs: 100, basePort: 4700 };

/** The build COLO works with here: 7.2 and 10.0.13 deadlock, 10.0.2 never enters COLO (docs/colo-trixie.md). */
export const COLO_QEMU = '11.1';

export function coloBuilder(y: Argv): Argv {
  return y
    .option('interval', { type: 'number', default: COLO_DEFAULTS.checkpointMs, describe: 'ms between checkpoints at the latest (x-checkpoint-delay); a miscompare forces one sooner' })
    .option('lockstep', { type: 'number', default: COLO_DEFAULTS.lockStepS, describe: 's in lock-step, with the workload, before the primary is killed' })
    .option('memory', { type: 'number', default: COLO_DEFAULTS.memoryMiB, describe: "the guest's RAM in MiB (the secondary holds it twice: COLO's RAM cache)" })
    .option('disk-rate', { type: 'number', default: COLO_DEFAULTS.diskRateKiBps, describe: 'KiB/s of records the guest writes to its replicated disk, checked after the failover (0: none)' })
    .option('probe-ms', { type: 'number', default: COLO_DEFAULTS.probeIntervalMs, describe: "ms between the client's UDP probes (each answer goes through colo-compare and, differing between the two guests, forces a checkpoint)" })
    .option('port', { type: 'number', default: COLO_DEFAULTS.basePort, describe: 'first of the four ports COLO uses (+0 migration and +1 NBD on dst, +2 mirror and +3 comparator on src)' })
    .option('qemu', { type: 'string', default: COLO_QEMU, describe: `the QEMU build of both sides (${COLO_QEMU}: Debian trixie-backports', fetched on first use; 7.2 and 10.0 deadlock or never enter COLO here)` })
    .option('results', { type: 'string', default: 'results', describe: 'directory for results/<run-id>/' })
    .option('prefix', { type: 'string', default: 'mlab', describe: 'lab to use: the one up with this prefix, or one brought up for the run' })
    .option('hosts', HOSTS_OPTION);
}

/** The options as settings, each checked with a one-line error before anything starts. */
export function coloSettingsFromArgs(a: Record<string, unknown>): ColoSettings {
  return {
    checkpointMs: wholeNumberFromArgs(a, 'interval', 10, 600_000),
    lockStepS: wholeNumberFromArgs(a, 'lockstep', 1, 3600),
    memoryMiB: wholeNumberFromArgs(a, 'memory', 64, 4096),
    diskRateKiBps: wholeNumberFromArgs(a, 'disk-rate', 0, 65536),
    probeIntervalMs: wholeNumberFromArgs(a, 'probe-ms', 1, 10_000),
    basePort: wholeNumberFromArgs(a, 'port', 1024, 65532),
  };
}

