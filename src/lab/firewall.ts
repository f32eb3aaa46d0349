// The lab's packet filter: which lab host may open connections to what another one serves. One
// nftables table, `table inet miglab`, in src and in dst, and nothing outside it:
//   - dst: new TCP connections come from src only. The destination QEMU's `-incoming` port takes
//     the first stream that connects; anything else (the client host, a guest) that connected
//     would make it fail ("Not a migration stream"). Everyone else gets a TCP reset, so a client
//     sees "connection refused" at once instead of a hang.
//   - src: the NFS server's ports (rpcbind, nfs, mountd) answer src and dst only.
// Guests are bridged (their taps sit on br0 of src or dst), so their traffic is forwarded past the
// host, never delivered to it, and an input chain never sees it. The rules match addresses, ports
// and TCP flags only, without connection tracking, so that forwarded traffic is not tracked either.
// The ruleset is pure text from the lab spec; `lab up` applies it with `nft -f -` inside each
// namespace (applyLabFirewall), `lab status` compares the live table with it (checkFirewall).
import { z } from 'zod';
import { MiglabError, describeError } from '../errors.js';
import type { Host } from '../host/host.js';
import type { WaitOptions } from '../util/deadline.js';
import { guestRange, roleIp, type LabSpec } from './spec.js';

/** The lab's table; the `inet` family covers IPv4 and IPv6 in one. */
export const FIREWALL_TABLE = 'miglab';
export const FIREWALL_FAMILY = 'inet';

/** The NFS server's ports: rpcbind's own, and ganesha's NFS_Port and MNT_Port (ganesha.ts). */
export const NFS_SERVER_PORTS = { rpcbind: 111, nfs: 2049, mountd: 20048 } as const;

/** The hosts that serve something to another lab host, so have a firewall. */
export const FIREWALLED_ROLES = ['src', 'dst'] as const;
export type FirewalledRole = (typeof FIREWALLED_ROLES)[number];

/** What each host's firewall lets through, for people (status, reports). */
export const FIREWALL_PURPOSE: Readonly<Record<FirewalledRole, string>> = {
  src: 'NFS server for src and dst only',
  dst: 'new TCP connections from src only',
};

/** Load a ruleset read from stdin (one transaction: all of it or nothing). */
export const NFT_APPLY_ARGV: readonly string[] = ['nft', '-f', '-'];
/** The live table as JSON. */
export const NFT_LIST_ARGV: readonly string[] = ['nft', '--json', 'list', 'table', FIREWALL_FAMILY, FIREWALL_TABLE];
/**
 * Load `ruleset` into a new, empty network namespace that dies with the command, and print what
 * was added as JSON. nft prints rules in its own canonical form (`tcp flags syn / fin,syn,rst,ack`),
 * which may change between nft versions: asking the same nft that lists the live table gives the
 * expected table in the same form, whatever the version. The ruleset goes in as nft's command
 * argument, not on stdin: with --json, nft first tries to read its input as JSON, and that reading
 * opens /dev/stdin again, which fails on the socket Node gives a child as stdin.
 */
export function nftCanonicalArgv(ruleset: string): string[] {
  return ['unshare', '--net', 'nft', '--echo', '--json', ruleset];
}

// A TCP segment that opens a connection: SYN set, ACK (and FIN, RST) clear.
const TCP_OPEN = 'tcp flags syn / fin,syn,rst,ack';

/**
 * The nft script for `role`'s namespace. The table is first created (if missing) and deleted, so
 * loading it again replaces the table instead of adding a second copy of each rule. Addresses
 * come from the spec; each rule carries a comment, so `nft list ruleset` in the namespace says why.
 */
export function firewallRuleset(spec: LabSpec, role: FirewalledRole): string {
  const ip = { src: roleIp(spec, 'src'), dst: roleIp(spec, 'dst') };
  const ports = `{ ${Object.values(NFS_SERVER_PORTS).join(', ')} }`;
  const rules =
    role === 'dst'
      ? [
          `iifname "lo" accept comment "dst itself"`,
          `${TCP_OPEN} ip saddr ${ip.src} accept comment "src opens the migration stream (and any other connection to dst)"`,
          `${TCP_OPEN} counter reject with tcp reset comment "nobody else opens a TCP connection to dst: a stray one breaks an incoming migration"`,
        ]
      : [
          `iifname "lo" accept comment "src itself (its QEMU opens nfs:// images too)"`,
          `ip saddr { ${ip.src}, ${ip.dst} } meta l4proto { tcp, udp } th dport ${ports} accept comment "the NFS server answers src and dst"`,
          `ip saddr ${guestRange(spec)} tcp dport ${NFS_SERVER_PORTS.nfs} accept comment "guests mount the checkpoint export (NFSv4: port 2049 only; ganesha shows them no other export)"`,
          `meta l4proto tcp th dport ${ports} counter reject with tcp reset comment "nobody else reaches the NFS server"`,
          `meta l4proto udp th dport ${ports} counter reject with icmpx port-unreachable comment "nobody else reaches the NFS server"`,
        ];
  return [
    `# miglab's firewall for the lab's ${role} host (${FIREWALL_PURPOSE[role]}); loading it again replaces it.`,
    `table ${FIREWALL_FAMILY} ${FIREWALL_TABLE}`,
    `delete table ${FIREWALL_FAMILY} ${FIREWALL_TABLE}`,
    `table ${FIREWALL_FAMILY} ${FIREWALL_TABLE} {`,
    '\tchain input {',
    '\t\ttype filter hook input priority filter; policy accept;',
    ...rules.map((r) => `\t\t${r}`),
    '\t}',
    '}',
    '',
  ].join('\n');
}

