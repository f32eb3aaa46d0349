// Two QEMUs, two clocks: the source stamps STOP, the destination stamps RESUME. On the embedded
// lab both are this machine's clock; on hosts reached over SSH each has its own, so a host's
// offset from miglab's clock is measured before the migration (events are corrected with it)
// and after (how far it drifted), and the run keeps both.
import type { Lab } from '../lab/index.js';
import type { RunOutputs } from './report.js';

type Clocks = NonNullable<RunOutputs['clocks']>;
type Offsets = Clocks['before'];

/** Offsets of the lab's three hosts now, as the lab measures them. */
export async function measureOffsets(lab: Pick<Lab, 'clockOffset'>, signal?: AbortSignal): Promise<{ method: Clocks['method']; offsets: Offsets }> {
  const [src, dst, client] = await Promise.all((['src', 'dst', 'client'] as const).map((role) => lab.clockOffset(role, { signal })));
  return {
    method: [src, dst, client].every((c) => c!.method === 'one-clock') ? 'one-clock' : 'ssh-round-trip',
    offsets: {
      sourceOffsetMs: src!.offsetMs,
      destinationOffsetMs: dst!.offsetMs,
      clientOffsetMs: client!.offsetMs,
      uncertaintyMs: Math.max(src!.uncertaintyMs, dst!.uncertaintyMs, client!.uncertaintyMs),
    },
  };
}

/** An event's time on miglab's clock: its host's offset removed. */
export function sideOffsetMs(offsets: Offsets | undefined, side: 'source' | 'destination'): number {
  if (!offsets) return 0;
  return side === 'source' ? offsets.sourceOffsetMs : offsets.destinationOffsetMs;
}

/** STOP->RESUME as the hosts' own clocks stamped it, from the corrected figure. */
export function uncorrectedSwitchoverMs(correctedMs: number, offsets: Offsets): number {
  return correctedMs + offsets.destinationOffsetMs - offsets.sourceOffsetMs;
}
