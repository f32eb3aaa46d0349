// Named QEMU builds: Debian's packages of a newer QEMU, unpacked beside the system's QEMU into
// miglab's cache, one directory per package version. A series is looked for in bookworm-backports
// first (built for this Debian 12: its libraries are the host's own), then in Debian trixie's
// suites, whose builds need glibc 2.38 (this host has 2.36): for those the whole package closure
// (libc6 included) is unpacked, and usr/bin/qemu-system-x86_64 becomes a wrapper that runs the real
// program through trixie's own loader (docs/colo-trixie.md). The system's apt is left as it was:
// each archive's index lives in its own apt directory in the cache (a private sources list, lists
// and package cache), and nothing is installed.
import { chmod, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AbortedError, describeError, MiglabError, UsageError } from '../errors.js';
import type { Host } from '../host/host.js';
import { OWN_LIBRARY_DIR, OWN_LOADER, pathBuild, QEMU_PROGRAM, REAL_PROGRAM_SUFFIX, type QemuBuild } from './build.js';

/** A Debian archive a series is looked for in, and how its builds run here. */
export interface Archive {
  /** As messages name it: "bookworm-backports", "trixie, trixie-updates, trixie-backports". */
  readonly name: string;
  readonly suites: readonly string[];
  readonly uri: string;
  readonly keyring: string;
  /** Its apt directory under the builds' cache: one per archive, so one's lists never mix with another's. */
  readonly aptDir: string;
  /**
   * Whether its builds run with their own loader and libraries: the whole dependency closure is
   * unpacked, and the program is wrapped. Otherwise a few packages and this host's libraries.
   */
  readonly ownLibraries: boolean;
}

/** Where Debian keeps its newer QEMU for bookworm (their libraries are bookworm's own). */
export const BACKPORTS = {
  name: 'bookworm-backports',
  suites: ['bookworm-backports'],
  uri: 'http://deb.debian.org/debian',
  // bookworm's debian-archive-keyring holds trixie's keys too.
  keyring: '/usr/share/keyrings/debian-archive-keyring.gpg',
  aptDir: 'apt',
  ownLibraries: false,
} as const satisfies Archive;

/** Debian 13: 10.0.x in trixie(-updates), 11.1 in trixie-backports (the first with a COLO that holds, issue 14). */
export const TRIXIE = {
  name: 'trixie, trixie-updates, trixie-backports',
  suites: ['trixie', 'trixie-updates', 'trixie-backports'],
  uri: BACKPORTS.uri,
  keyring: BACKPORTS.keyring,
  aptDir: 'apt-trixie',
  ownLibraries: true,
} as const satisfies Archive;

/** Looked in, in this order: a build that runs on this host's libraries is preferred. */
export const ARCHIVES: readonly Archive[] = [BACKPORTS, TRIXIE];

/**
 * The packages a build needs: the emulator, its shared data (firmware, keymaps), its modules
 * (block-nfs: the lab's disk is an nfs:// URL) and the BIOS it was built with. For a bookworm
 * build, ipxe's option ROMs come from the system (ipxe-qemu, installed with the system's QEMU):
 * same files either way; a trixie build gets everything its packages depend on.
 */
export const BUILD_PACKAGES = ['qemu-system-x86', 'qemu-system-common', 'qemu-system-data', 'qemu-block-extra'] as const;
const BIOS_PACKAGE = 'seabios';

/** How a build runs with its own loader (build.json; paths relative to the build's root/). */
export interface OwnLoaderInfo {
  readonly loader: string;
  readonly libraryDir: string;
  /** The real program; usr/bin/qemu-system-x86_64 is the wrapper that runs it. */
  readonly program: string;
  /** The libc6 package unpacked with it (its glibc). */
  readonly libc6: string;
  /** Why not this host's libraries, measured at fetch: "it needs glibc 2.38 (GLIBC_2.38), this host has 2.36". */
  readonly why: string;
}

