// `miglab qemu list | fetch SERIES`: the QEMU builds a run can name with --qemu.
import { withTeardown } from '../util/teardown.js';
import type { Argv } from 'yargs';
import { checkRoot } from '../lab/index.js';
import { LocalHost } from '../host/local.js';
import { describeError, UsageError } from '../errors.js';
import { parseQemuChoice, SYSTEM_QEMU, systemBuild } from './build.js';
import { BACKPORTS, cachedBuilds, fetchSeries, TRIXIE, type CachedBuild } from './fetch.js';
import { asOption } from '../cli/options.js';
import type { CommandIo } from '../cli/io.js';

export const QEMU_COMMAND = 'qemu <action> [series]';

export function qemuBuilder(y: Argv): Argv {
  return y
    .positional('action', { choices: ['list', 'fetch'] as const, demandOption: true, describe: "list: the builds --qemu can name; fetch: download a series from Debian's bookworm-backports (or else trixie, run with its own libraries) into the cache" })
    .positional('series', { type: 'string', describe: 'fetch: a release series such as 10.0 or 11.1' });
}

/** One build as `qemu list` shows and --json gives it. */
export interface BuildRow {
  /** What --qemu takes for it. */
  readonly name: string;
  readonly version: string;
  readonly binary: string;
  readonly origin: string;
  readonly unpackedMiB?: number;
  /** How it runs when not as itself: "its own loader and libraries (libc6 2.41-12+deb13u5): it needs glibc 2.38 (GLIBC_2.38), this host has 2.36". */
  readonly runsWith?: string;
}

function rowOf(b: CachedBuild): BuildRow {
  return {
    name: b.series,
    version: b.versionLine,
    binary: b.binary,
    origin: `Debian ${b.suite} ${b.debianVersion}, fetched ${b.fetchedAt.slice(0, 10)}`,
    unpackedMiB: Math.round(b.bytes / 1048576),
    ...(b.ownLoader ? { runsWith: `its own loader and libraries (libc6 ${b.ownLoader.libc6}): ${b.ownLoader.why}` } : {}),
  };
}

/** A row's lines after its first, each indented by `pad`. */
function rowDetail(r: BuildRow, pad: string): string {
  const size = r.unpackedMiB !== undefined ? `; ${r.unpackedMiB} MiB unpacked` : '';
  return `${pad}${r.binary}\n${pad}${r.origin}${size}${r.runsWith ? `\n${pad}runs with ${r.runsWith}` : ''}`;
}

export async function qemuCommand(a: Record<string, unknown>, io: CommandIo, cacheDir: string): Promise<number> {
  const host = new LocalHost();
  if (a.action === 'fetch') {
    const series = String(a.series ?? '');
    if (!series) throw new UsageError('miglab qemu fetch: which series?', `say one, e.g. miglab qemu fetch 10.0 or 11.1 (Debian's ${BACKPORTS.name} has 10.0; ${TRIXIE.name} have 11.1)`);
    const c = asOption('series', series, () => parseQemuChoice(series));
    if (c.kind !== 'series') throw new UsageError(`miglab qemu fetch ${series}: not a release series`, 'give one such as 10.0 or 11.1 (system and paths need no fetching)');
    checkRoot();
    // Ctrl-C stops apt and dpkg-deb, and the half-fetched folder is removed (fetchSeries), not left in the cache.
    const b = await withTeardown((_td, signal) => fetchSeries(host, c.series, { cacheDir, signal, log: (line) => io.progress?.('qemu', line) }), io.signal);
    const row = rowOf(b);
    io.out(`${row.name}: ${row.version}\n${rowDetail(row, '  ')}`);
    io.json?.(row);
    return 0;
  }
  const rows: BuildRow[] = [];
  try {
    const sys = await systemBuild(host);
    rows.push({ name: SYSTEM_QEMU, version: sys.release.line, binary: sys.binary, origin: sys.origin });
  } catch (err) {
    io.out(`system: no QEMU on this host (${describeError(err)}); apt-get install qemu-system-x86`);
  }
  rows.push(...(await cachedBuilds(cacheDir)).map(rowOf));
  for (const r of rows) io.out(`${r.name.padEnd(8)} ${r.version}\n${rowDetail(r, ' '.repeat(9))}`);
  if (rows.length <= 1) io.out(`no other build cached in ${cacheDir}: miglab qemu fetch 10.0 (or 11.1; or --qemu 10.0 on a run) fetches one`);
  io.json?.(rows);
  return 0;
}

