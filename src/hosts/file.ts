// The hosts file: the machines a user already has (two VMs, two hypervisor hosts) as the lab's
// roles, reached over SSH. Plain YAML validated here, once, into a typed HostsSpec with every
// default filled and every path absolute; each bad input is one line naming the field and the fix.
// `connectHosts` turns a spec into SshHosts, one connection per distinct machine. What runs on
// the hosts (the check, the lab over SSH) reads only the spec.
import { accessSync, constants, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, normalize } from 'node:path';
import { z } from 'zod';
import { UsageError } from '../errors.js';
import { shellCommand } from '../host/shell-quote.js';
import { SshHost, type SshTarget } from '../host/ssh.js';
import { HOST_ROLES, ipToNumber, networkOf, numberToIp, type HostRole } from '../lab/spec.js';
import type { WaitOptions } from '../util/deadline.js';
import { describeIssue } from '../util/validate.js';
import { parseYaml, readInputFile } from '../util/yaml.js';

/** Where miglab keeps its transient files (sockets, tools) on each host unless the file says. */
export const DEFAULT_RUN_DIR = '/run/miglab-remote';
export const DEFAULT_BRIDGE = 'br0';
export const DEFAULT_SSH_PORT = 22;
export const DEFAULT_GUEST_PREFIX_LENGTH = 24;
/** VXLAN's IANA port (RFC 7348). */
export const DEFAULT_VXLAN_PORT = 4789;
/** The keys OpenSSH tries when none is given, in its order. */
const DEFAULT_KEYS = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

/** One machine as the file gives it, resolved: a key file that exists, or an agent's socket. */
export interface HostSpec {
  readonly address: string;
  readonly port: number;
  readonly user: string;
  /** Absolute path of the private key (`~` expanded); unset when the agent is used. */
  readonly key?: string;
  /** The agent's socket (SSH_AUTH_SOCK), when `agent: true` (or no key was given and an agent runs). */
  readonly agent?: string;
  /** The host key's SHA-256 as ssh2's hostHash gives it (hex); unset accepts any key. */
  readonly hostKeySha256?: string;
  /** An argv run on the controller whose stdin/stdout carry the SSH connection. */
  readonly proxy?: readonly string[];
}

export interface GuestAddresses {
  readonly first: string;
  readonly last: string;
  readonly count: number;
  readonly prefixLength: number;
}

/** Who serves the export when miglab does: nfs-ganesha started by miglab, or the host's kernel NFS server. */
export const SERVE_KINDS = ['ganesha', 'kernel'] as const;
export type ServeKind = (typeof SERVE_KINDS)[number];

export interface StorageSpec {
  /** What QEMU opens (libnfs): nfs://SERVER/PATH (derived from the server's address and `dir` when miglab serves it). */
  readonly nfs: string;
  /** The URL's server part. */
  readonly serverAddress: string;
  /** The role on which the export is a directory (disks are made there with qemu-img). */
  readonly server: HostRole;
  /** The export's path on that host (default: the URL's path). */
  readonly dir: string;
  /** Set when miglab serves the export itself (src/hosts/nfs-export.ts); unset: the export is the user's. */
  readonly serve?: ServeKind;
}

/** A bridge miglab makes on the hosts and joins by VXLAN (src/hosts/bridge.ts). */
export interface BridgeMade {
  readonly name: string;
  /** The VXLAN network identifier; unset: one derived from the lab's name (two labs never share one). */
  readonly vni?: number;
  /** The UDP port the tunnel uses on every host. */
  readonly port: number;
  /** Each role's tunnel endpoint: an IPv4 address of that host the others reach. */
  readonly endpoints: Readonly<Record<HostRole, string>>;
  /** The client host's address on the bridge: the last of the guests' range, kept from guests. */
  readonly clientAddress: string;
}

