// A step's containers: N counters started on chost-src, each PID 1 of its own PID namespace with
// its own directory on the checkpoint export (its images) and its own files (log, output) in the
// guest's memory or on the export (types.ts ContainerFiles), checked after the moves (the migrated
// ones running on chost-dst, every log whole and still growing), and ended at the step's end in
// whichever guest holds them, so the next step starts from empty guests.
//
// Every look at the containers' files goes through the guest that holds them, a few hundred paths
// per exec (the agent takes at most 512 arguments and returns at most 64 KiB of output).
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError } from '../../errors.js';
import { sleep } from '../../util/deadline.js';
import type { ContainerHost } from '../hosts.js';
import { scanLog } from '../verify.js';
import { workloadArgv, type ContainerWorkload } from '../workload.js';
import type { ContainerMove } from './types.js';

/** Each container's UDP service port is this plus its index, on the guest's loopback: they share the guest's network. */
export const BATCH_BASE_PORT = 20_000;
/** The most containers one step may start (ports BATCH_BASE_PORT.. stay below 65536). */
export const MAX_BATCH_COUNT = 4000;

export interface BatchContainer {
  readonly index: number;
  /** Its init's pid on chost-src, and the start time that names it. */
  readonly pid: number;
  readonly startTime: number;
  /** Its directory on the export as the guests see it, and as the lab host does. */
  readonly guestDir: string;
  readonly hostDir: string;
  /** Where its log (seq.log) and output (workload.out) are, in the guest that runs it. */
  readonly filesDir: string;
  /** Its files are in the guest's memory: a move copies them along (through guestDir/files). */
  readonly filesInGuest: boolean;
}

/** The files a container's tree holds open: a move carries them, CRIU checks each one's size. */
export const CONTAINER_FILE_NAMES = ['seq.log', 'workload.out'] as const;

/** The agent's argument limit is 512: paths go a few hundred at a time. */
const PATHS_PER_EXEC = 200;

export function chunks<T>(xs: readonly T[], size = PATHS_PER_EXEC): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

/**
 * Run `argv` followed by a few hundred of `args` at a time in a guest (positional arguments, never
 * text in a script), and return the stdout of every run, joined. `args` of pairs stay paired: the
 * chunk size is even. A command that exits non-zero (a file missing, a pid gone) still gives its
 * output, unless `reject`.
 */
async function execOver(h: ContainerHost, argv: readonly string[], args: readonly string[], signal: AbortSignal, o: { timeoutMs?: number; reject?: boolean } = {}): Promise<string> {
  let out = '';
  for (const part of chunks(args)) out += (await h.ctl.exec([...argv, ...part], { reject: o.reject ?? false, signal, timeoutMs: o.timeoutMs ?? 60_000 })).stdout;
  return out;
}

export interface FleetOptions {
  readonly src: ContainerHost;
  readonly count: number;
  /** The step's directory on the export: in the guests and on the lab host. */
  readonly guestDir: string;
  readonly hostDir: string;
  /** The step's directory in the guests' memory for the containers' files; undefined: on the export. */
  readonly localDir: string | undefined;
  readonly rssMiB: number;
  readonly periodMs: number;
  readonly signal: AbortSignal;
}

const COUNTER: ContainerWorkload = { mode: 'counter' };

/**
 * How long one spawn may wait for the agent's answer. Starting the 400th counter, chost-src (one
 * TCG vCPU) was busy starting the ones before: PSI cpu 99 %, load 46-110, its control port silent
 * for 30 s, and a spawn's answer took longer than the agent's usual 10 s. A guest that stops
 * answering altogether is the watch's halt (60 s), which aborts the step first.
 */
export const SPAWN_TIMEOUT_MS = 120_000;

export interface Fleet {
  /** Those started, in order: all N, or the ones before the start failed. */
  readonly containers: BatchContainer[];
  /** Why the rest were not started (the guest's answer, or its silence). */
  readonly failure?: string;
}

/**
 * Start the step's N containers, one spawn each (the agent makes each its own PID namespace). A
 * guest that cannot start them all is a result of the step, not an error of the batch: the ones
 * started are returned with the reason.
 */
