// Builds the miglab guest (Debian kernel + a busybox initramfs with our agent) into a cache keyed
// by the hash of its inputs (inputs.ts). A cached image is returned once its files are checked
// against the sizes and sha256 image.json recorded (verifyImage; a damaged one is rebuilt); a
// build happens in a temporary directory next to the cache and is renamed into place, so an
// interrupted build never leaves half an image. The downloaded kernel .deb is kept in
// <cache>/downloads.
import { pidRuns } from '../lab/proc.js';
import { execa } from 'execa';
import { createReadStream, existsSync, readFileSync, type Stats } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { AbortedError, MiglabError, MissingDependencyError, describeError } from '../errors.js';
import type { Host } from '../host/host.js';
import { CommandError, LocalHost } from '../host/local.js';
import { CpioArchive } from './cpio.js';
import {
  AGENT_CFLAGS,
  CHOST_SOURCE_FILES,
  GUEST_MODULES,
  SOURCE_FILES,
  busyboxPath,
  defaultCacheDir,
  hostFilesToCopy,
  imageHash,
  imageInputs,
  sha256,
  type ImageInputs,
  type ImageVariant,
  type KernelPackage,
} from './inputs.js';
import { findRepoDir } from '../util/repo.js';
import { loadOrder, moduleClosures, readModinfo, type ModInfo } from './modinfo.js';
import { pvhKernel } from './pvh.js';

// Callers import the data disk from here too (it belongs with the image the guest boots).
export { createDataDisk, type DataDiskOptions } from './disk.js';

export interface ImageInfo {
  readonly hash: string;
  /** The image's directory in the cache. */
  readonly dir: string;
  /** What to give QEMU's -kernel: the PVH ELF when the kernel has one (see pvh.ts), else the bzImage. */
  readonly kernelPath: string;
  /** How kernelPath boots: 'pvh' (uncompressed ELF, seconds faster under TCG) or 'bzimage'. */
  readonly kernelBoot: 'pvh' | 'bzimage';
  /** The Debian bzImage as shipped, always present. */
  readonly bzImagePath: string;
  readonly initrdPath: string;
  /** The agent binary (also inside the initrd), kept for inspection. */
  readonly agentPath: string;
  /** The guest kernel's release (`uname -r`), e.g. 6.1.0-56-amd64. */
  readonly kernelVersion: string;
  readonly inputs: ImageInputs;
  /** Modules in the order the guest loads them (GUEST_MODULES plus dependencies). */
  readonly modules: readonly string[];
  /** Soft dependencies that named no module (crypto aliases): the kernel falls back without them. */
  readonly unresolvedSoftdeps: readonly string[];
  readonly builtAt: string;
  readonly buildMs: number;
  readonly kernelBytes: number;
  readonly initrdBytes: number;
  /** kernel + initrd. */
  readonly sizeBytes: number;
  /**
   * Size and sha256 of each file of the image (vmlinux, vmlinuz, initrd.img, miglab-agent), by
   * name in `dir`, as the build wrote them. Absent in images built before recipe 3.
   */
  readonly files?: Readonly<Record<string, ImageFile>>;
}

export interface ImageFile {
  readonly bytes: number;
  readonly sha256: string;
}

export interface BuildImageOptions {
  /** Default: <repo>/vm-images/cache. */
  readonly cacheDir?: string;
  /** Rebuild even if the cache has this image. */
  readonly force?: boolean;
  readonly signal?: AbortSignal;
  /** Progress lines. */
  readonly log?: (line: string) => void;
  /** Default: the repository this module belongs to. */
  readonly repoDir?: string;
  readonly host?: Host;
  /** Default: base (see IMAGE_VARIANTS). */
  readonly variant?: ImageVariant;
}

