// Host sampling for a batch. The batch does not know QEMU's pids before each guest boots (the
// engine starts them inside migrateOnLab), so instead of startHostSampler's fixed pid list this
// loop asks the lab's sampling (sampling.ts) each tick for the batch's QEMU processes that exist
// now and the migration link's counters, and calls sampleHost on what that one read brought.
//
// On the embedded lab the link is read on the lab's switch, where the src and dst uplinks' peers
// both sit: one `ip -s -j link show` there reads both counters at one instant. Reading src and
// dst in two commands, each at its own moment, could show the link above its shaped rate (a user
// saw 190 %, reported in issue 9; the record was not kept). On hosts from a hosts file the two
// ends are two machines and are read apart; each end's rate is divided by its own read's span.
import { describeError } from '../errors.js';
import { hostSnapshot, sampleHost, type HostSnapshot, type LinkSample } from '../measure/host-sampler.js';
import { startPeriodic } from '../util/periodic.js';
import type { BatchSample } from './record.js';
import type { BatchSampling, LinkRead } from './sampling.js';

export interface BatchSampler {
  readonly samples: readonly BatchSample[];
  /** Stop and return every sample; rethrows the error that ended sampling. Idempotent. */
  stop(): Promise<BatchSample[]>;
}

/**
 * Bits per second of each link end between two reads. The counters were read at some moment
 * inside each read's [start, end]: dividing by the longest the interval can have been (end of the
 * later read minus start of the earlier) gives a rate the link certainly reached, so a slow read
 * (a busy host, an SSH round trip) can never show the link above what it carried.
 */
export function linkRates(prev: readonly LinkRead[], now: readonly LinkRead[]): LinkSample[] {
  return now.map((b, i) => {
    const ref = { ...(b.netns !== undefined ? { netns: b.netns } : {}), dev: b.dev, ...(b.role ? { role: b.role } : {}) };
    if (!b.counters) return { ...ref, error: b.error ?? `${b.dev} was not read` };
    const a = prev[i];
    const c = b.counters;
    const spanS = a ? (b.endMono - a.startMono) / 1000 : 0;
    if (!a?.counters || a.dev !== b.dev || spanS <= 0 || c.rxBytes < a.counters.rxBytes || c.txBytes < a.counters.txBytes) return { ...ref, counters: c };
    return { ...ref, counters: c, rxBitsPerSecond: (8 * (c.rxBytes - a.counters.rxBytes)) / spanS, txBitsPerSecond: (8 * (c.txBytes - a.counters.txBytes)) / spanS };
  });
}

export interface BatchSamplerOptions {
  readonly intervalMs: number;
  /** Where and what to read (the lab's). */
  readonly sampling: BatchSampling;
  /** Epoch ms the batch began: older QEMUs are not its guests. */
  readonly sinceMs: number;
  readonly onSample?: (s: BatchSample) => void;
  /** Told of a tick that read nothing (the sample is missing, the loop goes on). */
  readonly onMissed?: (why: string) => void;
  /** Told when sampling has ended on an error (too many ticks missed in a row); stop() rethrows it. */
  readonly onFailure?: (err: unknown) => void;
}

/** Ticks in a row that may fail before the sampler gives up (then stop() rethrows the last error). */
const MAX_MISSED_IN_A_ROW = 3;

export function startBatchSampler(opts: BatchSamplerOptions): BatchSampler {
  return startPeriodic<BatchSample>({
    what: 'batch sampler',
    intervalMs: opts.intervalMs,
    onSample: opts.onSample,
    onFailure: opts.onFailure,
    start: async (signal) => {
      const first = await opts.sampling.read(opts.sinceMs, signal);
      let previous: HostSnapshot = await hostSnapshot({ pids: [...first.qemus.keys()], reader: first.reader, signal });
      let previousLinks = first.links;
      let missed = 0;
      return async (tickSignal) => {
        try {
          // The guests change as they boot and stop: look for their QEMUs at every tick.
          const t = await opts.sampling.read(opts.sinceMs, tickSignal);
          const r = await sampleHost({ pids: [...t.qemus.keys()], previous, reader: t.reader, signal: tickSignal });
          previous = r.snapshot;
          const links = linkRates(previousLinks, t.links);
          previousLinks = t.links;
          missed = 0;
          return { ...r.sample, links, qemuLabels: Object.fromEntries([...t.qemus].map(([pid, l]) => [String(pid), l])) };
        } catch (err) {
          // One slow or failed read (a busy host, an SSH round trip that timed out) is a gap in
          // the series, not the end of it; several in a row are.
          if (tickSignal.aborted || ++missed >= MAX_MISSED_IN_A_ROW) throw err;
          opts.onMissed?.(describeError(err));
          return undefined;
        }
      };
    },
  });
}
