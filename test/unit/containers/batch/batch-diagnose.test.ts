// The container batch's verdict (src/containers/batch/diagnose.ts) on a synthetic ladder
// (batch-fixture.ts): N=1 and N=10 fine, N=100 halting chost-src after 37 criu processes were
// OOM-killed. What is asserted is that each paragraph carries the record's figures, and says so
// when the record lacks one.
import {
  bestIntactOf,
  criuErrorLines,
  diagnoseBatch,
  dumpsAtOnce,
  guestSampleLine,
  maxAtOnce,
  memoryLow,
  oomKills,
  pressurePeak,
} from '../../../../src/containers/batch/diagnose.js';
import type { BatchStep, ConsoleEvent, GuestSample } from '../../../../src/containers/batch/types.js';
import { cmd, GUEST_SAMPLES, HALT, HOST_SAMPLES, REQUEST, STEPS } from './batch-fixture.js';

const [N1, N10, N100] = STEPS as [BatchStep, BatchStep, BatchStep];

describe('maxAtOnce', () => {
  it('counts commands that overlap, not one that starts as another ends', () => {
    expect(maxAtOnce([cmd({ startMs: 0, wallMs: 100 }), cmd({ startMs: 100, wallMs: 100 }), cmd({ startMs: 150, wallMs: 10 })], 1000)).toBe(2);
    expect(maxAtOnce([], 1000)).toBe(0);
  });

  it('keeps a command that never returned running until the open end', () => {
    const cmds = [cmd({ startMs: 0, wallMs: null }), cmd({ startMs: 500, wallMs: 10 })];
    expect(maxAtOnce(cmds, 1000)).toBe(2);
    expect(maxAtOnce(cmds, 400)).toBe(1);
  });

  it('finds every dump of an all-at-once step running together, up to the halt', () => {
    expect([N1, N10, N100].map(dumpsAtOnce)).toEqual([1, 10, 100]);
  });
});

describe('criuErrorLines', () => {
  it("groups one error of many containers (pids differ) without CRIU's time stamps, counted once per command", () => {
    const e = (pid: number) => `(00.010000) Error (criu/proc_parse.c:300): Can't open /proc/${pid}/smaps | (00.020000) Error (criu/cr-dump.c:1787): Dumping FAILED. | (00.030000) Error (criu/cr-dump.c:1787): Dumping FAILED.`;
    const lines = criuErrorLines([cmd({ startMs: 0, error: e(11) }), cmd({ startMs: 0, error: e(12) }), cmd({ startMs: 0 }), undefined]);
    expect(lines).toEqual([
      { line: "Error (criu/proc_parse.c:300): Can't open /proc/11/smaps", count: 2 },
      { line: 'Error (criu/cr-dump.c:1787): Dumping FAILED.', count: 2 },
    ]);
  });

  it('keeps errors from different source lines apart', () => {
    const lines = criuErrorLines([cmd({ startMs: 0, error: 'Error (criu/a.c:1): x' }), cmd({ startMs: 0, error: 'Error (criu/a.c:2): x' })]);
    expect(lines).toHaveLength(2);
  });
});

describe('oomKills', () => {
  it("names the OOM killer's victims from the console lines, most killed first", () => {
    const line = (pid: number, comm: string) => `Out of memory: Killed process ${pid} (${comm}) total-vm:1000kB, anon-rss:10kB`;
    const events: ConsoleEvent[] = [
      { guest: 'chost-src', atMs: 50_000, kind: 'oom', line: line(1, 'miglab-agent') },
      { guest: 'chost-src', atMs: 50_000, kind: 'oom', line: line(2, 'criu') },
      { guest: 'chost-src', atMs: 50_000, kind: 'oom', line: line(3, 'criu') },
      { guest: 'chost-dst', atMs: 50_000, kind: 'oom', line: line(4, 'criu') },
      { guest: 'chost-src', atMs: 50_000, kind: 'panic', line: 'Kernel panic - not syncing: Out of memory' },
    ];
    expect(oomKills(events)).toEqual([
      { guest: 'chost-src', process: 'criu', count: 2 },
      { guest: 'chost-src', process: 'miglab-agent', count: 1 },
      { guest: 'chost-dst', process: 'criu', count: 1 },
    ]);
  });
});

