// Kernel module metadata without modinfo or depmod (neither is on the build host: no kmod).
// A .ko is an ELF64 object whose `.modinfo` section holds NUL-separated `key=value` strings
// (`depends=virtio,virtio_ring`, `softdep=pre: crc64`, `name=...`). From those we compute the
// closure of the modules the guest needs and an order in which `insmod` can load them.
import { MiglabError } from '../errors.js';

export interface ModInfo {
  /** The module's name, normalised (`-` -> `_`), as the kernel knows it. */
  readonly name: string;
  /** Hard dependencies (`depends=`), normalised. */
  readonly depends: readonly string[];
  /** `softdep=pre:` names: loaded before, if they name a module we have. */
  readonly softPre: readonly string[];
  readonly softPost: readonly string[];
  readonly vermagic?: string;
}

/** Module names are written with `-` or `_` interchangeably; the kernel uses `_`. */
export function normaliseModuleName(name: string): string {
  return name.trim().replace(/-/g, '_');
}

/** The raw bytes of the section called `name` in a little-endian ELF64 file, or undefined. */
export function elfSection(elf: Buffer, name: string): Buffer | undefined {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46) throw new MiglabError('IMAGE_BUILD', 'not an ELF file');
  if (elf[4] !== 2 || elf[5] !== 1) throw new MiglabError('IMAGE_BUILD', 'not a little-endian ELF64 file');
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  const shstrndx = elf.readUInt16LE(0x3e);
  if (shentsize < 64 || shoff + shnum * shentsize > elf.length || shstrndx >= shnum) {
    throw new MiglabError('IMAGE_BUILD', 'ELF section header table is out of bounds');
  }
  const header = (i: number) => {
    const at = shoff + i * shentsize;
    return {
      nameOff: elf.readUInt32LE(at),
      offset: Number(elf.readBigUInt64LE(at + 24)),
      size: Number(elf.readBigUInt64LE(at + 32)),
    };
  };
  const strtab = header(shstrndx);
  for (let i = 0; i < shnum; i++) {
    const h = header(i);
    const start = strtab.offset + h.nameOff;
    const end = elf.indexOf(0, start);
    if (end < 0 || elf.toString('latin1', start, end) !== name) continue;
    if (h.offset + h.size > elf.length) throw new MiglabError('IMAGE_BUILD', `ELF section ${name} is out of bounds`);
    return elf.subarray(h.offset, h.offset + h.size);
  }
  return undefined;
}

/** Parse the `key=value\0key=value\0...` strings of a .modinfo section. */
export function parseModinfoStrings(section: Buffer, fallbackName: string): ModInfo {
  const entries = section
    .toString('latin1')
    .split('\0')
    .filter((s) => s.includes('='));
  const values = (key: string) => entries.filter((e) => e.startsWith(`${key}=`)).map((e) => e.slice(key.length + 1));
  const list = (text: string) => text.split(/[,\s]+/).filter(Boolean).map(normaliseModuleName);
  const softPre: string[] = [];
  const softPost: string[] = [];
  for (const soft of values('softdep')) {
    // "pre: a b post: c": words after a "pre:"/"post:" marker belong to it.
    let into: string[] | undefined;
    for (const word of soft.split(/\s+/).filter(Boolean)) {
      if (word === 'pre:') into = softPre;
      else if (word === 'post:') into = softPost;
      else into?.push(normaliseModuleName(word));
    }
  }
  return {
    name: normaliseModuleName(values('name')[0] ?? fallbackName),
    depends: values('depends').flatMap(list),
    softPre,
    softPost,
    vermagic: values('vermagic')[0],
  };
}

/** ModInfo of a whole .ko file. */
export function readModinfo(ko: Buffer, fileName: string): ModInfo {
  const fallback = normaliseModuleName(fileName.replace(/^.*\//, '').replace(/\.ko$/, ''));
  const section = elfSection(ko, '.modinfo');
  if (!section) throw new MiglabError('IMAGE_BUILD', `${fileName} has no .modinfo section`);
  return parseModinfoStrings(section, fallback);
}

export interface LoadOrder {
  /** Every module to load, dependencies before their users. */
  readonly order: readonly string[];
  /** Soft dependencies that name no module we have (often crypto aliases): skipped. */
  readonly unresolvedSoftdeps: readonly string[];
}

/**
 * The closure of `wanted` under `depends=` (and `softdep=` where the name is a module we have),
 * in load order: a depth-first post-order, visiting in the order given, so the result is stable.
 * A wanted or depended-on module that `lookup` cannot find is an error; so is a cycle.
 */
export function loadOrder(wanted: readonly string[], lookup: (name: string) => ModInfo | undefined): LoadOrder {
  const order: string[] = [];
  const unresolved = new Set<string>();
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (raw: string, chain: readonly string[]) => {
    const name = normaliseModuleName(raw);
    const s = state.get(name);
    if (s === 'done') return;
    if (s === 'visiting') throw new MiglabError('IMAGE_BUILD', `module dependency cycle: ${[...chain, name].join(' -> ')}`);
    const info = lookup(name);
    if (!info) {
      const via = chain.length > 0 ? ` (needed by ${chain.join(' -> ')})` : '';
      throw new MiglabError('IMAGE_BUILD', `kernel module ${name} not found${via}`);
    }
    state.set(name, 'visiting');
    const next = [...chain, name];
    for (const pre of info.softPre) {
      if (lookup(pre)) visit(pre, next);
      else unresolved.add(`${name}:${pre}`);
    }
    for (const dep of info.depends) visit(dep, next);
    state.set(name, 'done');
    order.push(name);
    for (const post of info.softPost) {
      if (lookup(post)) visit(post, next);
      else unresolved.add(`${name}:${post}`);
    }
  };
  for (const w of wanted) visit(w, []);
  return { order, unresolvedSoftdeps: [...unresolved].sort() };
}

/**
 * One line per module of `wanted`: `name: closure...`, the closure in load order ending with the
 * module itself. The guest's init reads it to load only the drivers of the devices a run has
 * (kernel argument miglab.modules=), each after what it needs.
 */
export function moduleClosures(wanted: readonly string[], lookup: (name: string) => ModInfo | undefined): string {
  return wanted.map((m) => `${normaliseModuleName(m)}: ${loadOrder([m], lookup).order.join(' ')}\n`).join('');
}
