// A switchover policy on real QEMU: a guest that dirties its memory faster than QEMU may send it
// (max-bandwidth 16 MiB/s against a 32 MiB/s writer) never fits in QEMU's default 300 ms, so the
// default runs into the deadline; local-minimum sees the bytes left stop falling and lets QEMU
// switch with the downtime they need, and the guest goes on at the destination, every decision
// recorded with its figures.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrate } from '../../src/api.js';
import { sharedLabChoice, sharedLabLeftovers } from '../support/shared-lab.js';

const results = mkdtempSync(join(tmpdir(), 'miglab-it-switchover-'));
afterAll(() => rmSync(results, { recursive: true, force: true }));
const LAB = sharedLabChoice();

const BUSY = {
  guest: { memoryMiB: 256, accel: 'tcg' as const, diskSizeMiB: 16 },
  workload: 'dirty:64M@32M/s,random',
  parameters: { maxBandwidthMiBps: 16 },
};

describe('switchover policies', () => {
  it("does not converge with QEMU's default", async () => {
    const { report } = await migrate({ scenario: { ...BUSY, port: 4462, timeoutMs: 15000 }, lab: LAB, resultsRoot: results });
    expect(report.verdict).toBe('did-not-converge');
    // Every pass kept going: QEMU never found what was left small enough.
    const d = report.outputs.switchover!.decisions;
    expect(report.outputs.switchover!.policy).toBe('qemu-default');
    expect(d.length).toBeGreaterThanOrEqual(3);
    expect(d.every((x) => x.action === 'keep')).toBe(true);
    expect(await sharedLabLeftovers()).toEqual([]);
  }, 120_000);

  it('converges with local-minimum, switching once the bytes left stop falling', async () => {
    const { report } = await migrate({ scenario: { ...BUSY, port: 4463, timeoutMs: 60000, switchover: 'local-minimum:max=10s,tolerance=10%' }, lab: LAB, resultsRoot: results });
    expect(report.failure).toBeUndefined();
    expect(report.ok).toBe(true);
    expect(report.outputs.heartbeat?.continuous).toBe(true);
    const sw = report.outputs.switchover!;
    expect(sw.policy).toBe('local-minimum:max=10s,tolerance=10%');
    const acted = sw.decisions.filter((x) => x.action === 'set-downtime-limit');
    expect(acted.length).toBeGreaterThanOrEqual(1);
    const last = acted[acted.length - 1]!;
    expect(last.why).toMatch(/^stopped falling/);
    expect(last.downtimeLimitMs).toBeGreaterThan(300);
    // The limit went to the source's monitor, in the run's record of what was sent.
    expect(report.inputs.monitorCommands.join('\n')).toMatch(new RegExp(`"downtime-limit":${last.downtimeLimitMs}\\b`));
    expect(await sharedLabLeftovers()).toEqual([]);
  }, 120_000);
});
