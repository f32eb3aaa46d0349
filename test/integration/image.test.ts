// The guest image for real: build it (or take it from the cache), boot it under QEMU TCG, and
// watch it come up: modules loaded, the NIC configured from the kernel command line, heartbeats
// counting up, and the agent answering over UDP. The NIC is QEMU's user network with one UDP
// forward from 127.0.0.1, so the test needs no lab. slirp's restrict=on would drop the agent's
// UDP replies too, so instead the guest gets no default route and no IPv6: it can reach only
// slirp's own 10.0.2.0/24, where 10.0.2.2 is the host's loopback. The agent only ever replies.
// QEMU is stopped by the pid this test started.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import type { HostProcess } from '../../src/host/host.js';
import { LocalHost } from '../../src/host/local.js';
import { buildImage, findImage, type ImageInfo } from '../../src/image/build.js';
import { AGENT_UDP_PORT, IPERF3_PORT, bootArgv, guestAppend, parseGuestLine, type GuestLine } from '../../src/image/guest.js';
import { pollUntil } from '../../src/util/deadline.js';
import { askUdp as ask, freeUdpPort } from '../support/udp.js';

jest.setTimeout(60_000);

const local = new LocalHost();
let image: ImageInfo;
let work: string;
let qemu: HostProcess | undefined;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    // ESRCH: the process is gone, which is what the caller asks about.
    return false;
  }
}

function guestLines(file: string): GuestLine[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .map(parseGuestLine)
    .filter((l): l is GuestLine => l !== undefined);
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'miglab-image-test-'));
  // A first build downloads the kernel package (about 70 MB) and takes 20-60 s; later runs reuse it.
  image = await buildImage({ log: (l) => process.stderr.write(`image: ${l}\n`) });
}, 300_000);

afterAll(async () => {
  if (qemu) {
    await qemu.stop(2000);
    expect(pidAlive(qemu.pid)).toBe(false);
  }
  rmSync(work, { recursive: true, force: true });
});

describe('guest image', () => {
  it('comes from the cache at once the second time', async () => {
    const started = Date.now();
    const again = await buildImage();
    expect(Date.now() - started).toBeLessThan(2000);
    expect(again.hash).toBe(image.hash);
    expect((await findImage())?.dir).toBe(image.dir);
    expect(image.modules).toEqual(expect.arrayContaining(['virtio_net', 'virtio_blk', 'e1000', '8139cp', 'ata_piix', 'sd_mod']));
  });

  it('boots under TCG to an agent that beats, has its NIC, answers over UDP, and serves iperf3', async () => {
    const serial = join(work, 'serial.log');
    const port = await freeUdpPort();
    const iperfPort = await freeUdpPort(); // free for UDP; TCP on the same number is checked by QEMU
    const append = guestAppend({ ip: '10.0.2.15/24', heartbeatMs: 100, iperf: true });
    const argv = [
      'qemu-system-x86_64',
      '-accel', 'tcg',
      '-m', '256',
      '-display', 'none',
      '-monitor', 'none',
      '-no-reboot',
      '-serial', `file:${serial}`,
      '-netdev', `user,id=n0,ipv6=off,hostfwd=udp:127.0.0.1:${port}-:${AGENT_UDP_PORT},hostfwd=tcp:127.0.0.1:${iperfPort}-:${IPERF3_PORT}`,
      '-device', 'virtio-net-pci,netdev=n0',
      ...bootArgv(image, append),
    ];
    const started = Date.now();
    qemu = local.spawn(argv);
    const proc = qemu;
    const exitedEarly = () => {
      if (proc.hasExited) throw new Error(`QEMU exited early: ${proc.tail()}`);
    };

    const beats = await pollUntil(
      'two heartbeats from the guest',
      () => {
        exitedEarly();
        const hb = guestLines(serial).filter((l) => l.kind === 'heartbeat');
        return hb.length >= 2 ? hb : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    process.stderr.write(`image: first heartbeats ${Date.now() - started} ms after QEMU started (${image.kernelBoot} kernel)\n`);

    const lines = guestLines(serial);
    const modules = lines.find((l) => l.kind === 'modules');
    expect(modules).toEqual({ kind: 'modules', loaded: image.modules.length, failed: [] });
    expect(lines.find((l) => l.kind === 'net')).toEqual({ kind: 'net', iface: 'eth0', ip: '10.0.2.15/24' });
    const ready = lines.find((l) => l.kind === 'ready');
    expect(ready).toMatchObject({ kind: 'ready', ip: '10.0.2.15' });

    const [first, second] = beats;
    if (first?.kind !== 'heartbeat' || second?.kind !== 'heartbeat' || ready?.kind !== 'ready') throw new Error('unreachable');
    expect(second.seq).toBeGreaterThan(first.seq);
    expect(second.monoNs).toBeGreaterThan(first.monoNs);
    expect(second.boot).toBe(first.boot);
    expect(ready.boot).toBe(first.boot);

    const pong = await ask(port, 'ping t1');
    expect(pong).toMatch(/^pong t1 \d+ \d+$/);
    const info = await ask(port, 'info');
    // The agent's socket is bound to the configured address, not to a wildcard.
    expect(info).toMatch(new RegExp(`^info boot=${first.boot} seq=\\d+ ip=10\\.0\\.2\\.15 uptime_ms=\\d+ mem_total_kib=\\d+ mem_available_kib=\\d+ udp_bind=10\\.0\\.2\\.15$`));
    expect(await ask(port, 'bench cpu 100')).toMatch(/^bench cpu ops=\d+ ms=\d+\.\d ops_per_s=\d+$/);
    expect(await ask(port, 'dirty start 8 20 random')).toBe('ok');
    await new Promise((r) => setTimeout(r, 500));
    expect(await ask(port, 'dirty status')).toMatch(/^dirty wss_mib=8 target_mibps=20 achieved_mibps=[\d.]+ pages_written=[1-9]\d* running=1$/);
    expect(await ask(port, 'dirty verify')).toBe('verify pages=2048 bad=0 first_bad=-1');
    expect(await ask(port, 'dirty stop')).toBe('ok');

    // iperf3 in the guest runs with the libraries the builder copied next to it.
    expect(readFileSync(serial, 'utf8')).toContain(`MIGLAB-IPERF started port=${IPERF3_PORT} bind=10.0.2.15`);
    const iperf = await local.run(['iperf3', '-c', '127.0.0.1', '-p', String(iperfPort), '-t', '1', '-J'], { timeoutMs: 20_000 });
    const bitsPerSecond = (JSON.parse(iperf.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second;
    expect(bitsPerSecond).toBeGreaterThan(0);

    // Still the same boot, still counting.
    const later = guestLines(serial).filter((l) => l.kind === 'heartbeat');
    const last = later[later.length - 1];
    expect(last).toMatchObject({ boot: first.boot });
    expect(last?.kind === 'heartbeat' && last.seq).toBeGreaterThan(second.seq);

    await proc.stop(2000);
    expect(proc.hasExited).toBe(true);
    expect(pidAlive(proc.pid)).toBe(false);
  });
});
