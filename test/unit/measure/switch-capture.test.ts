// The switch capture: tcpdump's argv, its text read back into the guest's frames, and the process
// driven on a scripted host (listening before it returns, SIGINT through the host, the file read).
import { captureArgv, parseCapturedFrames, startSwitchCapture } from '../../../src/measure/switch-capture.js';
import { FakeHost } from '../../support/fake-host.js';

const MAC = '52:54:00:77:00:00';
const TEXT = [
  '1796357172.610369 52:54:00:77:00:00 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 10.77.0.100 tell 10.77.0.100, length 28',
  '1796357173.930430 52:54:00:77:00:00 > ff:ff:ff:ff:ff:ff, ethertype Reverse ARP (0x8035), length 60: Reverse Request who-is 52:54:00:77:00:00 tell 52:54:00:77:00:00, length 46',
  '1796357173.930811 02:6d:6c:62:00:03 > 52:54:00:77:00:00, ethertype IPv4 (0x0800), length 74: 10.77.0.3.40000 > 10.77.0.100.7777: UDP, length 32',
  '1796357173.990001 52:54:00:77:00:00 > 02:6d:6c:62:00:03, ethertype IPv4 (0x0800), length 74: 10.77.0.100.7777 > 10.77.0.3.40000: UDP, length 32',
  '1796357173.990002 02:6d:6c:62:00:01 > 02:6d:6c:62:00:02, ethertype IPv4 (0x0800), length 1514: another host pair',
  '1796357174.000000 52:54:00:77:00:00 > 33:33:00:00:00:16, ethertype IPv6 (0x86dd), length 90: :: > ff02::16: HBH ICMP6',
  'reading from file x.pcap, link-type EN10MB (Ethernet), snapshot length 96',
].join('\n');

describe('parseCapturedFrames', () => {
  test('each of the guest\'s frames with its time, direction and kind; other hosts\' frames and tcpdump\'s own lines are skipped', () => {
    const f = parseCapturedFrames(TEXT, MAC);
    expect(f.map((x) => [x.direction, x.kind])).toEqual([
      ['from-guest', 'arp'],
      ['from-guest', 'rarp'],
      ['to-guest', 'ipv4'],
      ['from-guest', 'ipv4'],
      ['from-guest', 'other'],
    ]);
    // To the microsecond, as the kernel stamped it.
    expect(f[1]!.tMs).toBeCloseTo(1796357173930.43, 2);
    expect(f[2]!.tMs - f[1]!.tMs).toBeCloseTo(0.381, 3);
  });

  test('the MAC is matched whatever its case', () => {
    expect(parseCapturedFrames(TEXT, MAC.toUpperCase())).toHaveLength(5);
  });
});

describe('captureArgv', () => {
  test('the port, the guest\'s frames only, each handed over at once, to the file', () => {
    const argv = captureArgv('sw-dst', MAC, '/r/switch-dst.pcap');
    expect(argv.slice(0, 3)).toEqual(['tcpdump', '-i', 'sw-dst']);
    expect(argv).toContain('--immediate-mode');
    expect(argv.slice(-3)).toEqual(['ether', 'host', MAC]);
    expect(argv[argv.indexOf('-w') + 1]).toBe('/r/switch-dst.pcap');
  });

  test('a MAC that is not one is refused (it would become part of the filter)', () => {
    expect(() => captureArgv('sw-dst', 'host 1 or', '/r/x.pcap')).toThrow(/not a MAC address/);
  });
});

describe('startSwitchCapture', () => {
  test('returns once tcpdump says it listens; stop() signals it through the host and reads the file', async () => {
    const host = new FakeHost('switch', { run: (argv) => (argv[0] === 'tcpdump' ? { stdout: TEXT } : undefined) });
    const starting = startSwitchCapture({ host, iface: 'sw-dst', guestMac: MAC, file: '/r/switch-dst.pcap', timeoutMs: 2000 });
    const proc = host.spawned[0]!;
    let ready = false;
    void starting.then(() => (ready = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(ready).toBe(false);
    proc.stderr.write('tcpdump: listening on sw-dst, link-type EN10MB (Ethernet), snapshot length 96 bytes\n');
    const capture = await starting;
    const stopping = capture.stop({ timeoutMs: 2000 });
    await new Promise((r) => setTimeout(r, 10));
    expect(host.ran[0]).toEqual(['kill', '-INT', String(proc.pid)]);
    proc.exit();
    const frames = await stopping;
    expect(host.ran[1]).toEqual(['tcpdump', '-r', '/r/switch-dst.pcap', '-tt', '-n', '-e']);
    expect(frames).toHaveLength(5);
    // Twice is once.
    expect(await capture.stop()).toBe(frames);
    expect(host.ran).toHaveLength(2);
  });

  test('end() only ends tcpdump (teardown after a run with nothing to read): the file is not read', async () => {
    const host = new FakeHost('switch');
    const starting = startSwitchCapture({ host, iface: 'sw-dst', guestMac: MAC, file: '/r/x.pcap', timeoutMs: 2000 });
    const proc = host.spawned[0]!;
    proc.stderr.write('tcpdump: listening on sw-dst\n');
    const capture = await starting;
    const ending = capture.end({ timeoutMs: 2000 });
    await new Promise((r) => setTimeout(r, 10));
    proc.exit();
    await ending;
    await capture.end();
    expect(host.ran).toEqual([['kill', '-INT', String(proc.pid)]]);
  });

  test('a tcpdump that exits before listening is an error with its last words', async () => {
    const host = new FakeHost('switch');
    const starting = startSwitchCapture({ host, iface: 'sw-dst', guestMac: MAC, file: '/r/x.pcap', timeoutMs: 2000 });
    const proc = host.spawned[0]!;
    proc.stderr.write('tcpdump: sw-dst: No such device exists\n');
    proc.exit({ exitCode: 1, signal: null });
    await expect(starting).rejects.toThrow(/exited with code 1 before listening: tcpdump: sw-dst: No such device exists/);
  });
});