/** What is kept beside each cached build (build.json). */
export interface CachedBuildInfo {
  readonly series: string;
  readonly debianVersion: string;
  /** The suite the emulator's package came from: bookworm-backports, trixie-backports, ... */
  readonly suite: string;
  readonly versionLine: string;
  readonly packages: readonly string[];
  readonly fetchedAt: string;
  readonly bytes: number;
  /** Present when it runs with its own loader and libraries (a trixie build). */
  readonly ownLoader?: OwnLoaderInfo;
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

/** One line of `apt-cache madison`: a package, a version, and the suite offering it. */
export interface MadisonRow {
  readonly pkg: string;
  readonly version: string;
  /** "trixie-backports" from "http://deb.debian.org/debian trixie-backports/main amd64 Packages". */
  readonly suite: string;
}

/** `apt-cache madison PKG...` lines, as apt lists them (newest first per package). */
export function parseMadisonRows(out: string): MadisonRow[] {
  return out
    .split('\n')
    .map((l) => l.split('|').map((s) => s.trim()))
    .filter((f) => f.length >= 3 && f[0] && f[1])
    .map((f) => ({ pkg: f[0]!, version: f[1]!, suite: (f[2]!.split(/\s+/)[1] ?? '').split('/')[0]! }));
}


/** A package apt would install (`apt-get -s install`): "Inst libc6 (2.41-12+deb13u5 Debian:13.8/stable [amd64]) []". */
export interface SimulatedInstall {
  readonly pkg: string;
  readonly version: string;
  /** Where apt would take it from, as it says it: "Debian:13.8/stable", "Debian Backports:stable-backports". */
  readonly release: string;
  readonly arch: string;
}

/**
 * The packages an `apt-get -s install` would unpack, in its order: its `Inst` lines. An `Inst`
 * line that does not read as one is an error, not a package quietly left out of the closure.
 */
export function parseSimulatedInstall(out: string): SimulatedInstall[] {
  return out
    .split('\n')
    .filter((l) => l.startsWith('Inst '))
    .map((l) => {
      // An upgrade names the installed version in brackets first; with an empty dpkg status there is none.
      const m = /^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) (.*?) ?\[([^\]]+)\]\)/.exec(l);
      if (!m) throw new MiglabError('INTERNAL', `cannot read apt-get's simulated install line: ${l}`);
      return { pkg: m[1]!, version: m[2]!, release: m[3]!, arch: m[4]! };
    });
}

/**
 * The wrapper a trixie build's usr/bin/qemu-system-x86_64 becomes: it runs the real program
 * (qemu-system-x86_64.real beside it) with the root's own loader and libraries. Paths come from
 * its own place (the folder is renamed once unpacked, and a cache may be reached by a link), and
 * it execs: QEMU keeps the pid miglab started, reads and signals. `--argv0` keeps QEMU's own
 * name in its messages ("qemu-system-x86_64: ..."). Firmware (-L) and modules (QEMU_MODULE_DIR)
 * are given by whoever runs it, as for every unpacked build (build.ts launchGroups).
 */
export function wrapperScript(o: { readonly series: string; readonly debianVersion: string; readonly suite: string; readonly why: string }): string {
  return [
    '#!/bin/sh',
    `# QEMU ${o.series} from Debian ${o.suite} (${o.debianVersion}), unpacked by \`miglab qemu fetch ${o.series}\`.`,
    `# Not with this host's libraries: ${o.why}.`,
    '# It runs with the loader and libraries unpacked beside it, found from this file\'s own place,',
    '# and execs: QEMU keeps this pid. Firmware (-L) and QEMU_MODULE_DIR are the caller\'s to give.',
    'self=$(readlink -f -- "$0") || exit 127',
    'root=${self%/usr/bin/*}',
    `exec "$root/${OWN_LOADER}" --library-path "$root/${OWN_LIBRARY_DIR}" --argv0 "$0" "$root/usr/bin/${QEMU_PROGRAM}${REAL_PROGRAM_SUFFIX}" "$@"`,
    '',
  ].join('\n');
}

