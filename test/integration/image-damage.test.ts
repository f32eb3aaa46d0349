// A damaged image in the cache is rebuilt, never handed out. Works on a copy of the cache (the
// kernel download and today's image) in a temporary directory, so the shared cache that other
// runs boot from is never touched: the copy's initrd is truncated, as a full disk or an
// interrupted copy leaves it, and buildImage must say why it rebuilds and return a sound image.
import { cpSync, mkdtempSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { buildImage, findImage, verifyImage } from '../../src/image/build.js';
import { defaultCacheDir } from '../../src/image/inputs.js';

const work = mkdtempSync(join(tmpdir(), 'miglab-image-damage-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('a damaged cached image', () => {
  it('is rebuilt, with a log line that says why', async () => {
    const shared = (await findImage()) ?? (await buildImage());
    const cacheDir = join(work, 'cache');
    cpSync(join(defaultCacheDir(), 'downloads'), join(cacheDir, 'downloads'), { recursive: true });
    cpSync(shared.dir, join(cacheDir, basename(shared.dir)), { recursive: true });
    const copy = (await findImage({ cacheDir }))!;
    expect(copy.hash).toBe(shared.hash);
    expect(await verifyImage(copy)).toBeUndefined();

    const fullBytes = copy.files!['initrd.img']!.bytes;
    truncateSync(copy.initrdPath, Math.floor(fullBytes / 2));
    expect(await verifyImage(copy)).toMatchObject({ problem: 'size', path: copy.initrdPath });

    const logs: string[] = [];
    const rebuilt = await buildImage({ cacheDir, log: (l) => logs.push(l) });
    expect(logs[0]).toBe(`rebuilding image ${copy.hash}: initrd.img is ${Math.floor(fullBytes / 2)} bytes, built as ${fullBytes} (truncated)`);
    expect(rebuilt.dir).toBe(copy.dir);
    expect(await verifyImage(rebuilt)).toBeUndefined();
    expect(rebuilt.files!['initrd.img']!.bytes).toBe(fullBytes); // the initramfs is reproducible
    // And the next call takes it from the cache again.
    const again: string[] = [];
    expect((await buildImage({ cacheDir, log: (l) => again.push(l) })).builtAt).toBe(rebuilt.builtAt);
    expect(again).toEqual([]);
  }, 180_000);
});