describe('samples', () => {
  it('finds the lowest MemAvailable and the pressure peaks with their samples', () => {
    const src = GUEST_SAMPLES.filter((s) => s.guest === 'chost-src');
    expect(memoryLow(src)).toMatchObject({ value: 60, at: { atMs: 45000 } });
    expect(pressurePeak(src, 'psiMemSome10')).toMatchObject({ value: 78.4, at: { atMs: 45000 } });
    expect(pressurePeak(src, 'psiCpuSome10')).toMatchObject({ value: 99, at: { atMs: 40000 } });
    expect(memoryLow([{ atMs: 0, guest: 'chost-src', rttMs: null }])).toBeUndefined();
  });

  it('writes a sample as a line of its figures, and a silent read as such', () => {
    const s = GUEST_SAMPLES.find((x) => x.guest === 'chost-src' && x.atMs === 45000)!;
    expect(guestSampleLine(s)).toBe(
      'chost-src at 45.0 s: MemAvailable 60 MiB of 1,985 MiB, no swap, PSI memory some 78.4 %, full 61.0 %, PSI cpu some 97.5 %, PSI io some 0.0 %, load1 120.25, 433 tasks, control port round trip 2,300 ms',
    );
    expect(guestSampleLine({ atMs: 50000, guest: 'chost-src', rttMs: null })).toBe('chost-src at 50.0 s: no answer on the control port');
  });
});