const IMAGE_JSON = 'image.json';
const BZIMAGE_FILE = 'vmlinuz';
const PVH_FILE = 'vmlinux';
const INITRD_FILE = 'initrd.img';
const AGENT_FILE = 'miglab-agent';
/** Where the container host keeps the workload each container runs. */
export const WORKLOAD_GUEST_PATH = '/bin/miglab-workload';
const TOOLS: ReadonlyArray<readonly [string, string]> = [
  ['gcc', 'apt-get install -y gcc libc6-dev'],
  ['dpkg-deb', 'a Debian-based host (dpkg)'],
  ['apt-get', 'a Debian-based host (apt)'],
  ['xz', 'apt-get install -y xz-utils'],
];

// What image.json holds: ImageInfo without the absolute paths, which follow from where it lies.
const StoredImage = z.object({
  hash: z.string().regex(/^[0-9a-f]{16}$/),
  kernelVersion: z.string().min(1),
  kernelBoot: z.enum(['pvh', 'bzimage']),
  kernelBootNote: z.string().optional(),
  inputs: z.custom<ImageInputs>((v) => typeof v === 'object' && v !== null && 'kernel' in v && 'sources' in v),
  modules: z.array(z.string()),
  unresolvedSoftdeps: z.array(z.string()),
  builtAt: z.string(),
  buildMs: z.number(),
  kernelBytes: z.number().int().positive(),
  initrdBytes: z.number().int().positive(),
  sizeBytes: z.number().int().positive(),
  files: z.record(z.string(), z.object({ bytes: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/) })).optional(),
});
type StoredImage = z.infer<typeof StoredImage>;

/** The image in `dir`, if it is a complete one (image.json valid, kernel and initrd present). */
export async function readImage(dir: string): Promise<ImageInfo | undefined> {
  const jsonPath = join(dir, IMAGE_JSON);
  if (!existsSync(jsonPath)) return undefined;
  let stored: StoredImage;
  try {
    const parsed = StoredImage.safeParse(JSON.parse(await readFile(jsonPath, 'utf8')));
    if (!parsed.success) return undefined;
    stored = parsed.data;
  } catch {
    return undefined; // unreadable image.json: the caller treats the image as absent and rebuilds
  }
  const info: ImageInfo = {
    ...stored,
    dir,
    kernelPath: join(dir, stored.kernelBoot === 'pvh' ? PVH_FILE : BZIMAGE_FILE),
    bzImagePath: join(dir, BZIMAGE_FILE),
    initrdPath: join(dir, INITRD_FILE),
    agentPath: join(dir, AGENT_FILE),
  };
  return existsSync(info.kernelPath) && existsSync(info.bzImagePath) && existsSync(info.initrdPath) ? info : undefined;
}

// ---- integrity --------------------------------------------------------------------------------

/** What fixes a damaged image: a forced rebuild of the image for today's inputs. */
export const IMAGE_FIX_COMMAND = 'miglab image build --force';

export interface ImageDamage {
  readonly hash: string;
  readonly dir: string;
  /** The file that differs (image.json itself when it records no sizes and hashes). */
  readonly path: string;
  readonly problem: 'missing' | 'size' | 'sha256' | 'unrecorded';
  readonly expectedBytes?: number;
  readonly actualBytes?: number;
  readonly expectedSha256?: string;
  readonly actualSha256?: string;
  /** What differs, e.g. "initrd.img is 2866955 bytes, built as 5733911 (truncated)". */
  readonly what: string;
  /** One line: the image, the file and what differs, ending with the command that fixes it. */
  readonly message: string;
}

/** A damaged cached image was asked for (assertImageIntact): what a CLI exits non-zero with. */
export class ImageDamagedError extends MiglabError {
  readonly damage: ImageDamage;
  constructor(damage: ImageDamage) {
    super('IMAGE_BUILD', damage.message, { context: { hash: damage.hash, path: damage.path, problem: damage.problem } });
    this.name = 'ImageDamagedError';
    this.damage = damage;
  }
}

