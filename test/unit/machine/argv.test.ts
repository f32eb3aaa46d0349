import { UsageError } from '../../../src/errors.js';
import { buildQemuCommand, kernelAppend, type LaunchPlan } from '../../../src/machine/argv.js';
import { parseMachineSpec } from '../../../src/machine/spec.js';
import { FAST_BOOT_ARGS } from '../../../src/image/guest.js';

const FAST = FAST_BOOT_ARGS.map((a) => a.arg).join(' ');

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

  it('starts a destination that must be configured first with -incoming defer, saying where it will listen', () => {
    const { argv, explained } = buildQemuCommand(spec, { ...plan, incomingDeferred: true });
    expect(valueOf(argv, '-incoming')).toEqual(['defer']);
    expect(explained.find((g) => g.args[0] === '-incoming')!.why).toMatch(/multifd and postcopy-preempt must be set before .* migrate-incoming tcp:10\.77\.0\.2:4444/);
  });

  it("traces the switchover's downtime to its own file, stamped, only when asked (a build with the trace points)", () => {
    expect(buildQemuCommand(spec, plan).argv).not.toContain('-trace');
    const { argv, explained } = buildQemuCommand(spec, { ...plan, downtimeTraceFile: '/run/x/dst.trace' });
    expect(valueOf(argv, '-trace')).toEqual(['vmstate_downtime_*']);
    expect(valueOf(argv, '-D')).toEqual(['/run/x/dst.trace']);
    expect(valueOf(argv, '-msg')).toEqual(['timestamp=on']);
    expect(explained.find((g) => g.args[0] === '-trace')!.why).toMatch(/8\.2 on/);
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
    expect(kernelAppend(spec)).toBe(`console=ttyS0 quiet panic=-1 ${FAST} miglab.modules=virtio_pci,virtio_net,virtio_blk pci=noacpi miglab.ip=10.77.0.100/24 miglab.hb_ms=100`);
  });

  // Only the drivers of the machine's devices are loaded (vm-images/init reads miglab.modules).
  it.each([
    ['virtio-net-pci', 'virtio', 'virtio_pci,virtio_net,virtio_blk'],
    ['e1000', 'ide', 'e1000,ata_piix,sd_mod'],
    ['rtl8139', 'virtio', '8139too,8139cp,virtio_pci,virtio_blk'],
  ] as const)('names the drivers of a %s NIC and a %s disk', (nicModel, diskInterface, modules) => {
    expect(kernelAppend(parseMachineSpec({ ...spec, nicModel, diskInterface }))).toContain(` miglab.modules=${modules} `);
  });

  it('routes PCI interrupts without ACPI only when every device is virtio (qboot has no table for INTx devices)', () => {
    expect(kernelAppend(spec).split(' ')).toContain('pci=noacpi');
    expect(kernelAppend(parseMachineSpec({ ...spec, nicModel: 'e1000' })).split(' ')).not.toContain('pci=noacpi');
    expect(kernelAppend(parseMachineSpec({ ...spec, diskInterface: 'ide' })).split(' ')).not.toContain('pci=noacpi');
  });

  // nosmp saved 0.2 s of a boot but also turns the IO-APIC off: a one-vCPU guest would take its
  // interrupts another way than a two-vCPU one, and a vCPU sweep would change two things.
  it('keeps SMP and the IO-APIC as they are, whatever the vCPUs', () => {
    expect(kernelAppend(parseMachineSpec({ ...spec, vcpus: 1 })).split(' ')).not.toContain('nosmp');
  });

  it('starts a warm source paused for its saved state, and says why', () => {
    const cmd = buildQemuCommand(spec, { ...plan, restoring: true });
    expect(valueOf(cmd.argv, '-incoming')).toEqual(['defer']);
    expect(cmd.explained.find((g) => g.args.includes('-incoming'))!.why).toMatch(/warm start.*saved state of an already booted guest/);
  });

  it('boots with qboot, the same ROM on both sides', () => {
    const cmd = buildQemuCommand(spec, plan);
    expect(valueOf(cmd.argv, '-bios')).toEqual(['qboot.rom']);
    expect(cmd.explained.find((g) => g.args.includes('-bios'))!.why).toMatch(/both sides load the same/);
  });
});

describe('parseMachineSpec', () => {
  it('rejects unknown models and bad sizes with the field named', () => {
    expect(() => parseMachineSpec({ ...spec, nicModel: 'ne2k' as never })).toThrow(/nicModel/);
    expect(() => parseMachineSpec({ ...spec, memoryMiB: 10 })).toThrow(/memoryMiB.*at least 64 MiB/);
    expect(() => parseMachineSpec({ ...spec, mac: '00:11:22:33:44:55' })).toThrow(/mac/);
  });
});

