// The lab spec: plain, readonly, validated data describing the two-host lab (namespace prefix,
// subnet, where state and the NFS export live, link shaping), and the pure derivations from it:
// namespace and link names, host and guest addresses, guest MACs. Nothing here runs anything;
// src/lab/up.ts builds the lab from a spec.
import { isAbsolute, join, normalize } from 'node:path';
import { z } from 'zod';
import { UsageError } from '../errors.js';
import { parseInput } from '../util/validate.js';

export const DEFAULT_PREFIX = 'mlab';
export const DEFAULT_SUBNET = '10.77.0.0/24';
export const DEFAULT_STATE_ROOT = '/run/miglab';

/** Guest `index` gets the host number GUEST_BASE + index in the subnet (.100, .101, ...). */
export const GUEST_BASE = 100;
/** Guest MACs are 52:54:00:77:00:XX with XX the guest index, so at most 256 guests. */
const MAX_GUEST_INDEX = 255;

export const HOST_ROLES = ['src', 'dst', 'client'] as const;
export type HostRole = (typeof HOST_ROLES)[number];
/** The hosts that run guests (and migrate them); the client only probes. */
export type GuestHostRole = 'src' | 'dst';

/** Host number of each role inside the subnet. */
const HOST_NUMBER: Readonly<Record<HostRole, number>> = { src: 1, dst: 2, client: 3 };

const PREFIX_RE = /^[a-z][a-z0-9]{0,7}$/;

