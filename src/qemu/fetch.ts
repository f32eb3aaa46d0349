// Named QEMU builds: Debian's packages of a newer QEMU, fetched from bookworm-backports with
// apt-get download and unpacked beside the system's QEMU into miglab's cache, one directory per
// package version. The system's apt is left as it was: the backports index lives in the cache's
// own apt directories (a private sources list, lists and package cache), and nothing is installed.
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AbortedError, describeError, MiglabError, UsageError } from '../errors.js';
import type { Host } from '../host/host.js';
import { pathBuild, QEMU_PROGRAM, type QemuBuild } from './build.js';

/** Where Debian keeps its newer QEMU for bookworm (their libraries are bookworm's own). */
export const BACKPORTS = {
  suite: 'bookworm-backports',
  uri: 'http://deb.debian.org/debian',
  keyring: '/usr/share/keyrings/debian-archive-keyring.gpg',
} as const;

/**
 * The packages a build needs: the emulator, its shared data (firmware, keymaps), its modules
 * (block-nfs: the lab's disk is an nfs:// URL) and the BIOS it was built with. ipxe's option
 * ROMs come from the system (ipxe-qemu, installed with the system's QEMU): same files either way.
 */
export const BUILD_PACKAGES = ['qemu-system-x86', 'qemu-system-common', 'qemu-system-data', 'qemu-block-extra'] as const;
const BIOS_PACKAGE = 'seabios';

/** What is kept beside each cached build (build.json). */
export interface CachedBuildInfo {
  readonly series: string;
  readonly debianVersion: string;
  readonly suite: string;
  readonly versionLine: string;
  readonly packages: readonly string[];
  readonly fetchedAt: string;
  readonly bytes: number;
}

export interface CachedBuild extends CachedBuildInfo {
  readonly dir: string;
  readonly binary: string;
}

const INFO_FILE = 'build.json';

/** The named builds' cache inside miglab's cache (vm-images/cache/qemu). */
export function qemuCacheDir(miglabCacheDir: string): string {
  return join(miglabCacheDir, 'qemu');
}

/** "1:10.0.2+ds-2+deb13u1~bpo12+1" -> "10.0" */
export function seriesOfDebianVersion(v: string): string | undefined {
  const m = /^(?:\d+:)?(\d+)\.(\d+)/.exec(v);
  return m ? `${m[1]}.${m[2]}` : undefined;
}

/** A directory name for a package version (no ':' or '~', which some tools mind). */
export function cacheDirName(debianVersion: string): string {
  return debianVersion.replace(/[^A-Za-z0-9.+-]/g, '_');
}

/** `apt-cache madison PKG` lines -> the versions offered, newest first (as apt lists them). */
export function parseMadison(out: string): string[] {
  return out
    .split('\n')
    .map((l) => l.split('|').map((s) => s.trim()))
    .filter((f) => f.length >= 3 && f[1])
    .map((f) => f[1]!);
}

/** The builds in the cache, newest package first. */
export async function cachedBuilds(cacheDir: string): Promise<CachedBuild[]> {
  let names: string[];
  try {
    names = await readdir(cacheDir);
  } catch {
    return [];
  }
  const found: CachedBuild[] = [];
  for (const name of names) {
    const dir = join(cacheDir, name);
    try {
      const info = JSON.parse(await readFile(join(dir, INFO_FILE), 'utf8')) as CachedBuildInfo;
      found.push({ ...info, dir, binary: join(dir, 'root/usr/bin', QEMU_PROGRAM) });
    } catch {
      // Not a build (the apt directory, an unpack cut short): not listed.
    }
  }
  return found.sort((a, b) => b.debianVersion.localeCompare(a.debianVersion, undefined, { numeric: true }));
}

export interface FetchOptions {
  readonly cacheDir: string;
  readonly signal?: AbortSignal;
  readonly log?: (line: string) => void;
}

/** Private apt options: its own sources, lists and package cache under the cache's apt directory. */
function aptOptions(aptDir: string): string[] {
  return [
    '-o', `Dir::Etc::SourceList=/dev/null`,
    '-o', `Dir::Etc::SourceParts=${join(aptDir, 'sources')}`,
    '-o', `Dir::State::Lists=${join(aptDir, 'lists')}`,
    '-o', `Dir::Cache=${join(aptDir, 'cache')}`,
    // root downloads itself: the sandbox user _apt cannot write into miglab's cache.
    '-o', 'APT::Sandbox::User=root',
  ];
}

/**
 * The build of `series` from Debian's backports: the cached one, or fetched now (about 15 MB).
 * Refuses, in one line, a series the archive does not have, naming those it has.
 */
