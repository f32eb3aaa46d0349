import { describe, expect, it } from '@jest/globals';
import { chainHash, sequenceValue, verifyContinuity, verifyProbeSeq, type ContinuityCheck } from '../../../src/containers/verify.js';
import type { WorkloadMode, WorkloadState } from '../../../src/containers/workload.js';

/** FNV-1a 64 the textbook way, over bytes with bigints: the reference the fast one must match. */
function fnv1a(bytes: readonly number[], h = 0xcbf29ce484222325n): bigint {
  for (const b of bytes) h = BigInt.asUintN(64, (h ^ BigInt(b)) * 0x100000001b3n);
  return h;
}
const le64 = (x: bigint): number[] => Array.from({ length: 8 }, (_, k) => Number((x >> BigInt(8 * k)) & 0xffn));

/** Fibonacci with exact integers, reduced mod 2^64 only at the end. */
function exactFibonacci(count: number): bigint[] {
  const out: bigint[] = [];
  let [a, b] = [0n, 1n];
  for (let k = 0; k < count; k++) {
    out.push(BigInt.asUintN(64, a));
    [a, b] = [b, a + b];
  }
  return out;
}

function referenceChain(values: readonly bigint[]): string {
  let h = 0xcbf29ce484222325n;
  values.forEach((v, i) => (h = fnv1a([...le64(BigInt(i)), ...le64(v)], h)));
  return h.toString(16).padStart(16, '0');
}

/** The state a healthy workload reports after n values. */
function stateAt(mode: WorkloadMode, n: number, over: Partial<WorkloadState> = {}): WorkloadState {
  return {
    mode,
    n,
    i: n - 1,
    v: n > 0 ? sequenceValue(mode, n - 1) : 0n,
    h: chainHash(mode, n),
    pid: 1,
    ppid: 0,
    child: 2,
    childAlive: true,
    logBytes: logText(mode, n).length,
    rssKiB: 900,
    gen: 0,
    written: 0,
    ...over,
  };
}

function logLines(mode: WorkloadMode, from: number, to: number): string {
  let s = '';
  for (let k = from; k < to; k++) s += `${k} ${sequenceValue(mode, k)}\n`;
  return s;
}
const logText = (mode: WorkloadMode, n: number) => logLines(mode, 0, n);

function check(checks: readonly ContinuityCheck[], name: string): ContinuityCheck {
  const c = checks.find((x) => x.name === name);
  if (!c) throw new Error(`no check named ${name} in ${checks.map((x) => x.name).join(', ')}`);
  return c;
}

describe('sequenceValue', () => {
  it('counts i for counter, natural and the mem ticks', () => {
    for (const mode of ['counter', 'natural', 'mem'] as const) expect([0, 1, 2, 12345].map((i) => sequenceValue(mode, i))).toEqual([0n, 1n, 2n, 12345n]);
  });

  it('gives Fibonacci mod 2^64, wrapping past F(93), the last below 2^64', () => {
    const exact = exactFibonacci(300);
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((i) => sequenceValue('fibonacci', i))).toEqual([0n, 1n, 1n, 2n, 3n, 5n, 8n, 13n]);
    expect(sequenceValue('fibonacci', 93)).toBe(12200160415121876738n);
    expect(sequenceValue('fibonacci', 94)).toBe(19740274219868223167n - 2n ** 64n);
    for (const i of [94, 95, 150, 257, 299]) expect(sequenceValue('fibonacci', i)).toBe(exact[i]);
  });

  it('gives the i-th prime from 0, for small and large i in any order', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => sequenceValue('prime', i))).toEqual([2n, 3n, 5n, 7n, 11n, 13n, 17n, 19n, 23n, 29n]);
    expect(sequenceValue('prime', 99_999)).toBe(1299709n); // the 100 000th prime
    expect(sequenceValue('prime', 999)).toBe(7919n);
    expect(sequenceValue('prime', 9_999)).toBe(104729n);
  });

  it('refuses an index that is not a whole number >= 0', () => {
    expect(() => sequenceValue('natural', -1)).toThrow(/not a whole number/);
    expect(() => sequenceValue('prime', 1.5)).toThrow(/not a whole number/);
  });
});

