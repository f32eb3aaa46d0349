// Missing programs become one error naming each program and the apt-get line that installs them.
import { describe, expect, it } from '@jest/globals';
import type { Host } from '../../../src/host/host.js';
import { REQUIRED_PACKAGES, checkLabDependencies } from '../../../src/lab/deps.js';

function hostWithout(...missing: string[]): Host {
  return {
    name: 'fake',
    run: () => Promise.reject(new Error('not used')),
    spawn: () => {
      throw new Error('not used');
    },
    which: (p: string) => Promise.resolve(missing.includes(p) ? undefined : `/usr/bin/${p}`),
  };
}

describe('checkLabDependencies', () => {
  it('names every missing program and the packages to install', async () => {
    const err = await checkLabDependencies(hostWithout('ping', 'ganesha.nfsd', 'nfs-ls')).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'MISSING_DEPENDENCY' });
    expect((err as Error).message).toMatch(/ping \(iputils-ping\), ganesha\.nfsd \(nfs-ganesha\), nfs-ls \(libnfs-utils\)/);
    expect((err as Error).message).toMatch(/apt-get install -y iputils-ping nfs-ganesha libnfs-utils/);
  });

  it('lists the packages the Makefile installs', () => {
    expect(REQUIRED_PACKAGES).toEqual(expect.arrayContaining(['iproute2', 'nfs-ganesha', 'nfs-ganesha-vfs', 'rpcbind', 'libnfs-utils', 'iputils-ping']));
  });
});