/** The newest GLIBC_x.y a program asks for that this host's libc lacks, from ldd's "version `GLIBC_2.38' not found" lines. */
export function glibcMissing(lddOutput: string): string | undefined {
  const versions = [...lddOutput.matchAll(/version `GLIBC_(\d+\.\d+)' not found/g)].map((m) => m[1]!);
  return versions.sort((a, b) => b.localeCompare(a, undefined, { numeric: true }))[0];
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
      // Not a build (an apt directory, an unpack cut short): not listed.
    }
  }
  return found.sort((a, b) => b.debianVersion.localeCompare(a.debianVersion, undefined, { numeric: true }));
}

export interface FetchOptions {
  readonly cacheDir: string;
  readonly signal?: AbortSignal;
  readonly log?: (line: string) => void;
}

/**
 * Private apt options: its own sources, lists and package cache under the archive's apt
 * directory. A trixie archive also gets an empty dpkg status: nothing counts as installed, so a
 * simulated install names the whole closure (this host's bookworm packages are no part of it).
 */
function aptOptions(aptDir: string, emptyStatus: boolean): string[] {
  return [
    '-o', `Dir::Etc::SourceList=/dev/null`,
    '-o', `Dir::Etc::SourceParts=${join(aptDir, 'sources')}`,
    '-o', `Dir::State::Lists=${join(aptDir, 'lists')}`,
    '-o', `Dir::Cache=${join(aptDir, 'cache')}`,
    // root downloads itself: the sandbox user _apt cannot write into miglab's cache.
    '-o', 'APT::Sandbox::User=root',
    ...(emptyStatus ? ['-o', 'Dir::State::status=/dev/null'] : []),
  ];
}

type Run = (argv: string[], cwd?: string) => Promise<{ stdout: string; stderr: string }>;

/** One archive's apt, ready to ask: its sources written, its commands failing in one line that names it. */
async function archiveApt(host: Host, archive: Archive, series: string, o: FetchOptions): Promise<{ apt: string[]; run: Run }> {
  const aptDir = join(o.cacheDir, archive.aptDir);
  await Promise.all(['sources', 'lists/partial', 'cache/archives/partial'].map((d) => mkdir(join(aptDir, d), { recursive: true })));
  const file = archive.ownLibraries ? 'trixie.sources' : 'backports.sources';
  await writeFile(join(aptDir, 'sources', file), `Types: deb\nURIs: ${archive.uri}\nSuites: ${archive.suites.join(' ')}\nComponents: main\nSigned-By: ${archive.keyring}\n`);
  const run: Run = (argv, cwd) =>
    host.run(cwd ? ['sh', '-c', 'cd "$1" && shift && exec "$@"', 'sh', cwd, ...argv] : argv, { signal: o.signal, timeoutMs: 300000 }).catch((err: unknown) => {
      // Ctrl-C is the user's, not a missing dependency: the command ends as interrupted (exit 130).
      if (o.signal?.aborted) throw new AbortedError(`fetching QEMU ${series}`, o.signal.reason);
      throw new MiglabError('MISSING_DEPENDENCY', `cannot fetch QEMU ${series} from Debian's ${archive.name}: ${describeError(err)}`, { cause: err });
    });
  return { apt: aptOptions(aptDir, archive.ownLibraries), run };
}

/** The series as one archive offers it: the version and its suite, or the series it has instead. */
type Offer = { readonly found: MadisonRow; readonly bios: MadisonRow[] } | { readonly found?: undefined; readonly has: string[] };

function offerOf(rows: readonly MadisonRow[], series: string): Offer {
  const qemu = rows.filter((r) => r.pkg === 'qemu-system-x86');
  const found = qemu.find((r) => seriesOfDebianVersion(r.version) === series);
  if (found) return { found, bios: rows.filter((r) => r.pkg === BIOS_PACKAGE) };
  return { has: [...new Set(qemu.map((r) => seriesOfDebianVersion(r.version)).filter((s): s is string => s !== undefined))] };
}

/**
 * The build of `series`: the cached one, or fetched now from the first archive that has it
 * (bookworm-backports, about 15 MB; else trixie, about 50 MB with its libraries). Refuses, in one
 * line, a series neither has, naming what each has.
 */
export async function fetchSeries(host: Host, series: string, o: FetchOptions): Promise<CachedBuild> {
  const cached = (await cachedBuilds(o.cacheDir)).find((b) => b.series === series);
  if (cached) return cached;
  const elsewhere: string[] = [];
  for (const archive of ARCHIVES) {
    const { apt, run } = await archiveApt(host, archive, series, o);
    o.log?.(`reading Debian's ${archive.name} index`);
    await run(['apt-get', ...apt, '-qq', 'update']);
    const offer = offerOf(parseMadisonRows((await run(['apt-cache', ...apt, 'madison', 'qemu-system-x86', BIOS_PACKAGE])).stdout), series);
    if (offer.found) return unpackBuild(host, archive, series, offer.found, offer.bios, apt, run, o);
    elsewhere.push(`${archive.name} (${archive.suites.length > 1 ? 'they have' : 'it has'}: ${offer.has.join(', ') || 'none'})`);
  }
  const [first, ...rest] = elsewhere;
  throw new UsageError(`QEMU ${series} is in neither Debian's ${first} nor ${rest.join(' nor ')}`, `give one of those, system, or the path of a ${QEMU_PROGRAM}`);
}

