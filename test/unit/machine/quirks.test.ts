import { parseQemuVersion, tcgLosesPrecopyWrites } from '../../../src/machine/quirks.js';

describe('QEMU quirks', () => {
  it('reads the release from --version, Debian suffix and all', () => {
    const v = parseQemuVersion('QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright (c) 2003-2022 Fabrice Bellard');
    expect(v).toMatchObject({ major: 7, minor: 2, micro: 22 });
    expect(v!.line).toBe('QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)');
    expect(parseQemuVersion('QEMU emulator version 9.0\n')).toMatchObject({ major: 9, minor: 0, micro: 0 });
    expect(parseQemuVersion('not qemu')).toBeUndefined();
  });

  it('applies the TCG pre-copy workaround before 9.0 only (the release with the upstream fix)', () => {
    expect(tcgLosesPrecopyWrites(parseQemuVersion('QEMU emulator version 7.2.22')!)).toBe(true);
    expect(tcgLosesPrecopyWrites(parseQemuVersion('QEMU emulator version 8.2.2')!)).toBe(true);
    expect(tcgLosesPrecopyWrites(parseQemuVersion('QEMU emulator version 9.0.0')!)).toBe(false);
  });
});
