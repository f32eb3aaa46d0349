// Naming a QEMU build (--qemu), and how a build unpacked from Debian's packages is launched: its
// modules through env (so the report's line can be retyped), its firmware through -L; a trixie
// build through its wrapper, which the report explains and /proc shows as its own loader.
import { describe, expect, it } from '@jest/globals';
import { buildArgv, choiceText, launchGroups, parseQemuChoice, pathBuild, treeOf, type QemuBuild } from '../../../src/qemu/build.js';
import { FakeHost } from '../../support/fake-host.js';
import { programArgv } from '../../../src/util/explained-command.js';
import { qemuGuestLabel, qemuProcessPattern } from '../../../src/batch/sampling.js';

const V10 = { major: 10, minor: 0, micro: 2, line: 'QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)' };
const ROOT = '/c/qemu/1_10.0.2/root';
const fetched: QemuBuild = {
  choice: '10.0',
  binary: `${ROOT}/usr/bin/qemu-system-x86_64`,
  dataDirs: [`${ROOT}/usr/share/qemu`, `${ROOT}/usr/share/seabios`],
  moduleDir: `${ROOT}/usr/lib/x86_64-linux-gnu/qemu`,
  release: V10,
  origin: "Debian's bookworm-backports package",
};
const ROOT11 = '/c/qemu/1_11.1.3+ds-2_bpo13+1/root';
const V11 = { major: 11, minor: 1, micro: 3, line: 'QEMU emulator version 11.1.3 (Debian 1:11.1.3+ds-2~bpo13+1)' };
const wrapped: QemuBuild = {
  choice: '11.1',
  binary: `${ROOT11}/usr/bin/qemu-system-x86_64`,
  dataDirs: [`${ROOT11}/usr/share/qemu`, `${ROOT11}/usr/share/seabios`],
  moduleDir: `${ROOT11}/usr/lib/x86_64-linux-gnu/qemu`,
  release: V11,
  origin: "Debian's trixie-backports package 1:11.1.3+ds-2~bpo13+1",
  ownLoader: {
    root: ROOT11,
    loader: `${ROOT11}/usr/lib64/ld-linux-x86-64.so.2`,
    libraryDir: `${ROOT11}/usr/lib/x86_64-linux-gnu`,
    program: `${ROOT11}/usr/bin/qemu-system-x86_64.real`,
    why: 'it needs glibc 2.38 (GLIBC_2.38), this host has 2.36',
  },
};

describe('parseQemuChoice', () => {
  it('reads system, a series and a path (a relative one made absolute)', () => {
    expect(parseQemuChoice('system')).toEqual({ kind: 'system' });
    expect(parseQemuChoice('10.0')).toEqual({ kind: 'series', series: '10.0' });
    expect(parseQemuChoice('/opt/q/bin/qemu-system-x86_64')).toEqual({ kind: 'path', path: '/opt/q/bin/qemu-system-x86_64' });
    expect(choiceText(parseQemuChoice('./q/qemu-system-x86_64', '/home/u'))).toBe('/home/u/q/qemu-system-x86_64');
  });

  it('refuses anything else in one line that says what it takes', () => {
    for (const bad of ['newest', '10', '10.0.2', 'qemu-10']) {
      expect(() => parseQemuChoice(bad)).toThrow(/^QEMU build ".*" is none of system, a release series or a path; give system, a series .* such as 10\.0/);
    }
  });
});

describe('treeOf', () => {
  it("points a build unpacked from Debian's packages at its own firmware and modules", () => {
    expect(treeOf(`${ROOT}/usr/bin/qemu-system-x86_64`)).toEqual({
      root: ROOT,
      dataDirs: fetched.dataDirs,
      moduleDir: fetched.moduleDir,
      // Where a wrapped build's parts would be (pathBuild checks they are there).
      wrapped: { root: ROOT, loader: `${ROOT}/usr/lib64/ld-linux-x86-64.so.2`, libraryDir: `${ROOT}/usr/lib/x86_64-linux-gnu`, program: `${ROOT}/usr/bin/qemu-system-x86_64.real` },
    });
  });

  it('leaves the system QEMU and a build with its own prefix alone', () => {
    expect(treeOf('/usr/bin/qemu-system-x86_64')).toBeUndefined();
    expect(treeOf('/opt/qemu-9/bin/qemu-system-x86_64')).toBeUndefined();
  });
});

