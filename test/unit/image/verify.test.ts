// A cached image is checked against the sizes and sha256 its build recorded in image.json, so a
// truncated or altered file is found before a guest boots from it. (A guest booted from an
// initrd truncated to half still comes up, without /proc, /sys or iperf3's libraries, and says
// only "MIGLAB-READY ip=none": the damage has to be caught here.) The images are small fakes in a
// temporary cache, in the layout the builder writes.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, truncateSync, unlinkSync, utimesSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  IMAGE_FIX_COMMAND,
  ImageDamagedError,
  assertImageIntact,
  describeImage,
  formatImageReport,
  readImage,
  verifyImage,
  type ImageInfo,
} from '../../../src/image/build.js';
import type { ImageInputs } from '../../../src/image/inputs.js';

const root = mkdtempSync(join(tmpdir(), 'miglab-image-verify-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const inputs: ImageInputs = {
  recipeVersion: 3,
  kernel: { metaPackage: 'linux-image-amd64', package: 'linux-image-6.1.0-57-amd64', version: '6.1.192-3' },
  packages: { 'busybox-static': '1:1.35.0-4' },
  sources: { 'vm-images/init': 'ab'.repeat(32) },
  hostFiles: {},
  modules: ['virtio_ring'],
  agentCflags: ['-static'],
};

const SIZES = { vmlinux: 96 * 1024, vmlinuz: 40 * 1024, 'initrd.img': 64 * 1024, 'miglab-agent': 8 * 1024 } as const;
let n = 0;

/** A fake image in its own cache directory; `record: false` writes image.json as recipe 2 did. */
async function fakeImage(record = true): Promise<ImageInfo> {
  const hash = (++n).toString(16).padStart(16, '0');
  const dir = join(root, hash);
  mkdirSync(dir);
  const files: Record<string, { bytes: number; sha256: string }> = {};
  for (const [name, bytes] of Object.entries(SIZES)) {
    const data = Buffer.alloc(bytes, name.charCodeAt(0) + n);
    writeFileSync(join(dir, name), data);
    files[name] = { bytes, sha256: createHash('sha256').update(data).digest('hex') };
  }
  const stored = {
    hash,
    kernelVersion: '6.1.0-57-amd64',
    kernelBoot: 'pvh',
    inputs,
    modules: ['virtio_ring'],
    unresolvedSoftdeps: [],
    builtAt: '2026-12-02T04:44:14.421Z',
    buildMs: 11400,
    kernelBytes: SIZES.vmlinux,
    initrdBytes: SIZES['initrd.img'],
    sizeBytes: SIZES.vmlinux + SIZES['initrd.img'],
    ...(record ? { files } : {}),
  };
  writeFileSync(join(dir, 'image.json'), JSON.stringify(stored));
  const info = await readImage(dir);
  if (!info) throw new Error(`fake image in ${dir} did not read back`);
  return info;
}

describe('verifyImage', () => {
  it('passes an intact image', async () => {
    const info = await fakeImage();
    expect(info.files?.['initrd.img']).toEqual({ bytes: SIZES['initrd.img'], sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(await verifyImage(info)).toBeUndefined();
    expect(await assertImageIntact(info)).toBe(info);
    expect(describeImage(info)).not.toMatch(/DAMAGED/);
  });

  it('finds a truncated initrd by its size, names it, and ends with the fix', async () => {
    const info = await fakeImage();
    await verifyImage(info); // hashed and remembered while intact: the size check must still see the damage
    truncateSync(info.initrdPath, SIZES['initrd.img'] / 2);
    const damage = await verifyImage(info);
    expect(damage).toMatchObject({
      hash: info.hash,
      path: info.initrdPath,
      problem: 'size',
      expectedBytes: 65536,
      actualBytes: 32768,
      what: 'initrd.img is 32768 bytes, built as 65536 (truncated)',
    });
    expect(damage!.message).toBe(`guest image ${info.hash} in ${info.dir} is damaged: initrd.img is 32768 bytes, built as 65536 (truncated); rebuild it with: miglab image build --force`);
    expect(damage!.message.endsWith(IMAGE_FIX_COMMAND)).toBe(true);
    await expect(assertImageIntact(info)).rejects.toThrow(ImageDamagedError);
    await expect(assertImageIntact(info)).rejects.toMatchObject({ code: 'IMAGE_BUILD', damage: { problem: 'size' } });
    expect(describeImage(info, damage).split('\n')[0]).toBe(`DAMAGED: ${damage!.message}`);
  });

  it('finds a file of the right size with other content by its sha256', async () => {
    const info = await fakeImage();
    expect(await verifyImage(info)).toBeUndefined();
    const kernel = readFileSync(info.kernelPath);
    kernel.writeUInt8(kernel.readUInt8(1000) ^ 0xff, 1000);
    writeFileSync(info.kernelPath, kernel);
    utimesSync(info.kernelPath, new Date(), new Date(Date.now() + 5000)); // a new mtime, as any write gives
    expect(await verifyImage(info)).toMatchObject({ problem: 'sha256', path: info.kernelPath, what: expect.stringMatching(/^vmlinux has sha256 [0-9a-f]{16}\.\.\., built as [0-9a-f]{16}\.\.\. \(same size, other content\)$/) });
  });

  it('keeps the hashes of an intact image beside it, and trusts them while the files keep their identity', async () => {
    const info = await fakeImage();
    expect(await verifyImage(info)).toBeUndefined();
    const saved = JSON.parse(readFileSync(join(info.dir, '.verified'), 'utf8')) as Record<string, string>;
    expect(Object.keys(saved)).toHaveLength(4);
    expect(Object.values(saved)).toEqual(expect.arrayContaining([info.files!['initrd.img']!.sha256]));
    // A later process reads them instead of hashing: what the file says is what it goes by.
    const st = statSync(info.initrdPath);
    const key = Object.keys(saved).find((k) => k.startsWith(`${st.dev}\0${st.ino}\0`))!;
    writeFileSync(join(info.dir, '.verified'), JSON.stringify({ ...saved, [key]: '0'.repeat(64) }));
    expect(await verifyImage(info)).toMatchObject({ problem: 'sha256', path: info.initrdPath });
    // The same files reached by another path (a cache linked from a second checkout) go by the
    // same saved hashes, not hashed again.
    const link = `${info.dir}-link`;
    symlinkSync(info.dir, link);
    const via = JSON.parse(JSON.stringify(info).replaceAll(JSON.stringify(info.dir).slice(1, -1), link)) as typeof info;
    expect(await verifyImage(via)).toMatchObject({ problem: 'sha256', path: join(link, 'initrd.img') });
  });

  it('finds a missing agent, and an image.json that recorded nothing', async () => {
    const info = await fakeImage();
    unlinkSync(info.agentPath);
    expect(await verifyImage(info)).toMatchObject({ problem: 'missing', path: info.agentPath, what: 'miglab-agent is missing' });
    const old = await fakeImage(false);
    expect(await verifyImage(old)).toMatchObject({
      problem: 'unrecorded',
      path: join(old.dir, 'image.json'),
      what: 'image.json records no size and sha256 for vmlinux (built by an older miglab), so the image cannot be checked',
    });
  });

  it('makes `image info` say plainly that the image is damaged', async () => {
    const info = await fakeImage();
    truncateSync(info.initrdPath, 0);
    const damage = await verifyImage(info);
    const text = formatImageReport({ hash: info.hash, inputs, image: info, damage, cached: [info] });
    expect(text.split('\n')[0]).toBe(`DAMAGED: guest image ${info.hash} in ${info.dir} is damaged: initrd.img is 0 bytes, built as 65536 (truncated); rebuild it with: ${IMAGE_FIX_COMMAND}`);
    expect(formatImageReport({ hash: info.hash, inputs, image: info, damage: undefined, cached: [info] })).not.toMatch(/DAMAGED/);
  });
});
