// A QEMU build: which qemu-system-x86_64 a guest runs on, and what that program needs to find its
// firmware and block modules. "system" is the host's own QEMU (Debian's package); a named series
// ("10.0", "11.1") is Debian's build fetched into miglab's cache (src/qemu/fetch.ts); a path is any
// build the user has. Several builds run side by side: a migration may go from one to another.
// A build from Debian trixie needs a newer glibc than this Debian 12 host's: its usr/bin/
// qemu-system-x86_64 is then a wrapper that runs the real program through trixie's own loader
// and libraries, unpacked beside it (one process: the wrapper execs).
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import type { Host } from '../host/host.js';
import { rememberedFact } from '../host/program-facts.js';
import { parseQemuVersion, qemuRelease, type QemuRelease } from '../machine/quirks.js';
import type { ArgGroup } from '../util/explained-command.js';

export const SYSTEM_QEMU = 'system';
/** The program every build provides; a path names this file (or a build tree's usr/bin/ one). */
export const QEMU_PROGRAM = 'qemu-system-x86_64';

/** How a person names a build: --qemu system | 10.0 | /path/to/qemu-system-x86_64. */
export type QemuChoice = { readonly kind: 'system' } | { readonly kind: 'series'; readonly series: string } | { readonly kind: 'path'; readonly path: string };

export interface QemuBuild {
  /** As the user named it: "system", "10.0", or the program's absolute path. */
  readonly choice: string;
  /** The program to run: on PATH (the system's) or an absolute path. */
  readonly binary: string;
  /** Firmware directories searched before QEMU's compiled-in ones (`-L`, in this order). */
  readonly dataDirs: readonly string[];
  /** Where its loadable modules are (block-nfs for nfs:// disks): QEMU reads QEMU_MODULE_DIR. */
  readonly moduleDir?: string;
  readonly release: QemuRelease;
  /** Where it came from, in words, for the report. */
  readonly origin: string;
  /** The Debian package version it was fetched as (a named series). */
  readonly debianVersion?: string;
  /** Set when `binary` is a wrapper that runs the real program with its own loader and libraries. */
  readonly ownLoader?: OwnLoader;
}

/** What a wrapped build's wrapper execs: the real program, through its own dynamic loader and libraries. */
export interface OwnLoader {
  /** The build's root: ROOT/usr/bin/qemu-system-x86_64 is the wrapper. */
  readonly root: string;
  /** The build's own dynamic loader (ld-linux-x86-64.so.2), run as a program. */
  readonly loader: string;
  /** Its libraries' directory, given to the loader as --library-path (this host's are not used). */
  readonly libraryDir: string;
  /** The real qemu-system-x86_64 beside the wrapper. */
  readonly program: string;
  /** Why it cannot use this host's libraries, when known: "it needs glibc 2.38 (GLIBC_2.38), this host has 2.36". */
  readonly why?: string;
}

/** Where, under a build's root, a wrapped build keeps its loader and libraries (Debian trixie is merged-/usr: no ROOT/lib64). */
export const OWN_LOADER = 'usr/lib64/ld-linux-x86-64.so.2';
export const OWN_LIBRARY_DIR = 'usr/lib/x86_64-linux-gnu';
/** The real program beside its wrapper: usr/bin/qemu-system-x86_64.real. */
export const REAL_PROGRAM_SUFFIX = '.real';

/** A series names a release line, major.minor: 10.0, 9.2. */
const SERIES_RE = /^\d{1,2}\.\d{1,2}$/;

/** Read --qemu's value (or a spec's qemu field): one line about what it takes when it is none of them. */
export function parseQemuChoice(text: string, cwd = process.cwd()): QemuChoice {
  const t = text.trim();
  if (t === SYSTEM_QEMU) return { kind: 'system' };
  if (SERIES_RE.test(t)) return { kind: 'series', series: t };
  if (t.includes('/')) return { kind: 'path', path: isAbsolute(t) ? t : resolve(cwd, t) };
  throw new UsageError(`QEMU build "${text}" is none of system, a release series or a path`, `give system, a series of Debian's newer QEMU such as 10.0 or 11.1 (miglab qemu list), or the path of a ${QEMU_PROGRAM}`);
}

/** The choice as it is recorded and shown: "system", "10.0", or the absolute path. */
export function choiceText(c: QemuChoice): string {
  return c.kind === 'system' ? SYSTEM_QEMU : c.kind === 'series' ? c.series : c.path;
}

/**
 * The launch of a build, as explained argument groups: the module directory through `env` (QEMU
 * reads it only from its environment, and a line in the report should be one a person can retype),
 * the program, and its firmware directories.
 */
export function launchGroups(build: QemuBuild | undefined): ArgGroup[] {
  if (!build || build.choice === SYSTEM_QEMU) return [{ args: [QEMU_PROGRAM], why: 'the QEMU system emulator for x86-64 guests (this host\'s own)' }];
  const g: ArgGroup[] = [];
  if (build.moduleDir) {
    g.push({ args: ['env', `QEMU_MODULE_DIR=${build.moduleDir}`], why: `QEMU ${versionOf(build)} loads its block drivers (nfs:// needs block-nfs) from its own module directory, not the system QEMU's` });
  }
  g.push({ args: [build.binary], why: build.ownLoader ? ownLoaderWhy(build, build.ownLoader) : `the QEMU system emulator for x86-64 guests: ${build.origin}` });
  for (const dir of build.dataDirs) g.push({ args: ['-L', dir], why: `firmware of QEMU ${versionOf(build)} (BIOS, option ROMs) looked up here first, before the system QEMU's directories` });
  return g;
}

