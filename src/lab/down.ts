// Finding a lab that is up (attachLab) and taking it down (labDown). Both read the lab's state
// file, so they work from any later miglab process and only ever touch what it lists. `lab down`
// refuses while a run is in progress on the lab unless forced; forced, it first stops that run's
// processes (its QEMUs quit on SIGTERM), so the run sees its guests go and says why. Processes a
// killed miglab left behind are stopped by pid and start time before the namespaces that hold
// them are deleted; anything else found inside the lab's namespaces is named, never touched.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { MiglabError, describeError } from '../errors.js';
import { CommandError } from '../host/local.js';
import type { Host } from '../host/host.js';
import type { WaitOptions } from '../util/deadline.js';
import { checkRoot } from './deps.js';
import { LabImpl, listNetns, type Lab } from './handle.js';
import { THIS_MACHINE, type LabMachine } from './machine.js';
import { isInside, removeDirIfEmpty } from './up.js';
import { isOwnedAlive, isSelf, procParentPid, stopOwnedGroup } from './proc.js';
import { ProcessRegistry, type RecordedProcess } from './procs.js';
import { SlotTable } from './slots.js';
import { DEFAULT_PREFIX, DEFAULT_STATE_ROOT, checkPrefix, labNamespaces, labPaths, maxGuestIndex } from './spec.js';
import { readLabState, updateLabState, type LabState } from './state.js';

export interface LabLocation {
  /** Root of miglab's state (default /run/miglab); the lab's files are in STATE_ROOT/PREFIX. */
  readonly stateRoot?: string;
  /** The machine the lab is on (default this one). */
  readonly machine?: LabMachine;
}

function stateFileOf(prefix: string, where: LabLocation): string {
  return labPaths({ prefix: checkPrefix(prefix), stateRoot: where.stateRoot ?? DEFAULT_STATE_ROOT }).stateFile;
}


/**
 * The lab with `prefix` if it is up (from its state file, its namespaces checked), else undefined.
 * A lab another miglab brought up for its own run only is refused: it goes down when that run ends.
 */
export async function attachLab(prefix: string = DEFAULT_PREFIX, where: LabLocation = {}): Promise<Lab | undefined> {
  const file = stateFileOf(prefix, where);
  const state = readLabState(file);
  if (!state) return undefined;
  if (state.phase !== 'up') {
    const what = state.phase === 'going-down' ? 'is being taken down' : 'is not fully up (its `lab up` was interrupted or is still running)';
    throw new MiglabError('LAB_STATE', `the lab "${prefix}" ${what}; run \`miglab lab down --prefix ${prefix}\` and bring it up again`);
  }
  const machine = where.machine ?? THIS_MACHINE;
  const existing = new Set(await listNetns(machine.host));
  const missing = state.netns.filter((ns) => !existing.has(ns));
  if (missing.length > 0) {
    throw new MiglabError('LAB_STATE', `the lab "${prefix}" is broken: namespace(s) ${missing.join(', ')} are gone; run \`miglab lab down --prefix ${prefix}\` and bring it up again`);
  }
  if (state.ephemeral && !isSelf({ pid: state.ownerPid, startTime: state.ownerStartTime }) && isOwnedAlive({ pid: state.ownerPid, startTime: state.ownerStartTime ?? 0 })) {
    throw new MiglabError(
      'LAB_STATE',
      `the lab "${prefix}" was brought up by another miglab (pid ${state.ownerPid}) for its own run and goes down when that run ends; to share a lab between runs, bring one up with \`miglab lab up --prefix NAME\` and pass --prefix NAME to each run`,
    );
  }
  return new LabImpl(state.spec, state.exportDir, machine);
}

export interface LabDownReport {
  readonly prefix: string;
  /** False when no lab was up (a second `down`): nothing was done. */
  readonly wasUp: boolean;
  /** What was removed or stopped, in order. */
  readonly removed: readonly string[];
  /** Processes inside the lab's namespaces that miglab did not start: named, left alone. */
  readonly foreign: readonly string[];
  /** One line for the user. */
  readonly message: string;
}

