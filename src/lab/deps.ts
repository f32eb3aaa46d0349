// What the lab needs on the machine: root, a few programs and their Debian packages. Checked
// before anything is created, so a missing piece is one clear error with the apt-get line.
import { existsSync } from 'node:fs';
import { MiglabError, MissingDependencyError } from '../errors.js';
import type { Host } from '../host/host.js';

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

/** Throw one MissingDependencyError naming every missing program and the packages to install. */
export async function checkLabDependencies(host: Host): Promise<void> {
  const missing: Array<readonly [string, string]> = [];
  for (const [program, pkg] of REQUIRED_PROGRAMS) {
    if ((await host.which(program)) === undefined) missing.push([program, pkg]);
  }
  if (!FSAL_VFS_PATHS.some((p) => existsSync(p))) missing.push(['the VFS backend of nfs-ganesha (libfsalvfs.so)', 'nfs-ganesha-vfs']);
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map(([, p]) => p))];
  throw new MissingDependencyError(missing.map(([what, p]) => `${what} (${p})`).join(', '), `apt-get install -y ${pkgs.join(' ')}`);
}
