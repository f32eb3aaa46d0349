// Host sampling for a batch. The batch does not know QEMU's pids before each guest boots (the
// engine starts them inside migrateOnLab), so instead of startHostSampler's fixed pid list this
// loop calls sampleHost each tick with the QEMU processes that exist now: those whose `-name`
// says `guest=g<i>-<role>`, that run in the lab's src or dst namespace (other labs on the same
// machine are not ours) and that started after the batch began.
//
// The migration link is read on the lab's switch, where the src and dst uplinks' peers both sit:
// one `ip -s -j link show` there reads both counters at one instant. Reading src and dst in two
// commands, each at its own moment, could show the link above its shaped rate (a
// user saw 190 %, reported in issue 9; the record was not kept).
import { performance } from 'node:perf_hooks';
import { readFile, readdir, readlink, stat } from 'node:fs/promises';
import type { Host } from '../host/host.js';
import { THIS_MACHINE } from '../lab/machine.js';
import { parseProcStat } from '../lab/proc.js';
import { ipLinkStatsArgv, parseIpLinkStats, sampleHost, type HostSnapshot, type LinkCounters, type LinkSample } from '../measure/host-sampler.js';
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

/** The switch ports that carry the migration: src's uplink peer and dst's, in the switch namespace. */
export interface SwitchPorts {
  readonly netns: string;
  /** Receives what src sends (its rx is src's uplink tx). */
  readonly srcPort: string;
  /** Sends what dst receives (its tx is dst's uplink rx). */
  readonly dstPort: string;
}

/** Counters of every link in one namespace, from one read, with when the read began and ended. */
export interface PortsRead {
  readonly startMono: number;
  readonly endMono: number;
  readonly counters: ReadonlyMap<string, LinkCounters>;
}

/**
 * Bits per second of the two ports between two reads. The counters were read at some moment
 * inside each read's [start, end]: dividing by the longest the interval can have been (end of the
 * later read minus start of the earlier) gives a rate the link certainly reached, so a slow `ip`
 * (a busy host) can never show the link above what it carried.
 */
export function portRates(prev: PortsRead, now: PortsRead, ports: SwitchPorts): LinkSample[] {
  const spanS = (now.endMono - prev.startMono) / 1000;
  return [ports.srcPort, ports.dstPort].map((dev) => {
    const ref = { netns: ports.netns, dev };
    const a = prev.counters.get(dev);
    const b = now.counters.get(dev);
    if (!b) return { ...ref, error: `${ports.netns}/${dev} is gone` };
    if (!a || spanS <= 0 || b.rxBytes < a.rxBytes || b.txBytes < a.txBytes) return { ...ref, counters: b };
    return { ...ref, counters: b, rxBitsPerSecond: (8 * (b.rxBytes - a.rxBytes)) / spanS, txBitsPerSecond: (8 * (b.txBytes - a.txBytes)) / spanS };
  });
}

async function readPorts(host: Host, ports: SwitchPorts, signal?: AbortSignal): Promise<PortsRead> {
  const startMono = performance.now();
  const r = await host.run(ipLinkStatsArgv(ports.netns), { timeoutMs: 5000, signal });
  return { startMono, endMono: performance.now(), counters: parseIpLinkStats(r.stdout) };
}

export interface BatchSamplerOptions {
  readonly intervalMs: number;
  readonly ports: SwitchPorts;
  /** Epoch ms the batch began: older QEMUs are not its guests. */
  readonly sinceMs: number;
  /** Namespaces the guests' QEMUs run in. */
  readonly netns: readonly string[];
  /** The machine the lab is on: the switch's ports are read there (default this one, as the embedded lab's). */
  readonly host?: Host;
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
      const host = opts.host ?? THIS_MACHINE.host;
      let previous: HostSnapshot | undefined;
      let previousPorts = await readPorts(host, opts.ports);
      return async (signal) => {
        // The guests change as they boot and stop: look for their QEMUs at every tick.
        const qemus = await findGuestQemus(opts.sinceMs, { bootMs: boot, inNetns });
        const [r, ports] = await Promise.all([sampleHost({ pids: [...qemus.keys()], previous, windowMs: opts.intervalMs, signal }), readPorts(host, opts.ports, signal)]);
        previous = r.snapshot;
        const links = portRates(previousPorts, ports, opts.ports);
        previousPorts = ports;
        return { ...r.sample, links, qemuLabels: Object.fromEntries([...qemus].map(([pid, l]) => [String(pid), l])) };
      };
    },
  });
}