export async function startFleet(o: FleetOptions): Promise<Fleet> {
  const local = o.localDir;
  const dirs = Array.from({ length: o.count }, (_, index) => ({
    index,
    guestDir: `${o.guestDir}/c${index}`,
    hostDir: join(o.hostDir, `c${index}`),
    filesDir: local === undefined ? `${o.guestDir}/c${index}` : `${local}/c${index}`,
    filesInGuest: local !== undefined,
  }));
  // img/ for CRIU's images; files/ for the copies a move carries when the files are in the guest.
  for (const d of dirs) {
    await mkdir(join(d.hostDir, 'img'), { recursive: true });
    if (d.filesInGuest) await mkdir(join(d.hostDir, 'files'), { recursive: true });
  }
  if (local !== undefined) await execOver(o.src, ['mkdir', '-p', '--'], dirs.map((d) => d.filesDir), o.signal, { reject: true });
  const out: BatchContainer[] = [];
  for (const d of dirs) {
    const launch = workloadArgv({ workload: COUNTER, port: BATCH_BASE_PORT + d.index, bind: '127.0.0.1', logPath: `${d.filesDir}/seq.log`, periodMs: o.periodMs, rssMiB: o.rssMiB });
    try {
      const p = await o.src.ctl.spawn(launch.argv, { newPid: true, log: `${d.filesDir}/workload.out`, signal: o.signal, timeoutMs: SPAWN_TIMEOUT_MS });
      out.push({ ...d, pid: p.pid, startTime: p.startTime });
    } catch (err) {
      if (o.signal.aborted) throw err;
      return { containers: out, failure: `starting c${d.index}: ${describeError(err)}` };
    }
  }
  return { containers: out };
}

/** Which of these containers' logs are still empty in the guest that writes them. */
async function emptyLogs(h: ContainerHost, cs: readonly BatchContainer[], signal: AbortSignal): Promise<BatchContainer[]> {
  const out = await execOver(h, ['sh', '-c', 'for f; do [ -s "$f" ] || echo "$f"; done; true', 'sh'], cs.map((c) => `${c.filesDir}/seq.log`), signal);
  const empty = new Set(out.split('\n'));
  return cs.filter((c) => empty.has(`${c.filesDir}/seq.log`));
}

/**
 * Wait until every container has written a first value: all are running before the moves begin.
 * Returns why not, when some stayed silent (a result of the step, as a failed start is).
 */
export async function waitFleetWriting(src: ContainerHost, cs: readonly BatchContainer[], periodMs: number, signal: AbortSignal): Promise<string | undefined> {
  const deadline = Date.now() + 60_000 + 2 * periodMs;
  let silent: BatchContainer[] = [...cs];
  while (silent.length > 0) {
    if (Date.now() > deadline) {
      const c = silent[0]!;
      const tail = await src.ctl.exec(['tail', '-n', '1', '--', `${c.filesDir}/workload.out`], { reject: false, signal, timeoutMs: 30_000 });
      const out = tail.stdout.trim();
      return `${silent.length} of ${cs.length} containers wrote no value within ${Math.round((60_000 + 2 * periodMs) / 1000)} s (c${c.index}${out ? `: ${out}` : ''})`;
    }
    await sleep(Math.min(periodMs, 1000), signal);
    silent = await emptyLogs(src, silent, signal);
  }
  return undefined;
}

/** Lines in each container's log, counted in the guest that writes it (`wc -l`). */
async function lineCounts(h: ContainerHost, cs: readonly BatchContainer[], signal: AbortSignal): Promise<Map<number, number>> {
  const byPath = new Map(cs.map((c) => [`${c.filesDir}/seq.log`, c.index]));
  const out = new Map<number, number>();
  for (const l of (await execOver(h, ['wc', '-l', '--'], [...byPath.keys()], signal)).split('\n')) {
    const m = /^\s*(\d+) (.+)$/.exec(l);
    const index = m ? byPath.get(m[2]!) : undefined;
    if (index !== undefined) out.set(index, Number(m![1]));
  }
  return out;
}

/**
 * Put each container's log where the lab host reads it (hostDir/seq.log): copied out of the
 * guest's memory, or flushed by the guest's NFS client when it is on the export already.
 */
async function publishLogs(h: ContainerHost, cs: readonly BatchContainer[], signal: AbortSignal): Promise<Map<number, string | undefined>> {
  // Pairs of (from, to), two positional arguments each.
  const pairs = cs.filter((c) => c.filesInGuest).flatMap((c) => [`${c.filesDir}/seq.log`, `${c.guestDir}/seq.log`]);
  await execOver(h, ['sh', '-c', 'while [ $# -gt 1 ]; do cp -- "$1" "$2"; shift 2; done; true', 'sh'], pairs, signal, { timeoutMs: 120_000 });
  await h.ctl.exec(['sync'], { signal, timeoutMs: 120_000 });
  const out = new Map<number, string | undefined>();
  await Promise.all(cs.map(async (c) => out.set(c.index, await readFile(join(c.hostDir, 'seq.log'), 'utf8').catch(() => undefined))));
  return out;
}