describe('diagnoseBatch: chost-src halts at N=100', () => {
  const v = diagnoseBatch(STEPS, GUEST_SAMPLES, HOST_SAMPLES, REQUEST);

  it('names the step, the halt and the best step without one', () => {
    expect(v.haltedAt).toBe(100);
    expect(v.halt).toEqual(HALT);
    expect(v.bestIntact).toBe(10);
  });

  it('says when: how far into the step, and how many containers had moved before', () => {
    expect(v.when).toContain('chost-src halted during N=100 (step 3 of 3, all-at-once), 33.0 s into the step (60.0 s into the batch)');
    expect(v.when).toContain('the steps before it had migrated 11 containers (N=1: 1, N=10: 10)');
    // Dumps 0-14 returned by 23.4 s, restores 0-11 by 26.0 s; the halt came at 33.0 s.
    expect(v.when).toContain('15 dumps had succeeded on chost-src and 12 containers had been restored on chost-dst before the halt');
    expect(v.when).toContain('The largest step with no halt was N=10: 10 of 10 containers migrated intact.');
  });

  it("says how: the halt's kind, the OOM kills by process, CRIU's failures counted and quoted", () => {
    expect(v.how).toContain('chost-src stopped answering on its control port, seen at 60.0 s: no answer to ping for 10.0 s while its QEMU ran');
    expect(v.how).toContain('The OOM killer killed 37 processes during N=100: "criu" x37 on chost-src.');
    expect(v.how).toContain('signal 9 ended 37 criu dump commands');
    expect(v.how).toContain('Failures per step: N=1: none; N=10: none; N=100: 85 dump failures, 3 restore failures, 37 OOM kills.');
    expect(v.how).toContain('"no reply: chost-src stopped answering" (x43)');
    expect(v.how).toContain('"killed by signal 9 before it wrote an error" (x37)');
    expect(v.how).toContain('"Error (criu/cr-restore.c:1234): Can\'t fork for 345: Cannot allocate memory" (x3)');
  });

  it("says why: the guest's memory and pressure, with times", () => {
    expect(v.why).toContain("chost-src's MemAvailable went from 1,800 MiB at the step's start (read at 25.0 s) to a low of 60 MiB of 1,985 MiB at 45.0 s (18.0 s into the step), with no swap");
    expect(v.why).toContain('PSI memory some peaked at 78.4 % at 45.0 s, memory full at 61.0 % at 45.0 s, PSI cpu some at 99.0 % at 40.0 s, load1 at 120.25 at 45.0 s, 433 tasks at 45.0 s');
    expect(v.why).toContain('No answer from chost-src after 45.0 s: 4 reads from 50.0 s to 65.0 s went unanswered.');
    // The halted guest comes first.
    expect(v.why.indexOf('chost-src')).toBeLessThan(v.why.indexOf('chost-dst'));
  });

  it('says why: I/O pressure when tasks waited on it (a stalled export), and quotes that sample', () => {
    const stalled = GUEST_SAMPLES.map((s) => (s.guest === 'chost-dst' && s.atMs === 35000 ? { ...s, psiIoSome10: 99 } : s));
    const w = diagnoseBatch(STEPS, stalled, HOST_SAMPLES, REQUEST);
    expect(w.why).toContain('PSI cpu some at 40.0 % at 35.0 s, PSI io some at 99.0 % at 35.0 s, load1');
    expect(w.evidence.some((e) => e.startsWith('chost-dst at 35.0 s') && e.includes('PSI io some 99.0 %'))).toBe(true);
    // Nothing waited on I/O in the fixture: then io is not mentioned.
    expect(v.why).not.toContain('PSI io');
  });

  it("says why: CRIU's peak RSS times how many ran at once, against what the guest had", () => {
    expect(v.why).toContain("One criu dump peaked at 50 MiB RSS (at N=100); 100 ran at once on chost-src at N=100: 100 x 50 MiB = 5,000 MiB against chost-src's MemAvailable of 1,800 MiB at the step's start (278 % of it).");
    expect(v.why).toContain('15 ran at once on chost-dst at N=100: 15 x 30 MiB = 450 MiB');
    expect(v.why).toContain('The 100 containers themselves hold 100 x 8 MiB = 800 MiB');
  });

  it('says why: dumps slowing as they share the vCPU, median at N=1 against N=100', () => {
    // N=100's returned dumps: 5 x 500 ms, 37 x 15,000 ms (killed), 15 x 20,000-21,400 ms: median 15,000.
    expect(v.why).toContain('The median dump wall time went from 820 ms at N=1 (1 at once) to 15,000 ms at N=100 (100 at once), 18.3 times as long: 100 dumps at once shared chost-src\'s 1 vCPU.');
    expect(v.why).toContain('On the host during N=100: CPU busy peaked at 96.5 % at 40.0 s, MemAvailable was lowest at 9,000 MiB at 40.0 s');
  });

  it('lists the evidence: the halt, the samples that matter, console and CRIU lines, the host', () => {
    expect(v.evidence[0]).toBe('halt: chost-src no-answer at 60.0 s: no answer to ping for 10.0 s while its QEMU ran');
    expect(v.evidence).toContain('chost-src at 50.0 s: no answer on the control port');
    expect(v.evidence.some((e) => e.startsWith('chost-src at 45.0 s: MemAvailable 60 MiB'))).toBe(true);
    expect(v.evidence.filter((e) => e.startsWith('chost-src console: Out of memory: Killed process'))).toHaveLength(5);
    expect(v.evidence).toContain('32 more console lines of N=100 in batch.json');
    expect(v.evidence).toContain('criu dump (x37): killed by signal 9 before it wrote an error');
    expect(v.evidence).toContain('criu restore (x3): Error (criu/cr-restore.c:2500): Restoring FAILED.');
    expect(v.evidence.at(-1)).toMatch(/^host at 40\.0 s: CPU busy 96\.5 %, MemAvailable 9,000 MiB/);
  });
});

