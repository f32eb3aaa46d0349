// A synthetic container run for the unit tests of its files (record.ts) and their documentation
// (results/README.md): a Fibonacci container moved by one pre-dump round and a final dump. The
// states, the log and the checks come from the code a real run uses (verify.ts), the commands from
// the real argv builders, and the stop decision from the real rules; only the timings are made up.
import { criuCheckVerdict } from '../../src/containers/criu-check.js';
import { criuDump, criuRestore } from '../../src/containers/criu-argv.js';
import type { ContainerHost, ContainerHosts } from '../../src/containers/hosts.js';
import type { ContainerFigures, ContainerRunResult, CriuStep } from '../../src/containers/migrate.js';
import type { ContainerRunHeader } from '../../src/containers/record.js';
import { PHAUL_RULES, shouldContinue } from '../../src/containers/stop-rules.js';
import { chainHash, sequenceValue, verifyContinuity } from '../../src/containers/verify.js';
import { workloadArgv, type WorkloadState } from '../../src/containers/workload.js';
import type { ProbeRun } from '../../src/guest/probe.js';

export const MODE = 'fibonacci' as const;

/** The workload's state after n values, as its `state` reply says it (inside its PID namespace). */
export function stateAt(n: number, logBytes: number): WorkloadState {
  const i = n - 1;
  return { mode: MODE, n, i, v: sequenceValue(MODE, i), h: chainHash(MODE, n), pid: 1, ppid: 0, child: 2, childAlive: true, logBytes, rssKiB: 1200, gen: 0, written: 0 };
}

/** The log the workload writes: one "i v" line per value. */
export const logOf = (n: number) => Array.from({ length: n }, (_, k) => `${k} ${sequenceValue(MODE, k)}\n`).join('');

export const BEFORE_N = 120;
export const AFTER_N = 131;
export const before = stateAt(BEFORE_N, Buffer.byteLength(logOf(BEFORE_N)));
export const after = stateAt(AFTER_N, Buffer.byteLength(logOf(AFTER_N)));

function host(name: string, side: 'src' | 'dst', slot: number): ContainerHost {
  return {
    name,
    side,
    slot,
    ip: `10.77.0.${100 + slot}`,
    iface: 'eth0',
    bootMs: 9000 + slot,
    criuCheck: criuCheckVerdict({ text: 'Looks good.\n', exitCode: 0 }),
    // Never touched by record.ts: the run is over when its files are written.
    vm: undefined as unknown as ContainerHost['vm'],
    ctl: undefined as unknown as ContainerHost['ctl'],
  };
}

const hosts: ContainerHosts = {
  lab: undefined as unknown as ContainerHosts['lab'],
  src: host('chost-src', 'src', 0),
  dst: host('chost-dst', 'dst', 1),
  serviceIp: '10.77.0.102',
  prefixLength: 24,
  criuVersion: '3.17.1',
};

const dumpStats = (frozenUs: number, pagesWritten: number) => ({
  freezingUs: 1500,
  frozenUs,
  memdumpUs: 30_000,
  memwriteUs: 20_000,
  pagesScanned: 800,
  pagesSkippedParent: 400,
  pagesWritten,
  pagesLazy: 0,
});

export const preDecision = shouldContinue([{ pagesWritten: 29 }], PHAUL_RULES);
export const steps: CriuStep[] = [
  {
    kind: 'pre-dump',
    index: 1,
    dir: 'r1',
    atMs: 0,
    wallMs: 812.34,
    maxRssKiB: 9000,
    command: criuDump({ pid: 311, imagesDir: '/ckpt/run/r1', logFile: 'criu.log', preDump: true, trackMem: true }),
    dump: dumpStats(120_400, 29),
    imageBytes: 200_000,
    decision: preDecision.reason,
  },
  {
    kind: 'dump',
    index: 2,
    dir: 'final',
    atMs: 900,
    wallMs: 1203.9,
    maxRssKiB: 9100,
    command: criuDump({ pid: 311, imagesDir: '/ckpt/run/final', logFile: 'dump.log', preDump: false, trackMem: true, prevImagesDir: '../r1' }),
    dump: dumpStats(412_800, 11),
    imageBytes: 350_000,
  },
  {
    kind: 'restore',
    index: 2,
    dir: 'final',
    atMs: 2300,
    wallMs: 554.2,
    maxRssKiB: 8000,
    command: criuRestore({ imagesDir: '/ckpt/run/final', logFile: 'restore.log', pidFile: 'restored.pid', detach: true }),
    restore: { pagesCompared: 0, pagesSkippedCow: 0, forkingUs: 5000, restoreUs: 283_000, pagesRestored: 40 },
  },
];

export const figures: ContainerFigures = {
  criuFrozenMs: 412.8,
  criuFrozenTotalMs: 533.2,
  dumpWallMs: 1203.9,
  handoverMs: 140,
  restoreWallMs: 554.2,
  criuRestoreMs: 283,
  clientDowntimeMs: 1127.4,
  totalMs: 3100,
  imageBytes: 550_000,
  preDumpRounds: 1,
  transfer: 'nfs',
  pageServerWaitMs: 0,
  metaCopyMs: 0,
  lazyTransferMs: null,
  lazyPages: null,
};

/** The figures with CRIU's frozen time and the client's downtime set (bench and sweep summaries). */
export function figuresWith(frozenMs: number, clientDowntimeMs: number | null): ContainerFigures {
  return { ...figures, criuFrozenMs: frozenMs, criuFrozenTotalMs: frozenMs, preDumpRounds: 0, clientDowntimeMs };
}

export const probe = {
  sent: 5000,
  received: 3870,
  lost: 1130,
  intervalMs: 1,
  resolutionMs: 1,
  longestGapMs: 1127.4,
  longestGapStartMs: 1_700_000_000_000,
  longestGapEndMs: 1_700_000_001_127,
  lostAroundGap: 1126,
  rttP50Ms: 0.4,
  rttP99Ms: 1.2,
  rttMaxMs: 3,
  guestGapMs: null,
  firstSentMs: 1_699_999_999_000,
  lastSentMs: 1_700_000_004_000,
  silentAtEndMs: null,
  unansweredAtEnd: 0,
  // bigints that must never reach run.json (rows stay in probe.csv)
  rows: [{ seq: 0, sentNs: 1n, recvNs: 2n, guestMonoNs: 3n }],
  meta: { target: '10.77.0.102:7700' },
} satisfies ProbeRun;

export function result(b: WorkloadState, a: WorkloadState, log: string): ContainerRunResult {
  return {
    hosts,
    steps,
    figures,
    before: b,
    after: a,
    verify: verifyContinuity({ mode: MODE, before: b, after: a, log }),
    probe,
    workloadCommand: workloadArgv({ workload: { mode: MODE }, port: 7700, bind: hosts.serviceIp, logPath: '/ckpt/run/seq.log', periodMs: 5 }),
    imagesDir: '/run/miglab/mlab/ckpt/run',
    stopReason: preDecision.reason,
  };
}

export const header: ContainerRunHeader = {
  runId: '20261203-030000-ctr-fibonacci-iterative-ab12',
  startedAt: '2026-12-03T03:00:00.000Z',
  finishedAt: '2026-12-03T03:00:20.000Z',
  request: { workload: { mode: MODE }, strategy: 'iterative', transfer: 'nfs', rules: PHAUL_RULES, memoryMiB: 512, vcpus: 2, cpuModel: 'qemu64' },
  imageHash: '5e5c52d345983604',
  lab: 'mlab',
};

export const intact = result(before, after, logOf(AFTER_N));
