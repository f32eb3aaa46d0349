// `lab status`: what of a lab is up, read from its state file and checked live — namespaces,
// links and addresses, the NFS server process and export, shaping, guests' taps, and
// connectivity between the lab hosts (ping, only ever to the lab's own addresses), the firewall
// of src and dst (firewall.ts) and any socket listening on a wildcard address (listeners.ts).
import { z } from 'zod';
import { describeError } from '../errors.js';
import { FIREWALLED_ROLES, checkFirewall, describeFirewalls, firewallProblem, type FirewallStatus } from './firewall.js';
import { nfsUrl } from './ganesha.js';
import { describeListener, listListeners, type Listener } from './listeners.js';
import { listNetns } from './handle.js';
import { THIS_MACHINE } from './machine.js';
import { isOwnedAlive } from './proc.js';
import { DEFAULT_PREFIX, DEFAULT_STATE_ROOT, checkPrefix, labNames, labPaths, maxGuestIndex, roleIp, type HostRole, type LabSpec } from './spec.js';
import { readLabState } from './state.js';
import { runsInProgress, type LabLocation } from './down.js';
import { ProcessRegistry, describeRecorded } from './procs.js';
import { SlotTable } from './slots.js';
import { showArgv } from './tc.js';

const PROBE_TIMEOUT_MS = 3000;

export interface LinkStatus {
  readonly name: string;
  /** The kernel's operstate: UP, DOWN, UNKNOWN (taps without a reader are DOWN or UNKNOWN). */
  readonly state: string;
  readonly master?: string;
  readonly addresses: readonly string[];
}

export interface NamespaceStatus {
  readonly name: string;
  readonly exists: boolean;
  readonly links: readonly LinkStatus[];
}

export interface NamespaceListeners {
  readonly netns: string;
  readonly listeners: readonly Listener[];
  readonly error?: string;
}

export interface PingStatus {
  readonly from: HostRole;
  readonly to: HostRole;
  readonly ip: string;
  readonly ok: boolean;
}

export interface LabStatus {
  readonly prefix: string;
  readonly stateFile: string;
  /** A state file exists and records the lab as fully up. */
  readonly up: boolean;
  readonly phase?: 'creating' | 'up' | 'going-down';
  readonly spec?: LabSpec;
  readonly createdAt?: string;
  readonly namespaces: readonly NamespaceStatus[];
  readonly nfs?: { readonly pid: number; readonly alive: boolean; readonly url: string; readonly exportAnswers: boolean };
  /** The shaping recorded in the state file, and `tc qdisc show dev up0` on src and dst. */
  readonly shaping: { readonly recorded?: LabSpec['shaping'] } & Readonly<Partial<Record<'src' | 'dst', string>>>;
  /** Taps on br0 of src and dst. */
  readonly taps: Readonly<Partial<Record<'src' | 'dst', readonly string[]>>>;
  readonly connectivity: readonly PingStatus[];
  /** The firewall of src and dst: in force, missing, altered (firewall.ts). */
  readonly firewall: readonly FirewallStatus[];
  /** The sockets listening in each lab namespace; `error` when `ss` could not be run there. */
  readonly listeners: readonly NamespaceListeners[];
  /** Runs in progress on the lab (their slots and processes). */
  readonly runs: readonly string[];
  /** Processes a miglab that is gone left running in the lab (`lab down` stops them). */
  readonly orphans: readonly string[];
  /** Everything found wrong, one line each; empty when the lab is healthy. */
  readonly problems: readonly string[];
}

const IpAddrSchema = z.array(
  z.object({
    ifname: z.string(),
    operstate: z.string().optional(),
    master: z.string().optional(),
    addr_info: z.array(z.object({ family: z.string().optional(), local: z.string().optional(), prefixlen: z.number().optional() })).optional(),
  }),
);

/** Parse `ip -j addr show` (IPv4 addresses only). */
export function parseIpAddrJson(text: string): LinkStatus[] {
  const parsed = IpAddrSchema.parse(JSON.parse(text || '[]'));
  return parsed.map((l) => ({
    name: l.ifname,
    state: l.operstate ?? 'UNKNOWN',
    ...(l.master ? { master: l.master } : {}),
    addresses: (l.addr_info ?? []).filter((a) => a.family === 'inet' && a.local).map((a) => `${a.local}/${a.prefixlen ?? 32}`),
  }));
}

