// TCP reachability from a host of the lab: one connect attempt through `miglab-probe connect`,
// run on that host (normally under `ip netns exec`, since Node cannot put a socket into another
// namespace). Used to prove what can and cannot reach a port, e.g. that the client cannot open
// the destination's migration port. The guest's own check is AgentClient.tcpConnect(); both
// answer in the same words (replies.ts).
import { AbortedError, MiglabError, TimeoutError } from '../errors.js';
import type { Host } from '../host/host.js';
import { CommandError } from '../host/local.js';
import type { WaitOptions } from '../util/deadline.js';
import { parseProbeConnect, type TcpConnect } from './replies.js';

/** The largest connect timeout the agent and the tool accept (10 minutes). */
export const MAX_CONNECT_TIMEOUT_MS = 600_000;

// Starting `ip netns exec` and the tool costs a few ms, more under load: added to the process's
// deadline so the tool's own timeout (a `timeout` result) is the one that fires.
const PROCESS_SLACK_MS = 5000;

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

/** Throws BAD_INPUT unless ip is a dotted IPv4 address, port 1-65535 and the timeout 1 ms to 10 min. */
export function checkConnectTarget(ip: string, port: number, timeoutMs: number): void {
  if (!IPV4.test(ip)) throw new MiglabError('BAD_INPUT', `a TCP connect needs an IPv4 address, not "${ip}"`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new MiglabError('BAD_INPUT', `a TCP port is a whole number from 1 to 65535, not ${port}`);
  if (!(timeoutMs >= 1 && timeoutMs <= MAX_CONNECT_TIMEOUT_MS)) {
    throw new MiglabError('BAD_INPUT', `a TCP connect timeout is 1 to ${MAX_CONNECT_TIMEOUT_MS} ms, not ${timeoutMs}`);
  }
}

/**
 * One TCP connect from `host` to ip:port, given up after `timeoutMs`. Refused, timed out and
 * unreachable are results, not errors. `toolPath` is the built miglab-probe (ensureProbeTool()).
 * An `open` result made (and closed) a real connection: aimed at a QEMU waiting with -incoming,
 * that is an incoming migration that fails at once.
 */
export async function tcpConnectFrom(host: Host, toolPath: string, ip: string, port: number, opts: WaitOptions): Promise<TcpConnect> {
  checkConnectTarget(ip, port, opts.timeoutMs);
  const timeoutMs = Math.ceil(opts.timeoutMs);
  const operation = `TCP connect from ${host.name} to ${ip}:${port}`;
  if (opts.signal?.aborted) throw new AbortedError(operation, opts.signal.reason);
  const argv = [toolPath, 'connect', ip, String(port), String(timeoutMs)];
  const r = await host.run(argv, { reject: false, timeoutMs: timeoutMs + PROCESS_SLACK_MS, signal: opts.signal });
  if (opts.signal?.aborted) throw new AbortedError(operation, opts.signal.reason);
  // The host's own deadline fired (exit 124 from LocalHost): the tool hung, which is not a result.
  if (r.exitCode === 124) throw new TimeoutError(operation, timeoutMs + PROCESS_SLACK_MS, { host: host.name, ip, port });
  if (r.exitCode !== 0) throw new CommandError(host.name, r);
  return parseProbeConnect(r.stdout);
}