export interface HostsSpec {
  /** The file it was read from, for messages. */
  readonly source: string;
  /** Every role; the client is the source host when the file names none. */
  readonly hosts: Readonly<Record<HostRole, HostSpec>>;
  /** Whether the file named a client host of its own. */
  readonly clientGiven: boolean;
  /** The bridge on src and dst that guests' taps join: the user's own, or one miglab makes (`made`). */
  readonly bridge: string;
  /** Set when miglab makes the bridge (and removes it at `lab down --hosts`). */
  readonly bridgeMade?: BridgeMade;
  /** The addresses guests take (with a made bridge, less the client's). */
  readonly guests: GuestAddresses;
  /** Where the destination listens for the migration stream (default: dst's address). */
  readonly migration: { readonly address: string };
  readonly storage: StorageSpec;
  /** Where miglab keeps sockets and tools on each host. */
  readonly runDir: string;
}

/** What the file is read against: the environment (SSH_AUTH_SOCK) and the home directory `~` means. */
export interface HostsContext {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly homeDir: string;
}

const here = (): HostsContext => ({ env: process.env, homeDir: homedir() });

// ---- fields ----------------------------------------------------------------------------------

const missing = (fix: string) => (iss: { input: unknown }) => (iss.input === undefined ? `missing; ${fix}` : `not valid; ${fix}`);

/** An absolute path on some machine; `~/` means the controller's home (keys) only when `home` is given. */
function absolutePath(fix: string, home?: string) {
  return z
    .string({ error: missing(fix) })
    .min(1, `empty; ${fix}`)
    .transform((p, ctx) => {
      const expanded = home !== undefined && (p === '~' || p.startsWith('~/')) ? join(home, p.slice(1)) : p;
      if (!isAbsolute(expanded)) {
        ctx.addIssue({ code: 'custom', message: `"${p}" is a relative path; ${fix} as an absolute path${home !== undefined ? ' (or ~/...)' : ''}` });
        return z.NEVER;
      }
      return normalize(expanded).replace(/(.)\/+$/, '$1');
    });
}

