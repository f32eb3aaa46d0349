// Section: virtio against emulated devices. iperf3 between the client host and the guest over
// the bridge, for each NIC model, both directions, TCP throughput and UDP jitter/loss; and the
// guest's own disk benchmark on virtio-blk against IDE.
import { runIperf } from '../measure/iperf.js';
import type { DiskInterface, NicModel } from '../machine/spec.js';
import { withGuest, type HomeworkContext } from './context.js';
import type { NicRow } from '../results/homework.js';

// The shapes homework.json records (src/results/homework.ts).
export type { NicRow };

const mbps = (bps: number) => bps / 1e6;

/** virtio-net gets virtio-blk; the emulated NICs get the emulated IDE disk. */
export function diskFor(nic: NicModel): DiskInterface {
  return nic === 'virtio-net-pci' ? 'virtio' : 'ide';
}

export async function compareDevices(ctx: HomeworkContext): Promise<NicRow[]> {
  const rows: NicRow[] = [];
  const client = ctx.lab.hosts.client.host;
  const { iperfSeconds: durationS, udpBitrate } = ctx.spec;
  const wait = { timeoutMs: durationS * 1000 + 30000, signal: ctx.signal };
  for (const nic of ctx.spec.nics) {
    const disk = diskFor(nic);
    ctx.progress('devices', `${nic} + ${disk}: iperf3 both ways, UDP at ${udpBitrate}bit/s, disk benchmark`);
    rows.push(
      await withGuest(ctx, { accel: ctx.accel.used, nicModel: nic, diskInterface: disk, iperfServer: true, label: `dev-${nic}` }, async ({ agent, ip }) => {
        const to = await runIperf(client, { server: ip, durationS }, wait);
        const from = await runIperf(client, { server: ip, durationS, reverse: true }, wait);
        const udp = await runIperf(client, { server: ip, durationS, udp: true, bitrate: udpBitrate }, wait);
        const d = await agent.benchDisk(ctx.spec.diskBenchMiB);
        return {
          nic,
          disk,
          tcpToGuestMbps: mbps(to.summary.receivedBps),
          tcpFromGuestMbps: mbps(from.summary.receivedBps),
          tcpRetransmits: to.summary.retransmits,
          udpTargetMbps: mbps(udp.summary.sentBps),
          udpReceivedMbps: mbps(udp.summary.receivedBps),
          udpJitterMs: udp.summary.jitterMs,
          udpLostPct: udp.summary.lostPercent,
          diskWriteMiBps: d.writeMiBps,
          diskReadMiBps: d.readMiBps,
          diskDevice: d.device,
        };
      }),
    );
  }
  return rows;
}
