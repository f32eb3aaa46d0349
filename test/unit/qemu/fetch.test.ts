// Named builds from Debian's archives: which version a series is, where it is cached, what the
// cache holds, and how a series only trixie has (11.1) is fetched with its whole package closure
// and wrapped to run with its own loader. (The real fetch runs apt-get against Debian's archive:
// the integration suite's set-up does it, `make qemu-builds`; here a scripted host answers.)
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { cacheDirName, cachedBuilds, fetchSeries, glibcMissing, parseMadisonRows, parseSimulatedInstall, seriesOfDebianVersion, wrapperScript } from '../../../src/qemu/fetch.js';
import { FakeHost, type RunAnswer } from '../../support/fake-host.js';

const tmp = mkdtempSync(join(tmpdir(), 'miglab-qemu-cache-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('versions', () => {
  it("reads apt-cache madison's lines and a package version's series", () => {
    const out = ' qemu-system-x86 | 1:10.0.2+ds-2+deb13u1~bpo12+1 | http://deb.debian.org/debian bookworm-backports/main amd64 Packages\n';
    expect(parseMadisonRows(out).map((r) => r.version)).toEqual(['1:10.0.2+ds-2+deb13u1~bpo12+1']);
    expect(seriesOfDebianVersion('1:10.0.2+ds-2+deb13u1~bpo12+1')).toBe('10.0');
    expect(seriesOfDebianVersion('1.16.3-2~bpo12+1')).toBe('1.16');
    expect(seriesOfDebianVersion('garbage')).toBeUndefined();
  });

  it('reads the suite each version comes from (apt-cache madison of two packages over three suites)', () => {
    expect(parseMadisonRows(TRIXIE_MADISON)).toEqual([
      { pkg: 'qemu-system-x86', version: '1:11.1.3+ds-2~bpo13+1', suite: 'trixie-backports' },
      { pkg: 'qemu-system-x86', version: '1:10.0.13+ds-0+deb13u1', suite: 'trixie' },
      { pkg: 'seabios', version: '1.17.0-1~bpo13+1', suite: 'trixie-backports' },
      { pkg: 'seabios', version: '1.16.3-2', suite: 'trixie' },
    ]);
  });

  it('names a cache directory without the characters some tools mind', () => {
    expect(cacheDirName('1:10.0.2+ds-2+deb13u1~bpo12+1')).toBe('1_10.0.2+ds-2+deb13u1_bpo12+1');
  });
});

// What the archives answered on 2026-12-04 (apt-cache madison qemu-system-x86 seabios), shortened.
const V11 = '1:11.1.3+ds-2~bpo13+1';
const BOOKWORM_MADISON = [
  ' qemu-system-x86 | 1:10.0.2+ds-2+deb13u1~bpo12+1 | http://deb.debian.org/debian bookworm-backports/main amd64 Packages',
  '   seabios | 1.16.3-2~bpo12+1 | http://deb.debian.org/debian bookworm-backports/main amd64 Packages',
  '',
].join('\n');
const TRIXIE_MADISON = [
  `qemu-system-x86 | ${V11} | http://deb.debian.org/debian trixie-backports/main amd64 Packages`,
  'qemu-system-x86 | 1:10.0.13+ds-0+deb13u1 | http://deb.debian.org/debian trixie/main amd64 Packages',
  '   seabios | 1.17.0-1~bpo13+1 | http://deb.debian.org/debian trixie-backports/main amd64 Packages',
  '   seabios |   1.16.3-2 | http://deb.debian.org/debian trixie/main amd64 Packages',
  '',
].join('\n');

