// A bridge miglab makes on the hosts (the hosts file's `bridge: { create: NAME }`), for users
// whose hosts have no bridge of their own, or one they would rather miglab left alone. On each
// host that takes part (src, dst, and a client of its own) miglab adds a Linux bridge NAME and a
// VXLAN device that joins it to the others' over the hosts' existing addresses; nothing of the
// hosts' own interfaces or addresses is changed, so miglab's SSH connections cannot be cut by it.
// Broadcasts go to every peer by head-end replication (one all-zero FDB entry per peer), unicast
// goes where the VXLAN device learned the MAC, and a frame from the tunnel is never sent back
// into it, so three hosts make no loop. The client host takes the last address of the guests'
// range on the bridge, to reach the guests with the probe and iperf3.
//
// Both links carry a marker in their alias (`miglab:PREFIX`): a link of that name without it is
// the user's and is never taken over or removed. Made on demand by the first command that needs
// the lab (idempotent, under a lock on the host so two commands at once make it once), removed by
// `lab down --hosts`.
import type { Host } from '../host/host.js';
import { MiglabError } from '../errors.js';
import { ipToNumber, networkOf, type HostRole } from '../lab/spec.js';
import type { BridgeMade, HostsSpec } from './file.js';

const STEP_TIMEOUT_MS = 15_000;

/** The VXLAN device's name on every host: named after the lab, so two labs never share one. */
export function tunnelName(prefix: string): string {
  return `vx-${prefix}`;
}

/** The VXLAN id when the file gives none: from the lab's name (h + 7 hex digits), so two labs on the same hosts differ. */
export function defaultVni(prefix: string): number {
  const n = Number.parseInt(prefix.slice(1), 16);
  return Number.isNaN(n) ? 1 : (n % 16_777_215) + 1;
}

/** The alias that marks a link as this lab's. */
export function bridgeMarker(prefix: string): string {
  return `miglab:${prefix}`;
}

/** One host of the bridge: its tunnel endpoint, its peers' endpoints, and the address it takes on the bridge (the client). */
export interface BridgeMember {
  readonly roles: readonly HostRole[];
  readonly host: Host;
  readonly endpoint: string;
  readonly peers: readonly string[];
  /** ADDRESS/PREFIX on the bridge, for the host that runs the client's side. */
  readonly address?: string;
}

/**
 * The hosts that take part, each once (roles on one machine share it), with their peers. The
 * client's address goes to the machine that plays the client.
 */
export function bridgeMembers(spec: HostsSpec, made: BridgeMade, hosts: Readonly<Record<HostRole, Host>>): BridgeMember[] {
  const byEndpoint = new Map<string, { roles: HostRole[]; host: Host }>();
  for (const role of ['src', 'dst', 'client'] as const) {
    const endpoint = made.endpoints[role];
    const entry = byEndpoint.get(endpoint);
    if (entry) entry.roles.push(role);
    else byEndpoint.set(endpoint, { roles: [role], host: hosts[role] });
  }
  const endpoints = [...byEndpoint.keys()];
  return [...byEndpoint.entries()].map(([endpoint, m]) => ({
    roles: m.roles,
    host: m.host,
    endpoint,
    peers: endpoints.filter((e) => e !== endpoint),
    address: m.roles.includes('client') ? `${made.clientAddress}/${spec.guests.prefixLength}` : undefined,
  }));
}

