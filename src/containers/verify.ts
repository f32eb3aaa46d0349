// Did a migrated container carry on where it stopped? The workload (vm-images/workload/
// miglab-workload.c) emits a sequence the host can recompute and keeps a chain hash over it; this
// module recomputes both and compares them, its log file and its process tree, before the freeze
// (the source's last `state`) and after the restore (the destination's first), with one readable
// sentence per failed check. Pure: the caller fetches the states and reads the log.
import type { WorkloadMode, WorkloadState } from './workload.js';

const U64 = 64;

/** The i-th prime (0-based: primeAt(0) = 2), from a sieve cached and grown as bigger i are asked. */
const primes: number[] = [];
let sievedTo = 1;

/** An upper bound of the n-th prime (1-based), from Rosser's theorem: n (ln n + ln ln n) for n >= 6. */
function primeBound(n: number): number {
  return n < 6 ? 15 : Math.ceil(n * (Math.log(n) + Math.log(Math.log(n))));
}

function primeAt(i: number): number {
  if (i >= primes.length) {
    // Sieve anew up to at least twice the last limit: the work stays linear in the largest i asked.
    const limit = Math.max(primeBound(i + 1), 2 * sievedTo);
    const composite = new Uint8Array(limit + 1);
    primes.length = 0;
    for (let p = 2; p <= limit; p++) {
      if (composite[p]) continue;
      primes.push(p);
      for (let q = p * p; q <= limit; q += p) composite[q] = 1;
    }
    sievedTo = limit;
  }
  return primes[i]!;
}

/** Fibonacci mod 2^64 by fast doubling: F(2k) = F(k)(2F(k+1) - F(k)), F(2k+1) = F(k)^2 + F(k+1)^2. */
function fibonacci(i: number): bigint {
  let a = 0n; // F(k)
  let b = 1n; // F(k+1)
  for (const bit of i.toString(2)) {
    const c = BigInt.asUintN(U64, a * BigInt.asUintN(U64, 2n * b - a));
    const d = BigInt.asUintN(U64, a * a + b * b);
    if (bit === '1') {
      a = d;
      b = BigInt.asUintN(U64, c + d);
    } else {
      a = c;
      b = d;
    }
  }
  return a;
}

/** v_i of a mode, as the workload computes it. mem's tick counter counts like natural. */
export function sequenceValue(mode: WorkloadMode, i: number): bigint {
  if (!Number.isSafeInteger(i) || i < 0) throw new RangeError(`sequence index ${i} is not a whole number >= 0`);
  switch (mode) {
    case 'fibonacci':
      return fibonacci(i);
    case 'prime':
      return BigInt(primeAt(i));
    default:
      return BigInt(i);
  }
}

// ---- the chain hash: FNV-1a 64 over le64(i) || le64(v_i) for each value ----------------------
// In two 32-bit halves as plain numbers: bigint arithmetic per byte is about 20 times slower, and
// checking a log of 10^5 values recomputes that many.

const FNV_OFFSET_HI = 0xcbf29ce4;
const FNV_OFFSET_LO = 0x84222325;
/** FNV_PRIME = 2^40 + 0x1b3. */
const FNV_PRIME_LOW = 0x1b3;
const TWO32 = 2 ** 32;

interface Hash {
  hi: number;
  lo: number;
}

/** h = (h ^ b) * FNV_PRIME mod 2^64 for the 8 bytes of (hi, lo), low byte first. */
function hashU64(h: Hash, hi: number, lo: number): void {
  for (let b = 0; b < 8; b++) {
    const byte = b < 4 ? (lo >>> (8 * b)) & 0xff : (hi >>> (8 * (b - 4))) & 0xff;
    const l = (h.lo ^ byte) >>> 0;
    // (hi, l) * (2^40 + 0x1b3): l * 2^40 lands in the high word as l << 8; the products stay
    // below 2^42, exact in a double, and >>> 0 takes them mod 2^32.
    const lowProduct = l * FNV_PRIME_LOW;
    h.hi = (h.hi * FNV_PRIME_LOW + Math.floor(lowProduct / TWO32) + ((l << 8) >>> 0)) >>> 0;
    h.lo = lowProduct >>> 0;
  }
}

