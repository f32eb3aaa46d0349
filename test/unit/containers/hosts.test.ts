// The pure parts of the container hosts (src/containers/hosts.ts): finding the guest's NIC by its
// address (the service address is added to that NIC), and refusing, before anything boots, a lab
// that was brought up without the checkpoint export.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkLabHasCheckpointExport, ifaceWithAddress } from '../../../src/containers/hosts.js';
import { UsageError } from '../../../src/errors.js';
import type { Lab } from '../../../src/lab/index.js';

describe('ifaceWithAddress', () => {
  // `ip -o -4 addr show` in a container host (busybox ip), after the service address was added.
  const busybox = [
    '1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever',
    '2: eth0    inet 10.77.0.100/24 scope global eth0\\       valid_lft forever preferred_lft forever',
    '2: eth0    inet 10.77.0.102/24 scope global secondary eth0\\       valid_lft forever preferred_lft forever',
    '3: eth1    inet 10.77.0.10/24 scope global eth1\\       valid_lft forever preferred_lft forever',
    '',
  ].join('\n');

  it('names the interface holding the exact address', () => {
    expect(ifaceWithAddress(busybox, '10.77.0.100')).toBe('eth0');
    expect(ifaceWithAddress(busybox, '10.77.0.102')).toBe('eth0');
    expect(ifaceWithAddress(busybox, '127.0.0.1')).toBe('lo');
  });

  it('does not take an address for another that it is a prefix of', () => {
    expect(ifaceWithAddress(busybox, '10.77.0.10')).toBe('eth1');
    expect(ifaceWithAddress(busybox, '10.77.0.1')).toBeUndefined();
  });

  it('says undefined when no interface has it, or the output is not ip -o', () => {
    expect(ifaceWithAddress(busybox, '10.77.0.101')).toBeUndefined();
    expect(ifaceWithAddress('', '10.77.0.100')).toBeUndefined();
    // Without -o the address is on its own line, with no interface before it.
    expect(ifaceWithAddress('2: eth0: <BROADCAST,UP> mtu 1500\n    inet 10.77.0.100/24 scope global eth0\n', '10.77.0.100')).toBeUndefined();
  });

  it('reads iproute2\'s form too (brd before scope)', () => {
    expect(ifaceWithAddress('4: ens3    inet 192.168.122.11/24 brd 192.168.122.255 scope global ens3\\       valid_lft forever preferred_lft forever\n', '192.168.122.11')).toBe('ens3');
  });
});

describe('checkLabHasCheckpointExport', () => {
  const lab = (ckptDir: string, prefix = 'mlab') => ({ spec: { prefix }, paths: { ckptDir } }) as unknown as Lab;

  it('passes a lab whose checkpoint directory exists', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'miglab-ckpt-'));
    try {
      expect(() => checkLabHasCheckpointExport(lab(dir))).not.toThrow();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses an older lab in one line that names the directory and the two commands that fix it', () => {
    const missing = '/run/miglab/oldlab/ckpt-not-here';
    let err: unknown;
    try {
      checkLabHasCheckpointExport(lab(missing, 'oldlab'));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    const msg = (err as Error).message;
    expect(msg).not.toContain('\n');
    expect(msg).toBe(
      `the lab "oldlab" has no checkpoint export (${missing}): it was brought up by an older miglab; take it down and up again: miglab lab down --prefix oldlab && miglab lab up --prefix oldlab`,
    );
    expect((err as UsageError).code).toBe('BAD_INPUT');
  });
});