/** Download the build's packages into TEMP/debs, unpack them into TEMP/root, check it runs, and move it into place. */
async function unpackBuild(host: Host, archive: Archive, series: string, qemu: MadisonRow, bios: readonly MadisonRow[], apt: string[], run: Run, o: FetchOptions): Promise<CachedBuild> {
  const version = qemu.version;
  const final = join(o.cacheDir, cacheDirName(version));
  const temp = `${final}.partial-${process.pid}`;
  await rm(temp, { recursive: true, force: true });
  await mkdir(join(temp, 'debs'), { recursive: true });
  try {
    const debsDir = join(temp, 'debs');
    let libc6: string | undefined;
    if (archive.ownLibraries) {
      // The whole closure, as apt resolves it with nothing installed and no recommends. The BIOS
      // from the emulator's own suite: 11.1 depends on seabios >= 1.17, which only trixie-backports has.
      const biosSpec = bios.some((b) => b.suite === qemu.suite) ? `${BIOS_PACKAGE}/${qemu.suite}` : BIOS_PACKAGE;
      const asked = [...BUILD_PACKAGES.map((p) => `${p}=${version}`), biosSpec];
      o.log?.(`resolving what QEMU ${version} (${qemu.suite}) needs: ${asked.join(', ')} and their dependencies`);
      const closure = parseSimulatedInstall((await run(['apt-get', ...apt, '-o', 'APT::Install-Recommends=false', '-s', 'install', ...asked])).stdout);
      for (const p of BUILD_PACKAGES) {
        if (!closure.some((c) => c.pkg === p)) throw new MiglabError('MISSING_DEPENDENCY', `cannot fetch QEMU ${series}: apt's install of ${asked.join(' ')} from Debian's ${archive.name} would not include ${p}`);
      }
      libc6 = closure.find((c) => c.pkg === 'libc6')?.version;
      o.log?.(`downloading QEMU ${version} with its ${closure.length} packages (its own libc6 ${libc6 ?? '?'} and libraries)`);
      await run(['apt-get', ...apt, '-qq', 'download', ...closure.map((c) => `${c.pkg}=${c.version}`)], debsDir);
    } else {
      o.log?.(`downloading QEMU ${version}: ${[...BUILD_PACKAGES, BIOS_PACKAGE].join(', ')}`);
      await run(['apt-get', ...apt, '-qq', 'download', ...BUILD_PACKAGES.map((p) => `${p}=${version}`), BIOS_PACKAGE], debsDir);
    }
    const debs = (await readdir(debsDir)).filter((f) => f.endsWith('.deb')).sort();
    const root = join(temp, 'root');
    for (const deb of debs) await run(['dpkg-deb', '-x', join(debsDir, deb), root]);
    const binary = join(root, 'usr/bin', QEMU_PROGRAM);
    let ownLoader: OwnLoaderInfo | undefined;
    if (archive.ownLibraries) {
      ownLoader = await wrapProgram(host, root, { series, debianVersion: version, suite: qemu.suite, libc6: libc6 ?? '?' }, o.signal);
    } else {
      await checkLibraries(host, binary, version, o.signal);
    }
    const build = await pathBuild(host, binary, undefined, undefined, ownLoader?.why);
    const bytes = Number((await run(['du', '-sb', root])).stdout.split(/\s/)[0]);
    await rm(debsDir, { recursive: true, force: true });
    const info: CachedBuildInfo = { series, debianVersion: version, suite: qemu.suite, versionLine: build.release.line, packages: debs, fetchedAt: new Date().toISOString(), bytes, ...(ownLoader ? { ownLoader } : {}) };
    await writeFile(join(temp, INFO_FILE), `${JSON.stringify(info, null, 2)}\n`);
    await rm(final, { recursive: true, force: true });
    await rename(temp, final);
    o.log?.(`QEMU ${version} cached in ${final} (${debs.length} packages, ${(bytes / 1048576).toFixed(0)} MiB unpacked${ownLoader ? ', runs with its own loader and libraries' : ''})`);
    return { ...info, dir: final, binary: join(final, 'root/usr/bin', QEMU_PROGRAM) };
  } catch (err) {
    await rm(temp, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Make a trixie build runnable here: why this host's libraries will not do (ldd, measured), the
 * real program moved aside, the wrapper in its place, and every library found in the root by
 * its own loader.
 */
async function wrapProgram(host: Host, root: string, o: { series: string; debianVersion: string; suite: string; libc6: string }, signal?: AbortSignal): Promise<OwnLoaderInfo> {
  const wrapper = join(root, 'usr/bin', QEMU_PROGRAM);
  const program = `${wrapper}${REAL_PROGRAM_SUFFIX}`;
  const [ldd, libc] = await Promise.all([host.run(['ldd', wrapper], { signal, reject: false }), host.run(['getconf', 'GNU_LIBC_VERSION'], { signal, reject: false })]);
  const needs = glibcMissing(`${ldd.stdout}\n${ldd.stderr}`);
  const hostGlibc = /glibc (\S+)/.exec(libc.stdout)?.[1];
  const why = `${needs ? `it needs glibc ${needs} (GLIBC_${needs})` : "its libraries are Debian trixie's"}${hostGlibc ? `, this host has ${hostGlibc}` : ''}`;
  await rename(wrapper, program);
  await writeFile(wrapper, wrapperScript({ ...o, why }));
  await chmod(wrapper, 0o755);
  // The program, and the module that opens the lab's nfs:// disks (dlopen'ed later, by the same loader).
  for (const file of [program, join(root, OWN_LIBRARY_DIR, 'qemu/block-nfs.so')]) await checkOwnLibraries(host, root, file, o.debianVersion, signal);
  return { loader: OWN_LOADER, libraryDir: OWN_LIBRARY_DIR, program: `usr/bin/${QEMU_PROGRAM}${REAL_PROGRAM_SUFFIX}`, libc6: o.libc6, why };
}

/** Missing libraries in ldd-style output ("libfoo.so.1 => not found"). */
function notFound(out: string): string[] {
  return out
    .split('\n')
    .filter((l) => l.includes('not found'))
    .map((l) => l.trim().split(/\s/)[0]!);
}

/** Every shared library the build needs must be on this machine: say which are missing, and the package fix. */
async function checkLibraries(host: Host, binary: string, version: string, signal?: AbortSignal): Promise<void> {
  const r = await host.run(['ldd', binary], { signal, reject: false });
  const missing = notFound(r.stdout);
  if (missing.length > 0) {
    throw new MiglabError(
      'MISSING_DEPENDENCY',
      `QEMU ${version} needs libraries this machine lacks: ${missing.join(', ')}; install their packages with apt-get (the system's qemu-system-x86 brings most), then fetch again`,
    );
  }
}

/**
 * The libraries of a wrapped build's `file` (its program, a module), as its own loader resolves
 * them (`--list`, its ldd): all found, and all in its root. One from this host's /usr/lib would
 * be bookworm's, built for the other glibc.
 */
async function checkOwnLibraries(host: Host, root: string, file: string, version: string, signal?: AbortSignal): Promise<void> {
  const r = await host.run([join(root, OWN_LOADER), '--library-path', join(root, OWN_LIBRARY_DIR), '--list', file], { signal, reject: false });
  const missing = notFound(r.stdout);
  const outside = r.stdout
    .split('\n')
    .map((l) => /=> (\/\S+)/.exec(l)?.[1])
    .filter((p): p is string => p !== undefined && !p.startsWith(`${root}/`));
  if (missing.length > 0 || outside.length > 0 || (r.exitCode !== 0 && !r.stdout.includes('=>'))) {
    const what = [missing.length > 0 ? `not found: ${missing.join(', ')}` : '', outside.length > 0 ? `found outside its own libraries: ${outside.join(', ')}` : '', r.exitCode !== 0 && !r.stdout.includes('=>') ? (r.stderr.trim().split('\n').at(-1) ?? `exit ${r.exitCode}`) : '']
      .filter(Boolean)
      .join('; ');
    throw new MiglabError('MISSING_DEPENDENCY', `QEMU ${version}'s own loader does not find the libraries of ${file.slice(root.length + 1)} in ${root} (${what}); its package closure is incomplete: fetch again, or report it`);
  }
}

/** A cached build as a runnable QemuBuild. */
export function cachedBuildOf(host: Host, b: CachedBuild): Promise<QemuBuild> {
  return pathBuild(host, b.binary, `Debian's ${b.suite} package ${b.debianVersion}, unpacked in ${b.dir}`, b.debianVersion, b.ownLoader?.why).then((build) => ({ ...build, choice: b.series }));
}
