// COLO's checkpoints, read from QEMU's own trace. query-migrate says only `"status": "colo"`
// while the pair is in lock-step (no checkpoint counter, no pause), so each QEMU is started with
// `-trace colo_* -D FILE -msg timestamp=on` (argv.ts), and the "log" trace backend writes lines
// stamped with the host's wall clock (src/qemu/trace-log.ts):
// - colo_send_message / colo_receive_message: "Send 'checkpoint-request' message", ... (one
//   checkpoint is request -> reply -> vmstate-send -> vmstate-size -> vmstate-received ->
//   vmstate-loaded);
// - colo_vm_state_change: "Change 'run' => 'stop'" and back: the primary's guest is paused from
//   the first to the second, which is what a checkpoint costs the guest;
// - colo_flush_ram_cache_begin (secondary): "dirty_pages N", the pages the checkpoint brought;
// - colo_compare_*: the comparator; "packet different" and *_miscompare lines are miscompares,
//   each of which asks for a checkpoint at once instead of at the next period.
//   ("packet different" is said once per miscompare.)
import { parseTraceLog, type TraceLogLine } from '../qemu/trace-log.js';

/** The COLO lines of one trace file, in file order. */
function parseTraceLines(text: string): TraceLogLine[] {
  return parseTraceLog(text, ['colo_']);
}

const MESSAGE = /^(Send|Receive) '([\w-]+)' message$/;
const STATE_CHANGE = /^Change '(\w+)' => '(\w+)'$/;
const DIRTY = /dirty_pages (\d+)/;

export interface PrimaryCheckpoint {
  /** When the primary asked for it (epoch ms, the primary host's clock). */
  readonly atMs: number;
  /** How long the primary's guest was paused for it; undefined if it never ran again (the pair broke, or the trace ended). */
  readonly pauseMs?: number;
  /** A miscompare came within MISCOMPARE_WINDOW_MS before it: colo-compare asked for it, not the period. */
  readonly forced: boolean;
}

export interface PrimaryTrace {
  /** The primary heard `checkpoint-ready`: the first full copy is in, lock-step begins. */
  readonly readyAtMs?: number;
  readonly checkpoints: readonly PrimaryCheckpoint[];
  /** Epoch ms of each miscompare colo-compare reported. */
  readonly miscompares: readonly number[];
}

/** A miscompare this close before a checkpoint request is taken as its cause. */
export const MISCOMPARE_WINDOW_MS = 20;

/** colo-compare says "packet different" once per miscompare, whatever the protocol (its *_miscompare lines are per packet side). */
function isMiscompare(l: TraceLogLine): boolean {
  return l.event === 'colo_compare_main' && /packet different/.test(l.args);
}

export function readPrimaryTrace(text: string): PrimaryTrace {
  const lines = parseTraceLines(text);
  let readyAtMs: number | undefined;
  const miscompares: number[] = [];
  const raw: { atMs: number; stopAtMs?: number; runAtMs?: number }[] = [];
  for (const l of lines) {
    if (isMiscompare(l)) {
      miscompares.push(l.atMs);
      continue;
    }
    const msg = MESSAGE.exec(l.args);
    if (l.event === 'colo_receive_message' && msg?.[2] === 'checkpoint-ready') readyAtMs ??= l.atMs;
    if (l.event === 'colo_send_message' && msg?.[2] === 'checkpoint-request') {
      raw.push({ atMs: l.atMs });
      continue;
    }
    const change = l.event === 'colo_vm_state_change' ? STATE_CHANGE.exec(l.args) : null;
    const cur = raw[raw.length - 1];
    if (!change || !cur) continue;
    if (change[1] === 'run' && change[2] === 'stop') cur.stopAtMs ??= l.atMs;
    else if (change[1] === 'stop' && change[2] === 'run' && cur.stopAtMs !== undefined) cur.runAtMs ??= l.atMs;
  }
  const checkpoints = raw.map((c) => ({
    atMs: c.atMs,
    pauseMs: c.stopAtMs !== undefined && c.runAtMs !== undefined ? round3(c.runAtMs - c.stopAtMs) : undefined,
    forced: miscompares.some((m) => m <= c.atMs && c.atMs - m <= MISCOMPARE_WINDOW_MS),
  }));
  return { readyAtMs, checkpoints, miscompares };
}

export interface SecondaryTrace {
  /** Pages flushed into the secondary's RAM, per checkpoint (colo_flush_ram_cache_begin). */
  readonly dirtyPages: readonly number[];
  /** When the secondary found the primary gone ("Can't receive COLO message" is logged, not traced: the last message received instead). */
  readonly lastMessageAtMs?: number;
}

export function readSecondaryTrace(text: string): SecondaryTrace {
  const lines = parseTraceLines(text);
  const dirtyPages: number[] = [];
  let lastMessageAtMs: number | undefined;
  for (const l of lines) {
    if (l.event === 'colo_flush_ram_cache_begin') {
      const m = DIRTY.exec(l.args);
      if (m) dirtyPages.push(Number(m[1]));
    } else if (l.event === 'colo_receive_message') lastMessageAtMs = l.atMs;
  }
  return { dirtyPages, lastMessageAtMs };
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
