// Deadlines for every wait. A caller passes `{ timeoutMs, signal }`; a timeout names the
// operation and its limit, and an abort (Ctrl-C) ends the wait at once.
import { AbortedError, TimeoutError } from '../errors.js';

export interface WaitOptions {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/** Resolve with `promise`, or reject with TimeoutError/AbortedError, whichever comes first. */
export function withDeadline<T>(operation: string, promise: Promise<T>, opts: WaitOptions): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (opts.signal?.aborted) {
      reject(new AbortedError(operation, opts.signal.reason));
      return;
    }
    const timer = setTimeout(() => finish(() => reject(new TimeoutError(operation, opts.timeoutMs))), opts.timeoutMs);
    const onAbort = () => finish(() => reject(new AbortedError(operation, opts.signal?.reason)));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    let done = false;
    function finish(action: () => void) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      action();
    }
    promise.then(
      (v) => finish(() => resolve(v)),
      (e: unknown) => finish(() => reject(e)),
    );
  });
}

/** Sleep that an abort ends early (with AbortedError). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return withDeadline('sleep', new Promise<void>(() => undefined), { timeoutMs: ms, signal }).catch((e: unknown) => {
    if (e instanceof TimeoutError) return;
    throw e;
  });
}

/** Poll `probe` every `intervalMs` until it returns a value other than undefined. */
export async function pollUntil<T>(
  operation: string,
  probe: () => Promise<T | undefined> | T | undefined,
  opts: WaitOptions & { intervalMs?: number },
): Promise<T> {
  const start = Date.now();
  const interval = opts.intervalMs ?? 50;
  for (;;) {
    if (opts.signal?.aborted) throw new AbortedError(operation, opts.signal.reason);
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() - start >= opts.timeoutMs) throw new TimeoutError(operation, opts.timeoutMs);
    await sleep(Math.min(interval, Math.max(1, opts.timeoutMs - (Date.now() - start))), opts.signal);
  }
}
