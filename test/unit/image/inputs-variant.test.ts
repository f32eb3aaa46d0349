// The container-host image (variant chost) is named by the same hash scheme as the base image,
// from more inputs: CRIU (its package version, the binary and every library ldd lists), the
// modules CRIU and the control port need, and the workload's source. The base image's inputs must
// stay exactly what they were, with no `variant` key, so every base image already in a cache keeps
// its hash. imageInputs runs against a scripted host (dpkg-query, apt-cache, ldd) whose libraries
// are files of this test; the programs themselves are this machine's (`make deps` installs them).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunResult } from '../../../src/host/host.js';
import {
  CHOST_MODULES,
  CHOST_SOURCE_FILES,
  CRIU_PATH,
  GUEST_MODULES,
  IPERF3_PATH,
  SOURCE_FILES,
  canonicalJson,
  imageHash,
  imageInputs,
  sha256,
  variantOf,
  type ImageInputs,
} from '../../../src/image/inputs.js';
import { findRepoDir } from '../../../src/util/repo.js';
import { runOnlyHost } from '../../support/fake-host.js';

let dir: string;
let libs: { iperf: string; criu: string; libc: string; loader: string };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'miglab-inputs-variant-'));
  const file = (name: string) => {
    const path = join(dir, name);
    writeFileSync(path, `the bytes of ${name}\n`);
    return path;
  };
  libs = { iperf: file('libiperf.so.0'), criu: file('libprotobuf-c.so.1'), libc: file('libc.so.6'), loader: file('ld-linux-x86-64.so.2') };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What the scripted host was asked, and its answers: packages installed at fixed versions, ldd listing this test's files. */
function scriptedHost(asked: string[][]) {
  const versions: Record<string, string> = { 'busybox-static': '1:1.35.0-4+b3', iperf3: '3.12-1+deb12u2', gcc: '4:12.2.0-3', 'libc6-dev': '2.36-9+deb12u13', criu: '3.17.1-2+deb12u2' };
  const ldd = (lib: string) => [`\tlinux-vdso.so.1 (0x00007ffd)`, `\t${lib.split('/').pop()} => ${lib} (0x00007f17)`, `\tlibc.so.6 => ${libs.libc} (0x00007f17)`, `\t${libs.loader} (0x00007f17)`].join('\n');
  return runOnlyHost(
    'fake',
    async (argv): Promise<RunResult> => {
      asked.push([...argv]);
      const out = (stdout: string): RunResult => ({ argv, exitCode: 0, stdout, stderr: '', durationMs: 1 });
      if (argv[0] === 'dpkg-query') return out(argv.slice(4).map((p) => `${p}\t${versions[p] ?? ''}\tinstalled\n`).join(''));
      if (argv[0] === 'apt-cache' && argv[1] === 'depends') return out('linux-image-amd64\n  Depends: linux-image-6.1.0-57-amd64\n');
      if (argv[0] === 'apt-cache' && argv[1] === 'policy') return out(`${argv[2]}:\n  Installed: (none)\n  Candidate: 6.1.158-1\n`);
      if (argv[0] === 'ldd' && argv[1] === IPERF3_PATH) return out(ldd(libs.iperf));
      if (argv[0] === 'ldd' && argv[1] === CRIU_PATH) return out(ldd(libs.criu));
      throw new Error(`the scripted host was not told how to answer \`${argv.join(' ')}\``);
    },
    async (program) => `/usr/bin/${program}`,
  );
}

