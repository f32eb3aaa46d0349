// Ownership of everything miglab starts. Whoever starts a process, namespace, link or server
// registers how to undo it here; `run()` undoes in reverse order on success, failure and Ctrl-C.
// A second `run()` is harmless. Errors during teardown are collected, never swallowed.
import { describeError } from '../errors.js';

type Undo = { readonly what: string; readonly fn: () => Promise<void> | void };

/** The problems of parts undone together (deferTogether), each kept as its own. */
class PartsFailed extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
  }
}

export class Teardown {
  private stack: Undo[] = [];
  private running: Promise<string[]> | undefined;
  readonly problems: string[] = [];

  /** Register `fn` to undo `what`. Returns a function that runs (and unregisters) it early. */
  defer(what: string, fn: () => Promise<void> | void): () => Promise<void> {
    const entry: Undo = { what, fn };
    this.stack.push(entry);
    return async () => {
      const i = this.stack.indexOf(entry);
      if (i < 0) return;
      this.stack.splice(i, 1);
      await entry.fn();
    };
  }

  /**
   * Register `parts` to be undone side by side, as one step of this teardown (each part newest
   * first, as always): independent things, such as the guests on two hosts, need not wait for
   * each other. Each part's problems are this teardown's, as they would be if undone here.
   */
  deferTogether(what: string, parts: readonly Teardown[]): void {
    this.stack.push({
      what,
      fn: async () => {
        const found = (await Promise.all(parts.map((p) => p.run()))).flat();
        if (found.length > 0) throw new PartsFailed(found);
      },
    });
  }

  get size(): number {
    return this.stack.length;
  }

  /** Undo everything, newest first. Resolves with the problems met (also kept in `problems`). */
  run(): Promise<string[]> {
    this.running ??= (async () => {
      const found: string[] = [];
      while (this.stack.length > 0) {
        const entry = this.stack.pop()!;
        try {
          await entry.fn();
        } catch (err) {
          if (err instanceof PartsFailed) found.push(...err.problems);
          else found.push(`${entry.what}: ${describeError(err)}`);
        }
      }
      this.problems.push(...found);
      this.running = undefined;
      return found;
    })();
    return this.running;
  }
}

/**
 * Run `body` with a fresh Teardown that is always run afterwards, and with an AbortSignal that
 * fires on SIGINT/SIGTERM so long waits stop at once. Ctrl-C thus stops and removes everything.
 * A caller's own signal (`outer`: an API user's, a bench's) ends `body` too.
 */
export async function withTeardown<T>(body: (td: Teardown, signal: AbortSignal) => Promise<T>, outer?: AbortSignal): Promise<T> {
  const td = new Teardown();
  const ac = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => ac.abort(new Error(`received ${sig}`));
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await body(td, outer ? AbortSignal.any([outer, ac.signal]) : ac.signal);
  } finally {
    await td.run();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
