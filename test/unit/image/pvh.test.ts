// PVH boot saves seconds per boot under TCG; these check we find the kernel payload where the
// boot protocol puts it and only choose PVH when the kernel has the entry note.
import { gzipSync } from 'node:zlib';
import { bzImagePayload, hasPvhEntry, pvhKernel } from '../../../src/image/pvh.js';

function fakeBzImage(payload: Buffer, setupSects = 3): Buffer {
  const setup = Buffer.alloc((setupSects + 1) * 512);
  setup[0x1f1] = setupSects;
  setup.write('HdrS', 0x202, 'latin1');
  const payloadOffset = 16;
  setup.writeUInt32LE(payloadOffset, 0x248);
  setup.writeUInt32LE(payload.length, 0x24c);
  return Buffer.concat([setup, Buffer.alloc(payloadOffset, 0xee), payload, Buffer.from('trailer')]);
}

/** A minimal ELF64 with one `.notes` section holding the given (name, type) notes. */
function fakeElfWithNotes(notes: [string, number][]): Buffer {
  const body = Buffer.concat(
    notes.map(([name, type]) => {
      const n = Buffer.from(`${name}\0`);
      const h = Buffer.alloc(12);
      h.writeUInt32LE(n.length, 0);
      h.writeUInt32LE(4, 4);
      h.writeUInt32LE(type, 8);
      return Buffer.concat([h, n, Buffer.alloc((4 - (n.length % 4)) % 4), Buffer.alloc(4, 1)]);
    }),
  );
  const shstrtab = Buffer.from('\0.notes\0.shstrtab\0');
  const header = Buffer.alloc(64);
  header.writeUInt32BE(0x7f454c46, 0);
  header[4] = 2;
  header[5] = 1;
  const shoff = 64 + body.length + shstrtab.length;
  header.writeBigUInt64LE(BigInt(shoff), 0x28);
  header.writeUInt16LE(64, 0x3a);
  header.writeUInt16LE(3, 0x3c);
  header.writeUInt16LE(2, 0x3e);
  const sh = (name: number, off: number, size: number) => {
    const b = Buffer.alloc(64);
    b.writeUInt32LE(name, 0);
    b.writeBigUInt64LE(BigInt(off), 24);
    b.writeBigUInt64LE(BigInt(size), 32);
    return b;
  };
  return Buffer.concat([header, body, shstrtab, sh(0, 0, 0), sh(1, 64, body.length), sh(8, 64 + body.length, shstrtab.length)]);
}

describe('PVH kernel', () => {
  it('finds the payload through the setup header and names its compression', () => {
    const xz = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2, 3]);
    const { payload, format } = bzImagePayload(fakeBzImage(xz));
    expect(format).toBe('xz');
    expect(payload.equals(xz)).toBe(true);
    expect(() => bzImagePayload(Buffer.alloc(1024))).toThrow(/not a bzImage/);
  });

  it('recognises the PVH entry note (Xen, type 18) only', () => {
    expect(hasPvhEntry(fakeElfWithNotes([['GNU', 3], ['Xen', 18]]))).toBe(true);
    expect(hasPvhEntry(fakeElfWithNotes([['Xen', 6], ['GNU', 18]]))).toBe(false);
  });

  it('unpacks a gzip payload, and refuses a kernel without PVH', async () => {
    const withPvh = fakeElfWithNotes([['Xen', 18]]);
    const ok = await pvhKernel(fakeBzImage(gzipSync(withPvh)));
    expect('elf' in ok && ok.elf.equals(withPvh)).toBe(true);
    const without = await pvhKernel(fakeBzImage(gzipSync(fakeElfWithNotes([['Xen', 6]]))));
    expect(without).toEqual({ reason: expect.stringMatching(/no PVH entry/) });
  });
});