// ---- reading nft's JSON ------------------------------------------------------------------------

const NftJsonSchema = z.object({ nftables: z.array(z.record(z.string(), z.unknown())) });

/** A table as nft printed it, reduced to what the policy is: no handles, no counter values. */
export interface NftTableView {
  /** Each chain, rule and other object as normalized JSON: chains (by name), then each chain's rules in order. */
  readonly objects: readonly string[];
  /** Packets counted by the rules that reject. */
  readonly refusedPackets: number;
}

function byJson(a: unknown, b: unknown): number {
  const [x, y] = [JSON.stringify(a), JSON.stringify(b)];
  return x < y ? -1 : x > y ? 1 : 0;
}

// Handles are numbers the kernel hands out and counters count traffic: neither is the policy.
// The elements of a set are in no order.
function normalize(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normalize);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(v).sort()) {
    const x = (v as Record<string, unknown>)[key];
    if (key === 'handle') continue;
    if (key === 'counter' && x !== null && typeof x === 'object' && !Array.isArray(x)) out[key] = {};
    else if (key === 'set' && Array.isArray(x)) out[key] = x.map(normalize).sort(byJson);
    else out[key] = normalize(x);
  }
  return out;
}

function countedPackets(rule: Record<string, unknown>): number {
  const expr = Array.isArray(rule.expr) ? (rule.expr as Array<Record<string, unknown>>) : [];
  if (!expr.some((e) => 'reject' in e)) return 0;
  let n = 0;
  for (const e of expr) {
    const c = e.counter as { packets?: unknown } | undefined;
    if (c && typeof c.packets === 'number') n += c.packets;
  }
  return n;
}

/**
 * Parse nft's JSON: `nft --json list table ...` (objects) or `nft --echo --json -f` (each
 * wrapped in the command that added it). The table object itself and metainfo are left out.
 */
export function parseNftTable(json: string): NftTableView {
  const parsed = NftJsonSchema.parse(JSON.parse(json || '{"nftables":[]}'));
  const others: string[] = [];
  const chains: string[] = [];
  const rules: Array<{ chain: string; text: string }> = [];
  let refusedPackets = 0;
  for (const raw of parsed.nftables) {
    let entry = raw;
    const command = ['add', 'insert', 'create'].find((c) => c in raw);
    if (command) entry = raw[command] as Record<string, unknown>;
    else if ('delete' in raw || 'destroy' in raw || 'flush' in raw) continue;
    for (const [kind, body] of Object.entries(entry)) {
      if (kind === 'metainfo' || kind === 'table' || body === null || typeof body !== 'object') continue;
      const text = `${kind} ${JSON.stringify(normalize(body))}`;
      if (kind === 'chain') chains.push(text);
      else if (kind === 'rule') {
        const rule = body as Record<string, unknown>;
        rules.push({ chain: String(rule.chain), text });
        refusedPackets += countedPackets(rule);
      } else others.push(text);
    }
  }
  // Array.prototype.sort is stable: each chain's rules keep their order.
  rules.sort((a, b) => (a.chain < b.chain ? -1 : a.chain > b.chain ? 1 : 0));
  return { objects: [...others.sort(), ...chains.sort(), ...rules.map((r) => r.text)], refusedPackets };
}

/** Whether the live table holds exactly the expected policy (nothing missing, added or changed). */
export function sameFirewall(expected: NftTableView, live: NftTableView): boolean {
  return expected.objects.length === live.objects.length && expected.objects.every((o, i) => o === live.objects[i]);
}

/** nft's answer when the table does not exist. */
export function isNoSuchTableError(stderr: string): boolean {
  return /No such file or directory/i.test(stderr);
}

// ---- applying and checking ----------------------------------------------------------------------

/**
 * Load a ruleset of ours (one table, `what` in messages) in `host`'s namespace with `nft -f -`.
 * The lab's firewall and the link-loss fault's table both go through here.
 */
