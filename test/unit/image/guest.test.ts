// The kernel command line and the console lines are the contract between miglab and its guest;
// the machine and migration code depend on both.
import { UsageError } from '../../../src/errors.js';
import { FAST_BOOT_ARGS, bootArgv, guestAppend, parseGuestLine } from '../../../src/image/guest.js';

describe('guestAppend', () => {
  it('starts with the serial console, quiet and panic=-1', () => {
    expect(guestAppend()).toBe(`console=ttyS0 quiet panic=-1 ${FAST_BOOT_ARGS.map((a) => a.arg).join(' ')}`);
  });

  it('adds the miglab.* keys the init script and the agent read', () => {
    expect(guestAppend({ ip: '10.77.0.100/24', gateway: '10.77.0.1', iface: 'eth0', heartbeatMs: 50, iperf: true })).toBe(
      `${guestAppend()} miglab.ip=10.77.0.100/24 miglab.gw=10.77.0.1 miglab.iface=eth0 miglab.hb_ms=50 miglab.iperf=1`,
    );
    expect(guestAppend({ ip: '10.77.0.100' })).toContain('miglab.ip=10.77.0.100/24');
  });

  it('refuses values the guest could not use', () => {
    expect(() => guestAppend({ ip: '10.77.0.300/24' })).toThrow(UsageError);
    expect(() => guestAppend({ ip: '10.77.0.1/33' })).toThrow(/invalid guest address/);
    expect(() => guestAppend({ heartbeatMs: 0 })).toThrow(/heartbeat/);
    expect(() => guestAppend({ extra: ['a b'] })).toThrow(/kernel argument/);
  });

  it('gives QEMU the kernel, initrd and command line', () => {
    expect(bootArgv({ kernelPath: '/k', initrdPath: '/i' }, 'console=ttyS0')).toEqual(['-kernel', '/k', '-initrd', '/i', '-append', 'console=ttyS0']);
  });
});

describe('parseGuestLine', () => {
  it('reads heartbeats, also behind a prefix', () => {
    expect(parseGuestLine('MIGLAB-HB seq=12 mono_ns=3506941979 boot=ab6bdb4af1204e1a')).toEqual({
      kind: 'heartbeat',
      seq: 12,
      monoNs: 3506941979,
      boot: 'ab6bdb4af1204e1a',
    });
    expect(parseGuestLine('\r[ 1.0] MIGLAB-HB seq=1 mono_ns=5 boot=x')?.kind).toBe('heartbeat');
    expect(parseGuestLine('MIGLAB-HB seq=x mono_ns=5 boot=x')).toBeUndefined();
  });

  it('reads ready, modules, net and agent-exit lines', () => {
    expect(parseGuestLine('MIGLAB-READY ip=10.77.0.100 boot=ab')).toEqual({ kind: 'ready', ip: '10.77.0.100', boot: 'ab' });
    expect(parseGuestLine('MIGLAB-READY ip=none boot=ab')).toEqual({ kind: 'ready', ip: undefined, boot: 'ab' });
    expect(parseGuestLine('MIGLAB-MODULES loaded=23 failed=')).toEqual({ kind: 'modules', loaded: 23, failed: [] });
    expect(parseGuestLine('MIGLAB-MODULES loaded=21 failed=e1000,mii')).toEqual({ kind: 'modules', loaded: 21, failed: ['e1000', 'mii'] });
    expect(parseGuestLine('MIGLAB-NET iface=eth0 ip=10.77.0.100/24')).toEqual({ kind: 'net', iface: 'eth0', ip: '10.77.0.100/24' });
    expect(parseGuestLine('MIGLAB-NET iface=none ip=none error=could-not-configure')).toEqual({
      kind: 'net',
      iface: undefined,
      ip: undefined,
      error: 'could-not-configure',
    });
    expect(parseGuestLine('MIGLAB-AGENT-EXIT status=139')).toEqual({ kind: 'agent-exit', status: 139 });
    expect(parseGuestLine('Booting from ROM..')).toBeUndefined();
  });
});
