// The guest kernel as an uncompressed ELF that QEMU boots through its PVH entry point. A Debian
// bzImage is XZ-compressed, and under TCG the kernel's own XZ decompression costs seconds (about
// 5-12 s measured on a loaded 2-core machine, against about 2 s for the PVH ELF). Debian kernels
// are built with CONFIG_PVH, and QEMU (4.0 and later) boots a PVH ELF given to -kernel, with TCG
// or KVM alike. We take the payload out of the bzImage as the kernel's own setup header describes.
import { execa } from 'execa';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { MiglabError, MissingDependencyError } from '../errors.js';
import { elfSection } from './modinfo.js';

/** Where the compressed kernel sits in a bzImage, and how it is compressed. */
export function bzImagePayload(bz: Buffer): { payload: Buffer; format: 'xz' | 'gzip' | 'zstd' | 'lz4' | 'lzma' | 'lzo' | 'bzip2' | 'unknown' } {
  if (bz.length < 0x250 || bz.toString('latin1', 0x202, 0x206) !== 'HdrS') throw new MiglabError('IMAGE_BUILD', 'not a bzImage (no HdrS header)');
  const setupSects = bz[0x1f1] || 4;
  const payloadOffset = bz.readUInt32LE(0x248);
  const payloadLength = bz.readUInt32LE(0x24c);
  const start = (setupSects + 1) * 512 + payloadOffset;
  if (payloadLength === 0 || start + payloadLength > bz.length) throw new MiglabError('IMAGE_BUILD', 'bzImage payload is out of bounds');
  const payload = bz.subarray(start, start + payloadLength);
  const magic = payload.subarray(0, 6);
  const format = magic.equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))
    ? 'xz'
    : magic[0] === 0x1f && (magic[1] === 0x8b || magic[1] === 0x9e)
      ? 'gzip'
      : magic.readUInt32LE(0) === 0xfd2fb528
        ? 'zstd'
        : magic.readUInt32LE(0) === 0x184c2102
          ? 'lz4'
          : magic[0] === 0x5d && magic[1] === 0x00
            ? 'lzma'
            : magic[0] === 0x89 && magic.toString('latin1', 1, 4) === 'LZO'
              ? 'lzo'
              : magic.toString('latin1', 0, 3) === 'BZh'
                ? 'bzip2'
                : 'unknown';
  return { payload, format };
}

/** Whether an ELF kernel carries the Xen PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY). */
export function hasPvhEntry(elf: Buffer): boolean {
  const notes = elfSection(elf, '.notes');
  if (!notes) return false;
  for (let at = 0; at + 12 <= notes.length; ) {
    const namesz = notes.readUInt32LE(at);
    const descsz = notes.readUInt32LE(at + 4);
    const type = notes.readUInt32LE(at + 8);
    const name = notes.toString('latin1', at + 12, at + 12 + namesz).replace(/\0+$/, '');
    if (name === 'Xen' && type === 18) return true;
    at += 12 + Math.ceil(namesz / 4) * 4 + Math.ceil(descsz / 4) * 4;
  }
  return false;
}

/**
 * The PVH-bootable vmlinux inside a bzImage, or undefined (with the reason) when the kernel
 * cannot be booted that way; the caller then boots the bzImage.
 */
export async function pvhKernel(bz: Buffer, signal?: AbortSignal): Promise<{ elf: Buffer } | { reason: string }> {
  const { payload, format } = bzImagePayload(bz);
  let elf: Buffer;
  if (format === 'gzip') {
    elf = await promisify(gunzip)(payload);
  } else if (format === 'xz') {
    const r = await execa('xz', ['-dc', '--single-stream'], { input: payload, encoding: 'buffer', reject: false, cancelSignal: signal });
    if (r.failed && (r.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') throw new MissingDependencyError('xz', 'apt-get install -y xz-utils');
    if (r.exitCode !== 0) throw new MiglabError('IMAGE_BUILD', `xz could not decompress the kernel: ${Buffer.from(r.stderr).toString().trim()}`);
    elf = Buffer.from(r.stdout);
  } else {
    return { reason: `the kernel is ${format}-compressed; only xz and gzip are unpacked` };
  }
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46) return { reason: 'the unpacked kernel is not an ELF file' };
  if (!hasPvhEntry(elf)) return { reason: 'the kernel has no PVH entry point (CONFIG_PVH is off)' };
  return { elf };
}
