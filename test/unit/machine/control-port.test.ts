// A container host's QEMU gets the agent's control port (a virtio-serial port named
// org.miglab.ctl on a unix socket) and its guest settings on the kernel command line; a VM run's
// guest gets neither. Settings are miglab.key=value only: nothing else reaches -append.
import { UsageError } from '../../../src/errors.js';
import { buildQemuCommand, kernelAppend, type LaunchPlan } from '../../../src/machine/argv.js';
import { parseMachineSpec } from '../../../src/machine/spec.js';

const base = { name: 'g0', memoryMiB: 512, mac: '52:54:00:77:00:00', ip: '10.77.0.100/24' } as const;
const plan: LaunchPlan = {
  role: 'single',
  accel: 'tcg',
  qmpSocket: '/run/x/g0.qmp',
  tap: 'tap-g0',
  media: { kernelPath: '/img/vmlinux', initrdPath: '/img/initrd.img' },
};

function valuesOf(argv: readonly string[], flag: string): string[] {
  return argv.flatMap((a, i) => (a === flag ? [argv[i + 1]!] : []));
}

describe('the control port on the QEMU command line', () => {
  const spec = parseMachineSpec({ ...base, kernelArgs: ['miglab.ctl=1'] });
  // A comma in the path would end QEMU's option value; it must come out doubled.
  const cmd = buildQemuCommand(spec, { ...plan, controlSocket: '/run/miglab/mlab/sock/g0,a/ctl.sock' });

  it('adds a virtio-serial bus, the chardev on a unix socket (server, not waiting) and the named port', () => {
    const devices = valuesOf(cmd.argv, '-device');
    expect(devices).toContain('virtio-serial-pci,id=ctlbus');
    expect(devices).toContain('virtserialport,bus=ctlbus.0,chardev=ctl,name=org.miglab.ctl');
    expect(valuesOf(cmd.argv, '-chardev')).toEqual(['socket,id=ctl,path=/run/miglab/mlab/sock/g0,,a/ctl.sock,server=on,wait=off']);
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
    expect(valuesOf(cmd.argv, '-append')).toEqual([kernelAppend(spec)]);
    expect(kernelAppend(spec)).toBe('console=ttyS0 quiet panic=-1 miglab.ip=10.77.0.100/24 miglab.hb_ms=100 miglab.ctl=1');
    const two = parseMachineSpec({ ...base, iperfServer: true, kernelArgs: ['miglab.ctl=1', 'miglab.chost=1'] });
    expect(kernelAppend(two).endsWith(' miglab.iperf=1 miglab.ctl=1 miglab.chost=1')).toBe(true);
  });

  it('leaves both out for a VM run\'s guest', () => {
    const vm = buildQemuCommand(parseMachineSpec(base), plan).argv;
    expect(vm).not.toContain('-chardev');
    expect(vm.join(' ')).not.toMatch(/virtio-serial|virtserialport|org\.miglab\.ctl/);
    expect(valuesOf(vm, '-append')[0]).toBe('console=ttyS0 quiet panic=-1 miglab.ip=10.77.0.100/24 miglab.hb_ms=100');
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
      parseMachineSpec({ ...base, kernelArgs: [arg] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/kernelArgs/);
    expect((err as Error).message).toMatch(/miglab\.key=value/);
    expect((err as Error).message).not.toContain('\n');
  });

  it('takes miglab.key=value settings, an empty value among them', () => {
    expect(parseMachineSpec({ ...base, kernelArgs: ['miglab.ctl=1', 'miglab.gw=10.77.0.1', 'miglab.iface='] }).kernelArgs).toEqual(['miglab.ctl=1', 'miglab.gw=10.77.0.1', 'miglab.iface=']);
  });
});
