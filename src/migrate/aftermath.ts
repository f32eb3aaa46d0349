// After a run: each side as the run left it (before anything is stopped), and what the run
// started that is still there after cleaning up (the aim is nothing). Both read what the run
// holds, whichever phase it reached.
import { describeError } from '../errors.js';
import type { Vm } from '../machine/vm.js';
import { withDeadline } from '../util/deadline.js';
import type { SideAfter } from './report.js';
import { switchedOver, type Run } from './run-state.js';

/** Looking at a side after the run: a QEMU that does not answer in this long is reported as such. */
const AFTER_CALL_MS = 3000;

/** Each side as the run left it, before anything is stopped. */
export async function observeAfter(run: Run): Promise<{ source: SideAfter; destination: SideAfter }> {
  const completed = switchedOver(run);
  // A destination whose source died mid-migration ends by itself a moment later: give it the moment.
  if (run.held.src?.process.hasExited && run.held.dst && !completed && !run.guard.interrupted) {
    await withDeadline('the destination to stop', run.held.dst.process.exited, { timeoutMs: 5000, signal: run.ctx.signal }).catch(() => undefined);
  }
  const hbMs = run.record.machine?.heartbeatMs ?? 100;
  const side = async (vm: Vm | undefined, role: 'source' | 'destination', expectBeats: boolean): Promise<SideAfter> => {
    if (!vm) return { process: 'not-started' };
    if (vm.process.hasExited) {
      const exit = await vm.process.exited;
      return { process: 'exited', exit, ...(expectBeats ? { heartbeat: 'silent' as const } : {}) };
    }
    // Interrupted: the user wants out; what the processes are is enough.
    if (run.guard.interrupted) return { process: 'running' };
    // A QEMU a fault froze cannot answer until the fault is undone (at teardown): say so, not a timeout.
    const frozen = run.faults.records.find((r) => r.fired && r.spec.kind === (role === 'source' ? 'freeze-src' : 'freeze-dst') && r.undoneAtMs === undefined);
    const asked = frozen
      ? { unanswered: `frozen by the ${frozen.fault} fault (SIGSTOP)` }
      : await vm.qmp.queryStatus({ timeoutMs: AFTER_CALL_MS, signal: run.ctx.signal }).then(
          (st) => ({ status: st.status }),
          (err: unknown) => ({ unanswered: describeError(err) }),
        );
    if (!expectBeats) return { process: 'running', ...asked, heartbeat: 'not-expected' };
    // Going on means a new beat from now on (a recent one could be the last of an agent the OOM killer just ended).
    const seq = vm.console.last?.seq ?? -1;
    const beat = await vm.console.waitBeat((hb) => hb.seq > seq, { timeoutMs: 3 * hbMs + 500, signal: run.ctx.signal }).then(
      () => true,
      () => false,
    );
    return { process: 'running', ...asked, heartbeat: beat ? 'continuing' : 'silent' };
  };
  const [source, destination] = await Promise.all([side(run.held.src, 'source', !completed), side(run.held.dst, 'destination', completed)]);
  if (!run.final && run.held.src && !run.held.src.process.hasExited && run.guard.migrateSentAt && !run.guard.interrupted && source.unanswered === undefined) {
    const m = await run.held.src.qmp.migrationInfo({ timeoutMs: AFTER_CALL_MS, signal: run.ctx.signal }).then(
      (i) => i.status,
      () => undefined, // not answering now: nothing to add
    );
    if (m) return { source: { ...source, migrationStatus: m }, destination };
  }
  return { source, destination };
}

/** What this run started that is still there after cleaning up (the aim is nothing). */
export async function leftovers(run: Run): Promise<string[]> {
  const found: string[] = [];
  for (const vm of [run.held.src, run.held.dst]) if (vm && !vm.process.hasExited) found.push(`QEMU ${vm.label} (pid ${vm.process.pid}) still running`);
  if (run.held.probe && !run.held.probe.process.hasExited) found.push(`probe (pid ${run.held.probe.pid}) still running`);
  for (const p of run.lab.liveProcesses({ runId: run.ctx.runId })) found.push(`${p.what} (pid ${p.pid}) still running`);
  // A host that cannot be asked (its SSH connection was lost) is said to be unchecked, never clean.
  const look = async (what: string, left: string, there: () => Promise<boolean>): Promise<string | undefined> => {
    try {
      return (await there()) ? left : undefined;
    } catch (err) {
      return `${what}: could not be checked (${describeError(err)})`;
    }
  };
  // Each a command of its own, all at once (they are on different hosts, or independent); said in this order.
  const looks: Promise<string | undefined>[] = [];
  const slot = run.held.slot;
  if (slot) {
    const tap = `tap-g${slot.index}`;
    for (const role of ['src', 'dst'] as const) looks.push(look(`${tap} on ${role}`, `${tap} still on ${role}`, () => run.lab.tapExists(role, tap)));
  }
  if (run.held.diskFile) {
    const path = run.lab.nfs.path(run.held.diskFile);
    looks.push(look(`data disk ${path}`, `data disk ${path} still there`, async () => (await run.lab.nfs.host.run(['test', '-e', path], { reject: false, timeoutMs: 10_000 })).exitCode === 0));
  }
  for (const left of await Promise.all(looks)) if (left) found.push(left);
  return [...new Set(found)];
}
