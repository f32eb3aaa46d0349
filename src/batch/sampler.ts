// Host sampling for a batch. The batch does not know QEMU's pids before each guest boots (the
// engine starts them inside migrateOnLab), so instead of startHostSampler's fixed pid list this
// loop calls sampleHost each tick with the QEMU processes that exist now: those whose `-name`
// says `guest=g<i>-<role>`, that run in the lab's src or dst namespace (other labs on the same
// machine are not ours) and that started after the batch began.
import { readFile, readdir, readlink, stat } from 'node:fs/promises';
import { parseProcStat } from '../lab/proc.js';
import { sampleHost, type HostSnapshot, type LinkRef } from '../measure/host-sampler.js';
import { startPeriodic } from '../util/periodic.js';
import type { BatchSample } from './record.js';

const USER_HZ = 100;

/** `g3-source` from a QEMU argv, or undefined when it is not a lab guest's QEMU. */
export function qemuGuestLabel(argv: readonly string[]): string | undefined {
  if (!/qemu-system-/.test(argv[0] ?? '')) return undefined;
  const i = argv.indexOf('-name');
  const m = i >= 0 ? /(?:^|,)guest=(g\d+-(?:source|destination))(?:,|$)/.exec(argv[i + 1] ?? '') : null;
  return m?.[1];
}

/** Boot time of this machine (epoch ms), from /proc/stat's btime. */
async function bootTimeMs(): Promise<number> {
  const m = /^btime\s+(\d+)/m.exec(await readFile('/proc/stat', 'utf8'));
  return m ? Number(m[1]) * 1000 : 0;
}

/** Inode numbers of named network namespaces (/run/netns/NAME), to match /proc/PID/ns/net. */
export async function netnsInodes(names: readonly string[]): Promise<Set<number>> {
  const out = new Set<number>();
  for (const n of names) out.add((await stat(`/run/netns/${n}`)).ino);
  return out;
}

/**
 * Lab guests' QEMU processes started at or after `sinceMs` (epoch), in one of the namespaces
 * `inNetns` (inode numbers; all namespaces when undefined): pid -> label.
 */
export async function findGuestQemus(sinceMs: number, opts: { bootMs?: number; inNetns?: ReadonlySet<number> } = {}): Promise<Map<number, string>> {
  const boot = opts.bootMs ?? (await bootTimeMs());
  const out = new Map<number, string>();
  const entries = await readdir('/proc');
  await Promise.all(
    entries
      .filter((e) => /^\d+$/.test(e))
      .map(async (e) => {
        // A process may exit between the listing and the read: skip it, it is not sampled.
        const cmdline = await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '');
        const label = qemuGuestLabel(cmdline.split('\0'));
        if (!label) return;
        if (opts.inNetns) {
          const ns = await readlink(`/proc/${e}/ns/net`).catch(() => '');
          if (!opts.inNetns.has(Number(/\[(\d+)\]/.exec(ns)?.[1]))) return;
        }
        const stat = await readFile(`/proc/${e}/stat`, 'utf8').catch(() => '');
        const startTicks = parseProcStat(stat)?.startTime ?? NaN;
        const startMs = boot + (startTicks / USER_HZ) * 1000;
        // One second of slack: btime is whole seconds.
        if (Number.isFinite(startMs) && startMs >= sinceMs - 1000) out.set(Number(e), label);
      }),
  );
  return out;
}

export interface BatchSampler {
  readonly samples: readonly BatchSample[];
  /** Stop and return every sample; rethrows the error that ended sampling. Idempotent. */
  stop(): Promise<BatchSample[]>;
}

export interface BatchSamplerOptions {
  readonly intervalMs: number;
  readonly links: readonly LinkRef[];
  /** Epoch ms the batch began: older QEMUs are not its guests. */
  readonly sinceMs: number;
  /** Namespaces the guests' QEMUs run in. */
  readonly netns: readonly string[];
  readonly onSample?: (s: BatchSample) => void;
}

export function startBatchSampler(opts: BatchSamplerOptions): BatchSampler {
  return startPeriodic<BatchSample>({
    what: 'batch sampler',
    intervalMs: opts.intervalMs,
    onSample: opts.onSample,
    start: async () => {
      const boot = await bootTimeMs();
      const inNetns = await netnsInodes(opts.netns);
      let previous: HostSnapshot | undefined;
      return async (signal) => {
        // The guests change as they boot and stop: look for their QEMUs at every tick.
        const qemus = await findGuestQemus(opts.sinceMs, { bootMs: boot, inNetns });
        const r = await sampleHost({ pids: [...qemus.keys()], links: opts.links, previous, windowMs: opts.intervalMs, signal });
        previous = r.snapshot;
        return { ...r.sample, qemuLabels: Object.fromEntries([...qemus].map(([pid, l]) => [String(pid), l])) };
      };
    },
  });
}
