// Missing programs become one error naming each program and the apt-get line that installs them.
import { describe, expect, it } from '@jest/globals';
import type { Host } from '../../../src/host/host.js';
import { runOnlyHost } from '../../support/fake-host.js';
import { FSAL_VFS_PATHS, REQUIRED_PACKAGES, checkHandTools, checkLabDependencies } from '../../../src/lab/deps.js';

/** A host whose PATH lacks `missing`; files (asked with test -e) exist unless named in `missing` too. */
function hostWithout(...missing: string[]): Host {
  return runOnlyHost(
    'fake',
    (argv) => Promise.resolve({ argv, exitCode: argv[0] === 'test' && !missing.includes(argv[2]!) ? 0 : 1, stdout: '', stderr: '', durationMs: 1 }),
    (p: string) => Promise.resolve(missing.includes(p) ? undefined : `/usr/bin/${p}`),
  );
}

describe('checkLabDependencies', () => {
  it('names every missing program and the packages to install', async () => {
    const err = await checkLabDependencies(hostWithout('ping', 'ganesha.nfsd', 'nfs-ls')).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'MISSING_DEPENDENCY' });
    expect((err as Error).message).toMatch(/ping \(iputils-ping\), ganesha\.nfsd \(nfs-ganesha\), nfs-ls \(libnfs-utils\)/);
    expect((err as Error).message).toMatch(/apt-get install -y iputils-ping nfs-ganesha libnfs-utils/);
    await expect(checkLabDependencies(hostWithout(...FSAL_VFS_PATHS))).rejects.toThrow(/nfs-ganesha's VFS backend \(libfsalvfs\.so\) \(nfs-ganesha-vfs\) is not installed; install it with: apt-get install -y nfs-ganesha-vfs/);
    await expect(checkLabDependencies(hostWithout())).resolves.toBeUndefined();
  });

  it("names the homework by hand's missing programs", async () => {
    await expect(checkHandTools(hostWithout('socat'))).rejects.toThrow('socat (used to reach the monitors by hand) is not installed; install it with: apt-get install -y socat (make deps installs them)');
    await expect(checkHandTools(hostWithout())).resolves.toBeUndefined();
  });

  it('lists the packages the Makefile installs', () => {
    expect(REQUIRED_PACKAGES).toEqual(expect.arrayContaining(['iproute2', 'nfs-ganesha', 'nfs-ganesha-vfs', 'rpcbind', 'libnfs-utils', 'iputils-ping']));
  });
});
