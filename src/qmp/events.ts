// Event listeners: each has its own queue, so a slow consumer never makes another miss events.
// Consume with `for await (const e of listener)` or `await listener.next({ timeoutMs })`.
import { MiglabError, TimeoutError } from '../errors.js';
import { withDeadline, type WaitOptions } from '../util/deadline.js';
import type { QmpEvent } from './types.js';

export type EventFilter = string | readonly string[] | ((e: QmpEvent) => boolean);

export function eventMatcher(filter: EventFilter | undefined): (e: QmpEvent) => boolean {
  if (filter === undefined) return () => true;
  if (typeof filter === 'function') return filter;
  const names = typeof filter === 'string' ? [filter] : filter;
  return (e) => names.includes(e.event);
}

type Waiter = { resolve: (r: IteratorResult<QmpEvent>) => void; reject: (e: unknown) => void };

export class QmpEventListener implements AsyncIterable<QmpEvent> {
  private readonly queue: QmpEvent[] = [];
  private readonly waiters: Waiter[] = [];
  private ended = false;
  private failure: unknown;
  private readonly matches: (e: QmpEvent) => boolean;

  /** `detach` unregisters the listener from its client. */
  constructor(
    filter: EventFilter | undefined,
    private readonly detach: (l: QmpEventListener) => void,
  ) {
    this.matches = eventMatcher(filter);
  }

  /** Called by the client for every event; keeps those that pass the filter. */
  deliver(e: QmpEvent): void {
    if (this.ended || !this.matches(e)) return;
    const w = this.waiters.shift();
    if (w) w.resolve({ value: e, done: false });
    else this.queue.push(e);
  }

  /** Events received and not yet consumed. */
  get pending(): number {
    return this.queue.length;
  }

  /**
   * End the listener. Queued events can still be read; then iteration ends, or throws `failure`
   * when the connection broke.
   */
  end(failure?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = failure;
    this.detach(this);
    for (const w of this.waiters.splice(0)) {
      if (failure === undefined) w.resolve({ value: undefined, done: true });
      else w.reject(failure);
    }
  }

  /** Stop listening (same as end(), for readability at call sites). */
  close(): void {
    this.end();
  }

  private pull(): Promise<IteratorResult<QmpEvent>> {
    const e = this.queue.shift();
    if (e) return Promise.resolve({ value: e, done: false });
    if (this.ended) {
      return this.failure === undefined ? Promise.resolve({ value: undefined, done: true }) : Promise.reject(this.failure);
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /**
   * The next event that satisfies `predicate`, under a deadline. Events that do not satisfy it
   * are consumed. Rejects if the listener ends first.
   */
  async next(opts: WaitOptions, predicate: (e: QmpEvent) => boolean = () => true, what = 'QMP event'): Promise<QmpEvent> {
    const start = Date.now();
    for (;;) {
      const left = opts.timeoutMs - (Date.now() - start);
      if (left <= 0) throw new TimeoutError(`waiting for ${what}`, opts.timeoutMs);
      const pulled = this.pullCancelable();
      let r: IteratorResult<QmpEvent>;
      try {
        r = await withDeadline(`waiting for ${what}`, pulled.promise, { timeoutMs: left, signal: opts.signal });
      } catch (err) {
        // Our pull may still be parked; remove it so it cannot swallow a later event.
        pulled.cancel();
        if (err instanceof TimeoutError) throw new TimeoutError(`waiting for ${what}`, opts.timeoutMs);
        throw err;
      }
      if (r.done) throw new MiglabError('QMP_DISCONNECTED', `event listener closed while waiting for ${what}`);
      if (predicate(r.value)) return r.value;
    }
  }

  private pullCancelable(): { promise: Promise<IteratorResult<QmpEvent>>; cancel: () => void } {
    if (this.queue.length > 0 || this.ended) return { promise: this.pull(), cancel: () => undefined };
    let waiter: Waiter | undefined;
    const promise = new Promise<IteratorResult<QmpEvent>>((resolve, reject) => {
      waiter = { resolve, reject };
      this.waiters.push(waiter);
    });
    return {
      promise,
      cancel: () => {
        const i = waiter ? this.waiters.indexOf(waiter) : -1;
        if (i >= 0) this.waiters.splice(i, 1);
      },
    };
  }

  [Symbol.asyncIterator](): AsyncIterator<QmpEvent> {
    return {
      next: () => this.pull(),
      return: () => {
        this.end();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
