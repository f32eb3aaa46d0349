// The client-side downtime probe: `miglab-probe ping` pings the guest agent every millisecond
// (by default) from a host inside the lab and, when stopped, prints one CSV row per probe. This
// module starts and stops it, parses its output and reduces it to what a migration report needs:
// the longest silence seen by a client (the downtime as a user of the guest notices it), the
// probes lost in it, round-trip times, and the guest's own view of the stall.
import { MiglabError } from '../errors.js';
import type { Host, HostProcess } from '../host/host.js';
import type { WaitOptions } from '../util/deadline.js';
import { AGENT_PORT } from './agent-client.js';
import { interruptAndWait } from '../host/interrupt.js';

/** One probe as the tool recorded it. Times are epoch ns (CLOCK_REALTIME-based). */
export interface ProbeRow {
  readonly seq: number;
  readonly sentNs: bigint;
  /** Undefined: no reply (lost). */
  readonly recvNs: bigint | undefined;
  /** The guest's CLOCK_MONOTONIC in the reply. */
  readonly guestMonoNs: bigint | undefined;
}

/** The `# miglab-probe ping k=v ...` line: the tool's settings and counters. */
export type ProbeMeta = Readonly<Record<string, string>>;

export interface ProbeCsv {
  readonly meta: ProbeMeta;
  readonly rows: readonly ProbeRow[];
}

export interface ProbeResult {
  readonly sent: number;
  readonly received: number;
  readonly lost: number;
  /** The nominal probe interval. */
  readonly intervalMs: number;
  /** A silence shorter than one interval cannot be seen: the resolution is the interval. */
  readonly resolutionMs: number;
  /** Largest gap between consecutive reply receive times (null with fewer than two replies). */
  readonly longestGapMs: number | null;
  /** Epoch ms of the reply before and after that gap. */
  readonly longestGapStartMs: number | null;
  readonly longestGapEndMs: number | null;
  /** Probes sent within the gap that got no reply. */
  readonly lostAroundGap: number;
  readonly rttP50Ms: number | null;
  readonly rttP99Ms: number | null;
  readonly rttMaxMs: number | null;
  /** Largest gap in the guest's monotonic clock between consecutive replies (its view of the stall). */
  readonly guestGapMs: number | null;
  /** Epoch ms of the first and last probe sent. */
  readonly firstSentMs: number | null;
  readonly lastSentMs: number | null;
  /**
   * From the last reply to the last probe sent, when the probes sent in that time went unanswered:
   * the client had not heard the guest again when probing stopped, so its silence has no end
   * (null: the replies went on to the end, within a few probes still in flight).
   */
  readonly silentAtEndMs: number | null;
  /** Probes sent after the last reply, none answered. */
  readonly unansweredAtEnd: number;
}

/**
 * Probes in flight when probing stops may go unanswered (the tool drains replies for 100 ms): a
 * silence at the end counts only past this many intervals and this many ms.
 */
const OPEN_SILENCE_MIN_PROBES = 20;
const OPEN_SILENCE_MIN_MS = 20;

export interface AnalyzeOptions {
  /**
   * Only gaps that overlap this window (epoch ms) count, e.g. from the switchover to a little
   * after the resume: a reply still in flight when the guest stopped does not hide the silence
   * after it, and an unrelated hiccup elsewhere is not taken for the migration's.
   */
  readonly within?: { readonly fromMs: number; readonly toMs: number };
  /** The nominal interval; default the median spacing of the send times. */
  readonly intervalUs?: number;
}

/** probe.csv's columns as the probe tool (vm-images/tools/miglab-probe.c) writes them. */
export const PROBE_CSV_COLUMNS = [
  { key: 'seq', unit: 'count', about: 'Probe number, from 0' },
  { key: 'sent_ns', unit: 'epoch ns', about: 'When it was sent (CLOCK_MONOTONIC plus one offset to real time measured at start)' },
  { key: 'recv_ns', unit: 'epoch ns', about: 'When its reply arrived; empty: lost (no reply)' },
  { key: 'guest_mono_ns', unit: 'ns', about: "The guest's CLOCK_MONOTONIC when it answered (its own view of a stall)" },
] as const;

