// What a COLO pair does by itself once in lock-step, watched from the moment it gets there: either
// QEMU exiting, COLO leaving (COLO_EXIT, with QEMU's reason), and the secondary's guest stopping and
// running (STOP and RESUME: each checkpoint, and the failover). The run races its lock-step against
// this: a secondary lost ends the run (the primary goes on alone, unprotected); a primary lost before
// the planned failure is the failure COLO is there for, and the failover follows at once.
import type { Vm } from '../machine/vm.js';
import { eventTimeMs, type QmpEvent } from '../qmp/types.js';

export interface ColoExit {
  readonly side: 'primary' | 'secondary';
  readonly atMs: number;
  readonly mode: string;
  readonly reason: string;
}

export type PairLoss = { readonly lost: 'primary'; readonly atMs: number; readonly how: string } | { readonly lost: 'secondary'; readonly atMs: number; readonly how: string };

function exitWords(e: { exitCode: number | null; signal: string | null }): string {
  return e.signal ? `killed by ${e.signal}` : `exited with code ${e.exitCode}`;
}

export class PairWatch {
  readonly coloExits: ColoExit[] = [];
  /** The secondary's STOP and RESUME events. */
  readonly runState: QmpEvent[] = [];
  /** Settles with the first QEMU of the pair to exit (never, if both run on). */
  readonly loss: Promise<PairLoss>;
  private readonly offs: (() => void)[] = [];
  private closed = false;
  /** Settles with the primary's COLO_EXIT. */
  private readonly primaryExit: Promise<void>;

  constructor(
    private readonly primary: Vm,
    secondary: Vm,
  ) {
    let primaryExited!: () => void;
    this.primaryExit = new Promise((resolve) => (primaryExited = resolve));
    for (const [side, vm] of [['primary', primary], ['secondary', secondary]] as const) {
      this.offs.push(
        vm.qmp.onEvent((e) => {
          if (e.event === 'COLO_EXIT') {
            this.coloExits.push({ side, atMs: eventTimeMs(e), mode: String(e.data.mode ?? ''), reason: String(e.data.reason ?? '') });
            if (side === 'primary') primaryExited();
          }
          if (side === 'secondary' && (e.event === 'STOP' || e.event === 'RESUME')) this.runState.push(e);
        }),
      );
    }
    const gone = (side: 'primary' | 'secondary', vm: Vm) =>
      vm.process.exited.then((e): PairLoss => ({ lost: side, atMs: Date.now(), how: `the ${side} QEMU ${exitWords(e)}` }));
    this.loss = Promise.race([gone('primary', primary), gone('secondary', secondary)]);
    this.loss.catch(() => undefined);
  }

  /** The primary was stopped by the run itself (the planned failure, or fencing): not a loss to report. */
  get primaryExited(): boolean {
    return this.primary.process.hasExited;
  }

  /** What the secondary's guest did: its STOP and RESUME times (epoch ms). */
  runStateTimes(): { event: string; atMs: number }[] {
    return this.runState.map((e) => ({ event: e.event, atMs: eventTimeMs(e) }));
  }

  /** Wait up to `ms` for the primary's COLO_EXIT (it follows the secondary's loss by a moment). */
  async primaryColoExit(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.primaryExit, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
  }

  /** The secondary died: why, in one line, with what COLO on the primary said of it. */
  secondaryLost(how: string): string {
    const p = this.coloExits.find((x) => x.side === 'primary');
    return `${how} during lock-step: the guest goes on on the primary alone, unprotected${p ? ` (COLO_EXIT on the primary: mode ${p.mode}, reason ${p.reason})` : ''}`;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const off of this.offs) off();
  }
}