function hex(h: Hash): string {
  return h.hi.toString(16).padStart(8, '0') + h.lo.toString(16).padStart(8, '0');
}

/** A walk along one mode's sequence: n values hashed so far, and Fibonacci's two running values. */
interface Walk {
  n: number;
  h: Hash;
  fibA: bigint;
  fibB: bigint;
}

const CHECKPOINT_EVERY = 4096;
/** Per mode: the furthest walk, and a copy every CHECKPOINT_EVERY values to go back to. */
const walks = new Map<WorkloadMode, { last: Walk; checkpoints: Walk[] }>();

const copyWalk = (w: Walk): Walk => ({ n: w.n, h: { ...w.h }, fibA: w.fibA, fibB: w.fibB });

function step(mode: WorkloadMode, w: Walk): void {
  let v: bigint;
  if (mode === 'fibonacci') {
    v = w.fibA;
    [w.fibA, w.fibB] = [w.fibB, BigInt.asUintN(U64, w.fibA + w.fibB)];
  } else {
    v = sequenceValue(mode, w.n);
  }
  hashU64(w.h, Math.floor(w.n / TWO32), w.n >>> 0);
  hashU64(w.h, Number(v >> 32n), Number(v & 0xffffffffn));
  w.n++;
}

/**
 * The workload's chain hash after n values (indices 0..n-1), 16 lowercase hex digits; n = 0 gives
 * the FNV offset basis, as a fresh workload reports. Memoised per mode: asking for a larger n
 * goes on from the last walk, a smaller one from the nearest checkpoint below it, so checking
 * many states of one run costs about one pass over the sequence.
 */
export function chainHash(mode: WorkloadMode, n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`value count ${n} is not a whole number >= 0`);
  let memo = walks.get(mode);
  if (!memo) {
    const start: Walk = { n: 0, h: { hi: FNV_OFFSET_HI, lo: FNV_OFFSET_LO }, fibA: 0n, fibB: 1n };
    memo = { last: copyWalk(start), checkpoints: [start] };
    walks.set(mode, memo);
  }
  let w = memo.last;
  if (n < w.n) {
    w = copyWalk(memo.checkpoints[Math.floor(n / CHECKPOINT_EVERY)]!);
    memo.last = w;
  }
  while (w.n < n) {
    step(mode, w);
    if (w.n % CHECKPOINT_EVERY === 0 && memo.checkpoints.length === w.n / CHECKPOINT_EVERY) memo.checkpoints.push(copyWalk(w));
  }
  return hex(w.h);
}

// ---- the continuity checks --------------------------------------------------------------------

export interface ContinuityCheck {
  readonly name: string;
  readonly ok: boolean;
  /** One sentence with the figures: what was found, and for a failure what it means. */
  readonly detail: string;
}

export interface ContinuityResult {
  /** Every check passed. */
  readonly ok: boolean;
  readonly checks: readonly ContinuityCheck[];
}

export interface ContinuityInput {
  readonly mode: WorkloadMode;
  /** The last `state` from the source before the freeze. */
  readonly before: WorkloadState;
  /** The first `state` from the destination after the restore. */
  readonly after: WorkloadState;
  /** The log file's text, read after `after` was taken. */
  readonly log?: string;
}

const pass = (name: string, detail: string): ContinuityCheck => ({ name, ok: true, detail });
const fail = (name: string, detail: string): ContinuityCheck => ({ name, ok: false, detail });

/** What is wrong with one side's (v, h) for its own n, or undefined if both are right. */
function stateProblem(mode: WorkloadMode, side: string, s: WorkloadState): string | undefined {
  if (s.mode !== mode) return `the ${side} reports mode ${s.mode}, not ${mode}`;
  if (s.n > 0) {
    const want = sequenceValue(mode, s.i);
    if (s.v !== want) return `the ${side}'s last value v=${s.v} at i=${s.i} is not ${mode}(${s.i}) = ${want}`;
  }
  const h = chainHash(mode, s.n);
  if (s.h !== h) {
    return `the ${side}'s chain hash after n=${s.n} values is ${s.h}, not ${h} as recomputed: its history has a gap, a repeat or a wrong value`;
  }
  return undefined;
}

