// `miglab --version` says which miglab and which QEMU, or that QEMU is missing and how to get it.
import { describe, expect, it } from '@jest/globals';
import { versionText } from '../../../src/cli/version.js';
import type { Host, RunResult } from '../../../src/host/host.js';
import { runOnlyHost } from '../../support/fake-host.js';

const hostAnswering = (name: string, exitCode: number, stdout: string): Host =>
  runOnlyHost(name, async (argv): Promise<RunResult> => ({ argv, exitCode, stdout, stderr: exitCode ? 'not found' : '', durationMs: 1 }));

describe('miglab --version', () => {
  it("prints miglab's version from package.json and QEMU's first line", async () => {
    const text = await versionText(hostAnswering('version-found', 0, 'QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2)\nCopyright'));
    expect(text).toMatch(/^miglab \d+\.\d+\.\d+ \(Node\.js \d+\.\d+\.\d+\)\nQEMU emulator version 10\.0\.2 \(Debian 1:10\.0\.2\+ds-2\)$/);
  });
  it('says how to install QEMU when there is none', async () => {
    const text = await versionText(hostAnswering('version-missing', 127, ''));
    expect(text.split('\n')[1]).toBe('QEMU: not found (install it with: apt-get install -y qemu-system-x86; miglab doctor checks the rest)');
  });
});