export async function labStatus(prefix: string = DEFAULT_PREFIX, where: LabLocation = {}): Promise<LabStatus> {
  checkPrefix(prefix);
  const machine = where.machine ?? THIS_MACHINE;
  const stateFile = labPaths({ prefix, stateRoot: where.stateRoot ?? DEFAULT_STATE_ROOT }).stateFile;
  const state = readLabState(stateFile);
  const problems: string[] = [];
  if (!state) {
    const existing = new Set(await listNetns(machine.host));
    const stray = [`${prefix}-sw`, `${prefix}-src`, `${prefix}-dst`, `${prefix}-cli`].filter((ns) => existing.has(ns));
    if (stray.length > 0) problems.push(`namespaces ${stray.join(', ')} exist but no miglab state records them`);
    return { prefix, stateFile, up: false, namespaces: [], shaping: {}, taps: {}, connectivity: [], firewall: [], listeners: [], runs: [], orphans: [], problems };
  }
  const names = labNames(prefix);
  const existing = new Set(await listNetns(machine.host));
  const namespaces: NamespaceStatus[] = [];
  for (const ns of state.netns) {
    if (!existing.has(ns)) {
      namespaces.push({ name: ns, exists: false, links: [] });
      problems.push(`namespace ${ns} is missing`);
      continue;
    }
    const r = await machine.netns(ns, ns).run(['ip', '-j', 'addr', 'show'], { timeoutMs: PROBE_TIMEOUT_MS, reject: false });
    const links = r.exitCode === 0 ? parseIpAddrJson(r.stdout) : [];
    namespaces.push({ name: ns, exists: true, links });
    // Only veths are checked: a bridge may report DOWN for a moment while it forwards fine, and a
    // tap is DOWN until QEMU opens it. Broken forwarding shows in the pings below.
    for (const l of links) if ((l.name === names.uplink || l.name.startsWith('sw-')) && l.state !== 'UP') problems.push(`${l.name} in ${ns} is ${l.state}`);
  }
  const nsOf = (role: HostRole) => names.ns[role];
  const hostOf = (role: HostRole) => machine.netns(role, nsOf(role));
  const alive = (role: HostRole) => existing.has(nsOf(role));

  const shaping: { recorded?: LabSpec['shaping'] } & Partial<Record<'src' | 'dst', string>> = state.shaping ? { recorded: state.shaping } : {};
  const taps: Partial<Record<'src' | 'dst', string[]>> = {};
  for (const role of ['src', 'dst'] as const) {
    if (!alive(role)) continue;
    const r = await hostOf(role).run(showArgv(names.uplink), { timeoutMs: PROBE_TIMEOUT_MS, reject: false });
    shaping[role] = r.stdout.trim();
    const links = namespaces.find((n) => n.name === nsOf(role))?.links ?? [];
    taps[role] = links.filter((l) => isTap(l, names.hostBridge)).map((l) => l.name);
  }

  let nfs: LabStatus['nfs'];
  if (state.nfs) {
    const url = nfsUrl(state.nfs.serverIp, state.exportDir);
    const isAlive = isOwnedAlive(state.nfs.server);
    let exportAnswers = false;
    if (isAlive && alive('dst')) {
      const r = await hostOf('dst').run(['nfs-ls', url], { timeoutMs: PROBE_TIMEOUT_MS, reject: false });
      exportAnswers = r.exitCode === 0;
    }
    if (!isAlive) problems.push(`the NFS server (pid ${state.nfs.server.pid}) is not running`);
    else if (!exportAnswers) problems.push(`the NFS export ${url} does not answer from dst`);
    nfs = { pid: state.nfs.server.pid, alive: isAlive, url, exportAnswers };
  }

  const pairs: Array<[HostRole, HostRole]> = [
    ['src', 'dst'],
    ['dst', 'src'],
    ['src', 'client'],
    ['dst', 'client'],
  ];
  const connectivity = await Promise.all(
    pairs
      .filter(([a, b]) => alive(a) && alive(b))
      .map(async ([from, to]) => {
        const ip = roleIp(state.spec, to);
        const r = await hostOf(from).run(['ping', '-c1', '-W1', ip], { timeoutMs: PROBE_TIMEOUT_MS, reject: false });
        return { from, to, ip, ok: r.exitCode === 0 };
      }),
  );
  for (const p of connectivity) if (!p.ok) problems.push(`${p.from} cannot ping ${p.to} (${p.ip})`);

  const firewall = await Promise.all(FIREWALLED_ROLES.filter(alive).map((role) => checkFirewall(hostOf(role), state.spec, role, { timeoutMs: PROBE_TIMEOUT_MS })));
  for (const f of firewall) {
    const p = firewallProblem(f, nsOf(f.role), prefix);
    if (p) problems.push(p);
  }
  const listeners = await Promise.all(
    state.netns
      .filter((ns) => existing.has(ns))
      .map(async (ns): Promise<NamespaceListeners> => {
        try {
          return { netns: ns, listeners: await listListeners(machine.netns(ns, ns), { timeoutMs: PROBE_TIMEOUT_MS }) };
        } catch (err) {
          return { netns: ns, listeners: [], error: describeError(err) };
        }
      }),
  );
  for (const n of listeners) {
    if (n.error) problems.push(`could not list the listening sockets of ${n.netns}: ${n.error}`);
    for (const l of n.listeners.filter((x) => x.wildcard)) {
      problems.push(`${n.netns} has a socket on a wildcard address, reachable from the whole lab network: ${describeListener(l)}; bind it to the host's lab address or to loopback`);
    }
  }
  if (state.phase === 'creating') problems.push('`lab up` has not finished (interrupted or still running)');
  if (state.phase === 'going-down') problems.push('`lab down` has begun (interrupted or still running): run `miglab lab down` to finish it');

  const paths = labPaths(state.spec);
  const orphans = new ProcessRegistry(paths.procsDir).orphans().map(describeRecorded);
  if (orphans.length > 0) problems.push(`left running by a miglab that is gone: ${orphans.join('; ')}; \`miglab lab down\` stops them`);
  for (const s of new SlotTable(paths.slotsDir, maxGuestIndex(state.spec)).held().filter((x) => !x.alive)) {
    problems.push(`guest slot g${s.index} is still held by run ${s.holder.runId}, whose miglab (pid ${s.holder.pid}) is gone; the next run in that slot reclaims it`);
  }
  const runs = runsInProgress(state);

  return {
    prefix,
    stateFile,
    up: state.phase === 'up',
    phase: state.phase,
    spec: state.spec,
    createdAt: state.createdAt,
    namespaces,
    ...(nfs ? { nfs } : {}),
    shaping,
    taps,
    connectivity,
    firewall,
    listeners,
    runs,
    orphans,
    problems,
  };
}

