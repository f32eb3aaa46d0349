import { buildQemuCommand, kernelAppend, type LaunchPlan } from '../../../src/machine/argv.js';
import { parseMachineSpec } from '../../../src/machine/spec.js';

const spec = parseMachineSpec({ name: 'g0', memoryMiB: 256, mac: '52:54:00:77:00:00', ip: '10.77.0.100/24' });
const plan: LaunchPlan = {
  role: 'destination',
  accel: 'tcg',
  qmpSocket: '/run/x/dst.qmp',
  hmpSocket: '/run/x/dst.hmp',
  tap: 'tap-g0',
  incomingUri: 'tcp:10.77.0.2:4444',
  media: { kernelPath: '/img/vmlinuz', initrdPath: '/img/initrd', diskUrl: 'nfs://10.77.0.1/run/miglab/mlab/export/d.qcow2' },
};

function valueOf(argv: readonly string[], flag: string): string[] {
  return argv.flatMap((a, i) => (a === flag ? [argv[i + 1]!] : []));
}

describe('buildQemuCommand', () => {
  it('builds the destination with -incoming on the lab address, never a wildcard', () => {
    const { argv } = buildQemuCommand(spec, plan);
    expect(valueOf(argv, '-incoming')).toEqual(['tcp:10.77.0.2:4444']);
    expect(argv.join(' ')).not.toMatch(/0\.0\.0\.0|\[::\]/);
    expect(valueOf(argv, '-m')).toEqual(['256']);
    expect(valueOf(argv, '-accel')).toEqual(['tcg']);
  });

  it('pads the RAM by the given KiB, and says why, when the QEMU quirk asks for it', () => {
    const { argv, explained } = buildQemuCommand(spec, { ...plan, ramPadKiB: 8 });
    // 256 MiB + 8 KiB: not a multiple of 256 KiB, so QEMU < 9.0 takes its correct dirty-sync path.
    expect(valueOf(argv, '-m')).toEqual(['262152k']);
    expect((262152 * 1024) % (256 * 1024)).not.toBe(0);
    expect(explained.find((g) => g.args[0] === '-m')!.why).toMatch(/before 9\.0 under TCG/);
  });

  it('puts monitors on unix sockets, and telnet only on 127.0.0.1', () => {
    const { argv } = buildQemuCommand(spec, { ...plan, hmpTelnetPort: 4445 });
    expect(valueOf(argv, '-qmp')).toEqual(['unix:/run/x/dst.qmp,server=on,wait=off']);
    expect(valueOf(argv, '-monitor')).toEqual(['unix:/run/x/dst.hmp,server=on,wait=off', 'telnet:127.0.0.1:4445,server=on,wait=off']);
  });

  it('maps NIC models and disk interfaces to devices', () => {
    const e1000 = buildQemuCommand(parseMachineSpec({ ...spec, nicModel: 'e1000', diskInterface: 'ide' }), plan).argv;
    expect(valueOf(e1000, '-device')).toEqual(['ide-hd,drive=disk0,bus=ide.0', 'e1000,netdev=net0,mac=52:54:00:77:00:00']);
    expect(valueOf(e1000, '-netdev')).toEqual(['tap,id=net0,ifname=tap-g0,script=no,downscript=no']);
    const virtio = buildQemuCommand(spec, plan).argv;
    expect(valueOf(virtio, '-device')).toEqual(['virtio-blk-pci,drive=disk0', 'virtio-net-pci,netdev=net0,mac=52:54:00:77:00:00']);
  });

  it('opens the shared qcow2 by URL and omits disk and NIC when not given', () => {
    const { argv } = buildQemuCommand(spec, plan);
    expect(valueOf(argv, '-drive')).toEqual(['file=nfs://10.77.0.1/run/miglab/mlab/export/d.qcow2,format=qcow2,if=none,id=disk0']);
    const bare = buildQemuCommand(spec, { ...plan, tap: undefined, incomingUri: undefined, media: { kernelPath: 'k', initrdPath: 'i' } }).argv;
    expect(bare).not.toContain('-drive');
    expect(bare).not.toContain('-netdev');
    expect(bare).not.toContain('-incoming');
  });

  it('explains every argument, and the explanation covers the argv exactly', () => {
    const cmd = buildQemuCommand(spec, plan);
    expect(cmd.explained.flatMap((g) => g.args)).toEqual(cmd.argv);
    for (const g of cmd.explained) expect(g.why.length).toBeGreaterThan(10);
  });

  it('passes the guest network settings on the kernel command line', () => {
    expect(kernelAppend(spec)).toBe('console=ttyS0 quiet panic=-1 miglab.ip=10.77.0.100/24 miglab.hb_ms=100');
  });
});

describe('parseMachineSpec', () => {
  it('rejects unknown models and bad sizes with the field named', () => {
    expect(() => parseMachineSpec({ ...spec, nicModel: 'ne2k' as never })).toThrow(/nicModel/);
    expect(() => parseMachineSpec({ ...spec, memoryMiB: 10 })).toThrow(/memoryMiB.*at least 64 MiB/);
    expect(() => parseMachineSpec({ ...spec, mac: '00:11:22:33:44:55' })).toThrow(/mac/);
  });
});
