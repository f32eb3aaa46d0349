// The run's watchers. Each looks at one thing that can end a run from outside the migration
// itself and trips the run's guard at once, naming the cause: a QEMU that exits while it should
// run, the guest's console reporting an OOM kill, a kernel panic or its agent exiting, the lab's
// NFS server dying, the lab being taken down, a results file that cannot be written. Without
// them such runs surfaced as a timeout a minute later, naming the wrong thing.
import { describeError } from '../errors.js';
import type { Lab } from '../lab/index.js';
import { withoutTimestamp, type Vm } from '../machine/vm.js';
import { trippedError, type RunGuard } from './guard.js';
import type { GuestTrouble } from './report.js';

export type Side = 'source' | 'destination';

function how(exit: { exitCode: number | null; signal: string | null }): string {
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.exitCode}`;
}

export interface QemuWatchOptions {
  /** Whether this exit ends the run now (a destination that exits mid-migration is left to QEMU's verdict). */
  readonly fatal: () => boolean;
  /** Words on a likely cause (e.g. "the kill-dst fault"), added to the message. */
  readonly cause?: () => string | undefined;
}

/**
 * What a QEMU said last before exiting on its own: its own error lines ("qemu-system-x86_64: ...")
 * when it printed some, the last two (a failed incoming migration says why on the line before
 * "load of migration failed", e.g. "Machine type received is 'pc-i440fx-10.0' and local is
 * 'pc-i440fx-7.2'"); else its last line. Heartbeats are not words.
 */
export function lastWords(tail: string): string | undefined {
  const lines = tail
    .split('\n')
    .map((l) => withoutTimestamp(l.trim()))
    .filter((l) => l && !l.includes('MIGLAB-HB'));
  const own = lines.filter((l) => /^qemu-system-[\w-]+: /.test(l));
  const words = own.length > 0 ? own.slice(-2) : lines.slice(-1);
  return words.length > 0 ? words.join(' / ') : undefined;
}

/** A QEMU exiting while miglab has not asked it to. */
export function watchQemuExit(vm: Vm, side: Side, guard: RunGuard, o: QemuWatchOptions): void {
  void vm.process.exited.then((exit) => {
    if (vm.stopRequested) return;
    const cause = o.cause?.();
    // QEMU says why it exits on its own (an error); a killed one says nothing worth quoting.
    const last = exit.signal ? undefined : lastWords(vm.process.tail(6));
    const msg = `the ${side} QEMU (${vm.label}, pid ${vm.process.pid}) ${how(exit)}${cause ? ` (${cause})` : ''}${last ? `; its last words: ${last}` : ''}`;
    if (o.fatal()) guard.trip('qemu-exit', trippedError('qemu-exit', msg, { side, exit }));
    else guard.note('qemu-exit', msg);
  });
}

/** The guest's console reporting trouble: kept as the run's guestTrouble, and the run stops. */
export function watchConsole(vm: Vm, side: Side, guard: RunGuard, onTrouble: (t: GuestTrouble) => void): void {
  vm.console.onTrouble((t, context) => {
    const trouble: GuestTrouble = { side, kind: t.kind, lines: [...context, t.line] };
    onTrouble(trouble);
    guard.trip('console', trippedError('console', `the guest on the ${side} reported ${t.summary}: "${t.line}" (${vm.label}.serial.log)`, { side, kind: t.kind }));
  });
}

/** A run file (serial log, QMP transcript) that cannot be written: the run cannot keep its results. */
export function resultsWriteError(guard: RunGuard): (file: string, err: Error) => void {
  return (file, err) =>
    guard.trip(
      'results',
      trippedError('results', `cannot write ${file}: ${describeError(err)}; the run stops, since it could not keep what it measures (free space, or choose another folder with --results)`),
    );
}

export interface LabWatch {
  stop(): void;
}

/**
 * The lab under the run, every `intervalMs`: its NFS server (the guests' disks) must be alive, and
 * the lab must still be up. A frozen (stopped) server is noted, not fatal: it may come back.
 */
export function watchLab(lab: Pick<Lab, 'stillUp' | 'nfsServerState' | 'nfs'>, guard: RunGuard, intervalMs = 500): LabWatch {
  let nfsWas = lab.nfsServerState();
  const timer = setInterval(() => {
    // Once the run is stopping, there is nothing more to tell it.
    if (guard.signal.aborted) {
      clearInterval(timer);
      return;
    }
    try {
      const gone = lab.stillUp();
      if (gone) {
        guard.trip('lab', trippedError('lab', `${gone} during the run`));
        return;
      }
      const nfs = lab.nfsServerState();
      if (nfs.state === nfsWas.state && nfs.pid === nfsWas.pid) return;
      if (nfs.state === 'gone') {
        guard.trip(
          'nfs',
          trippedError('nfs', `the lab's NFS server (pid ${nfs.pid}) is gone: both QEMUs' disk is on it (nfs://${lab.nfs.serverIp}${lab.nfs.exportDir}), so the guest's I/O cannot complete; \`miglab lab status\` shows the lab's state`),
        );
      } else if (nfs.state === 'stopped') {
        guard.note('nfs', `the lab's NFS server (pid ${nfs.pid}) is stopped (SIGSTOP): disk I/O waits until it runs again`);
      } else if (nfsWas.state === 'stopped' && nfs.state === 'running') {
        guard.note('nfs', `the lab's NFS server (pid ${nfs.pid}) runs again`);
      }
      nfsWas = nfs;
    } catch (err) {
      guard.note('lab', `could not check the lab: ${describeError(err)}`);
    }
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
