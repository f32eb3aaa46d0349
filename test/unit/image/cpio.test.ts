// The initramfs archive: the kernel unpacks it before init runs, so a malformed header means an
// unbootable guest. Checked against the format, and against GNU cpio when it is installed.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CpioArchive } from '../../../src/image/cpio.js';

function headers(buf: Buffer): { name: string; mode: number; size: number; rdev: [number, number] }[] {
  const out = [];
  let at = 0;
  for (;;) {
    expect(buf.toString('ascii', at, at + 6)).toBe('070701');
    const field = (i: number) => parseInt(buf.toString('ascii', at + 6 + i * 8, at + 14 + i * 8), 16);
    const namesize = field(11);
    const size = field(6);
    const name = buf.toString('utf8', at + 110, at + 110 + namesize - 1);
    out.push({ name, mode: field(1), size, rdev: [field(9), field(10)] as [number, number] });
    at = Math.ceil((at + 110 + namesize) / 4) * 4;
    at = Math.ceil((at + size) / 4) * 4;
    if (name === 'TRAILER!!!') break;
  }
  expect(at).toBe(buf.length);
  return out;
}

describe('cpio newc archive', () => {
  const archive = new CpioArchive()
    .addFile('/init', Buffer.from('#!/bin/sh\necho hi\n'), 0o755)
    .addFile('/bin/busybox', Buffer.from('BB'), 0o755)
    .addSymlink('/bin/sh', 'busybox')
    .addCharDevice('/dev/console', 5, 1)
    .addFile('/lib/modules/6.1.0/a.ko', Buffer.from('abc'));

  it('lists parents before children, ends with the trailer, and pads to 4 bytes', () => {
    const h = headers(archive.toBuffer());
    const names = h.map((e) => e.name);
    expect(names).toEqual(['bin', 'bin/busybox', 'bin/sh', 'dev', 'dev/console', 'init', 'lib', 'lib/modules', 'lib/modules/6.1.0', 'lib/modules/6.1.0/a.ko', 'TRAILER!!!']);
    expect(h.find((e) => e.name === 'dev/console')).toMatchObject({ mode: 0o020600, rdev: [5, 1] });
    expect(h.find((e) => e.name === 'bin/sh')).toMatchObject({ mode: 0o120777, size: 'busybox'.length });
    expect(h.find((e) => e.name === 'init')?.mode).toBe(0o100755);
  });

  it('is reproducible', () => {
    expect(archive.toBuffer().equals(archive.toBuffer())).toBe(true);
  });

  it('refuses paths that escape or collide', () => {
    expect(() => new CpioArchive().addFile('/../etc/passwd', Buffer.alloc(0))).toThrow(/bad path/);
    expect(() => new CpioArchive().addFile('/a', Buffer.alloc(0)).addFile('/a/b', Buffer.alloc(0))).toThrow(/not a directory/);
  });

  const cpio = ['/usr/bin/cpio', '/bin/cpio'].find((p) => existsSync(p));
  (cpio ? it : it.skip)('unpacks with GNU cpio', () => {
    const dir = mkdtempSync(join(tmpdir(), 'miglab-cpio-'));
    try {
      const out = join(dir, 'out');
      mkdirSync(out);
      const data = new CpioArchive().addFile('/init', Buffer.from('hello'), 0o755).addSymlink('/bin/sh', 'busybox').toBuffer();
      execFileSync(cpio!, ['-idm', '--quiet'], { cwd: out, input: data, stdio: ['pipe', 'pipe', 'pipe'] });
      expect(readFileSync(join(dir, 'out', 'init'), 'utf8')).toBe('hello');
      expect(readlinkSync(join(dir, 'out', 'bin', 'sh'))).toBe('busybox');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
