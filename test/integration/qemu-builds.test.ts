// Two QEMU builds side by side on the shared lab: Debian's 7.2 (system) and 10.0 from
// bookworm-backports (fetched by `make qemu-builds` before the suite, into vm-images/cache/qemu).
// What a user would notice if it broke: a guest moves from the old QEMU to the new one (the
// direction of a hypervisor upgrade) and goes on there with the same boot, with the machine type
// pinned to the one both know and both versions recorded; asking a build for a capability it no
// longer has is refused in one line before any guest starts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IMAGE_CACHE_DIR, migrate } from '../../src/api.js';
import { cachedBuilds, qemuCacheDir } from '../../src/qemu/fetch.js';
import { sharedLabChoice, sharedLabLeftovers } from '../support/shared-lab.js';

const results = mkdtempSync(join(tmpdir(), 'miglab-it-qemu-'));
afterAll(() => rmSync(results, { recursive: true, force: true }));
const LAB = sharedLabChoice();

beforeAll(async () => {
  const cached = await cachedBuilds(qemuCacheDir(IMAGE_CACHE_DIR));
  if (!cached.some((b) => b.series === '10.0')) throw new Error('QEMU 10.0 is not cached: run `make qemu-builds` (make integration does) before this suite');
});

describe('a migration from one QEMU build to another', () => {
  it('moves the guest from 7.2 to 10.0 with the machine type pinned, and records both', async () => {
    const { report } = await migrate({
      scenario: { guest: { memoryMiB: 128, accel: 'tcg', diskSizeMiB: 16 }, qemu: { source: 'system', destination: '10.0' }, port: 4460, timeoutMs: 60000 },
      lab: LAB,
      resultsRoot: results,
    });
    expect(report.failure).toBeUndefined();
    expect(report.ok).toBe(true);
    expect(report.outputs.destinationStatus).toBe('running');
    const q = report.inputs.qemu;
    // What each QEMU said of itself over QMP, not what miglab asked for.
    expect(q.version).toMatch(/^7\.2\./);
    expect(q.destination?.version).toMatch(/^10\.0\./);
    expect(q.machineType).toBe('pc-i440fx-7.2');
    expect(report.inputs.machine?.machineType).toBe('pc-i440fx-7.2');
    expect(q.builds?.destination.debianVersion).toMatch(/bpo12/);
    // The 10.0 destination runs its own binary with its own modules (block-nfs opens the disk) and firmware.
    const dst = report.inputs.commands.destination.argv;
    expect(dst[0]).toBe('env');
    expect(dst[1]).toMatch(/^QEMU_MODULE_DIR=.*\/vm-images\/cache\/qemu\/.*\/usr\/lib\/x86_64-linux-gnu\/qemu$/);
    expect(dst[dst.indexOf('-machine') + 1]).toBe('pc-i440fx-7.2');
    // Both sides pad the RAM alike: 7.2's TCG work-around decides the size for both.
    expect(report.inputs.commands.source.argv[report.inputs.commands.source.argv.indexOf('-m') + 1]).toBe(dst[dst.indexOf('-m') + 1]);
    // 7.2 has no downtime trace points, and a breakdown needs both sides: neither traces.
    expect(report.inputs.commands.source.argv).not.toContain('-trace');
    expect(dst).not.toContain('-trace');
    expect(report.outputs.downtimeTrace).toBeUndefined();
    expect(await sharedLabLeftovers()).toEqual([]);
  }, 180_000);

  it("on 10.0 both sides, with multifd, says where the downtime went: the switchover checkpoint to checkpoint and each device's share", async () => {
    const { report } = await migrate({
      scenario: { guest: { memoryMiB: 128, accel: 'tcg', diskSizeMiB: 16 }, qemu: { source: '10.0' }, capabilities: { multifd: true }, parameters: { multifdChannels: 2 }, port: 4462, timeoutMs: 60000 },
      lab: LAB,
      resultsRoot: results,
    });
    expect(report.failure).toBeUndefined();
    // 10.0 takes multifd only before it listens: started with -incoming defer, opened by migrate-incoming.
    const dst = report.inputs.commands.destination.argv;
    expect(dst[dst.indexOf('-incoming') + 1]).toBe('defer');
    expect(report.outputs.final?.ram?.multifdBytes).toBeGreaterThan(0);
    const t = report.outputs.downtimeTrace!;
    expect(t.phases[0]!.from).toBe('src-downtime-start');
    expect(t.phases.at(-1)!.to).toBe('dst-precopy-bh-vm-started');
    expect(t.phases.map((p) => p.to)).toEqual(expect.arrayContaining(['src-vm-stopped', 'src-iterable-saved', 'src-non-iterable-saved', 'dst-precopy-loadvm-completed']));
    // The same span as QEMU's STOP and RESUME events, seen through other stamps (both on this machine's clock).
    const events = report.outputs.eventDowntimeMs!;
    expect(Math.abs(t.totalMs! - events)).toBeLessThan(Math.max(10, events / 2));
    // The guest's own devices are among the sections each side saved and loaded.
    for (const devices of [t.sourceDevices, t.destinationDevices]) {
      expect(devices.map((d) => d.device)).toEqual(expect.arrayContaining(['ram', expect.stringMatching(/virtio-net$/), expect.stringMatching(/virtio-blk$/)]));
    }
    expect(t.sourceSaveMs).toBeGreaterThan(0);
    expect(t.destinationLoadMs).toBeGreaterThan(0);
    expect(await sharedLabLeftovers()).toEqual([]);
  }, 180_000);

  it('refuses a capability the 10.0 destination no longer has, before any guest starts', async () => {
    await expect(
      migrate({ scenario: { guest: { memoryMiB: 128, accel: 'tcg' }, qemu: { source: 'system', destination: '10.0' }, capabilities: { compress: true }, port: 4461 }, lab: LAB, resultsRoot: results }),
    ).rejects.toThrow(/^the destination's QEMU 10\.0\.\d+ \(10\.0\) does not offer migration capability compress; drop it, or give the destination a QEMU build that has it/);
    expect(await sharedLabLeftovers()).toEqual([]);
  }, 60_000);
});