describe('imageInputs per variant', () => {
  let base: ImageInputs;
  let chost: ImageInputs;
  const asked: { base: string[][]; chost: string[][] } = { base: [], chost: [] };

  beforeAll(async () => {
    const cacheDir = join(dir, 'cache');
    base = await imageInputs({ host: scriptedHost(asked.base), cacheDir });
    chost = await imageInputs({ host: scriptedHost(asked.chost), cacheDir, variant: 'chost' });
  });

  it('gives the base image no variant key and none of the container host\'s inputs', () => {
    expect(Object.keys(base).sort()).toEqual(['agentCflags', 'hostFiles', 'kernel', 'modules', 'packages', 'recipeVersion', 'sources']);
    expect(canonicalJson(base)).not.toContain('"variant"');
    expect(variantOf(base)).toBe('base');
    expect(Object.keys(base.packages)).not.toContain('criu');
    expect(Object.keys(base.hostFiles)).not.toContain(CRIU_PATH);
    expect(Object.keys(base.hostFiles)).not.toContain(libs.criu);
    expect(Object.keys(base.sources).sort()).toEqual(Object.values(SOURCE_FILES).sort());
    expect(base.modules).toEqual([...GUEST_MODULES]);
    // Nobody asked about criu for the base image.
    expect(asked.base.flat()).not.toContain('criu');
    expect(asked.base.flat()).not.toContain(CRIU_PATH);
  });

  it('adds criu to the container host: the package version, the binary and the libraries ldd lists', async () => {
    expect(chost.variant).toBe('chost');
    expect(variantOf(chost)).toBe('chost');
    expect(chost.packages.criu).toBe('3.17.1-2+deb12u2');
    expect(asked.chost).toContainEqual(['ldd', CRIU_PATH]);
    expect(chost.hostFiles[CRIU_PATH]).toBe(sha256(await readFile(CRIU_PATH)));
    expect(chost.hostFiles[libs.criu]).toBe(sha256(await readFile(libs.criu)));
    // Shared libraries are listed once, whichever program needed them first.
    expect(chost.hostFiles[libs.libc]).toBe(sha256(await readFile(libs.libc)));
    expect(chost.hostFiles[libs.loader]).toBeDefined();
    // Everything the base image has, the container host has too, at the same hash.
    for (const [file, hash] of Object.entries(base.hostFiles)) expect(chost.hostFiles[file]).toBe(hash);
    for (const [pkg, version] of Object.entries(base.packages)) expect(chost.packages[pkg]).toBe(version);
  });

  it('adds the workload\'s source, hashed from the repository', async () => {
    const rel = CHOST_SOURCE_FILES.workload;
    expect(chost.sources[rel]).toBe(sha256(await readFile(join(findRepoDir(), rel))));
    for (const [file, hash] of Object.entries(base.sources)) expect(chost.sources[file]).toBe(hash);
  });

  it('adds the container host\'s modules after the guest\'s, crc32c_generic before nfnetlink and nf_tables', () => {
    expect(chost.modules).toEqual([...GUEST_MODULES, ...CHOST_MODULES]);
    const at = (m: string) => chost.modules.indexOf(m);
    // libcrc32c (nf_tables needs it) asks for "crc32c" by alias only: the generic one must be in first.
    expect(at('crc32c_generic')).toBeGreaterThanOrEqual(0);
    expect(at('crc32c_generic')).toBeLessThan(at('nfnetlink'));
    expect(at('nfnetlink')).toBeLessThan(at('nf_tables'));
    for (const m of ['unix_diag', 'inet_diag', 'netlink_diag', 'af_packet_diag', 'virtio_console', 'nfsv4']) expect(chost.modules).toContain(m);
  });

  it('gives the two variants different hashes, each stable for the same inputs', async () => {
    expect(imageHash(chost)).not.toBe(imageHash(base));
    expect(imageHash(chost)).toMatch(/^[0-9a-f]{16}$/);
    // The variant key alone moves the hash: the same inputs with and without it differ.
    const { variant: _variant, ...withoutKey } = chost;
    expect(imageHash(withoutKey)).not.toBe(imageHash(chost));
    const again = await imageInputs({ host: scriptedHost([]), cacheDir: join(dir, 'cache'), variant: 'chost' });
    expect(imageHash(again)).toBe(imageHash(chost));
  });
});

describe("imageInputs on this machine's own files", () => {
  // As every run asks (findImage): a host that shares this machine's files keeps dpkg-query's and
  // ldd's answers and each file's hash by the identity of the files behind them.
  const sharing = (asked: string[][]) => Object.assign(scriptedHost(asked), { sharesLocalFiles: true });

  it('asks dpkg-query and ldd once, hashes a file again only when it changed, and gives the same inputs', async () => {
    const cacheDir = join(dir, 'remembered');
    const first: string[][] = [];
    const before = await imageInputs({ host: sharing(first), cacheDir });
    expect(first.map((a) => a[0])).toEqual(expect.arrayContaining(['dpkg-query', 'ldd']));
    const second: string[][] = [];
    const again = await imageInputs({ host: sharing(second), cacheDir });
    expect(second.filter((a) => a[0] === 'dpkg-query' || a[0] === 'ldd')).toEqual([]);
    expect(again).toEqual(before);
    // A library rewritten (its size and times change): its new hash, the others as they were.
    writeFileSync(libs.iperf, 'the bytes of a newer libiperf.so.0\n');
    const changed = await imageInputs({ host: sharing([]), cacheDir });
    expect(changed.hostFiles[libs.iperf]).toBe(sha256(await readFile(libs.iperf)));
    expect(changed.hostFiles[libs.iperf]).not.toBe(before.hostFiles[libs.iperf]);
    expect(changed.hostFiles[libs.libc]).toBe(before.hostFiles[libs.libc]);
    expect(imageHash(changed)).not.toBe(imageHash(before));
  });
});

describe('a base image built before variants existed', () => {
  // The inputs recorded in image.json by a build of 2026-12-02 (before the chost variant), in the
  // cache directory named by their hash: today's hash of them must still be that name, or every
  // cached base image would be rebuilt for nothing.
  it('keeps its hash', () => {
    const inputs = JSON.parse(readFileSync(join(findRepoDir(), 'test/unit/image/fixtures/base-inputs-ea4b1485ef3f2882.json'), 'utf8')) as ImageInputs;
    expect(inputs.variant).toBeUndefined();
    expect(imageHash(inputs)).toBe('ea4b1485ef3f2882');
  });
});
