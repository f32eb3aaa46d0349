// The machine type of a migration between two QEMU builds: each QEMU's pc is its own newest type,
// so two builds are pinned to the older one's, which both know. Help texts as the two QEMUs print
// them (7.2.22 and 10.0.2 from Debian, shortened).
import { describe, expect, it } from '@jest/globals';
import type { QemuBuild } from '../../../src/qemu/build.js';
import { parseMachineTypes } from '../../../src/qemu/machine-types.js';
import { AUTO_MACHINE, chooseMachineType, describeQemu } from '../../../src/qemu/pair.js';

const HELP_72 = `Supported machines are:
microvm              microvm (i386)
pc                   Standard PC (i440FX + PIIX, 1996) (alias of pc-i440fx-7.2)
pc-i440fx-7.2        Standard PC (i440FX + PIIX, 1996) (default)
pc-i440fx-7.1        Standard PC (i440FX + PIIX, 1996)
q35                  Standard PC (Q35 + ICH9, 2009) (alias of pc-q35-7.2)
pc-q35-7.2           Standard PC (Q35 + ICH9, 2009)
`;
const HELP_10 = `Supported machines are:
pc                   Standard PC (i440FX + PIIX, 1996) (alias of pc-i440fx-10.0)
pc-i440fx-10.0       Standard PC (i440FX + PIIX, 1996) (default)
pc-i440fx-9.2        Standard PC (i440FX + PIIX, 1996)
pc-i440fx-7.2        Standard PC (i440FX + PIIX, 1996)
pc-i440fx-7.1        Standard PC (i440FX + PIIX, 1996)
q35                  Standard PC (Q35 + ICH9, 2009) (alias of pc-q35-10.0)
`;

const build = (major: number, minor: number, micro: number, binary: string): QemuBuild => ({
  choice: binary,
  binary,
  dataDirs: [],
  release: { major, minor, micro, line: `QEMU emulator version ${major}.${minor}.${micro}` },
  origin: 'test',
});
const q72 = { build: build(7, 2, 22, 'qemu-system-x86_64'), types: parseMachineTypes(HELP_72) };
const q10 = { build: build(10, 0, 2, '/c/root/usr/bin/qemu-system-x86_64'), types: parseMachineTypes(HELP_10) };

describe('chooseMachineType', () => {
  it('keeps pc when both sides run the same build, and says what it stands for', () => {
    expect(chooseMachineType(AUTO_MACHINE, q10, q10)).toEqual({ machineType: 'pc', why: 'pc (pc-i440fx-10.0): both sides run the same QEMU' });
  });

  it("pins the older build's pc in either direction", () => {
    for (const [src, dst] of [[q72, q10], [q10, q72]] as const) {
      const c = chooseMachineType(AUTO_MACHINE, src, dst);
      expect(c.machineType).toBe('pc-i440fx-7.2');
      expect(c.why).toMatch(/pinned to the one QEMU 7\.2\.22's pc stands for, which both know/);
    }
  });

  it("refuses a pair where the newer build lacks the older's type", () => {
    const without = { ...q10, types: parseMachineTypes(HELP_10.replace(/pc-i440fx-7\.2 .*\n/, '')) };
    expect(() => chooseMachineType(AUTO_MACHINE, q72, without)).toThrow(/^QEMU 10\.0\.2 does not know pc-i440fx-7\.2, .*no machine type both can run; give --machine-type/);
  });

  it('takes a type the user names when both know it, pc as each means it', () => {
    expect(chooseMachineType('pc-i440fx-7.1', q72, q10).machineType).toBe('pc-i440fx-7.1');
    expect(chooseMachineType('pc', q10, q72).why).toBe('pc as each QEMU means it (source pc-i440fx-10.0, destination pc-i440fx-7.2): asked for');
  });

  it('refuses a type one side does not know, naming the side', () => {
    expect(() => chooseMachineType('pc-i440fx-9.2', q10, q72)).toThrow(/^--machine-type pc-i440fx-9\.2: the destination's QEMU 7\.2\.22 has no such machine type; give auto, pc, or one both QEMUs list/);
  });
});

describe('describeQemu', () => {
  it('names one version, or both sides and the machine type', () => {
    expect(describeQemu({ version: '7.2.22' })).toBe('7.2.22');
    expect(describeQemu({ version: '7.2.22', destination: { version: '7.2.22' }, machineType: 'pc' })).toBe('7.2.22');
    expect(describeQemu({ version: '7.2.22', destination: { version: '10.0.2' }, machineType: 'pc-i440fx-7.2' })).toBe('7.2.22 -> 10.0.2 (machine pc-i440fx-7.2)');
  });
});
