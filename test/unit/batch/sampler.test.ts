// The batch sampler reads the migration link on the machine it is given (the lab's), at the
// switch: one `ip -s -j link show` in the switch namespace per tick, both ports from it. This
// machine's /proc is read for CPU and memory (the embedded lab's QEMUs run here).
import { describe, expect, it } from '@jest/globals';
import { startBatchSampler } from '../../../src/batch/sampler.js';
import { FakeHost } from '../../support/fake-host.js';

describe('startBatchSampler', () => {
  it("reads the switch's ports on the lab's machine and reports their rates", async () => {
    let reads = 0;
    // Each read: 1 MB more received on sw-src and sent on sw-dst than the read before.
    const machine = new FakeHost('lab machine', {
      run: () => {
        const bytes = 1000 + 1_000_000 * reads++;
        const link = (ifname: string, rx: number, tx: number) => ({ ifname, operstate: 'UP', stats64: { rx: { bytes: rx, packets: 1, errors: 0, dropped: 0 }, tx: { bytes: tx, packets: 1, errors: 0, dropped: 0 } } });
        return { stdout: JSON.stringify([link('sw-src', bytes, 0), link('sw-dst', 0, bytes), link('sw-cli', 0, 0)]) };
      },
    });
    const sampler = startBatchSampler({ intervalMs: 100, ports: { netns: 'mlf-sw', srcPort: 'sw-src', dstPort: 'sw-dst' }, sinceMs: Date.now(), netns: [], host: machine });
    while (sampler.samples.length < 2) await new Promise((r) => setTimeout(r, 50));
    const samples = await sampler.stop();
    expect(machine.ran.length).toBeGreaterThanOrEqual(3);
    expect(new Set(machine.ran.map((a) => a.join(' ')))).toEqual(new Set(['ip -n mlf-sw -s -j link show']));
    const links = samples[1]!.links!;
    expect(links.map((l) => l.dev)).toEqual(['sw-src', 'sw-dst']);
    expect(links[0]!.rxBitsPerSecond).toBeGreaterThan(0);
    expect(links[0]!.txBitsPerSecond).toBe(0);
    expect(links[1]!.txBitsPerSecond).toBeGreaterThan(0);
    expect(samples[1]!.qemuLabels).toEqual({});
  });
});
