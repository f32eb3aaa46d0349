// `miglab doctor` on the real machine, where `make test` has installed everything: every check
// runs, a run can go, and what the machine lacks (KVM, sch_netem on some kernels) is a warning
// with its reason, never a failure. The doctor starts nothing: no lab appears, nothing is left.
import { existsSync } from 'node:fs';
import { describe, expect, it, jest } from '@jest/globals';
import { CHECKS, formatDoctor, runDoctor } from '../../src/doctor/checks.js';
import { localProbes } from '../../src/doctor/local.js';

jest.setTimeout(60_000);

describe('miglab doctor on this machine', () => {
  it('says a run can go, one line per check, and explains what is missing', async () => {
    const report = await runDoctor(localProbes({ prefix: 'mldoc' }));
    const text = formatDoctor(report);
    expect(report.checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(report.canRun).toBe(true);
    expect(text.split('\n')).toHaveLength(CHECKS.length + 1);
    const byName = Object.fromEntries(report.checks.map((c) => [c.name, c]));
    expect(byName.qemu!.found).toMatch(/^QEMU emulator version \d+\.\d+/);
    expect(byName['lab ports']!.found).toMatch(/^lab mldoc is not up/);
    // KVM is decided by the project's probe: usable, or a warning saying why not, in plain words.
    if (byName.kvm!.status !== 'ok') expect(byName.kvm!.found).toMatch(/^not usable: \/dev\/kvm /);
    if (!existsSync('/dev/kvm')) expect(byName.kvm!.found).toBe('not usable: /dev/kvm does not exist: this machine (or the VM it is) offers no KVM');
    // sch_netem is tried for real; without it the line says what miglab does instead.
    if (byName.sch_netem!.status !== 'ok') expect(byName.sch_netem!.found).toMatch(/miglab shapes bandwidth with tbf .* nftables/);
    expect(existsSync('/run/miglab/mldoc')).toBe(false);
  });
});
