// Named builds from Debian's backports: which version a series is, where it is cached, what the
// cache holds. (The fetch itself runs apt-get against Debian's archive: the integration suite's
// set-up does it, `make qemu-builds`.)
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { cacheDirName, cachedBuilds, fetchSeries, parseMadison, seriesOfDebianVersion } from '../../../src/qemu/fetch.js';
import { FakeHost } from '../../support/fake-host.js';

const tmp = mkdtempSync(join(tmpdir(), 'miglab-qemu-cache-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('versions', () => {
  it("reads apt-cache madison's lines and a package version's series", () => {
    const out = ' qemu-system-x86 | 1:10.0.2+ds-2+deb13u1~bpo12+1 | http://deb.debian.org/debian bookworm-backports/main amd64 Packages\n';
    expect(parseMadison(out)).toEqual(['1:10.0.2+ds-2+deb13u1~bpo12+1']);
    expect(seriesOfDebianVersion('1:10.0.2+ds-2+deb13u1~bpo12+1')).toBe('10.0');
    expect(seriesOfDebianVersion('1.16.3-2~bpo12+1')).toBe('1.16');
    expect(seriesOfDebianVersion('garbage')).toBeUndefined();
  });

  it('names a cache directory without the characters some tools mind', () => {
    expect(cacheDirName('1:10.0.2+ds-2+deb13u1~bpo12+1')).toBe('1_10.0.2+ds-2+deb13u1_bpo12+1');
  });
});

describe('cachedBuilds', () => {
  it('lists the builds with a build.json, newest first, and skips what is not one', async () => {
    const put = (dir: string, v: string) => {
      mkdirSync(join(tmp, dir), { recursive: true });
      writeFileSync(join(tmp, dir, 'build.json'), JSON.stringify({ series: seriesOfDebianVersion(v), debianVersion: v, suite: 'bookworm-backports', versionLine: 'x', packages: [], fetchedAt: '2026-12-03T00:00:00Z', bytes: 1 }));
    };
    put(cacheDirName('1:9.2.1+ds-1~bpo12+1'), '1:9.2.1+ds-1~bpo12+1');
    put(cacheDirName('1:10.0.2+ds-2+deb13u1~bpo12+1'), '1:10.0.2+ds-2+deb13u1~bpo12+1');
    mkdirSync(join(tmp, 'apt/lists'), { recursive: true });
    mkdirSync(join(tmp, '1_10.1.0.partial-123'), { recursive: true });
    const builds = await cachedBuilds(tmp);
    expect(builds.map((b) => b.series)).toEqual(['10.0', '9.2']);
    expect(builds[0]!.binary).toBe(join(tmp, '1_10.0.2+ds-2+deb13u1_bpo12+1', 'root/usr/bin/qemu-system-x86_64'));
    expect(await cachedBuilds(join(tmp, 'none'))).toEqual([]);
  });
});

describe('fetchSeries', () => {
  it('interrupted (Ctrl-C) mid-download: says so, not "cannot fetch", and leaves no half-fetched folder in the cache', async () => {
    const cache = join(tmp, 'interrupted');
    const ctrlC = new AbortController();
    const host = new FakeHost('local', {
      run: (argv) => {
        if (argv.includes('madison')) return { stdout: ' qemu-system-x86 | 1:10.0.2+ds-2+deb13u1~bpo12+1 | http://deb.debian.org/debian bookworm-backports/main amd64 Packages\n' };
        if (!argv.includes('download')) return undefined;
        ctrlC.abort(new Error('received SIGINT'));
        return { exitCode: 130 };
      },
    });
    await expect(fetchSeries(host, '10.0', { cacheDir: cache, signal: ctrlC.signal })).rejects.toMatchObject({ code: 'ABORTED', message: 'fetching QEMU 10.0 was interrupted' });
    expect(readdirSync(cache)).toEqual(['apt']);
  });
});
