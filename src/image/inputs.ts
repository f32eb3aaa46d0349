// What goes into the guest image, with versions, and the hash that names it in the cache. The
// recipe (module list, compiler flags, RECIPE_VERSION) lives here too, so that every change to
// what the builder does changes the hash. Part of src/image; build.ts consumes it.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, stat, writeFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { MiglabError, MissingDependencyError } from '../errors.js';
import { findRepoDir } from '../util/repo.js';
import type { Host } from '../host/host.js';
import { LocalHost } from '../host/local.js';
import { programIdentity, rememberedFact } from '../host/program-facts.js';

/**
 * Bump when the builder changes what it produces in a way the other inputs do not capture.
 * 3: image.json records each file's size and sha256 (build.ts verifyImage).
 * 4: the initramfs is not compressed, and holds each driver's module closure (`closures`) and the
 *    variant's own modules (`always`), so init loads only the drivers a run's devices need.
 */
export const RECIPE_VERSION = 4;

/** The Debian meta package whose dependency names the kernel package. */
export const KERNEL_META_PACKAGE = 'linux-image-amd64';

/**
 * The kernel modules the guest loads (their dependencies are added): virtio, e1000 and rtl8139
 * NICs, virtio-blk and IDE/SATA (ata_piix + sd_mod) disks, as QEMU's -device options give them.
 */
export const GUEST_MODULES = [
  'virtio_ring',
  'virtio',
  'virtio_pci_modern_dev',
  'virtio_pci_legacy_dev',
  'virtio_pci',
  'failover',
  'net_failover',
  'virtio_net',
  'virtio_blk',
  'e1000',
  'mii',
  '8139too',
  '8139cp',
  'scsi_common',
  'scsi_mod',
  'libata',
  'ata_piix',
  'sd_mod',
] as const;

export const AGENT_CFLAGS = ['-static', '-O2', '-Wall', '-Wextra', '-Werror', '-pthread'] as const;

/** Repository files that go into the image (paths relative to the repository). */
export const SOURCE_FILES = { agent: 'vm-images/agent/miglab-agent.c', control: 'vm-images/agent/control.c', init: 'vm-images/init' } as const;

/**
 * The images miglab builds: `base`, the migrating guest of every VM run, and `chost`, a container
 * host (the base plus CRIU, the container workload and what they need in the kernel), booted as a
 * pair for `miglab containers`. Both are cached side by side under their own hash.
 */
export const IMAGE_VARIANTS = ['base', 'chost'] as const;
export type ImageVariant = (typeof IMAGE_VARIANTS)[number];

/** The container host's own source files: the workload every container runs. */
export const CHOST_SOURCE_FILES = { workload: 'vm-images/workload/miglab-workload.c' } as const;

/**
 * Kernel modules a container host adds (with their dependencies). CRIU opens a netfilter netlink
 * socket at start-up and fails without nf_tables ("Unable to initialize Netlink socket"); the
 * *_diag modules let it read the sockets of the tree it dumps (sock_diag); virtio_console gives
 * the control port (vm-images/agent/control.c); nfsv4 mounts the checkpoint export. crc32c_generic
 * comes first: libcrc32c (nf_tables needs it) only asks for "crc32c" by alias, a soft dependency
 * the load order cannot resolve by name.
 */
export const CHOST_MODULES = [
  'crc32c_generic',
  'nfnetlink',
  'nf_tables',
  'inet_diag',
  'tcp_diag',
  'udp_diag',
  'raw_diag',
  'unix_diag',
  'netlink_diag',
  'af_packet_diag',
  'tun',
  'veth',
  'virtio_console',
  'nfsv4',
] as const;

/** The CRIU binary, installed on the build host (apt) and copied into the container host with its libraries; never run on the host, whose kernel it does not support. */
export const CRIU_PATH = '/usr/sbin/criu';

/**
 * Debian packages the image builder and createDataDisk need on the build host (apt, dpkg and
 * libc-bin's ldd are part of every Debian system). No cpio: cpio.ts writes the archive itself.
 * xz-utils unpacks the kernel for PVH boot (pvh.ts).
 */
export const REQUIRED_PACKAGES = ['busybox-static', 'iperf3', 'gcc', 'libc6-dev', 'xz-utils', 'qemu-utils'] as const;