export async function loadNftRuleset(host: Host, ruleset: string, what: string, opts: WaitOptions): Promise<void> {
  const r = await host.run(NFT_APPLY_ARGV, { input: ruleset, timeoutMs: opts.timeoutMs, signal: opts.signal, reject: false });
  if (r.exitCode === 0) return;
  const said = (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ');
  throw new MiglabError(
    'COMMAND_FAILED',
    `could not load ${what} on ${host.name}: ${said || `nft exited ${r.exitCode}`}; the kernel needs nftables (modprobe nf_tables) and the nftables package its nft`,
    { context: { host: host.name, argv: r.argv, exitCode: r.exitCode } },
  );
}

/** Remove a table of ours from `host`'s namespace; one that is gone already is fine. */
export async function deleteNftTable(host: Host, table: string, opts: WaitOptions): Promise<void> {
  const r = await host.run(['nft', 'delete', 'table', FIREWALL_FAMILY, table], { timeoutMs: opts.timeoutMs, signal: opts.signal, reject: false });
  if (r.exitCode !== 0 && !isNoSuchTableError(r.stderr)) {
    throw new MiglabError('COMMAND_FAILED', `could not remove nft table ${FIREWALL_FAMILY} ${table} on ${host.name}: ${r.stderr.trim()}`, { context: { host: host.name } });
  }
}

/** Load `ruleset` in `host`'s namespace (replacing the lab's table if it is there already). */
export async function applyFirewall(host: Host, ruleset: string, opts: WaitOptions): Promise<void> {
  await loadNftRuleset(host, ruleset, `the lab's firewall (nft table ${FIREWALL_FAMILY} ${FIREWALL_TABLE})`, opts);
}

/** The hosts a firewall goes on; a Lab has them. */
export interface FirewallTargets {
  readonly spec: LabSpec;
  readonly hosts: Readonly<Record<FirewalledRole, { readonly host: Host }>>;
}

/** Load each host's firewall: `lab up` does this before the NFS server starts. Idempotent. */
export async function applyLabFirewall(lab: FirewallTargets, opts: WaitOptions): Promise<void> {
  for (const role of FIREWALLED_ROLES) await applyFirewall(lab.hosts[role].host, firewallRuleset(lab.spec, role), opts);
}

export interface FirewallStatus {
  readonly role: FirewalledRole;
  /** in-force: the live table is the policy; missing: no table; altered: it differs; unknown: it could not be read. */
  readonly state: 'in-force' | 'missing' | 'altered' | 'unknown';
  /** Packets refused since the table was loaded (counters of its reject rules). */
  readonly refusedPackets?: number;
  /** Why the state is unknown. */
  readonly detail?: string;
}

/** The expected table for `role`, in the form `host`'s nft prints it (in a namespace of its own, gone with the command). */
export async function canonicalFirewall(host: Host, spec: LabSpec, role: FirewalledRole, opts: WaitOptions): Promise<NftTableView> {
  const r = await host.run(nftCanonicalArgv(firewallRuleset(spec, role)), { timeoutMs: opts.timeoutMs, signal: opts.signal });
  return parseNftTable(r.stdout);
}

/** Compare the live table on `host` with the policy for `role`. Never throws: a failure is `unknown`. */
export async function checkFirewall(host: Host, spec: LabSpec, role: FirewalledRole, opts: WaitOptions): Promise<FirewallStatus> {
  try {
    const r = await host.run(NFT_LIST_ARGV, { timeoutMs: opts.timeoutMs, signal: opts.signal, reject: false });
    if (r.exitCode !== 0) {
      if (isNoSuchTableError(r.stderr)) return { role, state: 'missing' };
      return { role, state: 'unknown', detail: `\`${r.argv.join(' ')}\` exited ${r.exitCode}: ${r.stderr.trim().split('\n').pop() ?? ''}` };
    }
    const live = parseNftTable(r.stdout);
    const expected = await canonicalFirewall(host, spec, role, opts);
    return { role, state: sameFirewall(expected, live) ? 'in-force' : 'altered', refusedPackets: live.refusedPackets };
  } catch (err) {
    return { role, state: 'unknown', detail: describeError(err) };
  }
}

/** One line for `lab status`: each host's firewall and what it refused. */
export function describeFirewalls(statuses: readonly FirewallStatus[]): string {
  const one = (s: FirewallStatus): string => {
    if (s.state === 'in-force') return `${s.role} in force (${FIREWALL_PURPOSE[s.role]}; ${s.refusedPackets ?? 0} packets refused)`;
    return `${s.role} ${s.state.toUpperCase()}`;
  };
  return `firewall (nft table ${FIREWALL_FAMILY} ${FIREWALL_TABLE}): ${statuses.map(one).join('; ') || 'not checked'}`;
}

/** The problem `lab status` reports for a firewall that is not in force, or undefined. */
export function firewallProblem(s: FirewallStatus, netns: string, prefix: string): string | undefined {
  const fix = `take the lab down and up again to restore it (miglab lab down --prefix ${prefix}; miglab lab up --prefix ${prefix})`;
  switch (s.state) {
    case 'in-force':
      return undefined;
    case 'missing':
      return `the firewall of ${netns} is missing (no nft table ${FIREWALL_FAMILY} ${FIREWALL_TABLE}), so its policy (${FIREWALL_PURPOSE[s.role]}) is not enforced; ${fix}`;
    case 'altered':
      return `the firewall of ${netns} was changed (nft table ${FIREWALL_FAMILY} ${FIREWALL_TABLE} is not miglab's policy: ${FIREWALL_PURPOSE[s.role]}); ${fix}`;
    case 'unknown':
      return `could not read the firewall of ${netns}: ${s.detail ?? 'no detail'}`;
  }
}