describe('chainHash', () => {
  it('is FNV-1a 64 over le64(i) || le64(v_i), matching a bigint reference', () => {
    // The reference itself against FNV-1a's published vectors.
    expect(fnv1a([...'a'].map((c) => c.charCodeAt(0)))).toBe(0xaf63dc4c8601ec8cn);
    expect(fnv1a([...'foobar'].map((c) => c.charCodeAt(0)))).toBe(0x85944171f73967e8n);
    expect(chainHash('natural', 0)).toBe('cbf29ce484222325');
    expect(chainHash('fibonacci', 200)).toBe(referenceChain(exactFibonacci(200)));
    const primes = Array.from({ length: 500 }, (_, i) => sequenceValue('prime', i));
    expect(chainHash('prime', 500)).toBe(referenceChain(primes));
    expect(chainHash('natural', 3)).toBe(referenceChain([0n, 1n, 2n]));
  });

  it('gives the same answer going back and forth over its memo', () => {
    const want = referenceChain(exactFibonacci(5000));
    const want10 = referenceChain(exactFibonacci(10));
    expect(chainHash('fibonacci', 9000)).toMatch(/^[0-9a-f]{16}$/);
    expect(chainHash('fibonacci', 10)).toBe(want10);
    expect(chainHash('fibonacci', 5000)).toBe(want);
    expect(chainHash('fibonacci', 4096)).toBe(referenceChain(exactFibonacci(4096)));
    expect(chainHash('fibonacci', 5000)).toBe(want);
  });
});

