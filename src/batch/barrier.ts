// Gates that hold a guest, booted and ready (workload running; its probe starts at its turn), before its
// migrate command. Each guest of a step takes its own `GuestGate`: `ready` waits until it may
// migrate, `migrated` says its migration has ended, and
// `done` (always called, last) gives back whatever it still holds, so a guest that failed or was
// aborted never holds up the others.
//  - BootBarrier: `parallel` and waves mean "boot all, then migrate all at once".
//  - MigrationSlots: the scheduler's pipeline: at most K migrations on the link, while the next
//    guests boot, get ready and wait their turn, so the link idles neither during a boot nor
//    while the next guest's workload and probe start.

export interface GuestGate {
  ready(): Promise<void>;
  migrated(): void;
  done(): void;
}

export class BootBarrier {
  private remaining: number;
  private release: () => void = () => undefined;
  readonly opened: Promise<void>;

  constructor(count: number) {
    this.remaining = count;
    this.opened = new Promise<void>((resolve) => (this.release = resolve));
    if (count <= 0) this.release();
  }

  /** This guest is ready to migrate: wait for the rest. */
  arrive(): Promise<void> {
    this.count();
    return this.opened;
  }

  /** This guest will not boot (failed or aborted): stop waiting for it. */
  leave(): void {
    this.count();
  }

  gate(): GuestGate {
    let arrived = false;
    return {
      ready: () => {
        arrived = true;
        return this.arrive();
      },
      migrated: () => undefined,
      done: () => {
        if (!arrived) this.leave();
      },
    };
  }

  private count(): void {
    this.remaining -= 1;
    if (this.remaining <= 0) this.release();
  }
}

/** A counting semaphore over migrations in flight, first come first served. */
export class MigrationSlots {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly size: number) {
    this.free = size;
  }

  get inUse(): number {
    return this.size - this.free;
  }

  acquire(): Promise<void> {
    if (this.free > 0) {
      this.free -= 1;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free += 1;
  }

  /**
   * A guest's gate, and `released`: its place in flight given back (its migration ended, or the
   * guest is done without one), which is when the scheduler may start the next guest's boot.
   */
  gate(): GuestGate & { readonly released: Promise<void> } {
    let held = false;
    let released!: () => void;
    const givenBack = new Promise<void>((resolve) => (released = resolve));
    const give = () => {
      if (held) this.release();
      held = false;
      released();
    };
    return {
      ready: async () => {
        await this.acquire();
        held = true;
      },
      migrated: give,
      done: give,
      released: givenBack,
    };
  }
}