/** Packages whose versions are recorded as inputs (the ones whose files the image contains). */
const VERSIONED_PACKAGES = ['busybox-static', 'iperf3', 'gcc', 'libc6-dev'] as const;
/** What the container host adds to them. */
const CHOST_VERSIONED_PACKAGES = ['criu'] as const;

export const BUSYBOX_PATHS = ['/bin/busybox', '/usr/bin/busybox'] as const;
/** dpkg rewrites it whenever a package is installed, upgraded or removed. */
const DPKG_STATUS = '/var/lib/dpkg/status';
/** ldconfig rewrites it when the libraries the dynamic linker finds change. */
const LD_SO_CACHE = '/etc/ld.so.cache';
export const IPERF3_PATH = '/usr/bin/iperf3';

export interface KernelPackage {
  readonly metaPackage: string;
  readonly package: string;
  readonly version: string;
}

export interface ImageInputs {
  readonly recipeVersion: number;
  readonly kernel: KernelPackage;
  /** Debian package -> version, as dpkg-query reports it. */
  readonly packages: Readonly<Record<string, string>>;
  /** Repository file -> sha256. */
  readonly sources: Readonly<Record<string, string>>;
  /** Host file copied into the image (busybox, iperf3 and the libraries ldd lists) -> sha256. */
  readonly hostFiles: Readonly<Record<string, string>>;
  readonly modules: readonly string[];
  readonly agentCflags: readonly string[];
  /** Absent for the base image (so its hash is what it was before variants existed); 'chost' for a container host. */
  readonly variant?: Exclude<ImageVariant, 'base'>;
}

export interface InputsOptions {
  /** Default: base. */
  readonly variant?: ImageVariant;
  /** Default: <repo>/vm-images/cache. The kernel package resolution is remembered in it. */
  readonly cacheDir?: string;
  /** Default: the repository this module belongs to. */
  readonly repoDir?: string;
  readonly signal?: AbortSignal;
  readonly host?: Host;
}

export function defaultCacheDir(repoDir = findRepoDir()): string {
  return join(repoDir, 'vm-images', 'cache');
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** JSON with object keys sorted at every level, so equal inputs give equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** The cache key of an image: sha256 of the canonical inputs, 16 hex digits. */
export function imageHash(inputs: ImageInputs): string {
  return sha256(canonicalJson(inputs)).slice(0, 16);
}

/** The repository files that go into an image of this variant. */
export function sourceFilesOf(variant: ImageVariant): string[] {
  return [...Object.values(SOURCE_FILES), ...(variant === 'chost' ? Object.values(CHOST_SOURCE_FILES) : [])];
}

/** sha256 of the repository files that go into the image. */
export async function hashSourceFiles(repoDir: string, variant: ImageVariant = 'base'): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const rel of sourceFilesOf(variant)) {
    const path = join(repoDir, rel);
    if (!existsSync(path)) throw new MiglabError('IMAGE_BUILD', `image source ${path} is missing`);
    out[rel] = sha256(await readFile(path));
  }
  return out;
}

