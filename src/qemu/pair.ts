// The two QEMU builds of one migration, and the machine type both present. A QEMU's `pc` is an
// alias of its own newest i440fx type (pc-i440fx-7.2 on 7.2, pc-i440fx-10.0 on 10.0), and the
// destination refuses a stream of any type but its own ("Machine type received is 'pc-i440fx-7.2'
// and local is 'pc-i440fx-10.0'", measured in both directions). So when the two sides run
// different builds, `auto` pins the type the older build's `pc` stands for, which both know; a
// type the user names must be known to both, checked before anything starts.
import { UsageError } from '../errors.js';
import type { Host } from '../host/host.js';
import type { LabHost } from '../lab/handle.js';
import { LocalHost } from '../host/local.js';
import { oncePerKey } from '../host/once-per-host.js';
import { buildArgv, buildKey, parseQemuChoice, pathBuild, systemBuild, versionOf, type QemuBuild } from './build.js';
import { cachedBuildOf, fetchSeries } from './fetch.js';
import { parseMachineTypes, type Machines } from './machine-types.js';

/** The scenario's request: which build each side runs, and the machine type. */
export interface QemuRequest {
  readonly source: string;
  readonly destination: string;
  /** auto, pc, or a versioned type such as pc-i440fx-7.2. */
  readonly machineType: string;
}

export const AUTO_MACHINE = 'auto';

export interface QemuPair {
  readonly source: QemuBuild;
  readonly destination: QemuBuild;
  /** The -machine value both QEMUs get. */
  readonly machineType: string;
  /** Why that one, in a sentence, for the report. */
  readonly machineTypeWhy: string;
}

export interface ResolveOptions {
  /** The cache of named builds (vm-images/cache/qemu). */
  readonly cacheDir: string;
  readonly signal?: AbortSignal;
  readonly log?: (line: string) => void;
}

/**
 * The build `choice` names, as `on` runs it: a named series is fetched here and runs only where
 * this machine's files are (the embedded lab). Once per host and choice in a process: a sweep's
 * runs do not ask the build its version, or read the cache, again.
 */
export const resolveBuild = oncePerKey(
  (on: Pick<LabHost, 'host' | 'netns' | 'where'>, choice: string, _o: ResolveOptions) => `${on.host.name}|${choice}`,
  async (on: Pick<LabHost, 'host' | 'netns' | 'where'>, choice: string, o: ResolveOptions): Promise<QemuBuild> => {
    const c = parseQemuChoice(choice);
    if (c.kind === 'system') return systemBuild(on.host);
    if (c.kind === 'path') return pathBuild(on.host, c.path);
    if (on.netns === undefined) {
      throw new UsageError(`--qemu ${c.series}: a named build is fetched on this machine, and ${on.where} does not share its files`, `give the path of a QEMU ${c.series} build on that host (--qemu /path/to/qemu-system-x86_64), or system`);
    }
    // Fetched by this machine itself: a lab host's namespace has no route to Debian's archive (nor
    // should it), and it sees this machine's files, so the build is then run from there.
    const cached = await fetchSeries(new LocalHost(), c.series, o);
    return cachedBuildOf(on.host, cached);
  },
);

/** Whether two builds are one and the same program. */
function sameBuild(a: QemuBuild, b: QemuBuild): boolean {
  return a.binary === b.binary && a.release.line === b.release.line;
}

function olderFirst(a: QemuBuild, b: QemuBuild): [QemuBuild, QemuBuild] {
  const key = (x: QemuBuild) => x.release.major * 1e6 + x.release.minor * 1e3 + x.release.micro;
  return key(a) <= key(b) ? [a, b] : [b, a];
}

/** The machine types a build knows (`-machine help`), once per build and host. */
export const machineTypesOf = oncePerKey(
  (host: Host, build: QemuBuild) => buildKey(host, build),
  async (host: Host, build: QemuBuild): Promise<Machines> => parseMachineTypes((await host.run(buildArgv(build, '-machine', 'help'), { timeoutMs: 20000 })).stdout),
);

