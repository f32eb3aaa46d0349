// The image cache is only right if the hash moves exactly when an input does: a stale hash boots
// yesterday's agent, an unstable one rebuilds (and re-downloads nothing, but takes 20 s) every run.
import { cpSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  GUEST_MODULES,
  SOURCE_FILES,
  canonicalJson,
  hashSourceFiles,
  imageHash,
  parseAptCandidate,
  parseAptDepends,
  parseDpkgQuery,
  parseLdd,
  type ImageInputs,
} from '../../../src/image/inputs.js';
import { findRepoDir } from '../../../src/util/repo.js';

const base: ImageInputs = {
  recipeVersion: 1,
  kernel: { metaPackage: 'linux-image-amd64', package: 'linux-image-6.1.0-56-amd64', version: '6.1.192-2' },
  packages: { 'busybox-static': '1:1.35.0-4+deb12u1+b1', iperf3: '3.12-1+deb12u2' },
  sources: { [SOURCE_FILES.agent]: 'a'.repeat(64), [SOURCE_FILES.init]: 'b'.repeat(64) },
  hostFiles: { '/bin/busybox': 'c'.repeat(64) },
  modules: [...GUEST_MODULES],
  agentCflags: ['-static', '-O2'],
};

describe('image hash', () => {
  it('is 16 hex digits and the same for the same inputs, whatever the key order', () => {
    const reordered: ImageInputs = {
      agentCflags: base.agentCflags,
      modules: base.modules,
      hostFiles: base.hostFiles,
      sources: { [SOURCE_FILES.init]: 'b'.repeat(64), [SOURCE_FILES.agent]: 'a'.repeat(64) },
      packages: { iperf3: '3.12-1+deb12u2', 'busybox-static': '1:1.35.0-4+deb12u1+b1' },
      kernel: { version: '6.1.192-2', package: 'linux-image-6.1.0-56-amd64', metaPackage: 'linux-image-amd64' },
      recipeVersion: 1,
    };
    expect(imageHash(base)).toMatch(/^[0-9a-f]{16}$/);
    expect(imageHash(reordered)).toBe(imageHash(base));
    expect(canonicalJson(reordered)).toBe(canonicalJson(base));
  });

  it('changes when the kernel, a package, the recipe or the module list changes', () => {
    const h = imageHash(base);
    expect(imageHash({ ...base, kernel: { ...base.kernel, version: '6.1.192-3' } })).not.toBe(h);
    expect(imageHash({ ...base, packages: { ...base.packages, iperf3: '3.13' } })).not.toBe(h);
    expect(imageHash({ ...base, recipeVersion: 2 })).not.toBe(h);
    expect(imageHash({ ...base, modules: [...base.modules, 'virtio_scsi'] })).not.toBe(h);
    expect(imageHash({ ...base, modules: [...base.modules].reverse() })).not.toBe(h);
  });

  it('changes when the agent source changes, and only then', async () => {
    const repo = findRepoDir();
    const dir = mkdtempSync(join(tmpdir(), 'miglab-inputs-'));
    try {
      mkdirSync(join(dir, 'vm-images'));
      cpSync(join(repo, 'vm-images', 'agent'), join(dir, 'vm-images', 'agent'), { recursive: true });
      cpSync(join(repo, SOURCE_FILES.init), join(dir, SOURCE_FILES.init));
      const before = await hashSourceFiles(dir);
      expect(await hashSourceFiles(dir)).toEqual(before);
      expect(imageHash({ ...base, sources: before })).toBe(imageHash({ ...base, sources: await hashSourceFiles(dir) }));
      writeFileSync(join(dir, SOURCE_FILES.agent), '/* changed */\n', { flag: 'a' });
      const after = await hashSourceFiles(dir);
      expect(after[SOURCE_FILES.init]).toBe(before[SOURCE_FILES.init]);
      expect(imageHash({ ...base, sources: after })).not.toBe(imageHash({ ...base, sources: before }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('tool output parsers', () => {
  it('reads the kernel package from apt-cache depends and its candidate from apt-cache policy', () => {
    expect(parseAptDepends('linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n')).toBe('linux-image-6.1.0-56-amd64');
    expect(parseAptDepends('linux-image-amd64\n')).toBeUndefined();
    const policy = 'linux-image-6.1.0-56-amd64:\n  Installed: (none)\n  Candidate: 6.1.192-2\n  Version table:\n';
    expect(parseAptCandidate(policy)).toBe('6.1.192-2');
    expect(parseAptCandidate('x:\n  Installed: (none)\n  Candidate: (none)\n')).toBeUndefined();
  });

  it('reads ldd output: libraries and the loader, not the vdso', () => {
    const out = [
      '\tlinux-vdso.so.1 (0x00007ffd)',
      '\tlibiperf.so.0 => /lib/x86_64-linux-gnu/libiperf.so.0 (0x00007f17)',
      '\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f17)',
      '\t/lib64/ld-linux-x86-64.so.2 (0x00007f17)',
    ].join('\n');
    expect(parseLdd(out)).toEqual(['/lib/x86_64-linux-gnu/libiperf.so.0', '/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2']);
  });

  it('keeps only installed packages from dpkg-query', () => {
    const v = parseDpkgQuery('busybox-static\t1:1.35\tinstalled\niperf3\t3.12\tconfig-files\nlibc6-dev:amd64\t2.36\tinstalled\n');
    expect([...v.entries()]).toEqual([
      ['busybox-static', '1:1.35'],
      ['libc6-dev', '2.36'],
    ]);
  });
});