describe('verifyContinuity', () => {
  it('passes a workload that went on, with its log, tree and offset intact', () => {
    for (const mode of ['natural', 'fibonacci', 'prime', 'counter', 'mem'] as const) {
      const r = verifyContinuity({ mode, before: stateAt(mode, 120), after: stateAt(mode, 131), log: logText(mode, 140) });
      expect(r.checks.map((c) => [c.name, c.ok])).toEqual([
        ['sequence', true],
        ['log', true],
        ['process tree', true],
        ['log offset', true],
      ]);
      expect(r.ok).toBe(true);
      expect(check(r.checks, 'sequence').detail).toBe(`the source stopped at n=120, the destination went on to n=131; both values and chain hashes match ${mode} recomputed on the host.`);
    }
  });

  it('passes a freeze with nothing emitted in between, and a run without a log has no log checks', () => {
    const noLog = { logBytes: -1 };
    const r = verifyContinuity({ mode: 'prime', before: stateAt('prime', 7, noLog), after: stateAt('prime', 7, noLog) });
    expect(r.ok).toBe(true);
    expect(r.checks.map((c) => c.name)).toEqual(['sequence', 'process tree']);
  });

  it('finds a restart from 0 and a restore from an older image', () => {
    const restarted = verifyContinuity({ mode: 'natural', before: stateAt('natural', 300), after: stateAt('natural', 1, { pid: 1 }) });
    expect(restarted.ok).toBe(false);
    expect(check(restarted.checks, 'sequence').detail).toBe(
      'the destination reports n=1, fewer than the n=300 the source had emitted before the freeze: the restored process went back to the start and repeats indices 1..299.',
    );
    const older = verifyContinuity({ mode: 'fibonacci', before: stateAt('fibonacci', 300), after: stateAt('fibonacci', 250) });
    expect(check(older.checks, 'sequence')).toMatchObject({ ok: false, detail: expect.stringMatching(/n=250, fewer than the n=300 .* went back and repeats indices 250\.\.299\.$/) });
  });

  it('finds a wrong value or a chain hash that does not fit the history', () => {
    const wrongV = verifyContinuity({ mode: 'prime', before: stateAt('prime', 50), after: stateAt('prime', 60, { v: 272n }) });
    expect(check(wrongV.checks, 'sequence')).toEqual({
      name: 'sequence',
      ok: false,
      detail: "the destination's last value v=272 at i=59 is not prime(59) = 281.",
    });
    // A hash one value behind its count: the process lost (or skipped) an update of its state.
    const wrongH = verifyContinuity({ mode: 'natural', before: stateAt('natural', 50), after: stateAt('natural', 60, { h: chainHash('natural', 59) }) });
    expect(check(wrongH.checks, 'sequence').detail).toBe(
      `the destination's chain hash after n=60 values is ${chainHash('natural', 59)}, not ${chainHash('natural', 60)} as recomputed: its history has a gap, a repeat or a wrong value.`,
    );
    const mode = verifyContinuity({ mode: 'natural', before: stateAt('natural', 5), after: stateAt('counter', 6) });
    expect(check(mode.checks, 'sequence').detail).toBe('the destination reports mode counter, not natural.');
  });

  it('finds a gap, a repeat, a torn line, a wrong value and a short log', () => {
    const before = stateAt('fibonacci', 100);
    const after = stateAt('fibonacci', 110);
    const at = (log: string) => check(verifyContinuity({ mode: 'fibonacci', before, after, log }).checks, 'log');

    expect(at(logLines('fibonacci', 0, 30) + logLines('fibonacci', 33, 120))).toEqual({
      name: 'log',
      ok: false,
      detail: 'line 30 has index 33: indices 30..32 are missing (a gap).',
    });
    expect(at(logLines('fibonacci', 0, 105) + logLines('fibonacci', 95, 120)).detail).toBe(
      'line 105 repeats index 95 (first written at line 95): values were emitted twice.',
    );
    expect(at(`${logText('fibonacci', 110)}110 1`).detail).toBe('line 110 "110 1" has no newline: a torn write (the file ends inside a line).');
    // A hole of zeros where the destination's first write went past the file's end.
    expect(at(`${logText('fibonacci', 100)}\x00\x00\x00\x00\x00\x00${logLines('fibonacci', 100, 112)}`).detail).toBe(
      `line 100 "\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000100 ${sequenceValue('fibonacci', 100)}" is not "i v": a torn or overwritten line.`,
    );
    expect(at(`${logText('fibonacci', 5)}5 6\n${logLines('fibonacci', 6, 120)}`).detail).toBe('line 5 has value 6, but fibonacci(5) = 5.');
    expect(at(logText('fibonacci', 105)).detail).toBe(
      'the log ends at index 104, but the destination had emitted n=110 values: the writes of indices 105..109 never reached the file.',
    );
    expect(at(logText('fibonacci', 110))).toMatchObject({ ok: true, detail: expect.stringMatching(/^110 lines \(\d+ bytes\), indices 0\.\.109 each once and in order/) });
  });

  it('finds a child that did not come back, and a different process', () => {
    const gone = verifyContinuity({ mode: 'natural', before: stateAt('natural', 40), after: stateAt('natural', 45, { childAlive: false }) });
    expect(gone.ok).toBe(false);
    expect(check(gone.checks, 'process tree').detail).toBe(
      'the child (pid 2) is not beating on the destination (child_alive=0): it did not come back with the tree, or its pipe did not.',
    );
    const other = verifyContinuity({ mode: 'natural', before: stateAt('natural', 40), after: stateAt('natural', 45, { pid: 7 }) });
    expect(check(other.checks, 'process tree').detail).toBe('pid was 1 on the source and is 7 on the destination: not the same process tree in the same PID namespace.');
    const deadBefore = verifyContinuity({ mode: 'natural', before: stateAt('natural', 40, { childAlive: false }), after: stateAt('natural', 45) });
    expect(check(deadBefore.checks, 'process tree').ok).toBe(false);
  });

  it('finds a log offset that went back, a lost log fd, and an offset the file does not match', () => {
    const before = stateAt('natural', 40);
    const back = verifyContinuity({ mode: 'natural', before, after: stateAt('natural', 45, { logBytes: 10 }) });
    expect(check(back.checks, 'log offset').detail).toBe(`the log offset went back from ${before.logBytes} bytes on the source to 10 on the destination.`);
    const lost = verifyContinuity({ mode: 'natural', before, after: stateAt('natural', 45, { logBytes: -1 }) });
    expect(check(lost.checks, 'log offset').detail).toBe(`log_bytes is ${before.logBytes} on the source and -1 on the destination: the restored process lost its log file descriptor.`);
    // The source wrote 40 lines, but the file got only 38 of them before the destination appended.
    const log = logText('natural', 38) + logLines('natural', 40, 50);
    const unflushed = verifyContinuity({ mode: 'natural', before, after: stateAt('natural', 45), log });
    expect(check(unflushed.checks, 'log').ok).toBe(false);
    const longer = verifyContinuity({ mode: 'natural', before, after: stateAt('natural', 45), log: logText('natural', 50) });
    expect(longer.ok).toBe(true);
    const offByLine = verifyContinuity({ mode: 'natural', before: stateAt('natural', 40, { logBytes: before.logBytes + 6 }), after: stateAt('natural', 45), log: logText('natural', 50) });
    expect(check(offByLine.checks, 'log offset').detail).toBe(
      `the source's log offset is ${before.logBytes + 6} bytes after n=40 values, but those lines take ${before.logBytes} bytes in the file: the file lacks writes the process made.`,
    );
  });

  it('writes each failure as one sentence', () => {
    const r = verifyContinuity({
      mode: 'natural',
      before: stateAt('natural', 40),
      after: stateAt('natural', 2, { childAlive: false, logBytes: 4 }),
      log: logText('natural', 3) + logText('natural', 3),
    });
    expect(r.checks.filter((c) => !c.ok)).toHaveLength(4);
    for (const c of r.checks) expect(c.detail).toMatch(/^[^\n]+\.$/);
  });
});

describe('verifyProbeSeq', () => {
  it('passes a count that never goes down', () => {
    expect(verifyProbeSeq([5, 5, 6, 7, 7, 7, 100, 101])).toEqual({ name: 'probe sequence', ok: true, detail: '8 pongs, the count rose from 5 to 101 without going back.' });
  });

  it('finds a restart from 0, a count that went back, and no pongs at all', () => {
    expect(verifyProbeSeq([5, 6, 7, 0, 1]).detail).toBe('pong 3 reported n=0 after pong 2 reported n=7: the workload restarted from 0.');
    expect(verifyProbeSeq([5, 10, 8])).toMatchObject({ ok: false, detail: 'pong 2 reported n=8 after pong 1 reported n=10: the count went back by 2.' });
    expect(verifyProbeSeq([])).toMatchObject({ ok: false, detail: 'no pong was received, so the probe saw nothing to compare.' });
  });
});
