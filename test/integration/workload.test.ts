// The guest workloads and their integrity checks, driven through src/workload on a real TCG guest
// in a real lab (data disk on the NFS export). What a user would notice if it broke: a workload
// that does not reach the rate asked for, a verify that passes a corrupted page or disk record
// (or fails a clean one), and a data disk image that QEMU left inconsistent.
import { join } from 'node:path';
import { AgentClient } from '../../src/guest/agent-client.js';
import { takeSlot, useSharedLab } from '../support/shared-lab.js';
import { startSingleGuest } from '../../src/machine/lab-guest.js';
import { parseMachineSpec } from '../../src/machine/spec.js';
import { sleep } from '../../src/util/deadline.js';
import { Teardown } from '../../src/util/teardown.js';
import { qemuImgCheck, startWorkload, stopWorkload, verifyIntegrity, workloadStatus } from '../../src/workload/run.js';
import { parseWorkload } from '../../src/workload/spec.js';

const BOOT_MS = 60_000;
const fx = useSharedLab('workload');

describe('guest workloads', () => {
  it('reach their rates, verify clean, catch deliberate corruption, and leave a clean qcow2', async () => {
    const td = new Teardown();
    const figures: string[] = [];
    try {
      const { index, lab: l } = await takeSlot(fx.lab, td, 'wl');
      const disk = `workload-wl${index}.qcow2`;
      const ip = l.guestIp(index);
      const spec = parseMachineSpec({
        name: `wl${index}`,
        accel: 'tcg',
        memoryMiB: 256,
        nicModel: 'virtio-net-pci',
        diskInterface: 'virtio',
        mac: l.guestMac(index),
        ip: `${ip}/${l.prefixLength}`,
        iperfServer: true,
      });
      const vm = await startSingleGuest({ lab: l, media: fx.image, spec, accel: 'tcg', runDir: fx.runDir, teardown: td, diskFile: disk, diskSizeMiB: 64, timeoutMs: BOOT_MS });
      const agent = new AgentClient({ host: l.hosts.client.host, guestIp: ip, toolPath: fx.toolPath });
      await agent.waitReachable({ timeoutMs: 20_000 });

      // Dirty pages at a modest rate: the rate reached is the one asked for, give or take.
      const dirty = parseWorkload('dirty:64M@32M/s,sequential');
      await startWorkload(agent, dirty);
      await sleep(2000);
      const ds = await workloadStatus(agent, dirty);
      expect(ds.running).toBe(true);
      expect(ds.achievedMiBps!).toBeGreaterThan(16);
      expect(ds.achievedMiBps!).toBeLessThan(48);
      const dStop = await stopWorkload(agent, dirty);
      expect(dStop.running).toBe(false);
      figures.push(`dirty 64M@32M/s sequential: ${ds.achievedMiBps} MiB/s`);
      expect(await verifyIntegrity(agent, dirty)).toMatchObject({ checked: 'memory', ok: true, pages: 16384, badPages: 0 });
      await agent.dirtyCorrupt(5);
      const dBad = await verifyIntegrity(agent, dirty);
      expect(dBad).toMatchObject({ checked: 'memory', ok: false, pages: 16384, badPages: 1, firstBadPage: 5 });
      expect(dBad.detail).toMatch(/1 of 16384 pages are wrong, the first is page 5/);

      // As fast as the guest can, random pages: only reported.
      const dirtyMax = parseWorkload('dirty:64M@0,random');
      await startWorkload(agent, dirtyMax);
      await sleep(1000);
      figures.push(`dirty 64M@max random: ${(await stopWorkload(agent, dirtyMax)).achievedMiBps} MiB/s`);
      expect((await verifyIntegrity(agent, dirtyMax)).ok).toBe(true);

      // Disk records at 512 KiB/s for about 2 s: all on the disk, intact and in sequence.
      const diskWl = parseWorkload('disk:512K/s');
      await startWorkload(agent, diskWl);
      await sleep(2000);
      const ks = await workloadStatus(agent, diskWl);
      expect(ks.running).toBe(true);
      expect(ks.achievedKiBps!).toBeGreaterThan(256);
      expect(ks.achievedKiBps!).toBeLessThan(768);
      const kStop = await stopWorkload(agent, diskWl);
      figures.push(`disk 512K/s: ${ks.achievedKiBps} KiB/s, ${kStop.diskRecords} records`);
      expect(kStop).toMatchObject({ running: false, diskFull: false });
      expect(kStop.diskRecords!).toBeGreaterThan(128);
      const kv = await verifyIntegrity(agent, diskWl);
      expect(kv).toMatchObject({ checked: 'disk', ok: true, records: kStop.diskRecords, badRecords: 0, gaps: 0, lastSeq: kStop.diskSeq });
      const victim = Math.floor(kStop.diskRecords! / 2);
      await agent.diskCorrupt(victim);
      expect(await verifyIntegrity(agent, diskWl)).toMatchObject({ ok: false, badRecords: 1, firstBadRecord: victim, gaps: 0 });

      // The cpu loop counts its own throughput.
      const cpu = parseWorkload('cpu');
      await startWorkload(agent, cpu);
      await sleep(1000);
      const cs = await workloadStatus(agent, cpu);
      expect(cs.running).toBe(true);
      expect(cs.opsPerS!).toBeGreaterThan(1e6);
      await stopWorkload(agent, cpu);
      figures.push(`cpu: ${Math.round(cs.opsPerS!)} ops/s`);
      expect(await verifyIntegrity(agent, cpu)).toMatchObject({ checked: 'none', ok: true });

      // iperf3 from the client namespace to the guest's server, stopped early.
      const net = parseWorkload('net');
      await startWorkload(agent, net, { durationS: 30, logFile: join(fx.runDir, 'iperf3.json') });
      expect((await workloadStatus(agent, net)).running).toBe(true);
      await sleep(1500);
      const ns = await stopWorkload(agent, net);
      expect(ns.running).toBe(false);
      expect(ns.netBps!).toBeGreaterThan(1e6);
      figures.push(`net: ${Math.round(ns.netBps! / 1e6)} Mbit/s`);

      // The agent still answers after the workloads (its main thread never waits on one). The
      // deadline allows for a TCG guest on a loaded machine just after iperf3: 1 s once timed out in CI.
      const pong = await agent.ping({ timeoutMs: 5000 });
      expect(pong.hbSeq).toBeGreaterThan(0);

      await vm.shutdown();
      const check = await qemuImgCheck(l.nfs.host, l.nfs.path(disk));
      expect(check).toMatchObject({ ok: true, exitCode: 0, meaning: 'clean' });
      expect(check.output).toMatch(/No errors were found/);
      console.log(`workload figures (TCG): ${figures.join('; ')}`);
    } finally {
      expect(await td.run()).toEqual([]);
    }
  }, 90_000);
});
