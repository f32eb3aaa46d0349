// What the lab needs on the machine: root, a few programs and their Debian packages. Checked
// before anything is created, so a missing piece is one clear error with the apt-get line.
// `miglab doctor` reports the same findings instead of throwing them (missingLabDependencies).
import { MiglabError, MissingDependencyError } from '../errors.js';
import type { Host } from '../host/host.js';
import { LocalHost } from '../host/local.js';

/** Debian packages the lab needs (the Makefile's `deps` installs them). */
export const REQUIRED_PACKAGES = [
  'iproute2', // ip netns/link/addr/tuntap, tc
  'iputils-ping', // connectivity checks inside the lab
  'nfs-ganesha', // userspace NFS server (no kernel NFS here)
  'nfs-ganesha-vfs', // its VFS backend
  'rpcbind', // NFSv3 needs it
  'libnfs-utils', // nfs-ls: readiness probe of the export
  'iperf3', // throughput probes between lab hosts
  'nftables', // nft: the lab's firewall in src and dst (firewall.ts)
  'tcpdump', // a capture on the switch's port to the destination: where the client's silence went
] as const;

/** Programs the lab runs, and the package each comes from. */
export const REQUIRED_PROGRAMS: ReadonlyArray<readonly [program: string, pkg: string]> = [
  ['ip', 'iproute2'],
  ['tc', 'iproute2'],
  ['ping', 'iputils-ping'],
  ['ganesha.nfsd', 'nfs-ganesha'],
  ['rpcbind', 'rpcbind'],
  ['nfs-ls', 'libnfs-utils'],
  ['mount', 'mount'],
  ['nft', 'nftables'],
  ['tcpdump', 'tcpdump'],
  ['ss', 'iproute2'], // lists each namespace's listening sockets (status)
  // Essential in Debian, listed so a trimmed machine says what is missing: `unshare` gives nft an
  // empty namespace to print the expected firewall in (status); perl runs socket-activate.pl,
  // which hands rpcbind its TCP sockets (nfs-server.sh).
  ['unshare', 'util-linux'],
  ['perl', 'perl-base'],
];

/** Where Debian (multiarch) and others put ganesha's VFS backend. */
export const FSAL_VFS_PATHS = [
  '/usr/lib/x86_64-linux-gnu/ganesha/libfsalvfs.so',
  '/usr/lib/aarch64-linux-gnu/ganesha/libfsalvfs.so',
  '/usr/lib64/ganesha/libfsalvfs.so',
  '/usr/lib/ganesha/libfsalvfs.so',
];

export function checkRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new MiglabError('NOT_ROOT', 'the lab needs root (network namespaces, bridges, taps, an NFS server); run it with sudo');
  }
}

/** Something missing, and the Debian package that brings it. */
export type Missing = readonly [what: string, pkg: string];

/** The programs the homework by hand types into: HMP over telnet, QMP over socat. */
export const HAND_PROGRAMS: readonly Missing[] = [
  ['telnet', 'telnet'],
  ['socat', 'socat'],
];

/** The first of `paths` that exists on `host` (asked with `test -e`, so any Host can answer). */
export async function firstExisting(host: Host, paths: readonly string[]): Promise<string | undefined> {
  for (const p of paths) if ((await host.run(['test', '-e', p], { reject: false, timeoutMs: 5000 })).exitCode === 0) return p;
  return undefined;
}

/** The `programs` that are not on `host`'s PATH. */
export async function missingPrograms(host: Host, programs: readonly Missing[]): Promise<Missing[]> {
  const missing: Missing[] = [];
  for (const entry of programs) if ((await host.which(entry[0])) === undefined) missing.push(entry);
  return missing;
}

/** What the lab needs and `host` lacks: its programs, and nfs-ganesha's VFS backend. */
export async function missingLabDependencies(host: Host): Promise<Missing[]> {
  const missing = await missingPrograms(host, REQUIRED_PROGRAMS);
  if ((await firstExisting(host, FSAL_VFS_PATHS)) === undefined) missing.push(["nfs-ganesha's VFS backend (libfsalvfs.so)", 'nfs-ganesha-vfs']);
  return missing;
}

/** The apt-get line that installs what is missing (each package once). */
export function installLine(missing: readonly Missing[]): string {
  return `apt-get install -y ${[...new Set(missing.map(([, pkg]) => pkg))].join(' ')}`;
}

/** Throw one MissingDependencyError naming every missing program and the packages to install. */
export async function checkLabDependencies(host: Host): Promise<void> {
  const missing = await missingLabDependencies(host);
  if (missing.length > 0) throw new MissingDependencyError(missing.map(([what, pkg]) => `${what} (${pkg})`).join(', '), installLine(missing));
}

/** The homework by hand's programs: missing, the printed instructions would fail in the person's terminal. */
export async function checkHandTools(host: Host = new LocalHost()): Promise<void> {
  const missing = await missingPrograms(host, HAND_PROGRAMS);
  if (missing.length > 0) throw new MissingDependencyError(`${missing.map(([what]) => what).join(' and ')} (used to reach the monitors by hand)`, `${installLine(missing)} (make deps installs them)`);
}