// `apt-get -s install` against an empty dpkg status, as it printed for 11.1 (122 Inst lines, 7 kept).
const SIMULATED = [
  'NOTE: This is only a simulation!',
  '      apt-get needs root privileges for real execution.',
  'Reading package lists...',
  'Building dependency tree...',
  'The following NEW packages will be installed:',
  '  gcc-14-base libc6 libnfs14 qemu-block-extra qemu-system-common qemu-system-data qemu-system-x86 seabios',
  '0 upgraded, 7 newly installed, 0 to remove and 0 not upgraded.',
  'Inst gcc-14-base (14.2.0-19 Debian:13.8/stable [amd64])',
  'Conf gcc-14-base (14.2.0-19 Debian:13.8/stable [amd64])',
  'Inst libc6 (2.41-12+deb13u5 Debian:13.8/stable [amd64]) []',
  'Inst libnfs14 (5.0.2-1+deb13u1 Debian:13.8/stable [amd64])',
  `Inst qemu-system-common (${V11} Debian Backports:stable-backports [amd64])`,
  `Inst qemu-block-extra (${V11} Debian Backports:stable-backports [amd64])`,
  `Inst qemu-system-data (${V11} Debian Backports:stable-backports [all])`,
  'Inst seabios (1.17.0-1~bpo13+1 Debian Backports:stable-backports [all])',
  `Inst qemu-system-x86 (${V11} Debian Backports:stable-backports [amd64])`,
  'Conf libc6 (2.41-12+deb13u5 Debian:13.8/stable [amd64])',
  '',
].join('\n');