/** The shared libraries (and the dynamic loader) `ldd` lists for a program. */
export function parseLdd(output: string): string[] {
  const libs: string[] = [];
  for (const line of output.split('\n')) {
    const arrow = /=>\s*(\/\S+)/.exec(line);
    const bare = /^\s*(\/\S+)\s+\(0x/.exec(line);
    const path = arrow?.[1] ?? bare?.[1];
    if (path && !libs.includes(path)) libs.push(path);
  }
  return libs;
}

/** Parse `dpkg-query -W -f '${Package}\t${Version}\t${db:Status-Status}\n'` into installed versions. */
export function parseDpkgQuery(output: string): Map<string, string> {
  const installed = new Map<string, string>();
  for (const line of output.split('\n')) {
    const [pkg, version, status] = line.split('\t');
    if (pkg && version && status === 'installed') installed.set(pkg.replace(/:.*$/, ''), version);
  }
  return installed;
}

/** Versions of installed packages; a missing one is a MissingDependencyError naming apt-get. */
export async function packageVersions(host: Host, packages: readonly string[], signal?: AbortSignal): Promise<Map<string, string>> {
  if (!(await host.which('dpkg-query'))) throw new MissingDependencyError('dpkg-query', 'a Debian-based host (apt/dpkg)');
  const r = await host.run(['dpkg-query', '-W', '-f', '${Package}\t${Version}\t${db:Status-Status}\n', ...packages], {
    reject: false,
    signal,
  });
  const installed = parseDpkgQuery(r.stdout);
  const missing = packages.filter((p) => !installed.has(p));
  if (missing.length > 0) throw new MissingDependencyError(missing.join(', '), `apt-get install -y ${missing.join(' ')}`);
  return installed;
}

/** Where busybox-static put its binary. */
export function busyboxPath(): string {
  const found = BUSYBOX_PATHS.find((p) => existsSync(p));
  if (!found) throw new MissingDependencyError('busybox-static', 'apt-get install -y busybox-static');
  return found;
}

/** A program and the libraries `ldd` lists for it (the dynamic loader among them). */
async function withLibraries(host: Host, program: string, pkg: string, signal?: AbortSignal): Promise<string[]> {
  if (!existsSync(program)) throw new MissingDependencyError(pkg, `apt-get install -y ${pkg}`);
  if (!(await host.which('ldd'))) throw new MissingDependencyError('ldd', 'apt-get install -y libc-bin');
  const ldd = await host.run(['ldd', program], { signal });
  const libs = parseLdd(ldd.stdout);
  if (!libs.some((l) => l.includes('ld-linux'))) throw new MiglabError('IMAGE_BUILD', `ldd ${program} lists no dynamic loader`);
  return [program, ...libs];
}

/** Host files copied into the image: busybox, iperf3 and its libraries; for a container host also criu and its libraries. */
export async function hostFilesToCopy(host: Host, signal?: AbortSignal, variant: ImageVariant = 'base'): Promise<string[]> {
  const files = [busyboxPath(), ...(await withLibraries(host, IPERF3_PATH, 'iperf3', signal))];
  if (variant === 'chost') files.push(...(await withLibraries(host, CRIU_PATH, 'criu', signal)));
  return [...new Set(files)];
}

// ---- the kernel package -------------------------------------------------------------------

/** Parse `apt-cache depends linux-image-amd64` for the versioned kernel package. */
export function parseAptDepends(output: string): string | undefined {
  return /^\s*\|?Depends:\s*(linux-image-\d\S*)/m.exec(output)?.[1];
}

/** Parse `apt-cache policy PKG` for the candidate version. */
export function parseAptCandidate(output: string): string | undefined {
  const v = /^\s*Candidate:\s*(\S+)/m.exec(output)?.[1];
  return v && v !== '(none)' ? v : undefined;
}

const APT_LISTS = '/var/lib/apt/lists';

/** Changes exactly when `apt-get update` changes the package lists. */
async function aptListsStamp(): Promise<string> {
  const names = existsSync(APT_LISTS) ? (await readdir(APT_LISTS)).sort() : [];
  const parts: string[] = [];
  for (const name of names) {
    const st = await stat(join(APT_LISTS, name));
    if (st.isFile() && name !== 'lock') parts.push(`${name}:${st.size}:${st.mtimeMs}`);
  }
  return sha256(parts.join('\n'));
}

/**
 * The kernel package apt would install today and its version. apt-cache takes about a second, so
 * the answer is remembered in the cache next to the downloads, keyed by the state of apt's lists.
 */
export async function resolveKernelPackage(host: Host, cacheDir: string, signal?: AbortSignal): Promise<KernelPackage> {
  const memoPath = join(cacheDir, 'downloads', 'kernel-resolution.json');
  const stamp = await aptListsStamp();
  let memo: (KernelPackage & { aptListsStamp: string }) | undefined;
  if (existsSync(memoPath)) {
    try {
      memo = JSON.parse(await readFile(memoPath, 'utf8')) as KernelPackage & { aptListsStamp: string };
    } catch {
      memo = undefined; // a damaged memo only costs one apt-cache lookup
    }
    if (memo?.aptListsStamp === stamp && memo.package && memo.version) {
      return { metaPackage: memo.metaPackage, package: memo.package, version: memo.version };
    }
  }
  try {
    if (!(await host.which('apt-cache'))) throw new MissingDependencyError('apt-cache', 'a Debian-based host (apt)');
    const deps = await host.run(['apt-cache', 'depends', KERNEL_META_PACKAGE], { signal });
    const pkg = parseAptDepends(deps.stdout);
    if (!pkg) throw new MiglabError('IMAGE_BUILD', `apt-cache depends ${KERNEL_META_PACKAGE} names no kernel package`);
    const policy = await host.run(['apt-cache', 'policy', pkg], { signal });
    const version = parseAptCandidate(policy.stdout);
    if (!version) throw new MiglabError('IMAGE_BUILD', `apt has no candidate version of ${pkg}; run apt-get update`);
    const kernel: KernelPackage = { metaPackage: KERNEL_META_PACKAGE, package: pkg, version };
    await mkdir(dirname(memoPath), { recursive: true });
    await writeFile(memoPath, `${JSON.stringify({ ...kernel, aptListsStamp: stamp }, null, 2)}\n`);
    return kernel;
  } catch (err) {
    // apt's lists were emptied (as container images do) but we resolved before: keep that answer.
    if (memo?.package && memo.version && !(signal?.aborted ?? false)) {
      return { metaPackage: memo.metaPackage, package: memo.package, version: memo.version };
    }
    throw err;
  }
}

/** Everything the image is made from, with versions and content hashes. */
export async function imageInputs(opts: InputsOptions = {}): Promise<ImageInputs> {
  const host = opts.host ?? new LocalHost();
  const repoDir = opts.repoDir ?? findRepoDir();
  const cacheDir = opts.cacheDir ?? defaultCacheDir(repoDir);
  const variant = opts.variant ?? 'base';
  const packages = [...VERSIONED_PACKAGES, ...(variant === 'chost' ? CHOST_VERSIONED_PACKAGES : [])];
  // Every run asks which image fits (findImage): dpkg-query, ldd and hashing 10 MB of host files
  // took 0.13-0.15 s of each. Their answers change only with the files they read, so they are kept
  // by those files' identities (program-facts.ts): the package database for the versions; for
  // ldd's list the database, the dynamic linker's cache, the programs themselves (one replaced
  // outside dpkg) and LD_LIBRARY_PATH; each file for its hash.
  const factsFile = join(cacheDir, 'program-facts.json');
  const packagesAsked = `image-package-versions|${packages.join(',')}`;
  const programs = [IPERF3_PATH, ...(variant === 'chost' ? [CRIU_PATH] : [])];
  const identities = await Promise.all([LD_SO_CACHE, ...programs].map((f) => programIdentity(host, f)));
  const librariesAsked = `image-host-files|${variant}|${identities.join('|')}|LD_LIBRARY_PATH=${process.env.LD_LIBRARY_PATH ?? ''}`;
  const [kernel, versions, sources, files] = await Promise.all([
    resolveKernelPackage(host, cacheDir, opts.signal),
    rememberedFact(packagesAsked, host, DPKG_STATUS, async () => Object.fromEntries(await packageVersions(host, packages, opts.signal)), factsFile),
    hashSourceFiles(repoDir, variant),
    rememberedFact(librariesAsked, host, DPKG_STATUS, () => hostFilesToCopy(host, opts.signal, variant), factsFile),
  ]);
  const hostFiles: Record<string, string> = {};
  for (const f of files) {
    // A file the kept list names may have gone since (removed outside dpkg): said, not a bare ENOENT.
    if (!existsSync(f)) throw new MiglabError('IMAGE_BUILD', `${f}, which the guest image copies from this machine, is gone; reinstall the package that held it (dpkg -S ${f})`);
    hostFiles[f] = await rememberedFact('sha256', host, f, async () => sha256(await readFile(f)), factsFile);
  }
  return {
    recipeVersion: RECIPE_VERSION,
    kernel,
    packages: Object.fromEntries(packages.map((p) => [p, versions[p]!])),
    sources,
    hostFiles,
    modules: [...GUEST_MODULES, ...(variant === 'chost' ? CHOST_MODULES : [])],
    agentCflags: [...AGENT_CFLAGS],
    ...(variant === 'chost' ? { variant } : {}),
  };
}

/** The variant an image was built as. */
export function variantOf(inputs: ImageInputs): ImageVariant {
  return inputs.variant ?? 'base';
}
