// Ending a tool that writes its results when interrupted (the probe, tcpdump): SIGINT sent through
// its host (as any command there), then its exit awaited under a deadline; one that does not end
// in time is stopped and the wait's error rethrown. One that could not be signalled (its `kill`
// failed: a Ctrl-C reaches that child too) is stopped as well: whatever its caller makes of the
// refusal, the tool never outlives the run. One way for every such tool.
import type { Host, HostProcess } from './host.js';
import { withDeadline, type WaitOptions } from '../util/deadline.js';

/** SIGINT `proc` through `host` and wait for it; `undefined` when signalled, else why it could not be (it is stopped then). */
export async function interruptAndWait(host: Host, proc: HostProcess, what: string, opts: Partial<WaitOptions> = {}): Promise<string | undefined> {
  let refused: string | undefined;
  if (!proc.hasExited) {
    const r = await host.run(['kill', '-INT', String(proc.pid)], { reject: false, timeoutMs: 5000 });
    if (r.exitCode !== 0 && !proc.hasExited) refused = r.stderr.trim() || `kill exited ${r.exitCode}`;
  }
  if (refused !== undefined) {
    await proc.stop(500);
    return refused;
  }
  await withDeadline(`waiting for ${what} (pid ${proc.pid}) to write its results`, proc.exited, { timeoutMs: opts.timeoutMs ?? 10_000, signal: opts.signal }).catch(async (err: unknown) => {
    await proc.stop(500);
    throw err;
  });
  return undefined;
}