/** The restored init's pid on chost-dst (criu's pid file, next to the images). */
async function restoredPid(c: BatchContainer): Promise<number | undefined> {
  const t = await readFile(join(c.hostDir, 'img', 'restored.pid'), 'utf8').catch(() => '');
  const n = Number(t.trim());
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/** Which of these pids exist in a guest: one program for all of them. */
async function alivePids(h: ContainerHost, pids: readonly number[], signal: AbortSignal): Promise<Set<number>> {
  const out = await execOver(h, ['sh', '-c', 'for p in "$@"; do [ -e /proc/$p ] && echo $p; done; true', 'sh'], pids.map(String), signal);
  return new Set(out.split('\n').filter(Boolean).map(Number));
}

/** The longest a migrated container's log is given to grow on chost-dst. */
const GROWTH_WAIT_MS = 5000;

/**
 * Check each migrated container: its restored init runs on chost-dst, and its log is whole from
 * index 0 (no gap, no repeat, no torn line, every value right) and grew over one more period on
 * chost-dst (it goes on, not only exists). Returns the moves with `check` set on the migrated ones.
 */
export async function checkMigrated(dst: ContainerHost, cs: readonly BatchContainer[], moves: readonly ContainerMove[], periodMs: number, signal: AbortSignal): Promise<ContainerMove[]> {
  const migrated = cs.filter((c) => moves.some((m) => m.index === c.index && m.outcome === 'migrated'));
  if (migrated.length === 0) return [...moves];
  const pids = new Map<number, number | undefined>();
  await Promise.all(migrated.map(async (c) => pids.set(c.index, await restoredPid(c))));
  const first = await lineCounts(dst, migrated, signal);
  // One more period (and some) for each log to grow; a guest slowed down (TCG, a loaded machine,
  // restores just done) is given up to GROWTH_WAIT_MS in all, asked again each period.
  const waitedFrom = Date.now();
  let second: Map<number, string | undefined>;
  for (;;) {
    await sleep(periodMs + 500, signal);
    second = await publishLogs(dst, migrated, signal);
    const grown = migrated.every((c) => {
      const text = second.get(c.index);
      return text === undefined || scanLog('counter', text).lines > (first.get(c.index) ?? 0);
    });
    if (grown || Date.now() - waitedFrom >= GROWTH_WAIT_MS) break;
  }
  const waitedMs = Date.now() - waitedFrom;
  const alive = await alivePids(dst, [...pids.values()].filter((p): p is number => p !== undefined), signal);
  const checks = new Map<number, { ok: boolean; detail: string }>();
  for (const c of migrated) {
    const pid = pids.get(c.index);
    const text = second.get(c.index);
    const before = first.get(c.index) ?? 0;
    const scan = text === undefined ? undefined : scanLog('counter', text);
    const problem =
      pid === undefined
        ? 'criu restore wrote no pid file'
        : !alive.has(pid)
          ? `its restored init (pid ${pid}) is not running on chost-dst`
          : scan === undefined
            ? 'its log cannot be read'
            : scan.problem
              ? `its log: ${scan.problem}`
              : scan.lines <= before
                ? `its log did not grow on chost-dst (${scan.lines} lines before and after ${waitedMs} ms)`
                : undefined;
    checks.set(c.index, problem ? { ok: false, detail: problem } : { ok: true, detail: `runs on chost-dst as pid ${pid}; ${scan!.lines} lines, 0..${scan!.lines - 1} once each and in order, ${scan!.lines - before} written during the check` });
  }
  return moves.map((m) => (m.outcome === 'migrated' && checks.has(m.index) ? { ...m, check: checks.get(m.index)! } : m));
}

/**
 * End every container of the step where it runs: the restored ones on chost-dst (their inits by
 * pid file; the namespace goes with its init), the ones whose dump failed on chost-src (by pid and
 * start time, so a reused pid is never hit), and their files in the guests' memory. Called only
 * while both guests run: a guest that halted is left to the teardown.
 */
export async function endFleet(o: { src: ContainerHost; dst: ContainerHost; cs: readonly BatchContainer[]; moves: readonly ContainerMove[]; localDir: string | undefined; signal: AbortSignal }): Promise<void> {
  const onDst = o.cs.filter((c) => o.moves.some((m) => m.index === c.index && m.outcome === 'migrated'));
  const onSrc = o.cs.filter((c) => !o.moves.some((m) => m.index === c.index && (m.outcome === 'migrated' || m.outcome === 'restore-failed')));
  const pids = (await Promise.all(onDst.map(restoredPid))).filter((p): p is number => p !== undefined);
  await execOver(o.dst, ['kill', '-9'], pids.map(String), o.signal);
  for (const c of onSrc) await o.src.ctl.kill(c.pid, c.startTime, 9).catch(() => undefined);
  // Their files in the guests' memory go with them.
  if (o.localDir !== undefined) for (const h of [o.src, o.dst]) await h.ctl.exec(['rm', '-rf', '--', o.localDir], { reject: false, signal: o.signal, timeoutMs: 60_000 });
}