describe('launchGroups', () => {
  it("runs the system's QEMU by name, with nothing added", () => {
    expect(buildArgv(undefined, '--version')).toEqual(['qemu-system-x86_64', '--version']);
  });

  it('runs a fetched build with its module directory in env and its firmware first on -L, each part explained', () => {
    const g = launchGroups(fetched);
    expect(g.flatMap((x) => x.args)).toEqual(['env', `QEMU_MODULE_DIR=${fetched.moduleDir}`, fetched.binary, '-L', fetched.dataDirs[0], '-L', fetched.dataDirs[1]]);
    expect(g[0]!.why).toMatch(/block drivers \(nfs:\/\/ needs block-nfs\)/);
    expect(g[2]!.why).toMatch(/firmware of QEMU 10\.0\.2/);
    expect(g[1]!.why).not.toMatch(/loader/);
  });

  it("runs a trixie build's wrapper like any unpacked build, and says plainly it runs with its own loader and libraries, and why", () => {
    const g = launchGroups(wrapped);
    expect(g.flatMap((x) => x.args)).toEqual(['env', `QEMU_MODULE_DIR=${wrapped.moduleDir}`, wrapped.binary, '-L', wrapped.dataDirs[0], '-L', wrapped.dataDirs[1]]);
    expect(g[1]!.why).toBe(
      "the QEMU system emulator for x86-64 guests: Debian's trixie-backports package 1:11.1.3+ds-2~bpo13+1. It runs with its own loader and libraries, not this host's, because it needs glibc 2.38 (GLIBC_2.38), this host has 2.36: " +
        `this file is a wrapper (sh) that execs usr/lib64/ld-linux-x86-64.so.2 --library-path usr/lib/x86_64-linux-gnu usr/bin/qemu-system-x86_64.real (all under ${ROOT11}), so QEMU keeps the pid miglab started`,
    );
  });
});

describe('pathBuild', () => {
  it('asks the build its version, with its own tree in force', async () => {
    const host = new FakeHost('q', { run: (argv) => (argv.includes('--version') ? { stdout: `${V10.line}\nCopyright\n` } : argv[0] === 'test' && argv[2]!.endsWith('.real') ? { exitCode: 1 } : undefined) });
    const b = await pathBuild(host, fetched.binary);
    expect(b.release).toEqual(V10);
    expect(b.dataDirs).toEqual(fetched.dataDirs);
    expect(b.ownLoader).toBeUndefined();
    const asked = host.ran.find((a) => a.includes('--version'))!;
    expect(asked.slice(0, 3)).toEqual(['env', `QEMU_MODULE_DIR=${fetched.moduleDir}`, fetched.binary]);
  });

  it('knows a wrapped build by the program and loader beside its wrapper, given by path too', async () => {
    const host = new FakeHost('q', { run: (argv) => (argv.includes('--version') ? { stdout: `${V11.line}\n` } : undefined) });
    const b = await pathBuild(host, wrapped.binary);
    expect(b.ownLoader).toEqual({ root: ROOT11, loader: wrapped.ownLoader!.loader, libraryDir: wrapped.ownLoader!.libraryDir, program: wrapped.ownLoader!.program });
    // Without the reason a fetch measured, the report still says why in general terms.
    expect(launchGroups(b)[1]!.why).toMatch(/own loader and libraries, not this host's, because it was built for a newer glibc than this host has/);
    const fetchedOne = await pathBuild(host, wrapped.binary, wrapped.origin, '1:11.1.3+ds-2~bpo13+1', wrapped.ownLoader!.why);
    expect(fetchedOne.ownLoader).toEqual(wrapped.ownLoader);
  });

  it('refuses a path that does not run, saying why', async () => {
    const host = new FakeHost('q', { run: (argv) => (argv.includes('--version') ? { exitCode: 127, stderr: 'env: /x/usr/bin/qemu-system-x86_64: No such file or directory' } : { exitCode: 1 }) });
    await expect(pathBuild(host, '/x/usr/bin/qemu-system-x86_64')).rejects.toThrow(/^QEMU build \/x\/usr\/bin\/qemu-system-x86_64 on q does not run: env: .*No such file or directory; give the path of a working qemu-system-x86_64, or --qemu system$/);
  });
});

describe('programArgv', () => {
  it('names the program env runs, so the lab records and the batch sampler see QEMU, not env', () => {
    const argv = [...buildArgv(fetched), '-name', 'guest=g3-source,debug-threads=on'];
    expect(programArgv(argv)[0]).toBe(fetched.binary);
    expect(programArgv(['qemu-system-x86_64', '-m', '1'])).toEqual(['qemu-system-x86_64', '-m', '1']);
    expect(qemuGuestLabel(argv)).toBe('g3-source');
  });

  it("names the real program of a wrapped build from its /proc cmdline (the loader's, after the wrapper's exec), so the batch sampler still sees a guest's QEMU", () => {
    const o = wrapped.ownLoader!;
    const cmdline = [o.loader, '--library-path', o.libraryDir, '--argv0', wrapped.binary, o.program, '-L', wrapped.dataDirs[0]!, '-name', 'guest=g0-destination,debug-threads=on', '-qmp', 'unix:/run/miglab/mlab/sock/g0-dst-x/dst.qmp,server=on,wait=off'];
    expect(programArgv(cmdline)[0]).toBe(o.program);
    expect(programArgv(['/lib64/ld-linux-x86-64.so.2', '--inhibit-cache', '/usr/bin/true'])).toEqual(['/usr/bin/true']);
    expect(qemuGuestLabel(cmdline)).toBe('g0-destination');
    // The same process as pgrep -f sees it on a host from a hosts file.
    const pattern = new RegExp(qemuProcessPattern('/run/miglab/mlab/sock'));
    expect(pattern.test(cmdline.join(' '))).toBe(true);
    expect(pattern.test('qemu-system-x86_64 -name guest=g0-source -qmp unix:/run/miglab/mlab/sock/g0/src.qmp')).toBe(true);
    expect(pattern.test(`${o.loader} --library-path ${o.libraryDir} /usr/bin/sleep /run/miglab/mlab/sock/x`)).toBe(false);
  });
});