// Run as `sh -c ENSURE miglab-bridge LOCK BRIDGE TUNNEL VNI PORT ENDPOINT MARKER ADDRESS PEER...`
// (ADDRESS empty for none). Exit 3: a link of the name is not this lab's (its alias on stderr).
const ENSURE = [
  'set -eu',
  'lock=$1 br=$2 vx=$3 vni=$4 port=$5 local=$6 marker=$7 addr=$8',
  'shift 8',
  'mkdir -p "${lock%/*}"',
  'exec 9>"$lock"',
  'flock 9',
  'alias_of() { cat "/sys/class/net/$1/ifalias" 2>/dev/null || true; }',
  'ours() {',
  '  if [ -e "/sys/class/net/$1" ]; then',
  '    a=$(alias_of "$1")',
  '    if [ "$a" != "$marker" ]; then echo "$1 exists and is not this lab\'s (alias: ${a:-none})" >&2; exit 3; fi',
  '    return 0',
  '  fi',
  '  return 1',
  '}',
  'if ! ours "$br"; then ip link add "$br" type bridge; ip link set dev "$br" alias "$marker"; echo "made bridge $br"; fi',
  'if ! ours "$vx"; then',
  '  ip link add "$vx" type vxlan id "$vni" dstport "$port" local "$local"',
  '  ip link set dev "$vx" alias "$marker"',
  '  ip link set dev "$vx" master "$br"',
  '  echo "made tunnel $vx (VXLAN $vni, UDP $port, from $local)"',
  'fi',
  'for peer in "$@"; do',
  '  if ! bridge fdb show dev "$vx" | grep -q "^00:00:00:00:00:00 dst $peer "; then',
  '    bridge fdb append 00:00:00:00:00:00 dev "$vx" dst "$peer"',
  '    echo "joined $vx to $peer"',
  '  fi',
  'done',
  'ip link set dev "$vx" up',
  'ip link set dev "$br" up',
  'if [ -n "$addr" ] && ! ip -o addr show dev "$br" | grep -q " inet $addr "; then ip addr add "$addr" dev "$br"; echo "gave $br the address $addr"; fi',
].join('\n');

// Run as `sh -c REMOVE miglab-bridge BRIDGE MARKER`: every link whose alias is MARKER removed,
// tunnels first, then bridges (found by the alias, not by the name the file gives now: a file
// edited since the bridge was made still takes it away); a link named BRIDGE that is not this
// lab's is kept, and said.
const REMOVE = [
  'set -u',
  'name=$1 marker=$2 bridges=',
  'for f in /sys/class/net/*/ifalias; do',
  '  [ "$(cat "$f" 2>/dev/null)" = "$marker" ] || continue',
  '  link=${f%/ifalias}; link=${link##*/}',
  '  if [ -d "/sys/class/net/$link/bridge" ]; then bridges="$bridges $link"; else ip link del "$link" && echo "removed $link"; fi',
  'done',
  'for link in $bridges; do ip link del "$link" && echo "removed $link"; done',
  'if [ -e "/sys/class/net/$name" ]; then a=$(cat "/sys/class/net/$name/ifalias" 2>/dev/null || true); echo "kept $name: not this lab\'s (alias: ${a:-none})"; fi',
].join('\n');

// Run as `sh -c NAMES miglab-bridge BRIDGE TUNNEL MARKER`, before anything is made on any host:
// each of the two names taken by a link that is not this lab's, one line `taken LINK ALIAS`; then
// the host's IPv4 addresses (`ip -o -4 addr show`), for the caller to check the guests' network against.
const NAMES = [
  'set -u',
  'marker=$3',
  'for link in "$1" "$2"; do',
  '  [ -e "/sys/class/net/$link" ] || continue',
  '  a=$(cat "/sys/class/net/$link/ifalias" 2>/dev/null || true)',
  '  [ "$a" = "$marker" ] || echo "taken $link ${a:-none}"',
  'done',
  'ip -o -4 addr show',
].join('\n');

/** Why a link's name is not free for this lab, and what to do about it. */
function takenWhy(link: string, alias: string, lab: Pick<BridgeLab, 'spec' | 'made'>): { why: string; fix: string } {
  const other = /^miglab:(h[0-9a-f]{7})$/.exec(alias);
  if (other) return { why: `${link} is another miglab lab's (${other[1]}: a hosts file at another path, or a copy)`, fix: `take that lab down with \`miglab lab down --hosts\` and its file, or give another name in bridge.create of ${lab.spec.source}` };
  return { why: `${link} exists and is not miglab's (alias: ${alias})`, fix: `give another name in bridge.create of ${lab.spec.source}, or \`bridge: ${link}\` to use that bridge as it is` };
}

