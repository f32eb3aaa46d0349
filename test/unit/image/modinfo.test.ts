// The .modinfo reader and the load order are what make the guest's NIC and disk drivers load:
// a wrong order means `insmod: unknown symbol` and a guest without network.
import { elfSection, loadOrder, moduleClosures, parseModinfoStrings, readModinfo, type ModInfo } from '../../../src/image/modinfo.js';

/** A minimal little-endian ELF64 file with the given sections (plus the null section and .shstrtab). */
function fakeElf(sections: Record<string, Buffer>): Buffer {
  const names = ['', ...Object.keys(sections), '.shstrtab'];
  const shstrtab = Buffer.from(names.map((n) => `${n}\0`).join(''));
  const datas = [Buffer.alloc(0), ...Object.values(sections), shstrtab];
  let offset = 64;
  const offsets = datas.map((d) => {
    const at = offset;
    offset += d.length;
    return at;
  });
  const shoff = offset;
  const header = Buffer.alloc(64);
  header.writeUInt32BE(0x7f454c46, 0);
  header[4] = 2; // ELFCLASS64
  header[5] = 1; // little-endian
  header.writeBigUInt64LE(BigInt(shoff), 0x28);
  header.writeUInt16LE(64, 0x3a);
  header.writeUInt16LE(names.length, 0x3c);
  header.writeUInt16LE(names.length - 1, 0x3e);
  const shdrs = names.map((_, i) => {
    const sh = Buffer.alloc(64);
    sh.writeUInt32LE(names.slice(0, i).reduce((n, s) => n + s.length + 1, 0), 0);
    sh.writeUInt32LE(i === 0 ? 0 : 1, 4);
    sh.writeBigUInt64LE(BigInt(offsets[i]!), 24);
    sh.writeBigUInt64LE(BigInt(datas[i]!.length), 32);
    return sh;
  });
  return Buffer.concat([header, ...datas, ...shdrs]);
}

const modinfo = (...kv: string[]) => Buffer.from(kv.map((s) => `${s}\0`).join(''));

describe('.modinfo of a kernel module', () => {
  it('finds the section by name and reads depends, softdep and name', () => {
    const elf = fakeElf({
      '.text': Buffer.from('code'),
      '.modinfo': modinfo('license=GPL', 'softdep=pre: crc64 post: extra-mod', 'depends=crc-t10dif,crc64-rocksoft', 'name=t10_pi', 'vermagic=6.1.0 SMP'),
    });
    const info = readModinfo(elf, 'kernel/block/t10-pi.ko');
    expect(info).toEqual({
      name: 't10_pi',
      depends: ['crc_t10dif', 'crc64_rocksoft'],
      softPre: ['crc64'],
      softPost: ['extra_mod'],
      vermagic: '6.1.0 SMP',
    });
  });

  it('treats an empty depends= as no dependencies and falls back to the file name', () => {
    const info = parseModinfoStrings(modinfo('depends=', 'license=GPL'), 'virtio_ring');
    expect(info.depends).toEqual([]);
    expect(info.name).toBe('virtio_ring');
  });

  it('says so when the file is not ELF or lacks .modinfo', () => {
    expect(() => readModinfo(Buffer.from('not an elf file at all, just some text to be long enough for a header....'), 'x.ko')).toThrow(/not an ELF/);
    expect(() => readModinfo(fakeElf({ '.text': Buffer.from('x') }), 'x.ko')).toThrow(/no .modinfo/);
    expect(elfSection(fakeElf({ '.data': Buffer.from('abc') }), '.data')?.toString()).toBe('abc');
  });
});

describe('load order', () => {
  const mods: Record<string, Partial<ModInfo>> = {
    virtio_ring: {},
    virtio: { depends: ['virtio_ring'] },
    virtio_pci_modern_dev: {},
    virtio_pci_legacy_dev: {},
    virtio_pci: { depends: ['virtio_ring', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev', 'virtio'] },
    failover: {},
    net_failover: { depends: ['failover'] },
    virtio_net: { depends: ['virtio_ring', 'virtio', 'net_failover'] },
    crc64: {},
    crc64_rocksoft: { depends: ['crc64'], softPre: ['crc64'] },
    crc_t10dif: { softPre: ['crct10dif'] },
    t10_pi: { depends: ['crc_t10dif', 'crc64_rocksoft'] },
    sd_mod: { depends: ['scsi_mod', 't10_pi'] },
    scsi_mod: { depends: ['scsi_common'] },
    scsi_common: {},
  };
  const lookup = (name: string): ModInfo | undefined =>
    mods[name] ? { name, depends: [], softPre: [], softPost: [], ...mods[name] } : undefined;

  it('puts every module after its dependencies and adds the ones not asked for', () => {
    const { order, unresolvedSoftdeps } = loadOrder(['virtio_net', 'virtio_pci', 'sd_mod'], lookup);
    for (const [name, m] of Object.entries(mods)) {
      if (!order.includes(name)) continue;
      for (const dep of m.depends ?? []) expect(order.indexOf(dep)).toBeLessThan(order.indexOf(name));
    }
    expect(order).toEqual(expect.arrayContaining(['failover', 'scsi_common', 'crc64', 't10_pi']));
    expect(new Set(order).size).toBe(order.length);
    expect(unresolvedSoftdeps).toEqual(['crc_t10dif:crct10dif']);
  });

  it('gives each driver its own closure, for init to load only the ones a machine has', () => {
    expect(moduleClosures(['virtio_net', 'sd_mod'], lookup).split('\n')).toEqual([
      'virtio_net: virtio_ring virtio failover net_failover virtio_net',
      'sd_mod: scsi_common scsi_mod crc_t10dif crc64 crc64_rocksoft t10_pi sd_mod',
      '',
    ]);
  });

  it('is stable: the order given decides ties', () => {
    expect(loadOrder(['virtio_ring', 'failover'], lookup).order).toEqual(['virtio_ring', 'failover']);
    expect(loadOrder(['failover', 'virtio_ring'], lookup).order).toEqual(['failover', 'virtio_ring']);
    expect(loadOrder(['virtio-net'], lookup).order).toEqual(['virtio_ring', 'virtio', 'failover', 'net_failover', 'virtio_net']);
  });

  it('names the chain when a dependency is missing, and reports cycles', () => {
    expect(() => loadOrder(['needs_ghost'], (n) => (n === 'needs_ghost' ? { name: n, depends: ['ghost'], softPre: [], softPost: [] } : undefined))).toThrow(
      /ghost not found \(needed by needs_ghost\)/,
    );
    const cyclic = (n: string): ModInfo => ({ name: n, depends: [n === 'a' ? 'b' : 'a'], softPre: [], softPost: [] });
    expect(() => loadOrder(['a'], cyclic)).toThrow(/cycle: a -> b -> a/);
  });
});