export async function fetchSeries(host: Host, series: string, o: FetchOptions): Promise<CachedBuild> {
  const cached = (await cachedBuilds(o.cacheDir)).find((b) => b.series === series);
  if (cached) return cached;
  const aptDir = join(o.cacheDir, 'apt');
  await Promise.all(['sources', 'lists/partial', 'cache/archives/partial'].map((d) => mkdir(join(aptDir, d), { recursive: true })));
  await writeFile(join(aptDir, 'sources', 'backports.sources'), `Types: deb\nURIs: ${BACKPORTS.uri}\nSuites: ${BACKPORTS.suite}\nComponents: main\nSigned-By: ${BACKPORTS.keyring}\n`);
  const apt = aptOptions(aptDir);
  const run = (argv: string[], cwd?: string) =>
    host.run(cwd ? ['sh', '-c', 'cd "$1" && shift && exec "$@"', 'sh', cwd, ...argv] : argv, { signal: o.signal, timeoutMs: 300000 }).catch((err: unknown) => {
      // Ctrl-C is the user's, not a missing dependency: the command ends as interrupted (exit 130).
      if (o.signal?.aborted) throw new AbortedError(`fetching QEMU ${series}`, o.signal.reason);
      throw new MiglabError('MISSING_DEPENDENCY', `cannot fetch QEMU ${series} from Debian's ${BACKPORTS.suite}: ${describeError(err)}`, { cause: err });
    });
  o.log?.(`reading Debian's ${BACKPORTS.suite} index`);
  await run(['apt-get', ...apt, '-qq', 'update']);
  const offered = parseMadison((await run(['apt-cache', ...apt, 'madison', 'qemu-system-x86'])).stdout);
  const version = offered.find((v) => seriesOfDebianVersion(v) === series);
  if (!version) {
    const has = [...new Set(offered.map(seriesOfDebianVersion).filter(Boolean))].join(', ') || 'none';
    throw new UsageError(`QEMU ${series} is not in Debian's ${BACKPORTS.suite} (it has: ${has})`, `give one of those, system, or the path of a ${QEMU_PROGRAM}`);
  }
  const final = join(o.cacheDir, cacheDirName(version));
  const temp = `${final}.partial-${process.pid}`;
  await rm(temp, { recursive: true, force: true });
  await mkdir(join(temp, 'debs'), { recursive: true });
  try {
    o.log?.(`downloading QEMU ${version}: ${[...BUILD_PACKAGES, BIOS_PACKAGE].join(', ')}`);
    await run(['apt-get', ...apt, '-qq', 'download', ...BUILD_PACKAGES.map((p) => `${p}=${version}`), BIOS_PACKAGE], join(temp, 'debs'));
    const debs = (await readdir(join(temp, 'debs'))).filter((f) => f.endsWith('.deb')).sort();
    for (const deb of debs) await run(['dpkg-deb', '-x', join(temp, 'debs', deb), join(temp, 'root')]);
    const binary = join(temp, 'root/usr/bin', QEMU_PROGRAM);
    await checkLibraries(host, binary, version, o.signal);
    const build = await pathBuild(host, binary);
    const bytes = Number((await run(['du', '-sb', join(temp, 'root')])).stdout.split(/\s/)[0]);
    await rm(join(temp, 'debs'), { recursive: true, force: true });
    const info: CachedBuildInfo = { series, debianVersion: version, suite: BACKPORTS.suite, versionLine: build.release.line, packages: debs, fetchedAt: new Date().toISOString(), bytes };
    await writeFile(join(temp, INFO_FILE), `${JSON.stringify(info, null, 2)}\n`);
    await rm(final, { recursive: true, force: true });
    await rename(temp, final);
    o.log?.(`QEMU ${version} cached in ${final} (${(bytes / 1048576).toFixed(0)} MiB unpacked)`);
    return { ...info, dir: final, binary: join(final, 'root/usr/bin', QEMU_PROGRAM) };
  } catch (err) {
    await rm(temp, { recursive: true, force: true });
    throw err;
  }
}

/** Every shared library the build needs must be on this machine: say which are missing, and the package fix. */
async function checkLibraries(host: Host, binary: string, version: string, signal?: AbortSignal): Promise<void> {
  const r = await host.run(['ldd', binary], { signal, reject: false });
  const missing = r.stdout
    .split('\n')
    .filter((l) => l.includes('not found'))
    .map((l) => l.trim().split(/\s/)[0]!);
  if (missing.length > 0) {
    throw new MiglabError(
      'MISSING_DEPENDENCY',
      `QEMU ${version} needs libraries this machine lacks: ${missing.join(', ')}; install their packages with apt-get (the system's qemu-system-x86 brings most), then fetch again`,
    );
  }
}

/** A cached build as a runnable QemuBuild. */
export function cachedBuildOf(host: Host, b: CachedBuild): Promise<QemuBuild> {
  return pathBuild(host, b.binary, `Debian's ${b.suite} package ${b.debianVersion}, unpacked in ${b.dir}`, b.debianVersion).then((build) => ({ ...build, choice: b.series }));
}
