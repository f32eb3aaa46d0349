// A cpio "newc" archive writer for the guest's initramfs. Writing the archive ourselves (instead of
// `find | cpio -o`) makes it reproducible (fixed owners and times, sorted entries), lets it hold
// /dev/console without mknod on the build host, and drops the cpio package from the dependencies.
// Format: the kernel's Documentation/driver-api/early-userspace/buffer-format.rst.
import { MiglabError } from '../errors.js';

type Entry =
  | { kind: 'dir'; mode: number }
  | { kind: 'file'; mode: number; data: Buffer }
  | { kind: 'symlink'; target: string }
  | { kind: 'chardev'; mode: number; major: number; minor: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

export class CpioArchive {
  private readonly entries = new Map<string, Entry>();

  /** Paths are absolute inside the archive ("/bin/sh"); parents are created as 0755 dirs. */
  addDir(path: string, mode = 0o755): this {
    return this.put(path, { kind: 'dir', mode });
  }
  addFile(path: string, data: Buffer, mode = 0o644): this {
    return this.put(path, { kind: 'file', mode, data });
  }
  addSymlink(path: string, target: string): this {
    return this.put(path, { kind: 'symlink', target });
  }
  addCharDevice(path: string, major: number, minor: number, mode = 0o600): this {
    return this.put(path, { kind: 'chardev', mode, major, minor });
  }

  has(path: string): boolean {
    return this.entries.has(clean(path));
  }

  get paths(): string[] {
    return [...this.entries.keys()].sort();
  }

  private put(path: string, entry: Entry): this {
    const p = clean(path);
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      const existing = this.entries.get(parent);
      if (!existing) this.entries.set(parent, { kind: 'dir', mode: 0o755 });
      else if (existing.kind !== 'dir') throw new MiglabError('IMAGE_BUILD', `initramfs: ${parent} is not a directory`);
    }
    const old = this.entries.get(p);
    if (old && !(old.kind === 'dir' && entry.kind === 'dir')) throw new MiglabError('IMAGE_BUILD', `initramfs: ${p} added twice`);
    this.entries.set(p, entry);
    return this;
  }

  /** The archive bytes (uncompressed). Sorted paths put every directory before its contents. */
  toBuffer(): Buffer {
    const chunks: Buffer[] = [];
    let ino = 1;
    for (const path of this.paths) {
      const e = this.entries.get(path)!;
      const data = e.kind === 'file' ? e.data : e.kind === 'symlink' ? Buffer.from(e.target) : Buffer.alloc(0);
      const mode =
        e.kind === 'dir'
          ? S_IFDIR | e.mode
          : e.kind === 'file'
            ? S_IFREG | e.mode
            : e.kind === 'symlink'
              ? S_IFLNK | 0o777
              : S_IFCHR | e.mode;
      const rdev = e.kind === 'chardev' ? [e.major, e.minor] : [0, 0];
      chunks.push(...record(path, { ino: ino++, mode, nlink: e.kind === 'dir' ? 2 : 1, rdev: rdev as [number, number] }, data));
    }
    chunks.push(...record('TRAILER!!!', { ino: 0, mode: 0, nlink: 1, rdev: [0, 0] }, Buffer.alloc(0)));
    return Buffer.concat(chunks);
  }
}

function clean(path: string): string {
  const p = path.replace(/^\/+/, '').replace(/\/+$/, '');
  if (!p || p.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new MiglabError('IMAGE_BUILD', `initramfs: bad path "${path}"`);
  }
  return p;
}

function pad4(n: number): Buffer {
  return Buffer.alloc((4 - (n % 4)) % 4);
}

function record(name: string, h: { ino: number; mode: number; nlink: number; rdev: [number, number] }, data: Buffer): Buffer[] {
  const nameBytes = Buffer.from(`${name}\0`);
  const fields = [h.ino, h.mode, 0, 0, h.nlink, 0, data.length, 0, 0, h.rdev[0], h.rdev[1], nameBytes.length, 0];
  const header = Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, '0')).join('')}`, 'ascii');
  return [header, nameBytes, pad4(header.length + nameBytes.length), data, pad4(data.length)];
}