/** The machine type both sides get, and why: see the head of this file. */
export function chooseMachineType(request: string, src: { build: QemuBuild; types: Machines }, dst: { build: QemuBuild; types: Machines }): { machineType: string; why: string } {
  if (request === AUTO_MACHINE) {
    if (sameBuild(src.build, dst.build)) return { machineType: 'pc', why: `pc (${src.types.aliases.get('pc') ?? 'pc'}): both sides run the same QEMU` };
    const [older, newer] = olderFirst(src.build, dst.build);
    const olderTypes = older === src.build ? src.types : dst.types;
    const newerTypes = older === src.build ? dst.types : src.types;
    const pinned = olderTypes.aliases.get('pc');
    if (!pinned || !newerTypes.names.includes(pinned)) {
      throw new UsageError(
        `QEMU ${versionOf(newer)} does not know ${pinned ?? "the older QEMU's pc"}, the machine type of QEMU ${versionOf(older)}'s pc: no machine type both can run`,
        'give --machine-type with a type both list (qemu-system-x86_64 -machine help)',
      );
    }
    return { machineType: pinned, why: `${pinned}: the sides run different QEMUs (${versionOf(src.build)} -> ${versionOf(dst.build)}), so the machine type is pinned to the one QEMU ${versionOf(older)}'s pc stands for, which both know` };
  }
  for (const [side, s] of [['source', src], ['destination', dst]] as const) {
    if (!s.types.names.includes(request)) {
      const same = [...s.types.names].filter((n) => n.startsWith('pc-i440fx-')).slice(0, 3);
      throw new UsageError(`--machine-type ${request}: the ${side}'s QEMU ${versionOf(s.build)} has no such machine type`, `give auto, pc, or one both QEMUs list (e.g. ${same.join(', ')})`);
    }
  }
  const what = request === 'pc' ? `pc as each QEMU means it (source ${src.types.aliases.get('pc')}, destination ${dst.types.aliases.get('pc')})` : request;
  return { machineType: request, why: `${what}: asked for` };
}

/** Both sides' builds (fetched if needed) and the machine type, decided before anything boots. */
export async function resolveQemuPair(hosts: { readonly src: Pick<LabHost, 'host' | 'netns' | 'where'>; readonly dst: Pick<LabHost, 'host' | 'netns' | 'where'> }, req: QemuRequest, o: ResolveOptions): Promise<QemuPair> {
  const source = await resolveBuild(hosts.src, req.source, o);
  const destination = await resolveBuild(hosts.dst, req.destination, o);
  // One build on both sides under auto is plain pc, whatever it stands for: no `-machine help`
  // (two QEMU starts, about 0.1 s) on every run's way to its boot.
  if (req.machineType === AUTO_MACHINE && sameBuild(source, destination)) return { source, destination, machineType: 'pc', machineTypeWhy: 'pc: both sides run the same QEMU' };
  const [srcTypes, dstTypes] = await Promise.all([machineTypesOf(hosts.src.host, source), machineTypesOf(hosts.dst.host, destination)]);
  const { machineType, why } = chooseMachineType(req.machineType, { build: source, types: srcTypes }, { build: destination, types: dstTypes });
  return { source, destination, machineType, machineTypeWhy: why };
}

/** One side's build as run.json keeps it. */
export interface QemuBuildRecord {
  readonly choice: string;
  readonly binary: string;
  /** Its `--version` line. */
  readonly versionLine: string;
  readonly origin: string;
  readonly debianVersion?: string;
}

/** What run.json says of QEMU: the source's query-version (as always), and with the builds, the destination's too. */
export interface QemuRecord {
  version: string;
  package?: string;
  destination?: { version: string; package?: string };
  builds?: { source: QemuBuildRecord; destination: QemuBuildRecord };
  machineType?: string;
  machineTypeWhy?: string;
}

export function buildRecord(b: QemuBuild): QemuBuildRecord {
  return { choice: b.choice, binary: b.binary, versionLine: b.release.line, origin: b.origin, ...(b.debianVersion ? { debianVersion: b.debianVersion } : {}) };
}

/** The pair's part of the record (the versions QEMU itself reports are added once each side answers). */
export function pairRecord(p: QemuPair): Pick<QemuRecord, 'builds' | 'machineType' | 'machineTypeWhy'> {
  return { builds: { source: buildRecord(p.source), destination: buildRecord(p.destination) }, machineType: p.machineType, machineTypeWhy: p.machineTypeWhy };
}

/** "7.2.22", or across builds "7.2.22 -> 10.0.2 (machine pc-i440fx-7.2)": QEMU as a run's summary names it. */
export function describeQemu(q: Pick<QemuRecord, 'version' | 'destination' | 'machineType'>): string {
  const dst = q.destination?.version;
  if (dst === undefined || dst === q.version) return q.version;
  return `${q.version} -> ${dst}${q.machineType ? ` (machine ${q.machineType})` : ''}`;
}