/** What of another run is on the lab: its live processes and the guest slots it holds. */
export function runsInProgress(state: LabState): string[] {
  const paths = labPaths(state.spec);
  const procs = new ProcessRegistry(paths.procsDir).inUse().filter((p) => !isSelf(p.owner));
  const runs = new Map<string, { pid: number; slots: string[]; processes: number }>();
  for (const s of new SlotTable(paths.slotsDir, maxGuestIndex(state.spec)).held().filter((x) => x.alive && !isSelf(x.holder))) {
    const r = runs.get(s.holder.runId) ?? { pid: s.holder.pid, slots: [], processes: 0 };
    r.slots.push(`g${s.index}`);
    runs.set(s.holder.runId, r);
  }
  for (const p of procs) {
    const key = p.runId ?? `miglab pid ${p.owner.pid}`;
    const r = runs.get(key) ?? { pid: p.owner.pid, slots: [], processes: 0 };
    r.processes++;
    runs.set(key, r);
  }
  // One line per run: which miglab, which slots, how many processes.
  return [...runs.entries()].map(([run, r]) => `run ${run} (miglab pid ${r.pid}${r.slots.length ? `, slot ${r.slots.join(', ')}` : ''}${r.processes ? `, ${r.processes} processes` : ''})`);
}

/** Processes inside a namespace (`ip netns pids`), with their command names. */
async function pidsIn(rootNs: Host, netns: string, waits: WaitOptions): Promise<{ pid: number; comm: string }[]> {
  const r = await rootNs.run(['ip', 'netns', 'pids', netns], { ...waits, reject: false });
  if (r.exitCode !== 0) return [];
  return r.stdout
    .split('\n')
    .map((l) => Number(l.trim()))
    .filter((pid) => Number.isInteger(pid) && pid > 0 && pid !== process.pid)
    .map((pid) => {
      let comm = '?';
      try {
        comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      } catch {
        // It ended while we looked: it is named by pid only.
      }
      return { pid, comm };
    });
}

/**
 * Take the lab down: stop the processes miglab recorded in it (a run's, if forced; those a killed
 * miglab left, always), its NFS server, delete its namespaces (which removes their veths,
 * bridges and taps), remove its state directory. Things already gone are fine. If something
 * cannot be removed, the state file is kept (so `down` can be retried) and the error lists what
 * is left.
 */
