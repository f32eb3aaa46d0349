// The guest agent's heartbeat, read from the serial console. Each line carries a sequence number,
// the guest's monotonic clock and a boot id chosen once per boot, so a reset is visible (new
// boot id, or a sequence that goes backwards) and so is a stall (a gap in guest or host time).
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { MiglabError } from '../errors.js';
import { pollUntil, type WaitOptions } from '../util/deadline.js';

export interface Heartbeat {
  readonly seq: number;
  readonly monoNs: bigint;
  readonly bootId: string;
  /** Host wall-clock time (ms since epoch) when the line was read. */
  readonly hostMs: number;
}

const HB_RE = /MIGLAB-HB seq=(\d+) mono_ns=(\d+) boot=([0-9a-zA-Z]+)/;
const READY_RE = /MIGLAB-READY ip=(\S+) boot=([0-9a-zA-Z]+)/;
/** The guest kernel reporting its own death (printed on the console before QEMU exits). */
const CRASH_RE = /Kernel panic|general protection fault|BUG: unable to handle|Oops: /;

export function parseHeartbeat(line: string, hostMs: number): Heartbeat | undefined {
  const m = HB_RE.exec(line);
  if (!m) return undefined;
  return { seq: Number(m[1]), monoNs: BigInt(m[2]!), bootId: m[3]!, hostMs };
}

/** Collects heartbeats and the ready line from a serial console stream. */
export class HeartbeatLog {
  readonly beats: Heartbeat[] = [];
  ready: { ip: string; bootId: string; hostMs: number } | undefined;
  /** The first line where the guest kernel reported a crash, if it did. */
  crash: string | undefined;

  constructor(stream: Readable) {
    const rl = createInterface({ input: stream, crlfDelay: Infinity });
    rl.on('line', (line) => this.feed(line, Date.now()));
  }

  feed(line: string, hostMs: number): void {
    const hb = parseHeartbeat(line, hostMs);
    if (hb) {
      this.beats.push(hb);
      return;
    }
    const r = READY_RE.exec(line);
    if (r) this.ready = { ip: r[1]!, bootId: r[2]!, hostMs };
    if (!this.crash && CRASH_RE.test(line)) this.crash = line.trim();
  }

  get last(): Heartbeat | undefined {
    return this.beats[this.beats.length - 1];
  }

  waitReady(opts: WaitOptions): Promise<{ ip: string; bootId: string; hostMs: number }> {
    return pollUntil('waiting for the guest agent to report ready', () => this.ready, { ...opts, intervalMs: 20 });
  }

  /** Wait for a heartbeat that satisfies `pred` (default: any); a guest crash ends the wait. */
  waitBeat(pred: (hb: Heartbeat) => boolean = () => true, opts: WaitOptions): Promise<Heartbeat> {
    return pollUntil(
      'waiting for a guest heartbeat',
      () => {
        if (this.crash) throw new MiglabError('MIGRATION_FAILED', `the guest kernel crashed: ${this.crash.replace(/^\[\s*[\d.]+\]\s*/, '')}`);
        return this.beats.find(pred);
      },
      { ...opts, intervalMs: 20 },
    );
  }
}

export interface HeartbeatContinuity {
  readonly sourceLastSeq: number | undefined;
  readonly destinationFirstSeq: number | undefined;
  readonly sameBoot: boolean;
  /** Destination's sequence continues the source's: no reset, nothing replayed. */
  readonly continuous: boolean;
  /** Beats the guest printed that neither console showed (lost in the switchover), if any. */
  readonly missingBeats: number;
  /** Guest-clock gap between the last beat on the source and the first on the destination. */
  readonly guestGapMs: number | undefined;
  /** Host-clock gap between reading those two beats. */
  readonly hostGapMs: number | undefined;
}

/** Compare the two consoles of a migrated guest. */
export function heartbeatContinuity(source: readonly Heartbeat[], destination: readonly Heartbeat[]): HeartbeatContinuity {
  const s = source[source.length - 1];
  const d = destination[0];
  const sameBoot = !!s && !!d && s.bootId === d.bootId;
  const increasing = destination.every((hb, i) => i === 0 || hb.seq > destination[i - 1]!.seq);
  const continuous = sameBoot && !!s && !!d && d.seq > s.seq && increasing && destination.every((hb) => hb.bootId === s.bootId);
  return {
    sourceLastSeq: s?.seq,
    destinationFirstSeq: d?.seq,
    sameBoot,
    continuous,
    missingBeats: s && d ? Math.max(0, d.seq - s.seq - 1) : 0,
    guestGapMs: s && d ? Number(d.monoNs - s.monoNs) / 1e6 : undefined,
    hostGapMs: s && d ? d.hostMs - s.hostMs : undefined,
  };
}
