// A synthetic container batch for the unit tests: a ladder N=1, 10, 100 all at once on guests of
// 2048 MiB and one vCPU. N=1 and N=10 move every container; at N=100 the 100 dumps at once exhaust
// chost-src's memory, the OOM killer kills 37 criu processes, 5 dumps fail in CRIU's words, 43
// never return, 3 restores fail for memory on chost-dst, and chost-src stops answering on its
// control port at 50 s, 10 s before the halt is declared (33 s into the step). Plain data in the shapes run.ts records.
import type { BatchStep, ConsoleEvent, ContainerBatchRecord, ContainerBatchRequest, ContainerMove, CriuCommandOutcome, GuestSample, HostSignals } from '../../../../src/containers/batch/types.js';
import { csvCells as cells } from '../../../support/csv.js';

export const REQUEST: ContainerBatchRequest = { counts: [1, 10, 100, 400], mode: 'all-at-once', memoryMiB: 2048, vcpus: 1, rssMiB: 8, periodMs: 100, files: 'guest' };

export function cmd(o: Partial<CriuCommandOutcome> & { startMs: number }): CriuCommandOutcome {
  return { wallMs: 1000, exitCode: 0, signal: null, maxRssKiB: null, ...o };
}

function migrated(index: number, dump: CriuCommandOutcome, restore: CriuCommandOutcome, frozenMs: number): ContainerMove {
  return { index, attempt: 1, outcome: 'migrated', dump, frozenMs, restore, check: { ok: true, detail: 'running on chost-dst, log whole and growing' } };
}

const STEP1: BatchStep = {
  count: 1,
  mode: 'all-at-once',
  startMs: 0,
  durationMs: 5000,
  startContainersMs: 300,
  moves: [migrated(0, cmd({ startMs: 400, wallMs: 820, maxRssKiB: 40 * 1024 }), cmd({ startMs: 1300, wallMs: 600, maxRssKiB: 30 * 1024 }), 500)],
  migrated: 1,
  dumpFailures: 0,
  restoreFailures: 0,
  intact: 1,
  console: [],
};

const STEP10: BatchStep = {
  count: 10,
  mode: 'all-at-once',
  startMs: 6000,
  durationMs: 20000,
  startContainersMs: 900,
  moves: Array.from({ length: 10 }, (_, i) =>
    migrated(i, cmd({ startMs: 1000, wallMs: 4000 + i * 100, maxRssKiB: (40 + i) * 1024 }), cmd({ startMs: 6000, wallMs: 1500, maxRssKiB: 30 * 1024 }), 3000 + i * 10),
  ),
  migrated: 10,
  dumpFailures: 0,
  restoreFailures: 0,
  intact: 10,
  console: [],
};

/** N=100's halt: batch time 60 s, 33 s into the step, 10 s after chost-src's last answer. */
export const HALT = { guest: 'chost-src', atMs: 60_000, how: 'no-answer', detail: 'no answer to ping for 10.0 s while its QEMU ran' } as const;

const RESTORE_ERROR = "(00.123456) Error (criu/cr-restore.c:1234): Can't fork for 345: Cannot allocate memory | (00.123500) Error (criu/cr-restore.c:2500): Restoring FAILED.";
const procError = (pid: number) => `(00.010000) Error (criu/proc_parse.c:300): Can't open /proc/${pid}/smaps: No such file or directory | (00.020000) Error (criu/cr-dump.c:1787): Dumping FAILED.`;
const OOM_LINE = (pid: number) => `Out of memory: Killed process ${pid} (criu) total-vm:180000kB, anon-rss:51200kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:200kB oom_score_adj:0`;

function step100Move(i: number): ContainerMove {
  const base = { index: i, attempt: 1 };
  if (i < 12) return migrated(i, cmd({ startMs: 2000, wallMs: 20000 + i * 100, maxRssKiB: 50 * 1024 }), cmd({ startMs: 24000, wallMs: 2000, maxRssKiB: 30 * 1024 }), 18000);
  if (i < 15) {
    return {
      ...base,
      outcome: 'restore-failed',
      dump: cmd({ startMs: 2000, wallMs: 20000 + i * 100, maxRssKiB: 50 * 1024 }),
      frozenMs: 18000,
      restore: cmd({ startMs: 24000, wallMs: 2500, exitCode: 1, maxRssKiB: 30 * 1024, error: RESTORE_ERROR }),
    };
  }
  if (i < 52) return { ...base, outcome: 'dump-failed', dump: cmd({ startMs: 2000, wallMs: 15000, exitCode: null, signal: 9, error: 'killed by signal 9 before it wrote an error' }), frozenMs: null };
  if (i < 57) return { ...base, outcome: 'dump-failed', dump: cmd({ startMs: 2000, wallMs: 500, exitCode: 1, maxRssKiB: 12 * 1024, error: procError(4000 + i) }), frozenMs: null };
  return { ...base, outcome: 'dump-failed', dump: cmd({ startMs: 2000, wallMs: null, exitCode: null, error: 'no reply: chost-src stopped answering' }) };
}

