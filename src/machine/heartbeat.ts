// The guest agent's heartbeat, read from the serial console. Each line carries a sequence number,
// the guest's monotonic clock and a boot id chosen once per boot, so a reset is visible (new
// boot id, or a sequence that goes backwards) and so is a stall (a gap in guest or host time).
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { MiglabError } from '../errors.js';
import { pollUntil, type WaitOptions } from '../util/deadline.js';
import { consoleTrouble, type ConsoleTrouble } from './console-trouble.js';

export interface Heartbeat {
  readonly seq: number;
  readonly monoNs: bigint;
  readonly bootId: string;
  /** Host wall-clock time (ms since epoch) when the line was read. */
  readonly hostMs: number;
}

// A boot id ends where a next console line begins on the same line: a COLO secondary's console
// tears a line when a checkpoint rolls its guest back mid-line, and the next heartbeat follows.
const HB_RE = /MIGLAB-HB seq=(\d+) mono_ns=(\d+) boot=([0-9a-zA-Z]+?)(?=MIGLAB-|[^0-9a-zA-Z]|$)/;
const READY_RE = /MIGLAB-READY ip=(\S+) boot=([0-9a-zA-Z]+)/;
/** Console lines kept to quote around trouble. */
const CONTEXT_LINES = 8;

/** Trouble as the run reports it: what was found, in a few words. */
export function troubleSummary(t: ConsoleTrouble): string {
  switch (t.kind) {
    case 'oom':
      return `its OOM killer killing ${t.process} (pid ${t.pid})`;
    case 'panic':
      return 'a kernel panic';
    case 'crash':
      return 'a kernel crash';
    case 'agent-exit':
      return `its agent (miglab-agent) exiting with status ${t.status}`;
    case 'initramfs':
      return 'a broken initramfs (check the image: miglab image info)';
  }
}

export function parseHeartbeat(line: string, hostMs: number): Heartbeat | undefined {
  const m = HB_RE.exec(line);
  if (!m) return undefined;
  return { seq: Number(m[1]), monoNs: BigInt(m[2]!), bootId: m[3]!, hostMs };
}

export type TroubleListener = (trouble: ConsoleTrouble & { readonly summary: string }, context: readonly string[]) => void;

/**
 * Collects heartbeats and the ready line from a serial console stream, and spots the guest in
 * trouble (OOM kill, kernel panic or crash, its agent exiting): the first trouble is kept, with
 * the console lines before it, and told to listeners at once.
 */
export class HeartbeatLog {
  readonly beats: Heartbeat[] = [];
  ready: { ip: string; bootId: string; hostMs: number } | undefined;
  /** The first trouble the console reported, with the lines before it. */
  trouble: { readonly found: ConsoleTrouble & { readonly summary: string }; readonly context: readonly string[] } | undefined;
  private readonly recent: string[] = [];
  private readonly listeners = new Set<TroubleListener>();

  constructor(stream: Readable) {
    const rl = createInterface({ input: stream, crlfDelay: Infinity });
    rl.on('line', (line) => this.feed(line, Date.now()));
  }

  /** The first crash line (kernel panic or crash), if the guest kernel reported one. */
  get crash(): string | undefined {
    const t = this.trouble?.found;
    return t && (t.kind === 'panic' || t.kind === 'crash') ? t.line : undefined;
  }

  /** Call `listener` for the first trouble (at once if it was seen already). */
  onTrouble(listener: TroubleListener): () => void {
    if (this.trouble) listener(this.trouble.found, this.trouble.context);
    else this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  feed(line: string, hostMs: number): void {
    const hb = parseHeartbeat(line, hostMs);
    if (hb) {
      this.beats.push(hb);
      return;
    }
    const r = READY_RE.exec(line);
    if (r) this.ready = { ip: r[1]!, bootId: r[2]!, hostMs };
    const t = this.trouble ? undefined : consoleTrouble(line);
    if (t) {
      this.trouble = { found: { ...t, summary: troubleSummary(t) }, context: [...this.recent] };
      for (const l of [...this.listeners]) l(this.trouble.found, this.trouble.context);
      this.listeners.clear();
    }
    if (line.trim()) this.recent.push(line.trim());
    if (this.recent.length > CONTEXT_LINES) this.recent.shift();
  }

  get last(): Heartbeat | undefined {
    return this.beats[this.beats.length - 1];
  }

  /** Wait for the agent's ready line; a guest in trouble while booting (a panic) ends the wait. */
  waitReady(opts: WaitOptions): Promise<{ ip: string; bootId: string; hostMs: number }> {
    return pollUntil(
      'waiting for the guest agent to report ready',
      () => {
        this.throwIfTroubled();
        return this.ready;
      },
      { ...opts, intervalMs: 20 },
    );
  }

  private throwIfTroubled(): void {
    const t = this.trouble?.found;
    if (t) throw new MiglabError('MIGRATION_FAILED', `the guest reported ${t.summary}: ${t.line.replace(/^\[\s*[\d.]+\]\s*/, '')}`);
  }

  /** Wait for a heartbeat that satisfies `pred` (default: any); a guest crash ends the wait. */
  waitBeat(pred: (hb: Heartbeat) => boolean = () => true, opts: WaitOptions): Promise<Heartbeat> {
    return pollUntil(
      'waiting for a guest heartbeat',
      () => {
        this.throwIfTroubled();
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