// sha256 of files already hashed, by the file's identity (device and inode), size, mtime and
// ctime: a batch of runs checks the image before each one, and rehashing ~80 MB each time would
// cost seconds. Kept in the process and, once an image is found intact, in its directory
// (VERIFIED_FILE), so the next command skips the 0.26 s of hashing too. Not by path: a cache
// reached by two paths (a checkout whose vm-images/cache links to another's) was hashed again at
// every run by each. A change of content keeps none of ctime, mtime and size only by tampering
// below the filesystem (bit rot): that goes unseen until a rebuild.
const hashMemo = new Map<string, string>();
const VERIFIED_FILE = '.verified';

function statKey(st: Stats): string {
  return `${st.dev}\0${st.ino}\0${st.size}\0${st.mtimeMs}\0${st.ctimeMs}`;
}

async function fileSha256(path: string, st: Stats): Promise<string> {
  const key = statKey(st);
  const known = hashMemo.get(key);
  if (known) return known;
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  const digest = h.digest('hex');
  hashMemo.set(key, digest);
  return digest;
}

/** The hashes an earlier process found intact in this image's directory (none if unreadable). */
async function loadVerified(dir: string): Promise<void> {
  try {
    const saved = JSON.parse(await readFile(join(dir, VERIFIED_FILE), 'utf8')) as Record<string, string>;
    for (const [key, digest] of Object.entries(saved)) if (typeof digest === 'string') hashMemo.set(key, digest);
  } catch {
    // Absent or unreadable: every file is hashed.
  }
}

function damaged(info: ImageInfo, d: Omit<ImageDamage, 'hash' | 'dir' | 'message'>): ImageDamage {
  return { hash: info.hash, dir: info.dir, ...d, message: `guest image ${info.hash} in ${info.dir} is damaged: ${d.what}; rebuild it with: ${IMAGE_FIX_COMMAND}` };
}

/**
 * Whether the image's files are the ones its build wrote: every recorded file present with its
 * recorded size (all sizes first: cheap, and what a truncated copy or a full disk changes), then
 * its sha256. Undefined when intact. Hashes are memoised (fileSha256: in the process and in the image's directory).
 */
