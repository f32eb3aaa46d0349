// The sockets a lab namespace listens on, from `ss`, and which of them sit on a wildcard address
// (0.0.0.0, [::], *): such a socket answers on every address the namespace has, the lab network
// included, whatever the program meant to serve. `lab status` reports each one as a problem; the
// lab's own servers bind the host's lab address or loopback (nfs-server.sh, firewall.ts).
import type { Host } from '../host/host.js';
import type { WaitOptions } from '../util/deadline.js';

/** TCP sockets in LISTEN and unconnected UDP sockets, numeric, with their processes, no header. */
export const LISTENERS_ARGV: readonly string[] = ['ss', '-H', '-l', '-t', '-u', '-n', '-p'];

export interface ListenerProcess {
  readonly name: string;
  readonly pid: number;
}

export interface Listener {
  /** tcp, udp, ... (from ss's Netid column, or the caller's default when ss printed none). */
  readonly netid: string;
  /** LISTEN (tcp), UNCONN (udp). */
  readonly state: string;
  /** The local address as ss prints it, without brackets or device: 10.77.0.1, ::1, ::ffff:10.77.0.1, 0.0.0.0, ::, *. */
  readonly address: string;
  readonly port: string;
  /** The device the socket is bound to (`%br0` in ss's output), if any. */
  readonly device?: string;
  readonly processes: readonly ListenerProcess[];
  /** Bound to no address in particular, so reachable on all of the namespace's. */
  readonly wildcard: boolean;
}

const WILDCARD_ADDRESSES = new Set(['0.0.0.0', '::', '*', '::ffff:0.0.0.0']);

/** Whether an address as ss prints it (brackets and %device allowed) is a wildcard. */
export function isWildcardAddress(address: string): boolean {
  const bare = address.replace(/%[^\]]*$/, '').replace(/^\[(.*)\]$/, '$1');
  return WILDCARD_ADDRESSES.has(bare);
}

// ss's local address: ADDR:PORT, where ADDR may be [IPv6], and may end in %DEVICE (after the
// brackets for IPv6). The port is after the last colon.
const LOCAL_RE = /^(\[[^\]]*\]|[^%[\]]*?)(?:%([^:]+))?:([^:]+)$/;
const PROCESS_RE = /\("((?:[^"\\]|\\.)*)",pid=(\d+),fd=\d+\)/g;

function parseLine(line: string, defaultNetid: string): Listener | undefined {
  const cols = line.trim().split(/\s+/);
  if (cols.length < 5) return undefined;
  // With one protocol selected ss prints no Netid column; states are upper case, netids lower.
  const hasNetid = !/^[A-Z][A-Z0-9-]*$/.test(cols[0]!);
  const [netid, state, , , local] = hasNetid ? cols : [defaultNetid, ...cols];
  const m = LOCAL_RE.exec(local ?? '');
  if (!m || !netid || !state) return undefined;
  const address = m[1]!.replace(/^\[(.*)\]$/, '$1');
  const processes = [...line.matchAll(PROCESS_RE)].map((p) => ({ name: p[1]!, pid: Number(p[2]) }));
  return { netid, state, address, port: m[3]!, ...(m[2] ? { device: m[2] } : {}), processes, wildcard: isWildcardAddress(m[1]!) };
}

/**
 * Parse `ss -Hltunp` (or `ss -Hlunp`, `ss -Hltnp`: one protocol, no Netid column; then every
 * line is `defaultNetid`). Lines that are not sockets are skipped.
 */
export function parseSsListeners(text: string, defaultNetid = 'unknown'): Listener[] {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => parseLine(l, defaultNetid))
    .filter((l): l is Listener => l !== undefined);
}

/** `tcp 0.0.0.0:111 (rpcbind pid 812)`: one listener for a message. */
export function describeListener(l: Listener): string {
  const addr = l.address.includes(':') ? `[${l.address}]` : l.address;
  const procs = l.processes.map((p) => `${p.name} pid ${p.pid}`).join(', ');
  return `${l.netid} ${addr}${l.device ? `%${l.device}` : ''}:${l.port}${procs ? ` (${procs})` : ''}`;
}

/** The listening sockets of `host` (run it inside a namespace to see that namespace's). */
export async function listListeners(host: Host, opts: WaitOptions): Promise<Listener[]> {
  const r = await host.run(LISTENERS_ARGV, { timeoutMs: opts.timeoutMs, signal: opts.signal });
  return parseSsListeners(r.stdout);
}