export async function labDown(prefix: string = DEFAULT_PREFIX, opts: WaitOptions & LabLocation & { force?: boolean } = { timeoutMs: 30_000 }): Promise<LabDownReport> {
  const file = stateFileOf(prefix, opts);
  const state = readLabState(file);
  if (!state) {
    const stray = labNamespaces(prefix).filter((ns) => existsSync(join('/run/netns', ns)));
    const note = stray.length > 0 ? ` (namespaces ${stray.join(', ')} exist but no state file records them, so miglab leaves them alone)` : '';
    return { prefix, wasUp: false, removed: [], foreign: [], message: `no lab "${prefix}" is up${note}` };
  }
  if (state.ephemeral && !isSelf({ pid: state.ownerPid, startTime: state.ownerStartTime }) && !opts.force && isOwnedAlive({ pid: state.ownerPid, startTime: state.ownerStartTime ?? 0 })) {
    throw new MiglabError(
      'LAB_STATE',
      `lab "${prefix}" was brought up by a running miglab (pid ${state.ownerPid}) for its own run, which takes it down when it ends; wait for it, or use --force`,
    );
  }
  const busy = runsInProgress(state);
  if (busy.length > 0 && !opts.force) {
    throw new MiglabError('LAB_STATE', `lab "${prefix}" has ${busy.length === 1 ? 'a run' : `${busy.length} runs`} in progress (${busy.join('; ')}); wait for it to end, or use --force, which stops its QEMUs first`);
  }
  checkRoot();
  // Runs on the lab watch its state: from here on they know it is going and say so.
  if (state.phase !== 'going-down') updateLabState(file, (st) => ({ ...st, phase: 'going-down' }));
  const removed: string[] = [];
  const problems: string[] = [];
  const attempt = async (what: string, fn: () => Promise<boolean>) => {
    try {
      if (await fn()) removed.push(what);
    } catch (err) {
      problems.push(`${what}: ${describeError(err)}`);
    }
  };
  const waits = { timeoutMs: Math.max(1000, opts.timeoutMs), signal: opts.signal };
  const paths = labPaths(state.spec);
  const rootNs = (opts.machine ?? THIS_MACHINE).host;

  // Guests first: a QEMU quits on SIGTERM; then the probes and tools of the runs.
  const recorded: RecordedProcess[] = new ProcessRegistry(paths.procsDir).live();
  const order = [...recorded.filter((p) => p.what.startsWith('qemu')), ...recorded.filter((p) => !p.what.startsWith('qemu'))];
  for (const p of order) await attempt(`${p.what} (pid ${p.pid}${isOwnedAlive(p.owner) ? `, run of miglab pid ${p.owner.pid}` : ', left by a miglab that is gone'})`, () => stopOwnedGroup(p, { ...waits, graceMs: 3000 }));

  const nfs = state.nfs;
  if (nfs) await attempt(`NFS server (pid ${nfs.server.pid})`, () => stopOwnedGroup(nfs.server, waits));
  const existing = new Set(await listNetns(rootNs));
  const foreign: string[] = [];
  // miglab's own short commands in the lab (an agent request, `ip`, `tc`) are children of a miglab
  // process that runs on the lab: those are ended with it; anything else is named and left alone.
  const miglabs = new Set([process.pid, ...recorded.map((p) => p.owner.pid), ...new SlotTable(paths.slotsDir, maxGuestIndex(state.spec)).held().map((x) => x.holder.pid)]);
  for (const ns of [...state.netns].reverse()) {
    if (!existing.has(ns)) continue;
    for (const p of await pidsIn(rootNs, ns, waits)) {
      const ppid = procParentPid(p.pid);
      if (ppid !== undefined && miglabs.has(ppid)) {
        await attempt(`${p.comm} (pid ${p.pid}, a command of miglab pid ${ppid}) in ${ns}`, async () => {
          process.kill(p.pid, 'SIGTERM');
          return true;
        });
      } else foreign.push(`${p.comm} (pid ${p.pid}) in ${ns}`);
    }
    await attempt(`namespace ${ns}`, async () => {
      const r = await rootNs.run(['ip', 'netns', 'del', ns], { ...waits, reject: false });
      if (r.exitCode !== 0 && (await listNetns(rootNs)).includes(ns)) throw new CommandError(rootNs.name, r);
      return true;
    });
  }
  if (problems.length > 0) {
    throw new MiglabError('LAB_STATE', `lab "${prefix}" is only partly down (state kept in ${file}; retry \`miglab lab down\`): ${problems.join('; ')}`, {
      context: { prefix, removed, problems },
    });
  }
  if (state.exportDirCreated && !isInside(state.labDir, state.exportDir)) {
    await attempt(`export directory ${state.exportDir}`, async () => {
      removeDirIfEmpty(state.exportDir);
      return !existsSync(state.exportDir);
    });
  }
  await attempt(`state directory ${state.labDir}`, async () => {
    rmSync(state.labDir, { recursive: true, force: true });
    return true;
  });
  if (state.stateRootCreated) {
    await attempt(`state root ${state.spec.stateRoot}`, async () => {
      removeDirIfEmpty(state.spec.stateRoot);
      return !existsSync(state.spec.stateRoot);
    });
  }
  if (problems.length > 0) throw new MiglabError('LAB_STATE', `lab "${prefix}" is down but some files remain: ${problems.join('; ')}`, { context: { prefix, removed, problems } });
  const stopped = removed.filter((r) => / \(pid \d+/.test(r) && !r.startsWith('NFS server')).length;
  const note = foreign.length > 0 ? `; left alone, not started by miglab: ${foreign.join(', ')}` : '';
  return {
    prefix,
    wasUp: true,
    removed,
    foreign,
    message: `lab "${prefix}" is down (${removed.length} things removed${stopped > 0 ? `, ${stopped} of them processes of runs` : ''})${note}`,
  };
}
