// A misspelt --cpu is refused from QEMU's own list (-cpu help) before anything is started.
import { describe, expect, it } from '@jest/globals';
import { checkCpuModels, parseCpuModels } from '../../../src/machine/cpu-models.js';
import { FakeHost } from '../../support/fake-host.js';

// As QEMU 7.2 prints it (abridged).
const HELP = `Available CPUs:
x86 486                   (alias configured by machine type)
x86 Broadwell             (alias configured by machine type)
x86 Broadwell-v1          Intel Core Processor (Broadwell)
x86 qemu64                (alias configured by machine type)
x86 qemu64-v1             QEMU Virtual CPU version 2.5+
x86 host                  processor with all supported host features
x86 max                   Enables all features supported by the accelerator in the current host

Recognized CPUID flags:
  3dnow 3dnowext 3dnowprefetch
`;

describe('CPU models', () => {
  it("reads the model names of QEMU's -cpu help, not its flags", () => {
    expect([...parseCpuModels(HELP)]).toEqual(['486', 'Broadwell', 'Broadwell-v1', 'qemu64', 'qemu64-v1', 'host', 'max']);
  });

  it('accepts known models and refuses an unknown one in one line, with look-alikes', async () => {
    const host = new FakeHost('cpu-models-test', { run: (argv) => (argv.join(' ') === 'qemu-system-x86_64 -cpu help' ? { stdout: HELP } : undefined) });
    await expect(checkCpuModels(host, ['qemu64', 'max'])).resolves.toBeUndefined();
    await expect(checkCpuModels(host, ['broadwel'])).rejects.toThrow('--cpu broadwel: QEMU knows no such CPU model; give one of qemu-system-x86_64 -cpu help, e.g. Broadwell, Broadwell-v1');
    await expect(checkCpuModels(host, ['bogus'])).rejects.toThrow(/e\.g\. qemu64, max, host$/);
    // QEMU is asked once per host.
    expect(host.ran.filter((a) => a.includes('-cpu'))).toHaveLength(1);
  });
});
