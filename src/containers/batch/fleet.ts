// A step's containers: N counters started on chost-src, each PID 1 of its own PID namespace with
// its own directory on the checkpoint export (its log, its images), checked after the moves (the
// migrated ones running on chost-dst, every log whole and still growing), and ended at the step's
// end in whichever guest holds them, so the next step starts from empty guests.
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MiglabError } from '../../errors.js';
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
  /** Its directory as the guests see it, and as the lab host does. */
  readonly guestDir: string;
  readonly hostDir: string;
}

export interface FleetOptions {
  readonly src: ContainerHost;
  readonly count: number;
  /** The step's directory on the export: in the guests and on the lab host. */
  readonly guestDir: string;
  readonly hostDir: string;
  readonly rssMiB: number;
  readonly periodMs: number;
  readonly signal: AbortSignal;
}

const COUNTER: ContainerWorkload = { mode: 'counter' };

/** Start the step's N containers, one spawn each (the agent makes each its own PID namespace). */
export async function startFleet(o: FleetOptions): Promise<BatchContainer[]> {
  const out: BatchContainer[] = [];
  for (let index = 0; index < o.count; index++) {
    const guestDir = `${o.guestDir}/c${index}`;
    const hostDir = join(o.hostDir, `c${index}`);
    await mkdir(join(hostDir, 'img'), { recursive: true });
    const launch = workloadArgv({ workload: COUNTER, port: BATCH_BASE_PORT + index, bind: '127.0.0.1', logPath: `${guestDir}/seq.log`, periodMs: o.periodMs, rssMiB: o.rssMiB });
    const p = await o.src.ctl.spawn(launch.argv, { newPid: true, log: `${guestDir}/workload.out`, signal: o.signal });
    out.push({ index, pid: p.pid, startTime: p.startTime, guestDir, hostDir });
  }
  return out;
}

/** Lines in each container's log on the export (after the writer's guest has synced). */
async function logLines(cs: readonly BatchContainer[]): Promise<Map<number, { text: string | undefined }>> {
  const out = new Map<number, { text: string | undefined }>();
  await Promise.all(cs.map(async (c) => out.set(c.index, { text: await readFile(join(c.hostDir, 'seq.log'), 'utf8').catch(() => undefined) })));
  return out;
}

const lineCount = (t: string | undefined) => (t === undefined ? 0 : t.split('\n').length - 1);

/** Wait until every container has written a first value: all are running before the moves begin. */
export async function waitFleetWriting(src: ContainerHost, cs: readonly BatchContainer[], periodMs: number, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + 60_000 + 2 * periodMs;
  let silent: BatchContainer[] = [...cs];
  while (silent.length > 0) {
    if (Date.now() > deadline) {
      const c = silent[0]!;
      const out = (await readFile(join(c.hostDir, 'workload.out'), 'utf8').catch(() => '')).trim().split('\n').slice(-1)[0];
      throw new MiglabError('COMMAND_FAILED', `${silent.length} of ${cs.length} containers wrote no value within ${Math.round((60_000 + 2 * periodMs) / 1000)} s (c${c.index}${out ? `: ${out}` : ''})`);
    }
    await sleep(Math.min(periodMs, 1000), signal);
    await src.ctl.exec(['sync'], { signal, timeoutMs: 60_000 });
    const lines = await logLines(silent);
    silent = silent.filter((c) => lineCount(lines.get(c.index)?.text) === 0);
  }
}

/** The restored init's pid on chost-dst (criu's pid file, next to the images). */
async function restoredPid(c: BatchContainer): Promise<number | undefined> {
  const t = await readFile(join(c.hostDir, 'img', 'restored.pid'), 'utf8').catch(() => '');
  const n = Number(t.trim());
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/** Which of these pids exist in a guest: one program for all of them. */
async function alivePids(h: ContainerHost, pids: readonly number[], signal: AbortSignal): Promise<Set<number>> {
  if (pids.length === 0) return new Set();
  // The pids are positional arguments ("$@"), never text in the script.
  const r = await h.ctl.exec(['sh', '-c', 'for p in "$@"; do [ -e /proc/$p ] && echo $p; done; true', 'sh', ...pids.map(String)], { signal, timeoutMs: 60_000 });
  return new Set(r.stdout.split('\n').filter(Boolean).map(Number));
}

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
  await dst.ctl.exec(['sync'], { signal, timeoutMs: 120_000 });
  const first = await logLines(migrated);
  await sleep(periodMs + 500, signal);
  await dst.ctl.exec(['sync'], { signal, timeoutMs: 120_000 });
  const second = await logLines(migrated);
  const alive = await alivePids(dst, [...pids.values()].filter((p): p is number => p !== undefined), signal);
  const checks = new Map<number, { ok: boolean; detail: string }>();
  for (const c of migrated) {
    const pid = pids.get(c.index);
    const text = second.get(c.index)?.text;
    const before = lineCount(first.get(c.index)?.text);
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
                ? `its log did not grow on chost-dst (${scan.lines} lines before and after ${periodMs + 500} ms)`
                : undefined;
    checks.set(c.index, problem ? { ok: false, detail: problem } : { ok: true, detail: `runs on chost-dst as pid ${pid}; ${scan!.lines} lines, 0..${scan!.lines - 1} once each and in order, ${scan!.lines - before} written during the check` });
  }
  return moves.map((m) => (m.outcome === 'migrated' && checks.has(m.index) ? { ...m, check: checks.get(m.index)! } : m));
}

/**
 * End every container of the step where it runs: the restored ones on chost-dst (their inits by
 * pid file; the namespace goes with its init), the ones whose dump failed on chost-src (by pid and
 * start time, so a reused pid is never hit). A guest that halted is left to the teardown.
 */
export async function endFleet(o: { src: ContainerHost; dst: ContainerHost; cs: readonly BatchContainer[]; moves: readonly ContainerMove[]; skip: ReadonlySet<string>; signal: AbortSignal }): Promise<void> {
  const onDst = o.cs.filter((c) => o.moves.some((m) => m.index === c.index && m.outcome === 'migrated'));
  const onSrc = o.cs.filter((c) => !o.moves.some((m) => m.index === c.index && (m.outcome === 'migrated' || m.outcome === 'restore-failed')));
  if (!o.skip.has(o.dst.name)) {
    const pids = (await Promise.all(onDst.map(restoredPid))).filter((p): p is number => p !== undefined);
    for (let i = 0; i < pids.length; i += 200) {
      await o.dst.ctl.exec(['kill', '-9', ...pids.slice(i, i + 200).map(String)], { reject: false, signal: o.signal, timeoutMs: 60_000 });
    }
  }
  if (!o.skip.has(o.src.name)) {
    for (const c of onSrc) await o.src.ctl.kill(c.pid, c.startTime, 9).catch(() => undefined);
  }
}