/** The wrapped build's program line in words: what it runs, with what, and why not with this host's libraries. */
function ownLoaderWhy(build: QemuBuild, o: OwnLoader): string {
  const under = (p: string) => relative(o.root, p);
  return (
    `the QEMU system emulator for x86-64 guests: ${build.origin}. It runs with its own loader and libraries, not this host's, because ${o.why ?? 'it was built for a newer glibc than this host has'}: ` +
    `this file is a wrapper (sh) that execs ${under(o.loader)} --library-path ${under(o.libraryDir)} ${under(o.program)} (all under ${o.root}), so QEMU keeps the pid miglab started`
  );
}

/** "10.0.2" */
export function versionOf(build: Pick<QemuBuild, 'release'>): string {
  return `${build.release.major}.${build.release.minor}.${build.release.micro}`;
}

/** The argv prefix that runs this build (env, program, -L ...), for its own queries (--version, -machine help). */
export function buildArgv(build: QemuBuild | undefined, ...args: string[]): string[] {
  return [...launchGroups(build).flatMap((g) => g.args), ...args];
}

/** Names a build on a host, for what is asked of it once (its machine types, what it offers). */
export function buildKey(host: Pick<Host, 'name'>, build: Pick<QemuBuild, 'binary' | 'release'>): string {
  return `${host.name}|${build.binary}|${build.release.line}`;
}

/** The host's own QEMU. */
export async function systemBuild(host: Host): Promise<QemuBuild> {
  return { choice: SYSTEM_QEMU, binary: QEMU_PROGRAM, dataDirs: [], release: await qemuRelease(host), origin: `this host's own (${QEMU_PROGRAM} on PATH)` };
}

/**
 * A build unpacked from Debian's packages lies at ROOT/usr/bin/qemu-system-x86_64 and looks for its
 * firmware and modules under /usr, where the system QEMU's are: point it at its own tree. A build
 * installed with its own prefix finds them relative to itself, and gets nothing added.
 */
export function treeOf(binary: string): { root: string; dataDirs: string[]; moduleDir: string; wrapped: Omit<OwnLoader, 'why'> } | undefined {
  const bin = dirname(binary);
  if (!bin.endsWith('/usr/bin')) return undefined;
  const root = dirname(dirname(bin));
  if (root === '/') return undefined;
  return {
    root,
    dataDirs: [join(root, 'usr/share/qemu'), join(root, 'usr/share/seabios')],
    moduleDir: join(root, 'usr/lib/x86_64-linux-gnu/qemu'),
    // Only when both files are there is `binary` a wrapper (a build from Debian trixie).
    wrapped: { root, loader: join(root, OWN_LOADER), libraryDir: join(root, OWN_LIBRARY_DIR), program: `${binary}${REAL_PROGRAM_SUFFIX}` },
  };
}

/**
 * A build given by its path on `host`: it must run and say its version. `loaderWhy` says why a
 * wrapped build cannot use this host's libraries (a fetched build knows; a path does not).
 */
export async function pathBuild(host: Host, path: string, origin?: string, debianVersion?: string, loaderWhy?: string): Promise<QemuBuild> {
  const tree = treeOf(path);
  const exists = async (p: string) => (await host.run(['test', '-e', p], { reject: false })).exitCode === 0;
  // Every file a build's tree may have, asked at once (each is a command on the host: over SSH, a round trip).
  const there = tree ? await Promise.all([...tree.dataDirs, tree.moduleDir, tree.wrapped.program, tree.wrapped.loader].map(exists)) : [];
  const dataDirs = tree ? tree.dataDirs.filter((_, i) => there[i]) : [];
  const [hasModules, hasProgram, hasLoader] = there.slice(tree?.dataDirs.length ?? 0);
  const moduleDir = tree && hasModules ? tree.moduleDir : undefined;
  const wrapped = tree && hasProgram && hasLoader ? tree.wrapped : undefined;
  const ownLoader = wrapped ? { ...wrapped, ...(loaderWhy ? { why: loaderWhy } : {}) } : undefined;
  const draft = { choice: path, binary: path, dataDirs, moduleDir, origin: origin ?? `${path} on ${host.name}`, debianVersion, ...(ownLoader ? { ownLoader } : {}) };
  const release = await rememberedFact('qemu-release', host, path, async () => {
    const r = await host.run(buildArgv({ ...draft, release: { major: 0, minor: 0, micro: 0, line: '' } }, '--version'), { reject: false, timeoutMs: 20000 });
    const parsed = r.exitCode === 0 ? parseQemuVersion(r.stdout) : undefined;
    if (!parsed) {
      const why = (r.stderr.trim().split('\n').at(-1) ?? '') || `exit ${r.exitCode}`;
      throw new UsageError(`QEMU build ${path} on ${host.name} does not run: ${why}`, `give the path of a working ${QEMU_PROGRAM}, or --qemu system`);
    }
    return parsed;
  });
  return { ...draft, release };
}