/**
 * An address of the host on the guests' network (other than the client's own on this lab's
 * bridge): the guests' network must be one of their own, or the host would reach it two ways.
 */
export function overlappingAddress(addrLines: string, spec: HostsSpec, bridge: string): string | undefined {
  const guest = ipToNumber(spec.guests.first);
  for (const m of addrLines.matchAll(/^\d+:\s+(\S+)\s+inet\s+(\d+\.\d+\.\d+\.\d+)\/(\d+)/gm)) {
    const [, dev, ip, plen] = m;
    if (dev === bridge) continue;
    // The two networks overlap when they agree on the shorter of the two prefixes.
    const len = Math.min(spec.guests.prefixLength, Number(plen));
    if (networkOf(ipToNumber(ip!), len) === networkOf(guest, len)) return `${ip}/${plen} on ${dev}`;
  }
  return undefined;
}

/** Before anything is made: the names free (or this lab's) and the guests' network not the host's, on every member. */
export async function checkBridgeNames(lab: BridgeLab, signal?: AbortSignal): Promise<void> {
  const members = bridgeMembers(lab.spec, lab.made, lab.hosts);
  await Promise.all(
    members.map(async (m) => {
      const r = await m.host.run(['sh', '-c', NAMES, 'miglab-bridge', lab.made.name, tunnelName(lab.prefix), bridgeMarker(lab.prefix)], { reject: false, timeoutMs: STEP_TIMEOUT_MS, signal });
      const taken = /^taken (\S+) (.*)$/m.exec(r.stdout);
      if (taken) {
        const t = takenWhy(taken[1]!, taken[2]!, lab);
        throw new MiglabError('LAB_STATE', `cannot make the bridge on ${m.host.name}: ${t.why}; ${t.fix}`);
      }
      const overlap = overlappingAddress(r.stdout, lab.spec, lab.made.name);
      if (overlap) {
        throw new MiglabError('BAD_INPUT', `guests.addresses of ${lab.spec.source} (${lab.spec.guests.first}-...) are on a network ${m.host.name} already has (${overlap}); with a bridge miglab makes, give the guests a network of their own, e.g. 10.213.0.10-10.213.0.30`);
      }
    }),
  );
}

export interface BridgeLab {
  readonly prefix: string;
  readonly spec: HostsSpec;
  readonly made: BridgeMade;
  readonly hosts: Readonly<Record<HostRole, Host>>;
  /** Where the lab keeps its files on each host (the lock lives there). */
  readonly runDir: string;
}

/** The argv that makes (or finds) the bridge on one member; exported for the unit tests. */
export function ensureArgv(lab: BridgeLab, m: BridgeMember): string[] {
  const { made, prefix } = lab;
  return ['sh', '-c', ENSURE, 'miglab-bridge', `${lab.runDir}/bridge.lock`, made.name, tunnelName(prefix), String(made.vni ?? defaultVni(prefix)), String(made.port), m.endpoint, bridgeMarker(prefix), m.address ?? '', ...m.peers];
}

export function removeArgv(lab: Pick<BridgeLab, 'prefix' | 'made'>): string[] {
  return ['sh', '-c', REMOVE, 'miglab-bridge', lab.made.name, bridgeMarker(lab.prefix)];
}

/** Make the bridge on every member (side by side: one command each); what was made, one line each. */
export async function ensureBridge(lab: BridgeLab, signal?: AbortSignal): Promise<string[]> {
  // Nothing is made on any host unless it can be made on all of them.
  await checkBridgeNames(lab, signal);
  const members = bridgeMembers(lab.spec, lab.made, lab.hosts);
  const done = await Promise.all(
    members.map(async (m) => {
      const r = await m.host.run(ensureArgv(lab, m), { reject: false, timeoutMs: STEP_TIMEOUT_MS, signal });
      if (r.exitCode === 3) {
        // Taken between the check and now (another command at the same moment).
        throw new MiglabError('LAB_STATE', `cannot make the bridge on ${m.host.name}: ${r.stderr.trim()}; give another name in bridge.create of ${lab.spec.source}, or \`bridge: ${lab.made.name}\` to use that bridge as it is`);
      }
      if (r.exitCode !== 0) {
        throw new MiglabError('COMMAND_FAILED', `cannot make the bridge ${lab.made.name} on ${m.host.name}: ${r.stderr.trim().split('\n').at(-1) || `exit ${r.exitCode}`}; \`miglab hosts check --hosts ${lab.spec.source}\` says what the host lacks`);
      }
      return r.stdout.split('\n').filter(Boolean).map((l) => `${m.roles.join('+')} (${m.host.name}): ${l}`);
    }),
  );
  return done.flat();
}