describe('diagnoseBatch: no guest halts', () => {
  it('says so, with the largest N, and still counts failures per step', () => {
    const n10: BatchStep = { ...N10, migrated: 8, intact: 7, dumpFailures: 2, moves: N10.moves.map((m, i) => (i < 2 ? { ...m, outcome: 'dump-failed', restore: undefined, dump: { ...m.dump!, exitCode: 1, error: 'Error (criu/cr-dump.c:1787): Dumping FAILED.' } } : i === 2 ? { ...m, check: { ok: false, detail: 'its log: a gap' } } : m)) };
    const v = diagnoseBatch([N1, n10], GUEST_SAMPLES, HOST_SAMPLES, REQUEST);
    expect(v.haltedAt).toBeUndefined();
    expect(v.halt).toBeUndefined();
    expect(v.bestIntact).toBe(7);
    expect(v.when).toContain('No guest halted up to N=10 (2 steps, N=1, 10, all-at-once).');
    expect(v.when).toContain('Failures began at N=10 (2 dump failures, 0 restore failures).');
    expect(v.when).toContain('Failures per step: N=1: none; N=10: 2 dump failures, 1 migrated but not intact.');
    expect(v.how).toContain('No guest halted.');
    expect(v.how).toContain('"Error (criu/cr-dump.c:1787): Dumping FAILED." (x2)');
    // The step explained is the one that failed: its figures, not N=1's.
    expect(v.why).toContain("During N=10, chost-src's MemAvailable went from 1,800 MiB at the step's start (read at 5.0 s) to a low of 1,500 MiB");
    expect(v.why).toContain('One criu dump peaked at 49 MiB RSS (at N=10); 10 ran at once on chost-src');
    expect(v.evidence.some((e) => e.startsWith('halt:'))).toBe(false);
  });

  it('says nothing failed when nothing did, and handles a batch with no step', () => {
    const v = diagnoseBatch([N1, N10], GUEST_SAMPLES, HOST_SAMPLES, REQUEST);
    expect(v.when).toContain('No dump or restore failed in any step.');
    expect(v.when).not.toContain('Failures per step');
    const none = diagnoseBatch([], [], [], REQUEST);
    expect(none).toMatchObject({ bestIntact: 0, evidence: [] });
    expect(none.when).toBe('No step ran, so no guest halted and nothing was migrated.');
  });
});

describe('diagnoseBatch: what the record lacks', () => {
  it('says which figures were never read rather than guessing', () => {
    const v = diagnoseBatch(STEPS, [], [], REQUEST);
    expect(v.why).toContain('No MemAvailable of chost-src was read during N=100.');
    expect(v.why).toContain('No sample of chost-src was ever answered, so what it had before the halt is unknown.');
    expect(v.why).toContain("(chost-src's MemAvailable at the step's start was not read)");
    expect(v.why).toContain('The host was not sampled during N=100.');
  });

  it('says when no dump of the failing step returned a wall time, and takes CRIU\'s RSS from a step that had one', () => {
    const silent: BatchStep = { ...N100, moves: N100.moves.map((m) => ({ ...m, dump: { ...m.dump!, wallMs: null, maxRssKiB: null } })) };
    const v = diagnoseBatch([N1, N10, silent], GUEST_SAMPLES, HOST_SAMPLES, REQUEST);
    expect(v.why).toContain('The median dump wall time was 820 ms at N=1 (1 at once); no dump of N=100 returned a wall time (100 were started).');
    expect(v.why).toContain("One criu dump peaked at 49 MiB RSS (at N=10, as none of N=100's reported one)");
  });

  it('says so when the halted guest answered until its last sample, and quotes a panic', () => {
    const answered: GuestSample[] = GUEST_SAMPLES.filter((s) => s.rttMs !== null);
    const panic: BatchStep = {
      ...N100,
      halt: { guest: 'chost-src', atMs: 60_000, how: 'kernel-panic', detail: 'Kernel panic - not syncing: System is deadlocked on memory' },
      console: [{ guest: 'chost-src', atMs: 50_000, kind: 'panic', line: 'Kernel panic - not syncing: System is deadlocked on memory' }],
    };
    const v = diagnoseBatch([N1, N10, panic], answered, HOST_SAMPLES, REQUEST);
    expect(v.how).toContain("It halted this way (kernel-panic): chost-src's kernel panicked, seen at 60.0 s");
    expect(v.how).toContain("No OOM kill reached the guests' consoles during N=100.");
    expect(v.why).toContain('No sample after 45.0 s: chost-src stopped answering (halt seen at 60.0 s).');
    expect(v.evidence).toContain('chost-src console: Kernel panic - not syncing: System is deadlocked on memory');
  });
});

