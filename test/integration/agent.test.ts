// The guest agent from the lab's client namespace, through miglab-probe: a real lab, a real TCG
// guest on `src` with its data disk on the NFS export. What a user would notice if it broke: the
// agent's answers and benchmark figures are there and plausible, the disk bench finds the disk on
// either controller, and the 1 kHz probe sees a 300 ms pause of the guest as a ~300 ms silence.
import { join } from 'node:path';
import { AgentClient } from '../../src/guest/agent-client.js';
import { startProbe } from '../../src/guest/probe.js';
import { takeSlot, useSharedLab } from '../support/shared-lab.js';
import { startSingleGuest } from '../../src/machine/lab-guest.js';
import { parseMachineSpec, type DiskInterface } from '../../src/machine/spec.js';
import type { Vm } from '../../src/machine/vm.js';
import { sleep } from '../../src/util/deadline.js';
import { Teardown } from '../../src/util/teardown.js';

const BOOT_MS = 60_000;
const fx = useSharedLab('agent');

async function bootGuest(td: Teardown, diskInterface: DiskInterface): Promise<{ vm: Vm; agent: AgentClient; ip: string }> {
  const { index, lab: l } = await takeSlot(fx.lab, td, diskInterface);
  const name = `ag${index}`;
  const ip = l.guestIp(index);
  const spec = parseMachineSpec({ name, accel: 'tcg', memoryMiB: 256, nicModel: 'virtio-net-pci', diskInterface, mac: l.guestMac(index), ip: `${ip}/${l.prefixLength}` });
  const vm = await startSingleGuest({ lab: l, media: fx.image, spec, accel: 'tcg', runDir: fx.runDir, teardown: td, diskFile: `agent-${name}.qcow2`, diskSizeMiB: 64, timeoutMs: BOOT_MS });
  const agent = new AgentClient({ host: l.hosts.client.host, guestIp: ip, toolPath: fx.toolPath });
  await agent.waitReachable({ timeoutMs: 20_000 });
  return { vm, agent, ip };
}

describe('the guest agent, from the client namespace', () => {
  it('answers info and the benches, and the probe sees a 300 ms pause', async () => {
    const td = new Teardown();
    try {
      const { vm, agent, ip } = await bootGuest(td, 'virtio');

      const info = await agent.info();
      expect(info.ip).toBe(ip);
      expect(info.bootId).toMatch(/^[0-9a-f]{16}$/);
      expect(info.memTotalKiB).toBeGreaterThan(128 * 1024);
      expect(info.memTotalKiB).toBeLessThanOrEqual(256 * 1024);

      const cpu = await agent.benchCpu(300);
      expect(cpu.elapsedMs).toBeGreaterThanOrEqual(300);
      expect(cpu.opsPerS).toBeGreaterThan(1e6); // TCG does 10^7-10^8 of these steps per second
      const mem = await agent.benchMem(16, 300);
      expect(mem.elapsedMs).toBeGreaterThanOrEqual(300);
      expect(mem.bytes).toBeGreaterThanOrEqual(2 * 16 * 1024 * 1024);
      expect(mem.bandwidthMiBps).toBeGreaterThan(20);
      const disk = await agent.benchDisk(16);
      expect(disk).toMatchObject({ device: 'vda', bytes: 16 * 1024 * 1024, badSectors: 0 });
      expect(disk.writeMiBps).toBeGreaterThan(1);
      expect(disk.readMiBps).toBeGreaterThan(1);
      // Asking again while nothing runs works; a bad request is refused by name.
      await expect(agent.request('bench disk 0', { timeoutMs: 5000 })).rejects.toThrow(/refused "bench disk 0": usage/);
      console.log(`agent figures (TCG): cpu ${Math.round(cpu.opsPerS)} ops/s, mem ${mem.bandwidthMiBps} MiB/s, disk virtio write ${disk.writeMiBps} read ${disk.readMiBps} MiB/s`);

      const probe = startProbe({ host: fx.lab.hosts.client.host, guestIp: ip, maxDurationMs: 10_000, toolPath: fx.toolPath, logFile: join(fx.runDir, 'probe.csv') });
      td.defer('stop the probe', () => probe.stop().then(() => undefined));
      await sleep(500);
      const pausedAt = Date.now();
      await vm.qmp.execute('stop', undefined, { timeoutMs: 5000 });
      await sleep(300);
      await vm.qmp.execute('cont', undefined, { timeoutMs: 5000 });
      const resumedAt = Date.now();
      await sleep(700);
      const r = await probe.stop({ timeoutMs: 10_000 });
      expect(() => process.kill(probe.pid, 0)).toThrow(); // the tool is gone once stop() resolves
      console.log(
        `probe: sent ${r.sent} received ${r.received} lost ${r.lost}; gap ${r.longestGapMs} ms (QMP stop..cont ${resumedAt - pausedAt} ms), ` +
          `lost in gap ${r.lostAroundGap}, guest gap ${r.guestGapMs} ms, rtt p50 ${r.rttP50Ms} p99 ${r.rttP99Ms} max ${r.rttMaxMs} ms; ${JSON.stringify(r.meta)}`,
      );
      expect(r.intervalMs).toBe(1);
      expect(r.sent).toBeGreaterThan(1200); // ~1.5 s at 1 kHz
      expect(r.longestGapMs!).toBeGreaterThanOrEqual(250);
      expect(r.longestGapMs!).toBeLessThanOrEqual(600);
      // The silence is where the pause was (QMP round trips take a few ms each way).
      expect(r.longestGapStartMs!).toBeGreaterThan(pausedAt - 100);
      expect(r.longestGapEndMs!).toBeLessThan(resumedAt + 200);
      const before = r.rows.filter((x) => x.recvNs !== undefined && Number(x.recvNs / 1_000_000n) < r.longestGapStartMs!).length;
      const after = r.rows.filter((x) => x.recvNs !== undefined && Number(x.recvNs / 1_000_000n) > r.longestGapEndMs!).length;
      expect(before).toBeGreaterThan(300);
      expect(after).toBeGreaterThan(300);
      // Outside the pause nearly every probe is answered.
      expect(r.lost - r.lostAroundGap).toBeLessThan(0.05 * r.sent);
    } finally {
      expect(await td.run()).toEqual([]);
    }
  }, 90_000);

  it('finds the data disk as /dev/sda on IDE', async () => {
    const td = new Teardown();
    try {
      const { agent } = await bootGuest(td, 'ide');
      const disk = await agent.benchDisk(8);
      console.log(`disk ide: write ${disk.writeMiBps} read ${disk.readMiBps} MiB/s`);
      expect(disk).toMatchObject({ device: 'sda', bytes: 8 * 1024 * 1024, badSectors: 0 });
      expect(disk.readMiBps).toBeGreaterThan(0.5);
    } finally {
      expect(await td.run()).toEqual([]);
    }
  }, 60_000);
});