/** One line: how many sockets listen in each namespace, and any on a wildcard address. */
function describeListeners(all: readonly NamespaceListeners[]): string {
  const counts = all.map((n) => `${n.netns} ${n.error ? '?' : n.listeners.length}`).join(', ');
  const wild = all.flatMap((n) => n.listeners.filter((l) => l.wildcard).map((l) => `${describeListener(l)} in ${n.netns}`));
  return `listeners (tcp+udp): ${counts}; ${wild.length > 0 ? `ON A WILDCARD ADDRESS: ${wild.join(', ')}` : 'none on a wildcard address'}`;
}

function isTap(l: LinkStatus, bridge: string): boolean {
  return l.master === bridge && l.name !== 'up0';
}

function describeShaping(s: LabSpec['shaping']): string {
  if (!s) return 'none';
  const parts: string[] = [];
  if (s.bandwidthMbit !== undefined) parts.push(`${s.bandwidthMbit} Mbit/s`);
  if (s.delayMs !== undefined) parts.push(`delay ${s.delayMs} ms${s.jitterMs ? ` ± ${s.jitterMs} ms` : ''}`);
  if (s.lossPct !== undefined) parts.push(`loss ${s.lossPct} %`);
  return parts.join(', ') || 'none';
}

/** A few lines for a terminal: the status, then any problems. */
export function formatLabStatus(s: LabStatus): string {
  if (!s.spec) {
    return [`lab "${s.prefix}": not up (no state in ${s.stateFile})`, ...s.problems.map((p) => `  problem: ${p}`)].join('\n');
  }
  const lines = [`lab "${s.prefix}": ${s.up ? 'up' : `not fully up (${s.phase ?? 'unknown'})`} since ${s.createdAt ?? '?'}, subnet ${s.spec.subnet}`];
  for (const ns of s.namespaces) {
    if (!ns.exists) {
      lines.push(`  ${ns.name}: MISSING`);
      continue;
    }
    const links = ns.links
      .filter((l) => l.name !== 'lo')
      .map((l) => `${l.name} ${l.state}${l.master ? ` on ${l.master}` : ''}${l.addresses.length ? ` ${l.addresses.join(' ')}` : ''}`);
    lines.push(`  ${ns.name}: ${links.join('; ') || 'no links'}`);
  }
  if (s.nfs) lines.push(`  nfs: ${s.nfs.url} server pid ${s.nfs.pid} ${s.nfs.alive ? 'running' : 'NOT RUNNING'}, export ${s.nfs.exportAnswers ? 'answers' : 'DOES NOT ANSWER'}`);
  lines.push(`  shaping (src/dst uplinks): ${describeShaping(s.shaping.recorded)}; tc: src "${s.shaping.src ?? '?'}", dst "${s.shaping.dst ?? '?'}"`);
  const taps = (['src', 'dst'] as const).map((r) => `${r}: ${s.taps[r]?.join(', ') || 'none'}`);
  lines.push(`  taps: ${taps.join('; ')}`);
  if (s.connectivity.length > 0) lines.push(`  ping: ${s.connectivity.map((p) => `${p.from}->${p.to} ${p.ok ? 'ok' : 'FAILED'}`).join(', ')}`);
  if (s.firewall.length > 0) lines.push(`  ${describeFirewalls(s.firewall)}`);
  if (s.listeners.length > 0) lines.push(`  ${describeListeners(s.listeners)}`);
  if (s.runs.length === 0) lines.push('  runs: none in progress');
  for (const r of s.runs) lines.push(`  run in progress: ${r}`);
  lines.push(...(s.problems.length ? s.problems.map((p) => `  problem: ${p}`) : ['  healthy']));
  return lines.join('\n');
}