const HEADER = PROBE_CSV_COLUMNS.map((c) => c.key).join(',');

/** Parse the tool's output: `#` lines (the first one with k=v settings), the header, the rows. */
export function parseProbeCsv(text: string): ProbeCsv {
  const meta: Record<string, string> = {};
  const rows: ProbeRow[] = [];
  let lineNo = 0;
  for (const raw of text.split('\n')) {
    lineNo++;
    const line = raw.trim();
    if (line === '' || line === HEADER) continue;
    if (line.startsWith('#')) {
      for (const w of line.slice(1).trim().split(/\s+/)) {
        const eq = w.indexOf('=');
        if (eq > 0) meta[w.slice(0, eq)] = w.slice(eq + 1);
      }
      continue;
    }
    const f = line.split(',');
    if (f.length !== 4 || !/^\d+$/.test(f[0]!) || !/^\d+$/.test(f[1]!) || !/^\d*$/.test(f[2]!) || !/^\d*$/.test(f[3]!)) {
      throw new MiglabError('COMMAND_FAILED', `miglab-probe output line ${lineNo} is not "${HEADER}": "${line.slice(0, 120)}"`);
    }
    rows.push({
      seq: Number(f[0]),
      sentNs: BigInt(f[1]!),
      recvNs: f[2] ? BigInt(f[2]) : undefined,
      guestMonoNs: f[3] ? BigInt(f[3]) : undefined,
    });
  }
  return { meta, rows };
}