/**
 * (1) The sequence in the process's own memory. The chain hash is part of the dumped memory, so
 * h_n matching the host's recomputation proves the process emitted exactly the indices 0..n-1,
 * in order, each once, each with its right value, on both sides: a restore that lost or doubled
 * an update to its state would show here. after.n >= before.n proves the restored image is not
 * older than what the source was last seen to have emitted (an older one would emit those
 * indices again: a repeat to the outside world).
 */
function sequenceCheck({ mode, before, after }: ContinuityInput): ContinuityCheck {
  const name = 'sequence';
  const problem = stateProblem(mode, 'source', before) ?? stateProblem(mode, 'destination', after);
  if (problem) return fail(name, `${problem}.`);
  if (after.n < before.n) {
    return fail(
      name,
      `the destination reports n=${after.n}, fewer than the n=${before.n} the source had emitted before the freeze: the restored process went back${after.n <= 1 ? ' to the start' : ''} and repeats indices ${after.n}..${before.n - 1}.`,
    );
  }
  return pass(name, `the source stopped at n=${before.n}, the destination went on to n=${after.n}; both values and chain hashes match ${mode} recomputed on the host.`);
}

export interface LogScan {
  /** Whole, right lines from index 0. */
  readonly lines: number;
  /** Byte offset after each whole line k (ends[k]). */
  readonly ends: readonly number[];
  readonly problem?: string;
}

/** Reads the log from the start; stops at the first line that is not `k v_k` for its position k. */
export function scanLog(mode: WorkloadMode, text: string): LogScan {
  const ends: number[] = [];
  let offset = 0;
  for (let k = 0; offset < text.length; k++) {
    const nl = text.indexOf('\n', offset);
    if (nl < 0) {
      return { lines: k, ends, problem: `line ${k} ${JSON.stringify(text.slice(offset, offset + 40))} has no newline: a torn write (the file ends inside a line)` };
    }
    const line = text.slice(offset, nl);
    const m = /^(\d+) (\d+)$/.exec(line);
    if (!m) return { lines: k, ends, problem: `line ${k} ${JSON.stringify(line.slice(0, 40))} is not "i v": a torn or overwritten line` };
    const idx = Number(m[1]);
    if (idx < k) return { lines: k, ends, problem: `line ${k} repeats index ${idx} (first written at line ${idx}): values were emitted twice` };
    if (idx > k) return { lines: k, ends, problem: `line ${k} has index ${idx}: indices ${k}..${idx - 1} are missing (a gap)` };
    const want = sequenceValue(mode, k);
    if (BigInt(m[2]!) !== want) return { lines: k, ends, problem: `line ${k} has value ${m[2]}, but ${mode}(${k}) = ${want}` };
    offset = nl + 1;
    ends.push(offset);
  }
  return { lines: ends.length, ends };
}

/**
 * (2) The log, the outside world's view: lines 0..k with no gap, no repeat, no torn line, each
 * value right, reaching at least index after.n-1. Each line is one write(2), so a torn line is a
 * real fault (a hole left by a restored offset past the file's end), not buffering; a repeat
 * means a restore from an image older than writes that had reached the file.
 */
function logCheck(mode: WorkloadMode, after: WorkloadState, log: string, scan: LogScan): ContinuityCheck {
  const name = 'log';
  if (scan.problem) return fail(name, `${scan.problem}.`);
  if (scan.lines < after.n) {
    return fail(name, `the log ends at index ${scan.lines - 1}, but the destination had emitted n=${after.n} values: the writes of indices ${scan.lines}..${after.n - 1} never reached the file.`);
  }
  return pass(name, `${scan.lines} lines (${log.length} bytes), indices 0..${scan.lines - 1} each once and in order, every value ${mode}(i), the last line whole.`);
}

/**
 * (3) The process tree: the same pid, ppid and child inside the PID namespace (the namespace came
 * back with its numbering, and it is the same process, not a new one) and the child's beats
 * arriving over the pipe after the restore (the second process and the pipe came back and run).
 */
