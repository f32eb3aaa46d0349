// A sampling loop: call `tick` on fixed ticks (so a slow read does not drift the series) until
// stop(), collecting what it returns. stop() waits for the loop, rethrows the error that ended
// it, and can be called twice. A read cut short by stop() itself is not a failure.
export interface Periodic<T> {
  /** Samples so far, oldest first. */
  readonly samples: readonly T[];
  stop(): Promise<T[]>;
}

export interface PeriodicOptions<T> {
  readonly intervalMs: number;
  /**
   * Prepares the loop (e.g. a first snapshot) and returns the tick; both get the stop signal. A
   * tick that returns undefined took no sample (a read it may miss; the series shows the gap).
   */
  readonly start: (signal: AbortSignal) => Promise<(signal: AbortSignal) => Promise<T | undefined>>;
  readonly onSample?: (sample: T) => void;
  /** Names the loop in the error that stop() rethrows. */
  readonly what: string;
  /** Told at once when an error ends the loop (stop() still rethrows it), so a user can stop relying on it. */
  readonly onFailure?: (err: unknown) => void;
}

export function startPeriodic<T>(opts: PeriodicOptions<T>): Periodic<T> {
  const samples: T[] = [];
  const ac = new AbortController();
  let failure: unknown;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  const loop = (async () => {
    try {
      const tick = await opts.start(ac.signal);
      const started = performance.now();
      for (let i = 1; !ac.signal.aborted; i++) {
        const delay = Math.max(0, started + i * opts.intervalMs - performance.now());
        await new Promise<void>((resolve) => {
          wake = resolve;
          timer = setTimeout(resolve, delay);
        });
        if (ac.signal.aborted) break;
        const sample = await tick(ac.signal);
        if (ac.signal.aborted) break;
        if (sample === undefined) continue;
        samples.push(sample);
        opts.onSample?.(sample);
      }
    } catch (err) {
      if (!ac.signal.aborted) {
        failure = err;
        opts.onFailure?.(err);
      }
    }
  })();
  let stopping: Promise<T[]> | undefined;
  return {
    samples,
    stop() {
      stopping ??= (async () => {
        ac.abort(new Error(`${opts.what} stopped`));
        clearTimeout(timer);
        wake?.();
        await loop;
        if (failure !== undefined) throw failure;
        return samples;
      })();
      return stopping;
    },
  };
}