const OOM_EVENTS: ConsoleEvent[] = Array.from({ length: 37 }, (_, i) => ({ guest: 'chost-src', atMs: 50_000, kind: 'oom', line: OOM_LINE(2000 + i) }));

const STEP100: BatchStep = {
  count: 100,
  mode: 'all-at-once',
  startMs: 27000,
  durationMs: 40000,
  startContainersMs: 6000,
  moves: Array.from({ length: 100 }, (_, i) => step100Move(i)),
  migrated: 12,
  dumpFailures: 85,
  restoreFailures: 3,
  intact: 12,
  console: OOM_EVENTS,
  halt: HALT,
  stoppedEarly: 'chost-src halted',
};

export const STEPS: readonly BatchStep[] = [STEP1, STEP10, STEP100];

/** chost-src: MemAvailable, PSI memory some and full, PSI cpu some, load1, tasks, round trip, by time. */
const SRC_AT: Readonly<Record<number, [number, number, number, number, number, number, number]>> = {
  30000: [1200, 5, 1, 80, 40, 420, 15],
  35000: [600, 30, 12, 95, 98, 430, 120],
  40000: [150, 65.5, 40.2, 99, 110.5, 431, 900],
  45000: [60, 78.4, 61, 97.5, 120.25, 433, 2300],
};

function srcSample(atMs: number): GuestSample {
  if (atMs > 45000) return { atMs, guest: 'chost-src', rttMs: null };
  const busy = atMs >= 10000 && atMs <= 15000;
  const [mem, some, full, cpu, load1, tasks, rtt] = SRC_AT[atMs] ?? [busy ? 1500 : 1800, 0, 0, busy ? 60 : 10, 0.5, 120, 2];
  return { atMs, guest: 'chost-src', rttMs: rtt, memAvailableMiB: mem, memTotalMiB: 1985, swapTotalMiB: 0, swapFreeMiB: 0, psiMemSome10: some, psiMemFull10: full, psiCpuSome10: cpu, psiIoSome10: 0, load1, tasks };
}

function dstSample(atMs: number): GuestSample {
  const restoring = atMs === 35000;
  return {
    atMs,
    guest: 'chost-dst',
    rttMs: 2,
    memAvailableMiB: restoring ? 1400 : 1850,
    memTotalMiB: 1985,
    swapTotalMiB: 0,
    swapFreeMiB: 0,
    psiMemSome10: restoring ? 2.1 : 0,
    psiMemFull10: 0,
    psiCpuSome10: restoring ? 40 : 5,
    psiIoSome10: 0,
    load1: restoring ? 15 : 0.3,
    tasks: restoring ? 140 : 110,
  };
}

const TIMES = Array.from({ length: 18 }, (_, i) => i * 5000);
export const GUEST_SAMPLES: readonly GuestSample[] = TIMES.flatMap((t) => [srcSample(t), dstSample(t)]);

export const HOST_SAMPLES: readonly HostSignals[] = Array.from({ length: 9 }, (_, i) => {
  const atMs = i * 10000;
  const peak = atMs === 40000;
  return { atMs, cpuBusyPct: peak ? 96.5 : 30, memAvailableMiB: peak ? 9000 : 20000, psiMemSome10: 0, psiCpuSome10: peak ? 12.5 : 1, load1: peak ? 3.5 : 1 };
});

export function record(o: Partial<ContainerBatchRecord> & Pick<ContainerBatchRecord, 'verdict'>): ContainerBatchRecord {
  return {
    schema: 'miglab.container-batch/1',
    batchId: 'cb-test-1',
    startedAt: '2026-01-02T03:04:05.000Z',
    finishedAt: '2026-01-02T03:05:40.000Z',
    request: REQUEST,
    imageHash: 'abc123',
    criuVersion: '3.17.1',
    lab: 'miglab-test',
    steps: STEPS,
    guestSamples: GUEST_SAMPLES,
    hostSamples: HOST_SAMPLES,
    ...o,
  };
}


/** The rows of a CSV text (no line breaks inside cells) as objects keyed by its header. */
export function csvRecords(text: string): { head: string[]; rows: Record<string, string>[] } {
  const [first, ...rest] = text.trim().split('\n');
  const head = cells(first!);
  return { head, rows: rest.map((l) => Object.fromEntries(cells(l).map((v, i) => [head[i], v]))) };
}