/** A key file must exist and be readable now, not at the first connection minutes later. */
function keyProblem(path: string): string | undefined {
  try {
    if (!statSync(path).isFile()) return `${path} is not a file`;
    accessSync(path, constants.R_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? `${path} does not exist` : `${path} cannot be read (${code ?? String(err)})`;
  }
}

/** `ssh-keygen -lf` prints SHA256:<base64>; ssh2's hostHash is the same digest in hex. Both are taken. */
function hostKeyHex(text: string): string | undefined {
  if (/^[0-9a-fA-F]{64}$/.test(text)) return text.toLowerCase();
  const m = /^SHA256:([A-Za-z0-9+/]{43})=?$/.exec(text);
  return m ? Buffer.from(m[1]!, 'base64').toString('hex') : undefined;
}

function hostSchema(role: HostRole, c: HostsContext) {
  const keyFix = 'give the private key ssh uses for this host (ssh -i PATH)';
  return z
    .object({
      address: z.string({ error: missing(`give the address (or name) miglab reaches the ${role} host at over SSH, e.g. 192.168.122.11`) }).min(1, 'empty; give an address or host name'),
      user: z.string().min(1, 'empty; give the login, e.g. root').default('root'),
      port: z.number({ error: 'not a port number; give the SSH port, e.g. 22' }).int('not a whole number; give the SSH port, e.g. 22').min(1, 'give a port 1-65535').max(65535, 'give a port 1-65535').default(DEFAULT_SSH_PORT),
      key: absolutePath(keyFix, c.homeDir).optional(),
      agent: z.boolean({ error: 'give true (use the agent at SSH_AUTH_SOCK) or leave it out' }).optional(),
      hostKey: z.string().optional(),
      proxy: z.array(z.string().min(1, 'empty argument; give the command as a list, e.g. [ssh, -W, "10.0.0.1:22", jumphost]'), { error: 'give the command as a list, e.g. [ssh, -W, "10.0.0.1:22", jumphost]' }).min(1, 'empty; give the command as a list, e.g. [ssh, -W, "10.0.0.1:22", jumphost]').optional(),
    }, { error: missing(`give the ${role} host as { address: ADDRESS, user: root, key: ~/.ssh/id_ed25519 } (or agent: true instead of key)`) })
    .strict()
    .transform((h, ctx): HostSpec => {
      const fail = (field: string, message: string) => {
        ctx.addIssue({ code: 'custom', path: [field], message });
        return z.NEVER;
      };
      if (h.key !== undefined && h.agent === true) return fail('agent', 'given with key; give one of them: key (a private key file) or agent: true (the agent at SSH_AUTH_SOCK)');
      const sock = c.env.SSH_AUTH_SOCK || undefined;
      if (h.agent === true && !sock) return fail('agent', 'true, but SSH_AUTH_SOCK is not set; start an agent and add your key (eval "$(ssh-agent)"; ssh-add), keep it with sudo -E, or give key: PATH');
      let key = h.key;
      if (key !== undefined) {
        const problem = keyProblem(key);
        if (problem) return fail('key', `${problem}; ${keyFix}`);
      } else if (h.agent !== true && !sock) {
        // As OpenSSH does with neither: the usual key files of the user miglab runs as.
        key = DEFAULT_KEYS.map((k) => join(c.homeDir, '.ssh', k)).find((k) => keyProblem(k) === undefined);
        if (!key) return fail('key', `missing, no SSH_AUTH_SOCK and no ~/.ssh/{${DEFAULT_KEYS.join(',')}} (in ${c.homeDir}); ${keyFix}, or agent: true with an agent running`);
      }
      let hostKeySha256: string | undefined;
      if (h.hostKey !== undefined) {
        hostKeySha256 = hostKeyHex(h.hostKey);
        if (!hostKeySha256) return fail('hostKey', `"${h.hostKey}" is not a SHA-256 fingerprint; give what ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub prints on the host (SHA256:...), or leave it out`);
      }
      return { address: h.address, port: h.port, user: h.user, key, agent: key === undefined ? sock : undefined, hostKeySha256, proxy: h.proxy };
    });
}

/** "A-B" (or one address) on one network of /prefixLength, neither its network nor broadcast address. */
function guestRange(text: string, prefixLength: number): GuestAddresses | string {
  const fix = `give FIRST-LAST on the bridge's network, e.g. 192.168.122.200-192.168.122.215`;
  const parts = text.split('-').map((s) => s.trim());
  if (parts.length > 2 || parts.some((p) => !/^\d{1,3}(\.\d{1,3}){3}$/.test(p))) return `"${text}" is not an address range; ${fix}`;
  let first: number, last: number;
  try {
    [first, last] = [ipToNumber(parts[0]!), ipToNumber(parts.at(-1)!)];
  } catch {
    return `"${text}" has an address part above 255; ${fix}`;
  }
  if (last < first) return `"${text}" is reversed; give the lower address first (${parts[1]}-${parts[0]})`;
  const hostBits = 32 - prefixLength;
  const network = (n: number) => networkOf(n, prefixLength);
  const net = network(first);
  const broadcast = (net + 2 ** hostBits - 1) >>> 0;
  if (network(last) !== net) return `"${text}" spans more than one /${prefixLength} network (${numberToIp(net)}/${prefixLength} and ${numberToIp(network(last))}/${prefixLength}); ${fix}, or a shorter prefixLength`;
  if (first === net || last === broadcast) return `"${text}" includes the network's ${first === net ? 'own address' : 'broadcast address'} (${numberToIp(first === net ? net : broadcast)}) of ${numberToIp(net)}/${prefixLength}; ${fix}`;
  return { first: numberToIp(first), last: numberToIp(last), count: last - first + 1, prefixLength };
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** A Linux interface name (what `ip link` takes). */
function linkName(fix: string) {
  return z.string({ error: missing(fix) }).regex(/^[^\s/:]{1,15}$/, `not a Linux interface name (1-15 characters, no spaces, / or :); ${fix}`);
}

/** The system's own directories (and what is under them), or a top-level one: never served. */
const SYSTEM_DIR = /^\/(?:(?:etc|usr|bin|sbin|lib|lib32|lib64|libx32|boot|dev|proc|sys|run|root)(?:\/.*)?|[^/]+)$/;

const NFS_URL = /^nfs:\/\/([^/?#\s]+)(\/[^?#\s]*[^/?#\s][^?#\s]*)$/;
/** A served directory goes into nfs-ganesha's config and the NFS URL as it is: plain characters only. */
const SERVED_DIR = /^\/[A-Za-z0-9._/-]+$/;

function hostsFileSchema(c: HostsContext) {
  const roles = HOST_ROLES.join(', ');
  return z
    .object({
      hosts: z
        .object(
          {
            src: hostSchema('src', c),
            dst: hostSchema('dst', c),
            client: hostSchema('client', c).optional(),
          },
          { error: missing('give hosts: with src: and dst: (each { address, user, key or agent })') },
        )
        .strict(),
      bridge: z
        .union([
          linkName('give the bridge on src and dst that guests join, e.g. br0'),
          z
            .object(
              {
                create: linkName('give the name of the bridge miglab makes on the hosts, e.g. mlbr0'),
                vni: z.number({ error: 'not a number; give a VXLAN id 1-16777215, or leave it out' }).int('not a whole number; give a VXLAN id 1-16777215').min(1, 'give 1-16777215').max(16_777_215, 'give 1-16777215').optional(),
                port: z.number({ error: 'not a port number; give the UDP port of the tunnel, e.g. 4789' }).int('not a whole number; give e.g. 4789').min(1, 'give a port 1-65535').max(65535, 'give a port 1-65535').default(DEFAULT_VXLAN_PORT),
                endpoints: z.partialRecord(z.enum(HOST_ROLES), z.string().regex(IPV4, 'not an IPv4 address; give the address of this host the others reach it at')).default({}),
              },
              { error: 'give a bridge name (one on src and dst already), or { create: NAME } for one miglab makes' },
            )
            .strict(),
        ], { error: 'give a bridge name (one on src and dst already), or { create: NAME } for one miglab makes' })
        .default(DEFAULT_BRIDGE),
      guests: z
        .object(
          {
            addresses: z.string({ error: missing('give the addresses guests take on the bridge\'s network, e.g. 192.168.122.200-192.168.122.215') }),
            prefixLength: z.number({ error: 'not a number; give the bridge network\'s prefix length, e.g. 24' }).int('not a whole number; give e.g. 24').min(8, 'give 8-30').max(30, 'give 8-30').default(DEFAULT_GUEST_PREFIX_LENGTH),
          },
          { error: missing('give guests: { addresses: FIRST-LAST, prefixLength: 24 } (addresses free on the bridge\'s network)') },
        )
        .strict()
        .transform((g, ctx) => {
          const r = guestRange(g.addresses, g.prefixLength);
          if (typeof r === 'string') {
            ctx.addIssue({ code: 'custom', path: ['addresses'], message: r });
            return z.NEVER;
          }
          return r;
        }),
      migration: z.object({ address: z.string().min(1, 'empty; give the address dst listens on for the migration stream, or leave it out (dst\'s address)').optional() }).strict().default({}),
      storage: z
        .object(
          {
            nfs: z.string({ error: missing('give the export QEMU opens, e.g. nfs://192.168.122.11/srv/miglab') }).regex(NFS_URL, 'not an NFS URL; give nfs://HOST/PATH, e.g. nfs://192.168.122.11/srv/miglab').optional(),
            server: z.enum(HOST_ROLES, { error: (iss) => (iss.input === undefined ? `missing; give the role (${roles}) on which the export is a directory` : `"${String(iss.input)}" is not a role of hosts; give ${roles} (the host on which the export is a directory)`) }),
            dir: absolutePath("give the export's directory on the server host").optional(),
            serve: z.enum(SERVE_KINDS, { error: `give ganesha (miglab starts nfs-ganesha on the server host) or kernel (the host's own NFS server exports dir), or leave it out and give nfs: (an export you have)` }).optional(),
            address: z.string().regex(IPV4, 'not an IPv4 address; give the address of the server host the export is served at, e.g. 192.168.122.12').optional(),
          },
          { error: missing('give storage: { nfs: nfs://HOST/PATH, server: src } (the shared disk\'s NFS export), or storage: { serve: ganesha, server: dst, dir: /var/lib/miglab-export } to have miglab serve one') },
        )
        .strict()
        .superRefine((st, ctx) => {
          const issue = (field: string, message: string) => ctx.addIssue({ code: 'custom', path: [field], message });
          if (st.serve === undefined) {
            if (st.nfs === undefined) issue('nfs', 'missing; give the export QEMU opens, e.g. nfs://192.168.122.11/srv/miglab (or serve: ganesha with dir: PATH to have miglab serve one)');
            else if (st.address !== undefined) issue('address', 'given without serve; the address of an export you have is in its nfs: URL');
            return;
          }
          if (st.nfs !== undefined) issue('nfs', `given with serve: ${st.serve}; give one of them: nfs: (an export you have) or serve: (miglab serves dir from the server host, at nfs://ITS_ADDRESS/DIR)`);
          else if (st.dir === undefined) issue('dir', `missing; give the directory serve: ${st.serve} exports on the ${st.server} host, e.g. /var/lib/miglab-export (made if missing)`);
          else if (!SERVED_DIR.test(st.dir) || st.dir === '/') issue('dir', `"${st.dir}" cannot be served; give a directory of its own, its path of letters, digits and . _ - / only, e.g. /var/lib/miglab-export`);
          // Served read-write, root as root, to two hosts: never the system's own files.
          else if (SYSTEM_DIR.test(st.dir)) issue('dir', `"${st.dir}" is a system directory, and the export is read-write with root's rights; give a directory of its own, e.g. /var/lib/miglab-export`);
        }),
      runDir: absolutePath('give where miglab keeps sockets and tools on each host, e.g. /run/miglab-remote').default(DEFAULT_RUN_DIR),
    })
    .strict();
}

function describeHostsIssue(issue: z.core.$ZodIssue): string {
  // An unknown key under `hosts` is a role nobody plays: say what the roles are.
  if (issue.code === 'unrecognized_keys' && issue.path.length === 1 && issue.path[0] === 'hosts') {
    return `unknown role${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `hosts.${k}`).join(', ')}; the roles are ${HOST_ROLES.join(', ')} (client is optional)`;
  }
  return describeIssue(issue);
}

type StorageInput = z.output<ReturnType<typeof hostsFileSchema>>['storage'];

/**
 * The storage as runs use it. An export of the user's: its URL as given. One miglab serves: at
 * nfs://ADDRESS/DIR, ADDRESS being the server host's own (or `address:`), which nfs-ganesha binds
 * to and so must be an IPv4 address, not a name.
 */
function storageOf(st: StorageInput, hosts: Readonly<Record<HostRole, HostSpec>>, source: string): StorageSpec {
  if (st.serve === undefined) {
    const url = NFS_URL.exec(st.nfs!)!;
    return { nfs: st.nfs!, serverAddress: url[1]!, server: st.server, dir: st.dir ?? normalize(decodeURIComponent(url[2]!)) };
  }
  const address = st.address ?? hosts[st.server].address;
  if (!IPV4.test(address)) {
    throw new UsageError(`${source}: storage.address: missing; the ${st.server} host's address "${address}" is a name, and the export is served at an IPv4 address: give storage.address: the ${st.server} host's address on the network src and dst share`);
  }
  return { nfs: `nfs://${address}${st.dir!}`, serverAddress: address, server: st.server, dir: st.dir!, serve: st.serve };
}

/** Validate a hosts file's text; `source` names it in errors. */
export function parseHostsText(text: string, source: string, context: HostsContext = here()): HostsSpec {
  const r = hostsFileSchema(context).safeParse(parseYaml(text, source) ?? {});
  if (!r.success) throw new UsageError(`${source}: ${describeHostsIssue(r.error.issues[0]!)}`);
  const f = r.data;
  const hosts = { src: f.hosts.src, dst: f.hosts.dst, client: f.hosts.client ?? f.hosts.src };
  const made = typeof f.bridge === 'string' ? undefined : madeBridge(f.bridge, hosts, f.hosts.client !== undefined, f.guests, source);
  return {
    source,
    hosts,
    clientGiven: f.hosts.client !== undefined,
    bridge: typeof f.bridge === 'string' ? f.bridge : f.bridge.create,
    bridgeMade: made,
    guests: made ? withoutLast(f.guests) : f.guests,
    migration: { address: f.migration.address ?? f.hosts.dst.address },
    storage: storageOf(f.storage, hosts, source),
    runDir: f.runDir,
  };
}

/**
 * A made bridge's tunnel endpoints (given, or each host's address when it is an IPv4 address) and
 * the client's address on it (the last of the guests').
 */
function madeBridge(b: { create: string; vni?: number; port: number; endpoints: Partial<Record<HostRole, string>> }, hosts: Record<HostRole, HostSpec>, clientGiven: boolean, guests: GuestAddresses, source: string): BridgeMade {
  if (guests.count < 2) throw new UsageError(`${source}: guests.addresses: one address, but a bridge miglab makes takes the last for the client host; give at least two`);
  const endpoint = (role: HostRole): string => {
    // Without a client host of its own, the client is the source host: one endpoint.
    const given = role === 'client' && !clientGiven ? b.endpoints.src : b.endpoints[role];
    if (given) return given;
    const { address } = hosts[role];
    if (IPV4.test(address)) return address;
    throw new UsageError(`${source}: bridge.endpoints.${role}: missing, and hosts.${role}.address "${address}" is not an IPv4 address; give the address the other hosts reach ${role} at (the tunnel of bridge.create runs between such addresses)`);
  };
  return { name: b.create, vni: b.vni, port: b.port, endpoints: { src: endpoint('src'), dst: endpoint('dst'), client: endpoint('client') }, clientAddress: guests.last };
}

/** The range less its last address. */
function withoutLast(g: GuestAddresses): GuestAddresses {
  return { ...g, last: numberToIp(ipToNumber(g.last) - 1), count: g.count - 1 };
}

/** Read and validate a hosts file. */
export async function parseHostsFile(path: string, context: HostsContext = here()): Promise<HostsSpec> {
  return parseHostsText(await readInputFile(path, 'hosts file', 'give the path of a hosts YAML (an example: examples/hosts/two-vms.yaml)'), path, context);
}

/** How SshHost reaches one host of the file. */
export function sshTarget(h: HostSpec): SshTarget {
  return { host: h.address, port: h.port, username: h.user, privateKeyPath: h.key, agent: h.agent, hostKeySha256: h.hostKeySha256, proxy: h.proxy };
}

/**
 * The OpenSSH command that logs a person in to one host as the file says (port, key, proxy), to
 * run a program there with a terminal: `ssh -t [-p PORT] [-i KEY] [-o ProxyCommand=...] USER@ADDRESS`.
 * It is printed for the person, never run by miglab. OpenSSH expands `%` tokens in ProxyCommand,
 * so a `%` of the proxy's argv is doubled.
 */
export function sshLoginArgv(h: HostSpec): string[] {
  return [
    'ssh',
    '-t',
    ...(h.port !== DEFAULT_SSH_PORT ? ['-p', String(h.port)] : []),
    ...(h.key ? ['-i', h.key] : []),
    ...(h.proxy ? ['-o', `ProxyCommand=${shellCommand(h.proxy).replace(/%/g, '%%')}`] : []),
    `${h.user}@${h.address}`,
  ];
}

/** The machines of the spec, each with the roles it plays: roles that name the same login on the same machine share one. */
export function distinctHosts(spec: HostsSpec): Array<{ readonly host: HostSpec; readonly roles: readonly HostRole[] }> {
  const byLogin = new Map<string, { host: HostSpec; roles: HostRole[] }>();
  for (const role of HOST_ROLES) {
    const h = spec.hosts[role];
    const key = `${h.user}@${h.address}:${h.port}`;
    const entry = byLogin.get(key);
    if (entry) entry.roles.push(role);
    else byLogin.set(key, { host: h, roles: [role] });
  }
  return [...byLogin.values()];
}

export interface ConnectedHosts {
  readonly src: SshHost;
  readonly dst: SshHost;
  readonly client: SshHost;
  /** End every connection (each once; harmless twice). */
  close(): void;
}

/** Connect to every host of the spec at once; a failure closes those already made and is thrown. */
export async function connectHosts(spec: HostsSpec, opts: WaitOptions): Promise<ConnectedHosts> {
  const machines = distinctHosts(spec);
  const settled = await Promise.allSettled(machines.map((m) => SshHost.connect(sshTarget(m.host), opts)));
  const made = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const close = () => {
    for (const host of made) host.close();
  };
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    close();
    throw failed.reason;
  }
  const of = (role: HostRole) => (settled[machines.findIndex((m) => m.roles.includes(role))] as PromiseFulfilledResult<SshHost>).value;
  return { src: of('src'), dst: of('dst'), client: of('client'), close };
}
