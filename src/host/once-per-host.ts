// What a host's programs say about themselves (QEMU's version, its CPU models) does not change
// while miglab runs: ask once per host and process. A failure is not remembered, so a later call
// asks again (a program installed meanwhile, a host that answers now).
import type { Host } from './host.js';

/** `ask`, called at most once per host name at a time; its answer is kept once it succeeds. */
export function oncePerHost<T>(ask: (host: Host) => Promise<T>): (host: Host) => Promise<T> {
  const answers = new Map<string, Promise<T>>();
  return (host) => {
    let answer = answers.get(host.name);
    if (!answer) {
      answer = ask(host);
      answers.set(host.name, answer);
      answer.catch(() => answers.delete(host.name));
    }
    return answer;
  };
}
