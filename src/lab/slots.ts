// Guest slots of a lab. Slot N is guest N's address (.100+N), MAC, tap name (tap-gN) and
// migration port offset; two runs on one lab must never share one (they collided on tap-g0). A
// run takes a slot by creating STATE_ROOT/PREFIX/slots/gN.json exclusively (O_EXCL: atomic, so two
// runs cannot both win), naming itself by pid and start time. A slot whose holder is gone (killed
// miglab) is reclaimed: what the dead run left in it is cleaned first. A run whose preferred slot
// is held by a live run takes the next free one.
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { MiglabError } from '../errors.js';
import { AbortedError } from '../errors.js';
import { isOwnedAlive, selfProcess } from './proc.js';

const HolderSchema = z.object({
  pid: z.number().int().positive(),
  startTime: z.number().int().nonnegative(),
  runId: z.string(),
  since: z.string(),
});
export type SlotHolder = z.infer<typeof HolderSchema>;

export interface SlotRequest {
  /** The slot the run asks for; another is taken when a live run holds it. */
  readonly preferred: number;
  readonly runId: string;
  readonly signal?: AbortSignal;
}

export interface HeldSlot {
  readonly index: number;
  /** What a dead run had left in the slot and was cleaned before it was taken over. */
  readonly reclaimed: readonly string[];
  /** Give the slot back (idempotent). */
  release(): void;
}

export class SlotTable {
  constructor(
    readonly dir: string,
    /** Highest slot index the lab has addresses for. */
    readonly maxIndex: number,
  ) {}

  private file(index: number): string {
    return join(this.dir, `g${index}.json`);
  }

  /** Who holds slot `index` (undefined: free, or a record too torn to name anyone). */
  holder(index: number): SlotHolder | undefined {
    try {
      const r = HolderSchema.safeParse(JSON.parse(readFileSync(this.file(index), 'utf8')));
      return r.success ? r.data : undefined;
    } catch {
      // Absent (free) or torn by a crash mid-write (then nobody holds it for sure).
      return undefined;
    }
  }

  /** Slots held now, with whether their holder still runs. */
  held(): { index: number; holder: SlotHolder; alive: boolean }[] {
    const out: { index: number; holder: SlotHolder; alive: boolean }[] = [];
    for (let i = 0; i <= this.maxIndex; i++) {
      const h = this.holder(i);
      if (h) out.push({ index: i, holder: h, alive: isOwnedAlive(h) });
    }
    return out;
  }

  private tryTake(index: number, runId: string): boolean {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    let fd: number;
    try {
      fd = openSync(this.file(index), 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
    try {
      const holder: SlotHolder = { ...selfProcess(), runId, since: new Date().toISOString() };
      writeSync(fd, `${JSON.stringify(holder)}\n`);
    } finally {
      closeSync(fd);
    }
    return true;
  }

  /**
   * Take the preferred slot or the next free one. A slot held by a dead run is reclaimed after
   * `reclaim(index, holder)` has cleaned what that run left there.
   */
  async acquire(req: SlotRequest, reclaim: (index: number, holder: SlotHolder | undefined) => Promise<string[]>): Promise<HeldSlot> {
    if (!Number.isInteger(req.preferred) || req.preferred < 0 || req.preferred > this.maxIndex) {
      throw new MiglabError('BAD_INPUT', `guest slot ${req.preferred} is out of range (0 to ${this.maxIndex})`);
    }
    const order = [...Array(this.maxIndex + 1).keys()].map((k) => (req.preferred + k) % (this.maxIndex + 1));
    for (const index of order) {
      if (req.signal?.aborted) throw new AbortedError('taking a guest slot', req.signal.reason);
      if (this.tryTake(index, req.runId)) return this.lease(index, req.runId, []);
      const h = this.holder(index);
      if (h && isOwnedAlive(h)) continue;
      // Its holder is gone (or the record is torn): clean what it left, then take it over.
      const cleaned = await reclaim(index, h);
      rmSync(this.file(index), { force: true });
      if (this.tryTake(index, req.runId)) return this.lease(index, req.runId, [`slot g${index} of run ${h?.runId ?? '(unknown)'}, whose miglab (pid ${h?.pid ?? '?'}) is gone`, ...cleaned]);
    }
    throw new MiglabError('LAB_STATE', `all ${this.maxIndex + 1} guest slots of the lab are held by running miglab runs; wait for one to end`);
  }

  private lease(index: number, runId: string, reclaimed: string[]): HeldSlot {
    let released = false;
    const file = this.file(index);
    return {
      index,
      reclaimed,
      release: () => {
        if (released) return;
        released = true;
        // Only our own record: a slot reclaimed by someone else after a crash is theirs now.
        if (this.holder(index)?.runId === runId) rmSync(file, { force: true });
      },
    };
  }
}
