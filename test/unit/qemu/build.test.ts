// Naming a QEMU build (--qemu), and how a build unpacked from Debian's packages is launched: its
// modules through env (so the report's line can be retyped), its firmware through -L.
import { describe, expect, it } from '@jest/globals';
import { buildArgv, choiceText, launchGroups, parseQemuChoice, pathBuild, treeOf, type QemuBuild } from '../../../src/qemu/build.js';
import { FakeHost } from '../../support/fake-host.js';
import { programArgv } from '../../../src/util/explained-command.js';
import { qemuGuestLabel } from '../../../src/batch/sampling.js';

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
    expect(treeOf(`${ROOT}/usr/bin/qemu-system-x86_64`)).toEqual({ root: ROOT, dataDirs: fetched.dataDirs, moduleDir: fetched.moduleDir });
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
  });
});

describe('pathBuild', () => {
  it('asks the build its version, with its own tree in force', async () => {
    const host = new FakeHost('q', { run: (argv) => (argv.includes('--version') ? { stdout: `${V10.line}\nCopyright\n` } : undefined) });
    const b = await pathBuild(host, fetched.binary);
    expect(b.release).toEqual(V10);
    expect(b.dataDirs).toEqual(fetched.dataDirs);
    const asked = host.ran.find((a) => a.includes('--version'))!;
    expect(asked.slice(0, 3)).toEqual(['env', `QEMU_MODULE_DIR=${fetched.moduleDir}`, fetched.binary]);
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
});