describe('bestIntactOf', () => {
  it('is the most intact in one step without a halt, not the largest step\'s', () => {
    const unchecked: BatchStep = { ...N100, halt: undefined, intact: 0, stoppedEarly: 'the migrated containers could not be checked' };
    expect(bestIntactOf([N1, N10, unchecked])).toBe(N10.intact);
  });

  it('is 0 when the first step halted', () => {
    expect(bestIntactOf([N100])).toBe(0);
    expect(diagnoseBatch([N100], GUEST_SAMPLES, HOST_SAMPLES, REQUEST).when).toContain('it was the first step, so no container had moved before it');
  });
});

describe('the pace within a step', () => {
  it('compares the first fifth of the moves with the last when no guest halted (the scheduler at N=400 slowed as chost-dst filled)', () => {
    // 25 moves one after another: dumps getting quicker, restores slower, the interval longer.
    let t = 0;
    const moves = Array.from({ length: 25 }, (_, i) => {
      const dump = cmd({ startMs: t, wallMs: 2000 - 50 * i });
      const restore = cmd({ startMs: t + 2000, wallMs: 500 + 200 * i });
      t += 3000 + 200 * i;
      return { index: i, attempt: 1, outcome: 'migrated' as const, dump, frozenMs: 500, restore, check: { ok: true, detail: 'ok' } };
    });
    const step: BatchStep = { count: 25, mode: 'scheduled', startMs: 0, durationMs: t, startContainersMs: 100, moves, migrated: 25, dumpFailures: 0, restoreFailures: 0, intact: 25, console: [] };
    const v = diagnoseBatch([step], [], [], { ...REQUEST, mode: 'scheduled' });
    // First five: dumps 2000..1800 (median 1900), restores 500..1300 (900), intervals 3000..3600 (3300).
    expect(v.why).toContain('Within N=25, in the order they ran: the first 5 moves took a median dump of 1,900 ms, restore of 900 ms, one move every 3,300 ms;');
    // Last five (20..24): dumps 1000..800 (900), restores 4500..5300 (4900), intervals 7000..7600 (7300).
    expect(v.why).toContain('the last 5, a median dump of 900 ms, restore of 4,900 ms, one move every 7,300 ms (by then chost-dst ran the 20 moved before them).');
  });

  it('says nothing of the pace for a step of few moves', () => {
    expect(diagnoseBatch([N10], [], [], REQUEST).why).not.toContain('in the order they ran');
  });
});

describe('moves cut short', () => {
  it('counts a step whose dumps were still running at the halt as cut short, not as failed or never tried', () => {
    const running = (i: number) => ({ index: i, attempt: 1, outcome: 'cut-short' as const, dump: cmd({ startMs: 10, wallMs: null, exitCode: null, error: 'not finished: the step was stopped (a guest halted, or Ctrl-C)' }) });
    const step: BatchStep = { count: 3, mode: 'all-at-once', startMs: 0, durationMs: 72_000, startContainersMs: 100, moves: [0, 1, 2].map(running), migrated: 0, dumpFailures: 0, restoreFailures: 0, intact: 0, console: [], halt: { ...HALT, atMs: 72_000 } };
    expect(diagnoseBatch([step], [], [], REQUEST).how).toContain('N=3: 3 cut short (their dump or restore still running when the step stopped)');
  });
});

describe('migrated but unchecked', () => {
  it('says a migrated container the step never checked (Ctrl-C first) is unchecked, not broken', () => {
    const moved = (i: number, check?: { ok: boolean; detail: string }) => ({ index: i, attempt: 1, outcome: 'migrated' as const, dump: cmd({ startMs: 10 * i }), frozenMs: 400, restore: cmd({ startMs: 10 * i + 5 }), ...(check && { check }) });
    const step: BatchStep = { count: 3, mode: 'scheduled', startMs: 0, durationMs: 9_000, startContainersMs: 100, moves: [moved(0, { ok: false, detail: 'its log: a gap' }), moved(1), moved(2)], migrated: 3, dumpFailures: 0, restoreFailures: 0, intact: 0, console: [], stoppedEarly: 'stopped by Ctrl-C before the migrated containers were checked' };
    // No halt: the failures per step are in `when`.
    expect(diagnoseBatch([step], [], [], REQUEST).when).toContain('N=3: 1 migrated but not intact, 2 migrated but never checked (the step stopped before the check, or the check could not run)');
  });
});