/** Remove the bridge and tunnel from every member where they are this lab's; one line per link. */
export async function removeBridge(lab: BridgeLab, signal?: AbortSignal): Promise<string[]> {
  const members = bridgeMembers(lab.spec, lab.made, lab.hosts);
  const done: string[] = [];
  for (const m of members) {
    const r = await m.host.run(removeArgv(lab), { reject: false, timeoutMs: STEP_TIMEOUT_MS, signal });
    done.push(...r.stdout.split('\n').filter(Boolean).map((l) => `${l} on ${m.host.name}`));
    if (r.exitCode !== 0) done.push(`could not remove the bridge on ${m.host.name}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
  }
  return done;
}

/** The bridge's links on one member now, for `lab status`: "bridge NAME up, tunnel vx-P to 2 peers", or that it is not there. */
export async function bridgeStatus(lab: BridgeLab, m: BridgeMember, signal?: AbortSignal): Promise<string> {
  const vx = tunnelName(lab.prefix);
  const r = await m.host.run(['sh', '-c', 'for l in "$1" "$2"; do if [ -e "/sys/class/net/$l" ]; then echo "$l $(cat /sys/class/net/$l/flags)"; fi; done; bridge fdb show dev "$2" 2>/dev/null | grep -c "^00:00:00:00:00:00 dst" || true', 'miglab-bridge', lab.made.name, vx], { reject: false, timeoutMs: STEP_TIMEOUT_MS, signal });
  const lines = r.stdout.trim().split('\n');
  // The link's flags (IFF_UP is bit 0): a VXLAN device's operstate stays "unknown" even when it carries traffic.
  const state = (name: string) => {
    const flags = lines.find((l) => l.startsWith(`${name} `))?.split(' ')[1];
    return flags === undefined ? undefined : (Number(flags) & 1) === 1 ? 'up' : 'down';
  };
  if (!state(lab.made.name)) return `bridge ${lab.made.name}: not there (the next run makes it)`;
  const peers = Number(lines.at(-1));
  return `bridge ${lab.made.name} (${state(lab.made.name)}), tunnel ${vx} ${state(vx) ? `(${state(vx)}) to ${peers} peer${peers === 1 ? '' : 's'}` : 'missing (the next run adds it)'}`;
}

// Run as `sh -c TRY miglab-bridge BRIDGE TUNNEL MARKER ENDPOINT PORT TRIAL`: what `hosts check`
// needs to know of one member, one keyword line each, with trial links made and removed at once
// (named TRIAL*, so nothing else has them; a random VXLAN id, so no tunnel of the lab's is met).
const TRY = [
  'set -u',
  'br=$1 vx=$2 marker=$3 local=$4 port=$5 trial=$6',
  'for link in "$br" "$vx"; do',
  '  [ -e "/sys/class/net/$link" ] || continue',
  '  a=$(cat "/sys/class/net/$link/ifalias" 2>/dev/null || true)',
  '  if [ "$a" = "$marker" ]; then echo "ours $link"; else echo "taken $link ${a:-none}"; fi',
  'done',
  'ip -o -4 addr show | grep -q " inet $local/" || echo "noaddr"',
  'if err=$(ip link add "${trial}b" type bridge 2>&1); then',
  '  if err=$(ip tuntap add dev "${trial}t" mode tap 2>&1); then',
  '    err=$(ip link set dev "${trial}t" master "${trial}b" 2>&1) || echo "notap $err"',
  '    ip link del "${trial}t"',
  '  else echo "notap $err"; fi',
  '  ip link del "${trial}b"',
  'else echo "nobridge $err"; fi',
  'if err=$(ip link add "${trial}v" type vxlan id $(( $(od -An -N2 -tu2 /dev/urandom) + 1 )) dstport "$port" local "$local" 2>&1); then ip link del "${trial}v"; else echo "novxlan $err"; fi',
  'ip -o -4 addr show',
].join('\n');

export interface BridgeCheckFinding {
  readonly ok: boolean;
  readonly detail: string;
  /** The command or change that fixes it, when not ok. */
  readonly fix?: string;
}

/** What one member of a bridge miglab makes needs, tried on it; nothing is left behind. */
export async function tryBridgeMember(lab: BridgeLab, m: BridgeMember, trial: string, signal?: AbortSignal): Promise<BridgeCheckFinding> {
  const { made, prefix, spec } = lab;
  const vx = tunnelName(prefix);
  const r = await m.host.run(['sh', '-c', TRY, 'miglab-bridge', made.name, vx, bridgeMarker(prefix), m.endpoint, String(made.port), trial], { reject: false, timeoutMs: STEP_TIMEOUT_MS, signal });
  const lines = r.stdout.split('\n').filter(Boolean);
  const said = (word: string) => lines.find((l) => l.startsWith(`${word} `) || l === word)?.slice(word.length + 1);
  const taken = lines.filter((l) => l.startsWith('taken '));
  if (taken.length > 0) {
    const [, link, alias] = taken[0]!.split(' ');
    const t = takenWhy(link!, alias!, lab);
    return { ok: false, detail: `on ${m.host.name}: ${t.why}`, fix: t.fix };
  }
  const overlap = overlappingAddress(r.stdout, spec, made.name);
  if (overlap) return { ok: false, detail: `guests.addresses (${spec.guests.first}-...) are on a network ${m.host.name} already has (${overlap})`, fix: `with a bridge miglab makes, give the guests a network of their own in ${spec.source}, e.g. 10.213.0.10-10.213.0.30` };
  if (said('noaddr') !== undefined) {
    return { ok: false, detail: `${m.endpoint} is not an address of ${m.host.name}, so the tunnel cannot start there`, fix: `give the address of ${m.roles[0]} the other hosts reach it at as bridge.endpoints.${m.roles[0]} in ${spec.source}` };
  }
  const nobridge = said('nobridge');
  if (nobridge !== undefined) return { ok: false, detail: `no bridge can be made on ${m.host.name}: ${nobridge}`, fix: 'modprobe bridge, as root' };
  const notap = said('notap');
  if (notap !== undefined) return { ok: false, detail: `a bridge can be made on ${m.host.name}, but no tap can join it: ${notap}`, fix: 'modprobe tun (and check that /dev/net/tun exists), as root' };
  const novxlan = said('novxlan');
  if (novxlan !== undefined) return { ok: false, detail: `no VXLAN tunnel can be made on ${m.host.name} (UDP ${made.port} from ${m.endpoint}): ${novxlan}`, fix: `modprobe vxlan, as root; or another bridge.port in ${spec.source}` };
  if (r.exitCode !== 0) return { ok: false, detail: `the trial on ${m.host.name} failed: ${r.stderr.trim() || `exit ${r.exitCode}`}`, fix: `run it by hand: ip link add ${trial}b type bridge` };
  const ours = lines.filter((l) => l.startsWith('ours ')).map((l) => l.slice(5));
  const peers = m.peers.length === 0 ? 'no other host (all roles on one machine)' : `${m.peers.join(', ')} over UDP ${made.port}, which must pass between the hosts`;
  return {
    ok: true,
    detail: `${ours.length > 0 ? `${ours.join(' and ')} already made by miglab` : `${made.name} and ${vx} can be made (a trial bridge, tap and tunnel were made and removed)`}; the tunnel goes from ${m.endpoint} to ${peers}${m.address ? `; this host takes ${m.address} on it` : ''}`,
  };
}