function treeCheck({ before, after }: ContinuityInput): ContinuityCheck {
  const name = 'process tree';
  for (const key of ['pid', 'ppid', 'child'] as const) {
    if (before[key] !== after[key]) {
      return fail(name, `${key} was ${before[key]} on the source and is ${after[key]} on the destination: not the same process tree in the same PID namespace.`);
    }
  }
  if (!before.childAlive) return fail(name, `the child (pid ${before.child}) was not beating on the source before the freeze (child_alive=0): nothing to compare.`);
  if (!after.childAlive) return fail(name, `the child (pid ${after.child}) is not beating on the destination (child_alive=0): it did not come back with the tree, or its pipe did not.`);
  return pass(name, `pid ${after.pid}, ppid ${after.ppid} and child ${after.child} as on the source, and the child beats over its pipe.`);
}

/**
 * (4) The log's file descriptor: its offset did not go back (the fd came back, at its position);
 * with the log's text, the offset equals the bytes of the first n lines on both sides, which
 * proves the file held every write of the source when the destination resumed appending (the
 * NFS trap: writes cached in the source's client and lost make the restored offset point past
 * the file's end).
 */
function logOffsetCheck({ before, after }: ContinuityInput, scan: LogScan | undefined): ContinuityCheck {
  const name = 'log offset';
  if (before.logBytes < 0 || after.logBytes < 0) {
    return fail(name, `log_bytes is ${before.logBytes} on the source and ${after.logBytes} on the destination: ${before.logBytes < 0 ? 'the source kept no log' : 'the restored process lost its log file descriptor'}.`);
  }
  if (after.logBytes < before.logBytes) {
    return fail(name, `the log offset went back from ${before.logBytes} bytes on the source to ${after.logBytes} on the destination.`);
  }
  if (scan) {
    for (const [side, s] of [['source', before] as const, ['destination', after] as const]) {
      const want = s.n === 0 ? 0 : scan.ends[s.n - 1];
      if (want === undefined) continue; // the log check already says the file is short
      if (s.logBytes !== want) {
        return fail(name, `the ${side}'s log offset is ${s.logBytes} bytes after n=${s.n} values, but those lines take ${want} bytes in the file: ${s.logBytes > want ? 'the file lacks writes the process made' : 'the file holds writes the process does not count'}.`);
      }
    }
  }
  return pass(name, `the log offset went from ${before.logBytes} to ${after.logBytes} bytes${scan ? ', each exactly the bytes of the lines written by then' : ''}.`);
}

/** All checks of one migrated workload; see each check for what it proves. */
export function verifyContinuity(input: ContinuityInput): ContinuityResult {
  const checks: ContinuityCheck[] = [sequenceCheck(input)];
  const scan = input.log === undefined ? undefined : scanLog(input.mode, input.log);
  if (input.log !== undefined) checks.push(logCheck(input.mode, input.after, input.log, scan!));
  checks.push(treeCheck(input));
  // A run without --log has no offset to compare: -1 on both sides and no text.
  if (input.log !== undefined || input.before.logBytes >= 0 || input.after.logBytes >= 0) checks.push(logOffsetCheck(input, scan));
  return { ok: checks.every((c) => c.ok), checks };
}

/**
 * (5) The client's view: the count in each pong (`pong T mono n`), in the order the probes were
 * sent, never goes down across the switch. A drop means the destination's process is not the
 * one that was answering before: restarted from 0, or restored from an older image.
 */
export function verifyProbeSeq(pongSeqs: readonly number[]): ContinuityCheck {
  const name = 'probe sequence';
  if (pongSeqs.length === 0) return fail(name, 'no pong was received, so the probe saw nothing to compare.');
  for (let k = 1; k < pongSeqs.length; k++) {
    const prev = pongSeqs[k - 1]!;
    const cur = pongSeqs[k]!;
    if (cur < prev) {
      return fail(
        name,
        cur <= 1
          ? `pong ${k} reported n=${cur} after pong ${k - 1} reported n=${prev}: the workload restarted from 0.`
          : `pong ${k} reported n=${cur} after pong ${k - 1} reported n=${prev}: the count went back by ${prev - cur}.`,
      );
    }
  }
  return pass(name, `${pongSeqs.length} pongs, the count rose from ${pongSeqs[0]} to ${pongSeqs.at(-1)} without going back.`);
}