/** Epoch ns to epoch ms, to the microsecond (a double holds that exactly enough). */
export function nsToMs(ns: bigint): number {
  return Number(ns / 1000n) / 1000;
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

/**
 * The replies either side of a moment (epoch ms, the client's clock): the last received at or
 * before it and the first after, in receive order. Between them is the silence that holds the
 * moment, which need not be the longest one (a busy host's hiccup nearby can be longer). Either
 * is undefined when no reply came on that side.
 */
export function repliesAround(rows: readonly ProbeRow[], atMs: number): { before?: ProbeRow & { recvNs: bigint }; after?: ProbeRow & { recvNs: bigint } } {
  const atNs = BigInt(Math.round(atMs * 1e6));
  let before: (ProbeRow & { recvNs: bigint }) | undefined;
  let after: (ProbeRow & { recvNs: bigint }) | undefined;
  for (const r of rows) {
    if (r.recvNs === undefined) continue;
    const reply = r as ProbeRow & { recvNs: bigint };
    if (reply.recvNs <= atNs) {
      if (!before || reply.recvNs > before.recvNs) before = reply;
    } else if (!after || reply.recvNs < after.recvNs) after = reply;
  }
  return { before, after };
}

/** Reduce probe rows to the figures of a ProbeResult. Pure. */
export function analyzeProbe(rows: readonly ProbeRow[], opts: AnalyzeOptions = {}): ProbeResult {
  const bySent = [...rows].sort((a, b) => (a.sentNs < b.sentNs ? -1 : a.sentNs > b.sentNs ? 1 : 0));
  const replies = rows.filter((r): r is ProbeRow & { recvNs: bigint } => r.recvNs !== undefined);
  replies.sort((a, b) => (a.recvNs < b.recvNs ? -1 : a.recvNs > b.recvNs ? 1 : 0));

  let intervalMs: number;
  if (opts.intervalUs !== undefined) {
    intervalMs = opts.intervalUs / 1000;
  } else {
    const spacings: number[] = [];
    for (let i = 1; i < bySent.length; i++) spacings.push(Number(bySent[i]!.sentNs - bySent[i - 1]!.sentNs) / 1e6);
    intervalMs = median(spacings) ?? 0;
  }

  // The longest gap between consecutive replies (overlapping `within`, when given).
  let gapIdx = -1;
  let gapNs = -1n;
  const fromNs = opts.within ? BigInt(Math.round(opts.within.fromMs * 1e6)) : undefined;
  const toNs = opts.within ? BigInt(Math.round(opts.within.toMs * 1e6)) : undefined;
  for (let i = 1; i < replies.length; i++) {
    const start = replies[i - 1]!.recvNs;
    const end = replies[i]!.recvNs;
    if (fromNs !== undefined && toNs !== undefined && (end < fromNs || start > toNs)) continue;
    if (end - start > gapNs) {
      gapNs = end - start;
      gapIdx = i;
    }
  }
  const gapStart = gapIdx > 0 ? replies[gapIdx - 1]!.recvNs : undefined;
  const gapEnd = gapIdx > 0 ? replies[gapIdx]!.recvNs : undefined;
  let lostAroundGap = 0;
  if (gapStart !== undefined && gapEnd !== undefined) {
    for (const r of rows) if (r.recvNs === undefined && r.sentNs >= gapStart && r.sentNs <= gapEnd) lostAroundGap++;
  }

  const rtts = replies.map((r) => Number(r.recvNs - r.sentNs) / 1e6).sort((a, b) => a - b);

  // A silence that had not ended when probing stopped: every probe sent after the last reply arrived went unanswered.
  const lastReply = replies.at(-1);
  const lastSent = bySent.at(-1);
  const unansweredAtEnd = lastReply ? rows.filter((r) => r.recvNs === undefined && r.sentNs > lastReply.recvNs).length : rows.length;
  const openNs = lastReply && lastSent && lastSent.sentNs > lastReply.recvNs ? lastSent.sentNs - lastReply.recvNs : 0n;
  const silentAtEndMs = lastReply && unansweredAtEnd >= OPEN_SILENCE_MIN_PROBES && Number(openNs) / 1e6 >= Math.max(OPEN_SILENCE_MIN_MS, OPEN_SILENCE_MIN_PROBES * intervalMs) ? Number(openNs) / 1e6 : null;

  const guest = rows
    .map((r) => r.guestMonoNs)
    .filter((g): g is bigint => g !== undefined && r0(g))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  let guestGapNs: bigint | undefined;
  for (let i = 1; i < guest.length; i++) {
    const g = guest[i]! - guest[i - 1]!;
    if (guestGapNs === undefined || g > guestGapNs) guestGapNs = g;
  }

  return {
    sent: rows.length,
    received: replies.length,
    lost: rows.length - replies.length,
    intervalMs,
    resolutionMs: intervalMs,
    // From the two replies' times as given below (to the µs), so that a figure cut from the same
    // two replies (the client-silence breakdown) comes out the same, not a rounding step apart.
    longestGapMs: gapStart !== undefined && gapEnd !== undefined ? nsToMs(gapEnd) - nsToMs(gapStart) : null,
    longestGapStartMs: gapStart === undefined ? null : nsToMs(gapStart),
    longestGapEndMs: gapEnd === undefined ? null : nsToMs(gapEnd),
    lostAroundGap,
    rttP50Ms: percentile(rtts, 50),
    rttP99Ms: percentile(rtts, 99),
    rttMaxMs: rtts.length ? rtts[rtts.length - 1]! : null,
    guestGapMs: guestGapNs === undefined ? null : Number(guestGapNs) / 1e6,
    firstSentMs: bySent.length ? nsToMs(bySent[0]!.sentNs) : null,
    lastSentMs: bySent.length ? nsToMs(bySent[bySent.length - 1]!.sentNs) : null,
    silentAtEndMs,
    unansweredAtEnd,
  };
}

// A reply without a guest clock (an agent that sent none) reads as 0: not a time.
function r0(g: bigint): boolean {
  return g > 0n;
}

export interface StartProbeOptions {
  /** A host inside the lab that reaches the guest (the lab's `client` namespace). */
  readonly host: Host;
  readonly guestIp: string;
  readonly port?: number;
  /** Default 1000 (1 kHz). */
  readonly intervalUs?: number;
  /** The probe ends by itself after this long if nobody stops it. */
  readonly maxDurationMs: number;
  /** The built miglab-probe (ensureProbeTool()). */
  readonly toolPath: string;
  /** Append the tool's raw output (the CSV) to this file. */
  readonly logFile?: string;
  /** That file cannot be written (disk full): the caller decides what it means for its run. */
  readonly onLogError?: (err: Error) => void;
}

/** What stop() returns: the figures plus every row and the tool's own counters. */
export interface ProbeRun extends ProbeResult {
  readonly rows: readonly ProbeRow[];
  readonly meta: ProbeMeta;
}

export interface ProbeHandle {
  readonly pid: number;
  readonly process: HostProcess;
  /** Epoch ms when the probe was started. */
  readonly startedAtMs: number;
  /** SIGINT the probe (through its host), wait for its CSV and analyze it. Safe to call twice. */
  stop(opts?: Partial<WaitOptions> & Pick<AnalyzeOptions, 'within'>): Promise<ProbeRun>;
}

export class ProbeError extends MiglabError {
  constructor(message: string, context: Record<string, unknown>, cause?: unknown) {
    super('COMMAND_FAILED', message, { context, cause });
    this.name = 'ProbeError';
  }
}

/** Start `miglab-probe ping` on `host`. Whoever starts it must stop() it (register on a Teardown). */
export function startProbe(o: StartProbeOptions): ProbeHandle {
  const intervalUs = o.intervalUs ?? 1000;
  if (!Number.isInteger(intervalUs) || intervalUs < 1 || intervalUs > 60_000_000) {
    throw new MiglabError('BAD_INPUT', `probe interval must be 1..60000000 us, not ${intervalUs}`);
  }
  if (!Number.isInteger(o.maxDurationMs) || o.maxDurationMs < 1) throw new MiglabError('BAD_INPUT', `probe duration must be a positive whole number of ms, not ${o.maxDurationMs}`);
  const port = o.port ?? AGENT_PORT;
  const argv = [o.toolPath, 'ping', o.guestIp, String(port), String(intervalUs), String(o.maxDurationMs)];
  const proc = o.host.spawn(argv, o.logFile ? { logFile: o.logFile, onLogError: o.onLogError } : {});
  const startedAtMs = Date.now();
  const chunks: Buffer[] = [];
  proc.stdout.on('data', (c: Buffer) => chunks.push(c));
  const errChunks: Buffer[] = [];
  proc.stderr.on('data', (c: Buffer) => errChunks.push(c));
  let stopping: Promise<ProbeRun> | undefined;
  const context = { host: o.host.name, argv, pid: proc.pid };

  const stop = (opts: Partial<WaitOptions> & Pick<AnalyzeOptions, 'within'> = {}): Promise<ProbeRun> => {
    stopping ??= (async () => {
      // SIGINT makes the tool print what it has: it drains replies for 100 ms, then writes up to a few MB of CSV.
      const refused = await interruptAndWait(o.host, proc, 'the probe', opts);
      if (refused !== undefined) throw new ProbeError(`could not signal the probe (pid ${proc.pid}): ${refused}`, context);
      const exit = await proc.exited;
      // 'end' of stdout may come after 'exit': wait for the stream to close.
      if (!proc.stdout.readableEnded) await new Promise<void>((res) => (proc.stdout.readableEnded ? res() : proc.stdout.once('close', () => res())));
      const stderr = Buffer.concat(errChunks).toString('utf8').trim();
      if (exit.exitCode !== 0) {
        throw new ProbeError(`the probe exited ${exit.signal ?? `with code ${exit.exitCode}`}${stderr ? `: ${stderr.split('\n').slice(-2).join(' | ')}` : ''}`, {
          ...context,
          exit,
        });
      }
      const { meta, rows } = parseProbeCsv(Buffer.concat(chunks).toString('utf8'));
      const interval = Number(meta.interval_us);
      const analyzed = analyzeProbe(rows, { within: opts.within, intervalUs: Number.isFinite(interval) && interval > 0 ? interval : intervalUs });
      return { ...analyzed, rows, meta };
    })();
    return stopping;
  };
  return { pid: proc.pid, process: proc, startedAtMs, stop };
}
