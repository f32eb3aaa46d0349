// Holds the guests of one group after they boot until every guest of the group has booted (or
// given up), so that `parallel` means "boot all, then migrate all at once".
export class BootBarrier {
  private remaining: number;
  private release: () => void = () => undefined;
  readonly opened: Promise<void>;

  constructor(count: number) {
    this.remaining = count;
    this.opened = new Promise<void>((resolve) => (this.release = resolve));
    if (count <= 0) this.release();
  }

  /** This guest has booted: wait for the rest. */
  arrive(): Promise<void> {
    this.done();
    return this.opened;
  }

  /** This guest will not boot (failed or aborted): stop waiting for it. */
  leave(): void {
    this.done();
  }

  private done(): void {
    this.remaining -= 1;
    if (this.remaining <= 0) this.release();
  }
}
