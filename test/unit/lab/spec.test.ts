// The lab spec: defaults, what is refused and how, and the names and addresses derived from it.
import { describe, expect, it } from '@jest/globals';
import {
  checkExportFileName,
  checkTapName,
  guestIp,
  guestMac,
  labNames,
  labNamespaces,
  labPaths,
  parseLabSpec,
  parseShaping,
  parseSubnet,
  roleIp,
} from '../../../src/lab/spec.js';

describe('parseLabSpec', () => {
  it('fills the defaults', () => {
    expect(parseLabSpec({})).toEqual({ prefix: 'mlab', subnet: '10.77.0.0/24', stateRoot: '/run/miglab' });
  });

  it('keeps an export directory and shaping, normalising the path', () => {
    const spec = parseLabSpec({ prefix: 'mlt', exportDir: '/srv//disks/', shaping: { bandwidthMbit: 50 } });
    expect(spec).toMatchObject({ prefix: 'mlt', exportDir: '/srv/disks', shaping: { bandwidthMbit: 50 } });
  });

  it.each([
    [{ prefix: 'Mlab' }, /prefix/],
    [{ prefix: 'a-b' }, /prefix/],
    [{ prefix: 'toolongprefix' }, /prefix/],
    [{ subnet: '8.8.8.0/24' }, /private range/],
    [{ subnet: '10.77.0.1/24' }, /host bits must be zero.*10\.77\.0\.0\/24/],
    [{ subnet: '10.77.0.0/28' }, /prefix length/],
    [{ subnet: '10.77.0.0' }, /subnet/],
    [{ subnet: '10.300.0.0/16' }, /invalid IPv4/],
    [{ stateRoot: 'run/miglab' }, /absolute/],
    [{ exportDir: '/srv/my disks' }, /spaces/],
    [{ exportDir: '/srv/a;b' }, /must not contain/],
    [{ shaping: { bandwidthMbit: 0 } }, /bandwidth must be greater than 0/],
    [{ shaping: { lossPct: 120 } }, /loss must be 0-100/],
    [{ shaping: { jitterMs: 2 } }, /jitterMs needs delayMs/],
    [{ bogus: 1 } as never, /bogus|Unrecognized/],
  ])('refuses %j with a message naming the problem', (input, message) => {
    expect(() => parseLabSpec(input)).toThrow(message);
    try {
      parseLabSpec(input);
    } catch (err) {
      expect(err).toMatchObject({ code: 'BAD_INPUT' });
    }
  });
});

describe('parseShaping', () => {
  it('accepts each field alone and together', () => {
    expect(parseShaping({ delayMs: 10, jitterMs: 2, lossPct: 0.5, bandwidthMbit: 100 })).toEqual({ delayMs: 10, jitterMs: 2, lossPct: 0.5, bandwidthMbit: 100 });
    expect(parseShaping({})).toEqual({});
  });

  it('refuses negative delay and unknown fields', () => {
    expect(() => parseShaping({ delayMs: -1 })).toThrow(/delayMs/);
    expect(() => parseShaping({ rate: 5 } as never)).toThrow(/shaping/);
  });
});

describe('addresses and names', () => {
  const spec = parseLabSpec({});

  it('gives the hosts .1 .2 .3 and guests .100 up', () => {
    expect([roleIp(spec, 'src'), roleIp(spec, 'dst'), roleIp(spec, 'client')]).toEqual(['10.77.0.1', '10.77.0.2', '10.77.0.3']);
    expect(guestIp(spec, 0)).toBe('10.77.0.100');
    expect(guestIp(spec, 154)).toBe('10.77.0.254');
    expect(() => guestIp(spec, 155)).toThrow(/0 to 154/);
  });

  it('works in a larger subnet', () => {
    const wide = parseLabSpec({ subnet: '172.20.0.0/16' });
    expect(roleIp(wide, 'dst')).toBe('172.20.0.2');
    expect(guestIp(wide, 200)).toBe('172.20.1.44');
    expect(parseSubnet('172.20.0.0/16').hostCount).toBe(65534);
  });

  it('gives guest MACs 52:54:00:77:00:XX', () => {
    expect(guestMac(spec, 0)).toBe('52:54:00:77:00:00');
    expect(guestMac(spec, 26)).toBe('52:54:00:77:00:1a');
    expect(() => guestMac(spec, -1)).toThrow(/out of range/);
  });

  it('derives every name from the prefix', () => {
    expect(labNamespaces('mlab')).toEqual(['mlab-sw', 'mlab-src', 'mlab-dst', 'mlab-cli']);
    expect(labNames('mlt').switchPort).toEqual({ src: 'sw-src', dst: 'sw-dst', client: 'sw-cli' });
    expect(labPaths(spec)).toEqual({
      labDir: '/run/miglab/mlab',
      stateFile: '/run/miglab/mlab/lab.json',
      exportDir: '/run/miglab/mlab/export',
      nfsDir: '/run/miglab/mlab/nfs',
      ckptDir: '/run/miglab/mlab/ckpt',
      procsDir: '/run/miglab/mlab/procs',
      slotsDir: '/run/miglab/mlab/slots',
      tlsDir: '/run/miglab/mlab/tls',
    });
    expect(labPaths(parseLabSpec({ exportDir: '/srv/disks' })).exportDir).toBe('/srv/disks');
  });

  it('checks tap and export file names', () => {
    expect(checkTapName('mig-g0.s')).toBe('mig-g0.s');
    expect(() => checkTapName('a-name-longer-than-15')).toThrow(/tap name/);
    expect(() => checkTapName('br0')).toThrow(/used by the lab/);
    expect(() => checkTapName('sw-src')).toThrow(/used by the lab/);
    expect(() => checkTapName('a b')).toThrow(/tap name/);
    expect(checkExportFileName('disk.qcow2')).toBe('disk.qcow2');
    expect(() => checkExportFileName('../etc/passwd')).toThrow(/plain file name/);
    expect(() => checkExportFileName('..')).toThrow(/plain file name/);
  });
});