export async function verifyImage(info: ImageInfo): Promise<ImageDamage | undefined> {
  const files = info.files ?? {};
  const needed = [basename(info.kernelPath), BZIMAGE_FILE, INITRD_FILE, AGENT_FILE];
  const unrecorded = needed.find((name) => !(name in files));
  if (unrecorded !== undefined) {
    return damaged(info, {
      path: join(info.dir, IMAGE_JSON),
      problem: 'unrecorded',
      what: `${IMAGE_JSON} records no size and sha256 for ${unrecorded} (built by an older miglab), so the image cannot be checked`,
    });
  }
  const checked: { name: string; path: string; st: Stats; want: ImageFile }[] = [];
  for (const [name, want] of Object.entries(files)) {
    const path = join(info.dir, name);
    let st: Stats;
    try {
      st = await stat(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      return damaged(info, { path, problem: 'missing', expectedBytes: want.bytes, what: `${name} is missing` });
    }
    if (st.size !== want.bytes) {
      return damaged(info, {
        path,
        problem: 'size',
        expectedBytes: want.bytes,
        actualBytes: st.size,
        what: `${name} is ${st.size} bytes, built as ${want.bytes}${st.size < want.bytes ? ' (truncated)' : ''}`,
      });
    }
    checked.push({ name, path, st, want });
  }
  await loadVerified(info.dir);
  const saved: Record<string, string> = {};
  for (const { name, path, st, want } of checked) {
    const got = await fileSha256(path, st);
    saved[statKey(st)] = got;
    if (got !== want.sha256) {
      return damaged(info, {
        path,
        problem: 'sha256',
        expectedSha256: want.sha256,
        actualSha256: got,
        what: `${name} has sha256 ${got.slice(0, 16)}..., built as ${want.sha256.slice(0, 16)}... (same size, other content)`,
      });
    }
  }
  // Best effort: a read-only cache is checked in full next time.
  await writeFile(join(info.dir, VERIFIED_FILE), JSON.stringify(saved), { mode: 0o600 }).catch(() => undefined);
  return undefined;
}

/** The image itself when it is intact; ImageDamagedError (naming the file and the fix) when not. */
export async function assertImageIntact(info: ImageInfo): Promise<ImageInfo> {
  const damage = await verifyImage(info);
  if (damage) throw new ImageDamagedError(damage);
  return info;
}

/** Size and sha256 of a file the build just wrote. */
async function recordFile(path: string): Promise<ImageFile> {
  const st = await stat(path);
  return { bytes: st.size, sha256: await fileSha256(path, st) };
}

/** The image for today's inputs, if the cache has it. */
export async function findImage(opts: Omit<BuildImageOptions, 'force' | 'log'> = {}): Promise<ImageInfo | undefined> {
  const repoDir = opts.repoDir ?? findRepoDir();
  const cacheDir = opts.cacheDir ?? defaultCacheDir(repoDir);
  const inputs = await imageInputs({ cacheDir, repoDir, signal: opts.signal, host: opts.host, variant: opts.variant });
  return readImage(join(cacheDir, imageHash(inputs)));
}

/** Every complete image in the cache, newest first. */
export async function listImages(cacheDir = defaultCacheDir()): Promise<ImageInfo[]> {
  if (!existsSync(cacheDir)) return [];
  const found: ImageInfo[] = [];
  for (const name of await readdir(cacheDir)) {
    if (!/^[0-9a-f]{16}$/.test(name)) continue;
    const info = await readImage(join(cacheDir, name));
    if (info) found.push(info);
  }
  return found.sort((a, b) => b.builtAt.localeCompare(a.builtAt));
}

/** Remove every cached image except `keepHash` (and the download cache). Returns what was removed. */
export async function pruneImages(keepHash: string, cacheDir = defaultCacheDir()): Promise<string[]> {
  const removed: string[] = [];
  if (!existsSync(cacheDir)) return removed;
  for (const name of await readdir(cacheDir)) {
    if (!/^[0-9a-f]{16}$/.test(name) || name === keepHash) continue;
    await rm(join(cacheDir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

export interface ImageReport {
  /** The hash today's inputs give, and those inputs. */
  readonly hash: string;
  readonly inputs: ImageInputs;
  /** The image for today's inputs, if built. */
  readonly image: ImageInfo | undefined;
  /** What is wrong with `image`'s files, if anything (verifyImage); a CLI exits non-zero on it. */
  readonly damage: ImageDamage | undefined;
  /** Every image in the cache. */
  readonly cached: readonly ImageInfo[];
}

/** What `miglab image info` shows: today's inputs, whether they are built, what the cache holds. */
export async function imageInfo(opts: Omit<BuildImageOptions, 'force' | 'log'> = {}): Promise<ImageReport> {
  const repoDir = opts.repoDir ?? findRepoDir();
  const cacheDir = opts.cacheDir ?? defaultCacheDir(repoDir);
  const inputs = await imageInputs({ cacheDir, repoDir, signal: opts.signal, host: opts.host, variant: opts.variant });
  const hash = imageHash(inputs);
  const image = await readImage(join(cacheDir, hash));
  return { hash, inputs, image, damage: image ? await verifyImage(image) : undefined, cached: await listImages(cacheDir) };
}

function mib(bytes: number): string {
  return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

/** One built image as text lines: what went in, sizes, modules; first of all, damage (verifyImage). */
export function describeImage(info: ImageInfo, damage?: ImageDamage): string {
  const { inputs } = info;
  const lines = [
    ...(damage ? [`DAMAGED: ${damage.message}`] : []),
    `image ${info.hash} built ${info.builtAt} (${(info.buildMs / 1000).toFixed(1)} s) in ${info.dir}`,
    `  kernel      ${info.kernelPath} (${info.kernelBoot === 'pvh' ? 'PVH ELF' : 'bzImage'})`,
    `  initrd      ${info.initrdPath}`,
    `  kernel pkg  ${inputs.kernel.package} ${inputs.kernel.version} (release ${info.kernelVersion})`,
    ...Object.entries(inputs.packages).map(([p, v]) => `  ${p.padEnd(11)} ${v}`),
    ...Object.entries(inputs.sources).map(([p, h]) => `  ${p}  sha256 ${h.slice(0, 16)}`),
    `  recipe      v${inputs.recipeVersion}, agent cflags ${inputs.agentCflags.join(' ')}`,
    `  sizes       kernel ${mib(info.kernelBytes)}, initrd ${mib(info.initrdBytes)}, total ${mib(info.sizeBytes)}`,
    `  modules     ${info.modules.join(' ')}`,
  ];
  if (info.unresolvedSoftdeps.length > 0) lines.push(`  skipped softdeps ${info.unresolvedSoftdeps.join(' ')}`);
  return lines.join('\n');
}

/** The report as text lines for the terminal. */
export function formatImageReport(report: ImageReport): string {
  const { inputs, image } = report;
  const lines = image
    ? [describeImage(image, report.damage)]
    : [
        `image ${report.hash} (not built; run \`miglab image build\`)`,
        `  kernel pkg  ${inputs.kernel.package} ${inputs.kernel.version}`,
        ...Object.entries(inputs.packages).map(([p, v]) => `  ${p.padEnd(11)} ${v}`),
        ...Object.entries(inputs.sources).map(([p, h]) => `  ${p}  sha256 ${h.slice(0, 16)}`),
        `  recipe      v${inputs.recipeVersion}, agent cflags ${inputs.agentCflags.join(' ')}`,
      ];
  const others = report.cached.filter((c) => c.hash !== report.hash);
  if (others.length > 0) lines.push(`other cached images: ${others.map((c) => `${c.hash} (${c.builtAt})`).join(', ')}`);
  return lines.join('\n');
}

function throwIfAborted(signal: AbortSignal | undefined, operation: string): void {
  if (signal?.aborted) throw new AbortedError(operation, signal.reason);
}

/** Remove build directories that a killed build left behind (their pid no longer runs). */
async function removeStaleBuilds(cacheDir: string): Promise<void> {
  for (const name of await readdir(cacheDir)) {
    const m = /^\.(?:build|old)-[0-9a-f]+-(\d+)-/.exec(name);
    if (!m) continue;
    if (!pidRuns(Number(m[1]))) await rm(join(cacheDir, name), { recursive: true, force: true });
  }
}

/** The .deb file name apt uses, with the epoch's colon escaped. */
function debFileName(k: KernelPackage): string {
  return `${k.package}_${k.version.replace(/:/g, '%3a')}_amd64.deb`;
}

/** The kernel .deb from the download cache, or downloaded into it. */
async function fetchKernelDeb(
  host: Host,
  kernel: KernelPackage,
  cacheDir: string,
  workDir: string,
  signal: AbortSignal | undefined,
  log: (l: string) => void,
): Promise<string> {
  const downloads = join(cacheDir, 'downloads');
  await mkdir(downloads, { recursive: true });
  const target = join(downloads, debFileName(kernel));
  if (!existsSync(target)) {
    log(`downloading ${kernel.package} ${kernel.version}`);
    const dl = join(workDir, 'download');
    await mkdir(dl, { recursive: true });
    // apt-get download writes into the current directory; running as root into a directory the
    // _apt sandbox user cannot write, so download as root (that is all the warning is about).
    const argv = ['apt-get', 'download', '-q', '-o', 'APT::Sandbox::User=root', `${kernel.package}=${kernel.version}`];
    const started = Date.now();
    const r = await execa(argv[0]!, argv.slice(1), { cwd: dl, reject: false, cancelSignal: signal });
    if (r.exitCode !== 0) {
      throw new CommandError(host.name, {
        argv,
        exitCode: r.exitCode ?? 128,
        stdout: String(r.stdout),
        stderr: String(r.stderr),
        durationMs: Date.now() - started,
      });
    }
    const debs = (await readdir(dl)).filter((f) => f.endsWith('.deb'));
    if (debs.length !== 1) throw new MiglabError('IMAGE_BUILD', `apt-get download left ${debs.length} .deb files in ${dl}`);
    await rename(join(dl, debs[0]!), target);
  }
  const fields = await host.run(['dpkg-deb', '-f', target, 'Package', 'Version'], { signal });
  const got = Object.fromEntries(fields.stdout.split('\n').map((l) => l.split(/:\s*/, 2) as [string, string]));
  if (got.Package !== kernel.package || got.Version !== kernel.version) {
    throw new MiglabError('IMAGE_BUILD', `${target} holds ${got.Package} ${got.Version}, expected ${kernel.package} ${kernel.version}`);
  }
  return target;
}

/** Every .ko under `dir`, by normalised module name. */
async function indexModules(dir: string): Promise<Map<string, string>> {
  const index = new Map<string, string>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const m = /^(.+)\.ko(\.(xz|zst|gz))?$/.exec(entry.name);
    if (m) index.set(m[1]!.replace(/-/g, '_'), join(entry.parentPath, entry.name));
  }
  return index;
}

async function extractKernel(host: Host, deb: string, workDir: string, signal: AbortSignal | undefined) {
  const root = join(workDir, 'kernel');
  await host.run(['dpkg-deb', '-x', deb, root], { signal });
  const vmlinuz = (await readdir(join(root, 'boot'))).find((f) => f.startsWith('vmlinuz-'));
  if (!vmlinuz) throw new MiglabError('IMAGE_BUILD', `${basename(deb)} has no boot/vmlinuz-*`);
  const release = vmlinuz.slice('vmlinuz-'.length);
  // Debian 12 ships /lib/modules; later releases /usr/lib/modules.
  const modulesDir = [join(root, 'lib', 'modules', release), join(root, 'usr', 'lib', 'modules', release)].find((d) => existsSync(d));
  if (!modulesDir) throw new MiglabError('IMAGE_BUILD', `${basename(deb)} has no modules for ${release}`);
  return { kernelPath: join(root, 'boot', vmlinuz), release, modulesDir };
}

/**
 * The guest image for today's inputs: from the cache if it is there (fast), else built. Missing
 * host tools or packages raise MissingDependencyError naming the apt-get command.
 */
export async function buildImage(opts: BuildImageOptions = {}): Promise<ImageInfo> {
  const host = opts.host ?? new LocalHost();
  const log = opts.log ?? (() => undefined);
  const signal = opts.signal;
  const repoDir = opts.repoDir ?? findRepoDir();
  const cacheDir = opts.cacheDir ?? defaultCacheDir(repoDir);

  const variant = opts.variant ?? 'base';
  const inputs = await imageInputs({ cacheDir, repoDir, signal, host, variant });
  const hash = imageHash(inputs);
  const finalDir = join(cacheDir, hash);
  if (!opts.force) {
    const cached = await readImage(finalDir);
    const damage = cached ? await verifyImage(cached) : undefined;
    if (cached && !damage) return cached;
    // Say why a build happens where the cache had something: a damaged image is never returned.
    if (damage) log(`rebuilding image ${hash}: ${damage.what}`);
    else if (existsSync(join(finalDir, IMAGE_JSON))) log(`rebuilding image ${hash}: its ${IMAGE_JSON} is unreadable or a boot file is missing`);
  }

  for (const [tool, install] of TOOLS) {
    if (!(await host.which(tool))) throw new MissingDependencyError(tool, install.startsWith('apt-get') ? install : `${tool}: ${install}`);
  }
  await mkdir(cacheDir, { recursive: true });
  await removeStaleBuilds(cacheDir);
  const started = Date.now();
  const workDir = await mkdtemp(join(cacheDir, `.build-${hash}-${process.pid}-`));
  try {
    log(`building ${variant === 'base' ? 'image' : `the ${variant} image`} ${hash} in ${workDir}`);
    const deb = await fetchKernelDeb(host, inputs.kernel, cacheDir, workDir, signal, log);
    throwIfAborted(signal, 'image build');
    log(`extracting ${basename(deb)}`);
    const kernel = await extractKernel(host, deb, workDir, signal);
    throwIfAborted(signal, 'image build');

    const index = await indexModules(kernel.modulesDir);
    const infos = new Map<string, ModInfo | undefined>();
    const lookup = (name: string): ModInfo | undefined => {
      if (!infos.has(name)) {
        const path = index.get(name);
        if (path && !path.endsWith('.ko')) {
          throw new MiglabError('IMAGE_BUILD', `kernel module ${name} is compressed (${basename(path)}); busybox insmod needs plain .ko`);
        }
        infos.set(name, path ? readModinfo(readFileSync(path), path) : undefined);
      }
      return infos.get(name);
    };
    const order = loadOrder(inputs.modules, lookup);
    log(`modules in load order: ${order.order.join(' ')}`);

    const agentPath = join(workDir, AGENT_FILE);
    log('compiling the agent');
    await host.run(['gcc', ...AGENT_CFLAGS, '-o', agentPath, join(repoDir, SOURCE_FILES.agent), join(repoDir, SOURCE_FILES.control)], { signal });
    const workloadPath = join(workDir, 'miglab-workload');
    if (variant === 'chost') {
      log('compiling the container workload');
      await host.run(['gcc', ...AGENT_CFLAGS, '-o', workloadPath, join(repoDir, CHOST_SOURCE_FILES.workload)], { signal });
    }

    const archive = new CpioArchive();
    for (const d of ['/proc', '/sys', '/dev', '/tmp', '/run', '/etc', '/root']) archive.addDir(d);
    archive.addCharDevice('/dev/console', 5, 1);
    archive.addCharDevice('/dev/null', 1, 3, 0o666);
    archive.addFile('/init', await readFile(join(repoDir, SOURCE_FILES.init)), 0o755);
    archive.addFile('/bin/miglab-agent', await readFile(agentPath), 0o755);
    if (variant === 'chost') archive.addFile(WORKLOAD_GUEST_PATH, await readFile(workloadPath), 0o755);
    const busybox = busyboxPath();
    const applets = (await host.run([busybox, '--list'], { signal })).stdout.split('\n').map((s) => s.trim());
    for (const applet of applets) {
      if (/^[\w.[\]-]+$/.test(applet) && applet !== 'busybox' && !archive.has(`/bin/${applet}`)) archive.addSymlink(`/bin/${applet}`, 'busybox');
    }
    const copied = await hostFilesToCopy(host, signal, variant);
    for (const file of copied) {
      const expected = inputs.hostFiles[file];
      const data = await readFile(file);
      if (expected === undefined || sha256(data) !== expected) {
        throw new MiglabError('IMAGE_BUILD', `${file} changed while the image was being built; run the build again`);
      }
      archive.addFile(file === busybox ? '/bin/busybox' : file, data, 0o755);
    }
    archive.addFile('/etc/passwd', Buffer.from('root:x:0:0:root:/root:/bin/sh\n'));
    archive.addFile('/etc/group', Buffer.from('root:x:0:\n'));
    const guestModDir = `/lib/modules/${kernel.release}`;
    for (const name of order.order) archive.addFile(`${guestModDir}/${name}.ko`, await readFile(index.get(name)!));
    archive.addFile(`${guestModDir}/load-order`, Buffer.from(`${order.order.join('\n')}\n`));
    // What init loads when the kernel command line names the devices' drivers (miglab.modules=):
    // each driver's own closure, and the variant's modules always (see vm-images/init).
    archive.addFile(`${guestModDir}/closures`, Buffer.from(moduleClosures(GUEST_MODULES, lookup)));
    archive.addFile(`${guestModDir}/always`, Buffer.from(`${loadOrder(inputs.modules.filter((m) => !(GUEST_MODULES as readonly string[]).includes(m)), lookup).order.join('\n')}\n`));
    throwIfAborted(signal, 'image build');

    log('writing the initramfs');
    const outDir = join(workDir, 'out');
    await mkdir(outDir);
    // Not compressed: the guest kernel's gunzip under TCG took about 0.3 s of every boot; the
    // archive is 14 MiB instead of 6 on disk, and QEMU loads it in a few ms.
    const initrd = archive.toBuffer();
    await writeFile(join(outDir, INITRD_FILE), initrd);
    await copyFile(kernel.kernelPath, join(outDir, BZIMAGE_FILE));
    await copyFile(agentPath, join(outDir, AGENT_FILE));
    log('unpacking the kernel for PVH boot');
    const pvh = await pvhKernel(await readFile(kernel.kernelPath), signal);
    if ('elf' in pvh) await writeFile(join(outDir, PVH_FILE), pvh.elf);
    else log(`booting the bzImage: ${pvh.reason}`);
    const kernelBoot = 'elf' in pvh ? 'pvh' : 'bzimage';
    const kernelBytes = (await stat(join(outDir, kernelBoot === 'pvh' ? PVH_FILE : BZIMAGE_FILE))).size;
    // What verifyImage checks the cached image against later.
    const files: Record<string, ImageFile> = {};
    for (const name of (await readdir(outDir)).sort()) files[name] = await recordFile(join(outDir, name));
    const stored: StoredImage = {
      hash,
      kernelVersion: kernel.release,
      kernelBoot,
      ...('reason' in pvh ? { kernelBootNote: pvh.reason } : {}),
      inputs,
      modules: [...order.order],
      unresolvedSoftdeps: [...order.unresolvedSoftdeps],
      builtAt: new Date().toISOString(),
      buildMs: Date.now() - started,
      kernelBytes,
      initrdBytes: initrd.length,
      sizeBytes: kernelBytes + initrd.length,
      files,
    };
    await writeFile(join(outDir, IMAGE_JSON), `${JSON.stringify(stored, null, 2)}\n`);
    throwIfAborted(signal, 'image build');

    await publish(outDir, finalDir, cacheDir, hash);
    const info = await readImage(finalDir);
    if (!info) throw new MiglabError('IMAGE_BUILD', `image ${hash} is incomplete after the build`);
    log(`image ${hash} ready: kernel ${mib(info.kernelBytes)}, initrd ${mib(info.initrdBytes)}`);
    return info;
  } catch (err) {
    if (err instanceof MiglabError) throw err;
    throw new MiglabError('IMAGE_BUILD', `building the guest image failed: ${describeError(err)}`, { cause: err, context: { hash } });
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

/** Move a finished image into place. If another build got there first, theirs stands. */
async function publish(outDir: string, finalDir: string, cacheDir: string, hash: string): Promise<void> {
  if (existsSync(finalDir)) {
    // A forced rebuild (or an incomplete image): move the old one aside first, then drop it.
    const old = await mkdtemp(join(cacheDir, `.old-${hash}-${process.pid}-`));
    await rename(finalDir, join(old, 'image'));
    await rename(outDir, finalDir);
    await rm(old, { recursive: true, force: true });
    return;
  }
  try {
    await rename(outDir, finalDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if ((code === 'ENOTEMPTY' || code === 'EEXIST') && (await readImage(finalDir))) return;
    throw err;
  }
}
