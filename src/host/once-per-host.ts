// What a host's programs say about themselves (QEMU's version, its CPU models) does not change
// while miglab runs: ask once per host and process. A failure is not remembered, so a later call
// asks again (a program installed meanwhile, a host that answers now).
import type { Host } from './host.js';

/** `ask`, called at most once per host name at a time; its answer is kept once it succeeds. */
export function oncePerHost<T>(ask: (host: Host) => Promise<T>): (host: Host) => Promise<T> {
  return oncePerKey((host) => host.name, ask);
}

/** `ask`, called at most once per `keyOf(...)` at a time (a host and a program on it); its answer is kept once it succeeds. */
export function oncePerKey<A extends unknown[], T>(keyOf: (...args: A) => string, ask: (...args: A) => Promise<T>): (...args: A) => Promise<T> {
  const answers = new Map<string, Promise<T>>();
  return (...args) => {
    const key = keyOf(...args);
    let answer = answers.get(key);
    if (!answer) {
      answer = ask(...args);
      answers.set(key, answer);
      answer.catch(() => answers.delete(key));
    }
    return answer;
  };
}
