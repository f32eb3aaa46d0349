// Ownership of the lab's long-lived processes across miglab invocations: a process is named by
// its pid plus its start time (/proc/PID/stat), so `lab down` run later, from another process,
// only ever signals that exact process and never a newer one that reused the pid.
import { parsePidStat } from '../measure/host-sampler.js';
import { readFileSync } from 'node:fs';
import { TimeoutError } from '../errors.js';
import { pollUntil, type WaitOptions } from '../util/deadline.js';

export interface OwnedProcess {
  readonly pid: number;
  /** Field 22 of /proc/PID/stat: clock ticks after boot. */
  readonly startTime: number;
}

interface ProcStat {
  readonly state: string;
  readonly startTime: number;
  readonly ppid: number;
}

/** Parse /proc/PID/stat text. The command name (field 2) may hold spaces and parentheses. */
export function parseProcStat(text: string): ProcStat | undefined {
  try {
    const st = parsePidStat(text);
    return { state: st.state, startTime: st.startTicks, ppid: st.ppid };
  } catch {
    // Not a stat line (a process that vanished mid-read): the caller treats it as gone.
    return undefined;
  }
}

function readStat(pid: number): ProcStat | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    // No such process (or it vanished while reading): the caller treats it as gone.
    return undefined;
  }
}

/** Whether a process with this pid exists now (one the caller may not signal counts: EPERM). */
export function pidRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

let self: OwnedProcess | undefined;

/** This miglab process, named as recorded processes are (read once, when first asked). */
export function selfProcess(): OwnedProcess {
  self ??= { pid: process.pid, startTime: procStartTime(process.pid) ?? 0 };
  return self;
}

/** Whether a recorded pid (with its start time, when known) is this miglab process. */
export function isSelf(p: { readonly pid: number; readonly startTime?: number }): boolean {
  const me = selfProcess();
  return p.pid === me.pid && (p.startTime === undefined || p.startTime === me.startTime);
}

/** How a recorded process is now: running, stopped by a signal (SIGSTOP: state T), or gone. */
export function ownedState(p: OwnedProcess): 'running' | 'stopped' | 'gone' {
  const st = readStat(p.pid);
  if (!st || st.startTime !== p.startTime || st.state === 'Z' || st.state === 'X') return 'gone';
  return st.state === 'T' || st.state === 't' ? 'stopped' : 'running';
}

/**
 * Send `signal` to a recorded process's whole group (it leads one: it was started detached),
 * only while the leader is provably that process. Returns false when it is gone.
 */
export function signalOwnedGroup(p: OwnedProcess, signal: NodeJS.Signals): boolean {
  if (!isOwnedAlive(p)) return false;
  try {
    process.kill(-p.pid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/** The parent's pid of a running process, or undefined once it is gone. */
export function procParentPid(pid: number): number | undefined {
  return readStat(pid)?.ppid;
}

export function procStartTime(pid: number): number | undefined {
  return readStat(pid)?.startTime;
}

/** The recorded process is still running (the same one, not a zombie, not a reused pid). */
export function isOwnedAlive(p: OwnedProcess): boolean {
  const st = readStat(p.pid);
  return st !== undefined && st.startTime === p.startTime && st.state !== 'Z' && st.state !== 'X';
}

function groupHasMembers(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    // ESRCH: nobody is left in the group. EPERM cannot happen as root; say so if it does.
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/**
 * Stop a recorded process that leads its own process group (it was started detached) together
 * with everything it started: SIGTERM to the group, wait up to `graceMs`, then SIGKILL, and wait
 * until the group is empty. The group is only signalled while it is provably ours: its leader is
 * the recorded process, or the leader is gone but members remain (Linux does not hand out a pid
 * that is still in use as a process group id). Returns false if nothing of it was left.
 */
export async function stopOwnedGroup(p: OwnedProcess, opts: WaitOptions & { graceMs?: number }): Promise<boolean> {
  const ours = () => {
    const st = readStat(p.pid);
    // A zombie leader with our start time is still ours (its parent has not reaped it yet).
    return st ? st.startTime === p.startTime : groupHasMembers(p.pid);
  };
  if (!ours() || !groupHasMembers(p.pid)) return false;
  const signalGroup = (sig: NodeJS.Signals) => {
    if (!ours()) return;
    try {
      process.kill(-p.pid, sig);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      // ESRCH: the group emptied between the check and the signal, which is what we want.
    }
  };
  const emptied = (timeoutMs: number) =>
    pollUntil(`stopping process group ${p.pid}`, () => (groupHasMembers(p.pid) ? undefined : true), { ...opts, timeoutMs, intervalMs: 25 });
  const grace = Math.min(opts.graceMs ?? 3000, opts.timeoutMs);
  signalGroup('SIGTERM');
  try {
    await emptied(grace);
    return true;
  } catch (err) {
    if (!(err instanceof TimeoutError)) throw err;
    // It ignored SIGTERM for the whole grace period: kill it.
  }
  signalGroup('SIGKILL');
  await emptied(Math.max(1000, opts.timeoutMs - grace));
  return true;
}