// A container host's QEMU gets the agent's control port (a virtio-serial port named org.miglab.ctl
// on a unix socket) and its guest settings on the kernel command line; a VM run's guest gets
// neither. Settings are miglab.key=value only: nothing else reaches -append.
describe('the control port on the QEMU command line', () => {
  const ctlSpec = parseMachineSpec({ ...spec, kernelArgs: ['miglab.ctl=1'] });
  // A comma in the path would end QEMU's option value; it must come out doubled.
  const cmd = buildQemuCommand(ctlSpec, { ...plan, controlSocket: '/run/miglab/mlab/sock/g0,a/ctl.sock' });

  it('adds a virtio-serial bus, the chardev on a unix socket (server, not waiting) and the named port', () => {
    const devices = valueOf(cmd.argv, '-device');
    expect(devices).toContain('virtio-serial-pci,id=ctlbus');
    expect(devices).toContain('virtserialport,bus=ctlbus.0,chardev=ctl,name=org.miglab.ctl');
    expect(valueOf(cmd.argv, '-chardev')).toEqual(['socket,id=ctl,path=/run/miglab/mlab/sock/g0,,a/ctl.sock,server=on,wait=off']);
    // The bus comes before the port that sits on it.
    expect(devices.indexOf('virtio-serial-pci,id=ctlbus')).toBeLessThan(devices.findIndex((d) => d.startsWith('virtserialport')));
  });

  it('says why each of the three is there', () => {
    const why = (arg: string) => cmd.explained.find((g) => g.args.includes(arg))!.why;
    expect(why('virtio-serial-pci,id=ctlbus')).toMatch(/virtio-serial bus for the control port/);
    expect(why('socket,id=ctl,path=/run/miglab/mlab/sock/g0,,a/ctl.sock,server=on,wait=off')).toMatch(/unix socket only this host's root can open.*never on the network/);
    expect(why('virtserialport,bus=ctlbus.0,chardev=ctl,name=org.miglab.ctl')).toMatch(/org\.miglab\.ctl/);
    expect(cmd.explained.flatMap((g) => g.args)).toEqual(cmd.argv);
  });

  it('appends the guest settings to the kernel command line', () => {
    expect(valueOf(cmd.argv, '-append')).toEqual([kernelAppend(ctlSpec)]);
    expect(kernelAppend(ctlSpec)).toBe(`console=ttyS0 quiet panic=-1 ${FAST} miglab.modules=virtio_pci,virtio_net,virtio_blk pci=noacpi miglab.ip=10.77.0.100/24 miglab.hb_ms=100 miglab.ctl=1`);
    const two = parseMachineSpec({ ...spec, iperfServer: true, kernelArgs: ['miglab.ctl=1', 'miglab.chost=1'] });
    expect(kernelAppend(two).endsWith(' miglab.iperf=1 miglab.ctl=1 miglab.chost=1')).toBe(true);
  });

  it('leaves both out for a VM run\'s guest', () => {
    const vm = buildQemuCommand(spec, plan).argv;
    expect(vm).not.toContain('-chardev');
    expect(vm.join(' ')).not.toMatch(/virtio-serial|virtserialport|org\.miglab\.ctl/);
    expect(valueOf(vm, '-append')[0]).toBe(kernelAppend(spec));
    expect(valueOf(vm, '-append')[0]).not.toMatch(/miglab\.ctl/);
  });
});

describe('MachineSpec kernelArgs', () => {
  it.each([
    ['init=/bin/sh', 'not a miglab setting'],
    ['miglab.ctl=1 init=/bin/sh', 'a space would smuggle a second argument in'],
    ['miglab.ctl', 'no value'],
    ['miglab.CTL=1', 'upper-case key'],
    ['miglab.ip=$(reboot)', 'shell characters'],
  ])('refuses %s (%s) in one line naming the field and the form', (arg) => {
    let err: unknown;
    try {
      parseMachineSpec({ ...spec, kernelArgs: [arg] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/kernelArgs/);
    expect((err as Error).message).toMatch(/miglab\.key=value/);
    expect((err as Error).message).not.toContain('\n');
  });

  it('takes miglab.key=value settings, an empty value among them', () => {
    expect(parseMachineSpec({ ...spec, kernelArgs: ['miglab.ctl=1', 'miglab.gw=10.77.0.1', 'miglab.iface='] }).kernelArgs).toEqual(['miglab.ctl=1', 'miglab.gw=10.77.0.1', 'miglab.iface=']);
  });
});