describe('parseSimulatedInstall', () => {
  it("reads every Inst line of apt-get -s: the closure, with each package's version, release and architecture", () => {
    const closure = parseSimulatedInstall(SIMULATED);
    expect(closure.map((p) => `${p.pkg}=${p.version}`)).toEqual([
      'gcc-14-base=14.2.0-19',
      'libc6=2.41-12+deb13u5',
      'libnfs14=5.0.2-1+deb13u1',
      `qemu-system-common=${V11}`,
      `qemu-block-extra=${V11}`,
      `qemu-system-data=${V11}`,
      'seabios=1.17.0-1~bpo13+1',
      `qemu-system-x86=${V11}`,
    ]);
    expect(closure[1]).toEqual({ pkg: 'libc6', version: '2.41-12+deb13u5', release: 'Debian:13.8/stable', arch: 'amd64' });
    expect(closure[6]).toEqual({ pkg: 'seabios', version: '1.17.0-1~bpo13+1', release: 'Debian Backports:stable-backports', arch: 'all' });
  });

  it('reads an upgrade line (the installed version in brackets first), and refuses an Inst line it cannot read rather than drop a package', () => {
    expect(parseSimulatedInstall('Inst libc6 [2.36-9+deb12u13] (2.41-12+deb13u5 Debian:13.8/stable [amd64])')).toEqual([{ pkg: 'libc6', version: '2.41-12+deb13u5', release: 'Debian:13.8/stable', arch: 'amd64' }]);
    expect(() => parseSimulatedInstall('Inst libc6 2.41')).toThrow(/cannot read apt-get's simulated install line: Inst libc6 2\.41/);
  });
});

describe('glibcMissing', () => {
  it("names the newest GLIBC version ldd says this host's libc lacks", () => {
    const ldd = [
      "q.real: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.38' not found (required by q.real)",
      "q.real: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.4' not found (required by q.real)",
      '\tlibcapstone.so.5 => not found',
    ].join('\n');
    expect(glibcMissing(ldd)).toBe('2.38');
    expect(glibcMissing('\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x7f)')).toBeUndefined();
  });
});

describe('wrapperScript', () => {
  const script = wrapperScript({ series: '11.1', debianVersion: V11, suite: 'trixie-backports', why: 'it needs glibc 2.38 (GLIBC_2.38), this host has 2.36' });

  it('says what it runs and why, and execs the real program through the root\'s own loader and libraries', () => {
    expect(script.startsWith('#!/bin/sh\n')).toBe(true);
    expect(script).toContain(`# QEMU 11.1 from Debian trixie-backports (${V11})`);
    expect(script).toContain("# Not with this host's libraries: it needs glibc 2.38 (GLIBC_2.38), this host has 2.36.");
    // No path of the place it was written in: the folder is renamed once unpacked.
    expect(script).not.toMatch(/partial|\/tmp|\/work/);
    expect(script.trim().split('\n').at(-1)).toBe(
      'exec "$root/usr/lib64/ld-linux-x86-64.so.2" --library-path "$root/usr/lib/x86_64-linux-gnu" --argv0 "$0" "$root/usr/bin/qemu-system-x86_64.real" "$@"',
    );
  });

  it('run from the folder it was renamed to, it hands the loader paths under that folder, and the loader keeps its pid', async () => {
    // A stand-in loader: prints its pid and arguments, as the real one would run QEMU in this process.
    const before = join(tmp, 'wrapped.partial-1');
    mkdirSync(join(before, 'root/usr/bin'), { recursive: true });
    mkdirSync(join(before, 'root/usr/lib64'), { recursive: true });
    writeFileSync(join(before, 'root/usr/lib64/ld-linux-x86-64.so.2'), '#!/bin/sh\necho "$$"\nprintf \'%s\\n\' "$@"\n');
    chmodSync(join(before, 'root/usr/lib64/ld-linux-x86-64.so.2'), 0o755);
    writeFileSync(join(before, 'root/usr/bin/qemu-system-x86_64'), script);
    chmodSync(join(before, 'root/usr/bin/qemu-system-x86_64'), 0o755);
    const dir = join(tmp, 'wrapped');
    renameSync(before, dir);
    const root = join(dir, 'root');
    const wrapper = join(root, 'usr/bin/qemu-system-x86_64');
    const child = spawn(wrapper, ['-machine', 'none', '--version'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise((resolve) => child.on('exit', resolve));
    expect(code).toBe(0);
    const [pid, ...args] = out.trim().split('\n');
    // The pid miglab started is the one the loader (and so QEMU) runs as: one process, not a shell and a child.
    expect(Number(pid)).toBe(child.pid);
    expect(args).toEqual(['--library-path', join(root, 'usr/lib/x86_64-linux-gnu'), '--argv0', wrapper, `${wrapper}.real`, '-machine', 'none', '--version']);
  });
});

describe('cachedBuilds', () => {
  it('lists the builds with a build.json, newest first, and skips what is not one', async () => {
    const cache = join(tmp, 'listed');
    const put = (dir: string, v: string) => {
      mkdirSync(join(cache, dir), { recursive: true });
      writeFileSync(join(cache, dir, 'build.json'), JSON.stringify({ series: seriesOfDebianVersion(v), debianVersion: v, suite: 'bookworm-backports', versionLine: 'x', packages: [], fetchedAt: '2026-12-03T00:00:00Z', bytes: 1 }));
    };
    put(cacheDirName('1:9.2.1+ds-1~bpo12+1'), '1:9.2.1+ds-1~bpo12+1');
    put(cacheDirName('1:10.0.2+ds-2+deb13u1~bpo12+1'), '1:10.0.2+ds-2+deb13u1~bpo12+1');
    mkdirSync(join(cache, 'apt/lists'), { recursive: true });
    mkdirSync(join(cache, 'apt-trixie/lists'), { recursive: true });
    mkdirSync(join(cache, '1_10.1.0.partial-123'), { recursive: true });
    const builds = await cachedBuilds(cache);
    expect(builds.map((b) => b.series)).toEqual(['10.0', '9.2']);
    expect(builds[0]!.binary).toBe(join(cache, '1_10.0.2+ds-2+deb13u1_bpo12+1', 'root/usr/bin/qemu-system-x86_64'));
    expect(await cachedBuilds(join(cache, 'none'))).toEqual([]);
  });
});

/** Which archive's apt a command uses: its lists directory under the cache. */
const aptOf = (argv: readonly string[]) => /Dir::State::Lists=.*\/(apt[^/]*)\/lists$/.exec(argv.find((a) => a.startsWith('Dir::State::Lists=')) ?? '')?.[1];

/**
 * A host that answers as Debian's archives and this machine did: bookworm-backports has 10.0 only,
 * trixie has 11.1 in backports. Downloads and unpacks write small files where the real ones would.
 */
function archiveHost(cache: string, over: (argv: readonly string[]) => RunAnswer | undefined = () => undefined): FakeHost {
  return new FakeHost('local', {
    run: (argv) => {
      const o = over(argv);
      if (o) return o;
      if (argv.includes('madison')) return { stdout: aptOf(argv) === 'apt' ? BOOKWORM_MADISON : TRIXIE_MADISON };
      if (argv.includes('-s') && argv.includes('install')) return { stdout: SIMULATED };
      if (argv.includes('download')) {
        // sh -c 'cd "$1" && ...' sh DIR apt-get ...: a .deb per package asked, in DIR.
        const dir = argv[4]!;
        for (const spec of argv.slice(argv.indexOf('download') + 1)) writeFileSync(join(dir, `${spec.replace('=', '_').replace(':', '%3a')}_amd64.deb`), '');
        return {};
      }
      if (argv[0] === 'dpkg-deb' && argv[2]!.includes('qemu-system-x86_')) {
        mkdirSync(join(argv[3]!, 'usr/bin'), { recursive: true });
        writeFileSync(join(argv[3]!, 'usr/bin/qemu-system-x86_64'), 'ELF');
        return {};
      }
      if (argv[0] === 'ldd') return { exitCode: 1, stderr: `${argv[1]}: /lib/x86_64-linux-gnu/libc.so.6: version \`GLIBC_2.38' not found (required by ${argv[1]})\n` };
      if (argv[0] === 'getconf') return { stdout: 'glibc 2.36\n' };
      if (argv.includes('--list')) {
        const lib = argv[argv.indexOf('--library-path') + 1];
        return { stdout: `\tlinux-vdso.so.1 (0x00007f)\n\tlibnfs.so.14 => ${lib}/libnfs.so.14 (0x00007f)\n\tlibc.so.6 => ${lib}/libc.so.6 (0x00007f)\n` };
      }
      if (argv.includes('--version')) return { stdout: 'QEMU emulator version 11.1.3 (Debian 1:11.1.3+ds-2~bpo13+1)\nCopyright\n' };
      if (argv[0] === 'du') return { stdout: `218082445\t${argv[2]}\n` };
      return undefined;
    },
  });
}

describe('fetchSeries', () => {
  it('interrupted (Ctrl-C) mid-download: says so, not "cannot fetch", and leaves no half-fetched folder in the cache', async () => {
    const cache = join(tmp, 'interrupted');
    const ctrlC = new AbortController();
    const host = new FakeHost('local', {
      run: (argv) => {
        if (argv.includes('madison')) return { stdout: BOOKWORM_MADISON };
        if (!argv.includes('download')) return undefined;
        ctrlC.abort(new Error('received SIGINT'));
        return { exitCode: 130 };
      },
    });
    await expect(fetchSeries(host, '10.0', { cacheDir: cache, signal: ctrlC.signal })).rejects.toMatchObject({ code: 'ABORTED', message: 'fetching QEMU 10.0 was interrupted' });
    expect(readdirSync(cache)).toEqual(['apt']);
  });

  it("a series bookworm-backports lacks comes from trixie: the whole closure, unpacked and wrapped to run with its own loader", async () => {
    const cache = join(tmp, 'trixie');
    const host = archiveHost(cache);
    const b = await fetchSeries(host, '11.1', { cacheDir: cache });
    // Bookworm was asked first, in its own apt directory; trixie's index is kept apart.
    const madisons = host.ran.filter((a) => a.includes('madison')).map(aptOf);
    expect(madisons).toEqual(['apt', 'apt-trixie']);
    expect(readFileSync(join(cache, 'apt-trixie/sources/trixie.sources'), 'utf8')).toContain('Suites: trixie trixie-updates trixie-backports\n');
    // The closure is resolved with nothing counted as installed and no recommends; the BIOS from backports (11.1 needs seabios >= 1.17).
    const sim = host.ran.find((a) => a.includes('-s'))!;
    expect(sim).toEqual(expect.arrayContaining(['Dir::State::status=/dev/null', 'APT::Install-Recommends=false', `qemu-block-extra=${V11}`, `qemu-system-x86=${V11}`, 'seabios/trixie-backports']));
    // Every Inst line is downloaded, at the version apt chose.
    const download = host.ran.find((a) => a.includes('download'))!;
    expect(download.slice(download.indexOf('download') + 1)).toEqual(parseSimulatedInstall(SIMULATED).map((p) => `${p.pkg}=${p.version}`));
    expect(host.ran.filter((a) => a[0] === 'dpkg-deb')).toHaveLength(8);

    expect(b).toMatchObject({ series: '11.1', suite: 'trixie-backports', debianVersion: V11, dir: join(cache, '1_11.1.3+ds-2_bpo13+1') });
    expect(b.ownLoader).toEqual({
      loader: 'usr/lib64/ld-linux-x86-64.so.2',
      libraryDir: 'usr/lib/x86_64-linux-gnu',
      program: 'usr/bin/qemu-system-x86_64.real',
      libc6: '2.41-12+deb13u5',
      why: 'it needs glibc 2.38 (GLIBC_2.38), this host has 2.36',
    });
    // build.json keeps the suite and the loader; the wrapper stands where the program was, the program beside it.
    const info = JSON.parse(readFileSync(join(b.dir, 'build.json'), 'utf8')) as Record<string, unknown>;
    expect(info).toMatchObject({ suite: 'trixie-backports', ownLoader: b.ownLoader });
    expect(readFileSync(b.binary, 'utf8')).toMatch(/^#!\/bin\/sh\n[\s\S]*exec "\$root\/usr\/lib64\/ld-linux-x86-64\.so\.2"/);
    expect(statSync(b.binary).mode & 0o777).toBe(0o755);
    expect(readFileSync(`${b.binary}.real`, 'utf8')).toBe('ELF');
    // The libraries were checked by the build's own loader, on its program and on the nfs:// module, not by this host's ldd.
    const listed = host.ran.filter((a) => a.includes('--list'));
    expect(listed.map((a) => a[0])).toEqual([expect.stringMatching(/\.partial-\d+\/root\/usr\/lib64\/ld-linux-x86-64\.so\.2$/), expect.stringMatching(/ld-linux-x86-64\.so\.2$/)]);
    expect(listed.map((a) => a.at(-1))).toEqual([expect.stringMatching(/usr\/bin\/qemu-system-x86_64\.real$/), expect.stringMatching(/usr\/lib\/x86_64-linux-gnu\/qemu\/block-nfs\.so$/)]);
    // Its version was asked through the wrapper, as every run will start it.
    expect(host.ran.find((a) => a.includes('--version'))?.[2]).toMatch(/\.partial-\d+\/root\/usr\/bin\/qemu-system-x86_64$/);
    expect(readdirSync(cache).sort()).toEqual(['1_11.1.3+ds-2_bpo13+1', 'apt', 'apt-trixie']);
    expect(existsSync(join(b.dir, 'debs'))).toBe(false);
    // Cached: a second fetch asks nothing.
    const again = archiveHost(cache);
    expect((await fetchSeries(again, '11.1', { cacheDir: cache })).dir).toBe(b.dir);
    expect(again.ran).toEqual([]);
  });

  it('refuses, in one line, a series neither archive has, naming what each has', async () => {
    const cache = join(tmp, 'neither');
    await expect(fetchSeries(archiveHost(cache), '9.2', { cacheDir: cache })).rejects.toThrow(
      /^QEMU 9\.2 is in neither Debian's bookworm-backports \(it has: 10\.0\) nor trixie, trixie-updates, trixie-backports \(they have: 11\.1, 10\.0\); give one of those, system, or the path of a qemu-system-x86_64$/,
    );
    expect(readdirSync(cache).sort()).toEqual(['apt', 'apt-trixie']);
  });

  it("refuses a trixie build whose own loader would take a library from this host, and leaves no folder", async () => {
    const cache = join(tmp, 'leaky');
    const host = archiveHost(cache, (argv) => (argv.includes('--list') ? { stdout: '\tlibfmt.so.9 => /lib/x86_64-linux-gnu/libfmt.so.9 (0x00007f)\n\tlibcapstone.so.5 => not found\n' } : undefined));
    await expect(fetchSeries(host, '11.1', { cacheDir: cache })).rejects.toThrow(
      /^QEMU 1:11\.1\.3\+ds-2~bpo13\+1's own loader does not find the libraries of usr\/bin\/qemu-system-x86_64\.real in .* \(not found: libcapstone\.so\.5; found outside its own libraries: \/lib\/x86_64-linux-gnu\/libfmt\.so\.9\)/,
    );
    expect(readdirSync(cache).sort()).toEqual(['apt', 'apt-trixie']);
  });
});