function absolutePath(what: string) {
  return z
    .string()
    .refine((p) => isAbsolute(p), `${what} must be an absolute path`)
    .refine((p) => !/[\s,;{}"'#\\]/.test(p), `${what} must not contain spaces or any of , ; { } " ' # \\ (it goes into ganesha's config)`)
    .transform((p) => normalize(p).replace(/(.)\/+$/, '$1'));
}

export const ShapingSchema = z
  .object({
    /** Rate limit of each migration uplink, in Mbit/s. */
    bandwidthMbit: z.number().positive('bandwidth must be greater than 0').max(1_000_000).optional(),
    /** One-way delay added on each uplink (so the round trip src<->dst gains twice this). */
    delayMs: z.number().min(0).max(60_000).optional(),
    /** Random variation of the delay; needs delayMs. */
    jitterMs: z.number().min(0).max(60_000).optional(),
    /** Random packet loss on each uplink, in percent. */
    lossPct: z.number().min(0, 'loss must be 0-100 %').max(100, 'loss must be 0-100 %').optional(),
  })
  .strict()
  .refine((s) => s.jitterMs === undefined || s.delayMs !== undefined, { message: 'jitterMs needs delayMs', path: ['jitterMs'] })
  .readonly();

export type Shaping = z.infer<typeof ShapingSchema>;
export type ShapingInput = z.input<typeof ShapingSchema>;

export const LabSpecSchema = z
  .object({
    /** Names every namespace (`PREFIX-src`...) and the state directory of this lab. */
    prefix: z.string().regex(PREFIX_RE, 'a lab prefix is 1-8 lower-case letters or digits, starting with a letter').default(DEFAULT_PREFIX),
    /** A private IPv4 subnet used only inside the lab's namespaces. */
    subnet: z.string().default(DEFAULT_SUBNET),
    /** Root of miglab's run-time state; this lab keeps its files in STATE_ROOT/PREFIX. */
    stateRoot: absolutePath('stateRoot').default(DEFAULT_STATE_ROOT),
    /** Directory exported over NFS (guest disks live here); default STATE_ROOT/PREFIX/export. */
    exportDir: absolutePath('exportDir').optional(),
    /** Shaping applied to the src and dst uplinks when the lab comes up. */
    shaping: ShapingSchema.optional(),
  })
  .strict()
  .superRefine((spec, ctx) => {
    try {
      parseSubnet(spec.subnet);
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: ['subnet'], message: err instanceof Error ? err.message : String(err) });
    }
  })
  .readonly();

export type LabSpec = z.infer<typeof LabSpecSchema>;
export type LabSpecInput = z.input<typeof LabSpecSchema>;

/** Validate a lab spec; bad input becomes one UsageError line naming the field. */
export function parseLabSpec(input: LabSpecInput = {}): LabSpec {
  return parseInput(LabSpecSchema, input, 'lab spec');
}

export function parseShaping(input: ShapingInput): Shaping {
  return parseInput(ShapingSchema, input, 'shaping');
}

export function isEmptyShaping(s: Shaping | undefined): boolean {
  return !s || (s.bandwidthMbit === undefined && s.delayMs === undefined && s.lossPct === undefined);
}

/** Check a lab prefix given on its own (down, status, attach). */
export function checkPrefix(prefix: string): string {
  if (!PREFIX_RE.test(prefix)) throw new UsageError(`invalid lab prefix "${prefix}"`, 'use 1-8 lower-case letters or digits, starting with a letter');
  return prefix;
}

// ---- addresses -------------------------------------------------------------------------------

export interface Subnet {
  /** The network address as a 32-bit number. */
  readonly network: number;
  readonly prefixLength: number;
  /** Number of usable host numbers (network and broadcast excluded). */
  readonly hostCount: number;
}

export function ipToNumber(ip: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  const parts = m ? m.slice(1).map(Number) : [];
  if (parts.length !== 4 || parts.some((p) => p > 255)) throw new UsageError(`invalid IPv4 address "${ip}"`);
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

/** The network part of address `n` under a /len prefix (len 0: the whole space). */
export function networkOf(n: number, len: number): number {
  return len === 0 ? 0 : (n & (~0 << (32 - len))) >>> 0;
}

export function numberToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function isPrivate(n: number): boolean {
  return n >>> 24 === 10 || (n >>> 20 === (172 << 4 | 1)) || n >>> 16 === ((192 << 8) | 168);
}

/** Parse "10.77.0.0/24": private (RFC 1918), /8 to /24, host bits zero. */
export function parseSubnet(cidr: string): Subnet {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(cidr.trim());
  if (!m) throw new UsageError(`invalid subnet "${cidr}"`, 'use an IPv4 network such as 10.77.0.0/24');
  const network = ipToNumber(m[1]!);
  const prefixLength = Number(m[2]);
  if (prefixLength < 8 || prefixLength > 24) throw new UsageError(`invalid subnet "${cidr}"`, 'the prefix length must be 8 to 24');
  const hostBits = 32 - prefixLength;
  const mask = hostBits === 32 ? 0 : (0xffffffff << hostBits) >>> 0;
  if ((network & mask) >>> 0 !== network) throw new UsageError(`invalid subnet "${cidr}"`, `the host bits must be zero (did you mean ${numberToIp((network & mask) >>> 0)}/${prefixLength}?)`);
  if (!isPrivate(network)) throw new UsageError(`invalid subnet "${cidr}"`, 'use a private range (10/8, 172.16/12 or 192.168/16): the lab only ever talks to its own addresses');
  return { network, prefixLength, hostCount: 2 ** hostBits - 2 };
}

/** The address of host number `n` in the subnet. */
export function hostAddress(subnet: Subnet, n: number): string {
  if (!Number.isInteger(n) || n < 1 || n > subnet.hostCount) throw new UsageError(`host number ${n} is outside the lab subnet`);
  return numberToIp(subnet.network + n);
}

export function roleIp(spec: LabSpec, role: HostRole): string {
  return hostAddress(parseSubnet(spec.subnet), HOST_NUMBER[role]);
}

/** The highest guest slot the lab's subnet has room for. */
export function maxGuestIndex(spec: Pick<LabSpec, 'subnet'>): number {
  return Math.min(MAX_GUEST_INDEX, parseSubnet(spec.subnet).hostCount - GUEST_BASE);
}

function checkGuestIndex(spec: LabSpec, index: number): void {
  const max = maxGuestIndex(spec);
  if (!Number.isInteger(index) || index < 0 || index > max) throw new UsageError(`guest index ${index} is out of range`, `use 0 to ${max}`);
}

/** The addresses guests may have, as an nft range (first guest - last guest). */
export function guestRange(spec: LabSpec): string {
  return `${guestIp(spec, 0)}-${guestIp(spec, maxGuestIndex(spec))}`;
}

/** The IPv4 address of guest `index` (0 -> .100). */
export function guestIp(spec: LabSpec, index: number): string {
  checkGuestIndex(spec, index);
  return hostAddress(parseSubnet(spec.subnet), GUEST_BASE + index);
}

/** The MAC of guest `index`: 52:54:00:77:00:XX. It moves with the guest. */
export function guestMac(spec: LabSpec, index: number): string {
  checkGuestIndex(spec, index);
  return `52:54:00:77:00:${index.toString(16).padStart(2, '0')}`;
}

// ---- names -----------------------------------------------------------------------------------

/** Names of everything the lab creates, derived from the prefix only. */
export interface LabNames {
  readonly switchNs: string;
  readonly ns: Readonly<Record<HostRole, string>>;
  /** Bridge in the switch namespace. */
  readonly switchBridge: 'br-sw';
  /** Bridge in src and dst that carries the host IP and the guests' taps. */
  readonly hostBridge: 'br0';
  /** The uplink veth in src, dst and client. */
  readonly uplink: 'up0';
  /** The uplink's peer on the switch, per role. */
  readonly switchPort: Readonly<Record<HostRole, string>>;
}

/** The switch's ports, per role: the same in every lab (the switch has a namespace of its own). */
export const SWITCH_PORTS: Readonly<Record<HostRole, string>> = { src: 'sw-src', dst: 'sw-dst', client: 'sw-cli' };

export function labNames(prefix: string): LabNames {
  return {
    switchNs: `${prefix}-sw`,
    ns: { src: `${prefix}-src`, dst: `${prefix}-dst`, client: `${prefix}-cli` },
    switchBridge: 'br-sw',
    hostBridge: 'br0',
    uplink: 'up0',
    switchPort: SWITCH_PORTS,
  };
}

/** Every namespace of a lab, in creation order. */
export function labNamespaces(prefix: string): string[] {
  const n = labNames(prefix);
  return [n.switchNs, n.ns.src, n.ns.dst, n.ns.client];
}

export interface LabPaths {
  readonly labDir: string;
  readonly stateFile: string;
  readonly exportDir: string;
  readonly nfsDir: string;
  /** The checkpoint export: container hosts (guests) share CRIU's images here. */
  readonly ckptDir: string;
  /** One file per process miglab started in the lab (procs.ts). */
  readonly procsDir: string;
  /** One file per guest slot in use (slots.ts). */
  readonly slotsDir: string;
  /** The lab's TLS certificates for the migration stream, made on first use. */
  readonly tlsDir: string;
}

export function labPaths(spec: Pick<LabSpec, 'prefix' | 'stateRoot' | 'exportDir'>): LabPaths {
  const labDir = join(spec.stateRoot, spec.prefix);
  return {
    labDir,
    stateFile: join(labDir, 'lab.json'),
    exportDir: spec.exportDir ?? join(labDir, 'export'),
    nfsDir: join(labDir, 'nfs'),
    ckptDir: join(labDir, 'ckpt'),
    procsDir: join(labDir, 'procs'),
    slotsDir: join(labDir, 'slots'),
    tlsDir: join(labDir, 'tls'),
  };
}

const IFNAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
const RESERVED_IFNAMES = new Set(['lo', 'br0', 'up0', 'br-sw']);

/** A tap name: a valid Linux interface name (at most 15 characters) not used by the lab itself. */
export function checkTapName(name: string): string {
  if (!IFNAME_RE.test(name)) throw new UsageError(`invalid tap name "${name}"`, 'use 1-15 letters, digits, dots, dashes or underscores');
  if (RESERVED_IFNAMES.has(name) || name.startsWith('sw-')) throw new UsageError(`tap name "${name}" is used by the lab itself`);
  return name;
}

/** A file name inside the export directory: no directories, no `..`. */
export function checkExportFileName(fileName: string): string {
  if (!/^[A-Za-z0-9_.+-]+$/.test(fileName) || fileName === '.' || fileName === '..') {
    throw new UsageError(`invalid file name "${fileName}" for the NFS export`, 'use a plain file name such as disk.qcow2');
  }
  return fileName;
}
