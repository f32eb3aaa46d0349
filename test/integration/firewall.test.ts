// The lab's firewall and listeners for real: only src opens TCP connections to dst (a client or a
// guest is refused at once), only src and dst reach the NFS server, a guest's own traffic is
// bridged past the firewall untouched, nothing listens on a wildcard address, and `lab status`
// reports a firewall that was removed or changed and a server on a wildcard address. Needs root.
// Uses its own prefix (`mfw`) so it never meets another lab; the stand-in guest is a namespace
// `mfw-g` plugged into dst's br0 with a veth (as QEMU's tap would be), removed afterwards.
import { jest } from '@jest/globals';
import { z } from 'zod';
import type { Host, HostProcess } from '../../src/host/host.js';
import { LocalHost, NetnsHost } from '../../src/host/local.js';
import { applyLabFirewall } from '../../src/lab/firewall.js';
import { labDown, labStatus, labUp, listNetns, type Lab, type LabStatus } from '../../src/lab/index.js';
import { describeListener } from '../../src/lab/listeners.js';
import { pollUntil } from '../../src/util/deadline.js';

// Its own lab: it removes and alters the lab's firewall and adds a guest namespace to the bridge.
const PREFIX = 'mfw';
const STATE_ROOT = '/run/miglab';
const GUEST_NS = 'mfw-g';
const local = new LocalHost();
const guest = new NetnsHost('guest', GUEST_NS);

jest.setTimeout(60_000);

const IperfTcpSchema = z.object({ end: z.object({ sum_received: z.object({ bits_per_second: z.number() }) }) });
const IperfUdpSchema = z.object({ end: z.object({ sum: z.object({ packets: z.number(), lost_packets: z.number() }) }) });

let lab: Lab;
const servers: HostProcess[] = [];

/** Start a server on `host` and wait (5 s at most) until something listens on `port` there. */
async function listen(host: Host, argv: string[], port: number): Promise<HostProcess> {
  const server = host.spawn(argv);
  servers.push(server);
  await pollUntil(
    `${argv[0]} to listen on port ${port} on ${host.name}`,
    async () => ((await host.run(['ss', '-Hltn', 'sport', '=', `:${port}`])).stdout.includes(`:${port}`) ? true : undefined),
    { timeoutMs: 5000, intervalMs: 20 },
  );
  return server;
}

async function status(): Promise<LabStatus> {
  return labStatus(PREFIX, { stateRoot: STATE_ROOT });
}

function refused(s: LabStatus, role: 'src' | 'dst'): number {
  return s.firewall.find((f) => f.role === role)?.refusedPackets ?? -1;
}

beforeAll(async () => {
  lab = await labUp({ prefix: PREFIX, stateRoot: STATE_ROOT }, { timeoutMs: 30_000 });
  // A stand-in guest on dst: its own namespace, bridged on br0 like a QEMU tap, the guest's address.
  await local.run(['ip', 'netns', 'add', GUEST_NS]);
  await local.run(['ip', 'link', 'add', 'name', 'g0', 'netns', GUEST_NS, 'type', 'veth', 'peer', 'name', 'gtap', 'netns', lab.names.ns.dst]);
  await lab.hosts.dst.host.run(['ip', 'link', 'set', 'dev', 'gtap', 'master', lab.names.hostBridge, 'up']);
  await guest.run(['ip', 'addr', 'add', `${lab.guestIp(0)}/${lab.prefixLength}`, 'dev', 'g0']);
  await guest.run(['ip', 'link', 'set', 'dev', 'g0', 'up']);
  await guest.run(['ip', 'link', 'set', 'dev', 'lo', 'up']);
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop(1000)));
});

afterAll(async () => {
  if ((await listNetns()).includes(GUEST_NS)) await local.run(['ip', 'netns', 'del', GUEST_NS]);
  await labDown(PREFIX, { timeoutMs: 20_000, stateRoot: STATE_ROOT });
});

test('status shows both firewalls in force and no socket on a wildcard address (rpcbind on the server address only)', async () => {
  const s = await status();
  expect(s.problems).toEqual([]);
  expect(s.firewall.map((f) => [f.role, f.state])).toEqual([
    ['src', 'in-force'],
    ['dst', 'in-force'],
  ]);
  const src = s.listeners.find((n) => n.netns === lab.hosts.src.netns)!;
  expect(src.listeners.filter((l) => l.wildcard).map(describeListener)).toEqual([]);
  const rpcbindTcp = src.listeners.filter((l) => l.netid === 'tcp' && l.port === '111').map((l) => l.address);
  expect(rpcbindTcp.sort()).toEqual([lab.hosts.src.ip, '::1']);
});

test('only src opens a TCP connection to dst: the client and a guest are refused at once', async () => {
  const { src, dst, client } = lab.hosts;
  await listen(dst.host, ['iperf3', '-s', '-B', dst.ip, '-p', '4444', '-1'], 4444);
  const before = refused(await status(), 'dst');
  for (const [who, host] of [
    ['client', client.host],
    ['guest', guest],
  ] as const) {
    const r = await host.run(['iperf3', '-c', dst.ip, '-p', '4444', '-t', '1'], { reject: false, timeoutMs: 10_000 });
    expect({ who, exitCode: r.exitCode, refused: /Connection refused/.test(`${r.stdout}${r.stderr}`) }).toEqual({ who, exitCode: 1, refused: true });
    // A reset, not a silent drop: the answer comes at once, not after a connect timeout.
    expect(r.durationMs).toBeLessThan(2000);
  }
  const ok = await src.host.run(['iperf3', '-c', dst.ip, '-p', '4444', '-t', '1', '-J'], { timeoutMs: 15_000 });
  expect(IperfTcpSchema.parse(JSON.parse(ok.stdout)).end.sum_received.bits_per_second).toBeGreaterThan(100e6);
  expect(refused(await status(), 'dst')).toBe(before + 2);
});

test('only src and dst reach the NFS server', async () => {
  const { client, dst } = lab.hosts;
  const url = `nfs://${lab.nfs.serverIp}${lab.nfs.exportDir}`;
  expect((await dst.host.run(['nfs-ls', url], { reject: false, timeoutMs: 10_000 })).exitCode).toBe(0);
  for (const host of [client.host, guest]) {
    const ls = await host.run(['nfs-ls', url], { reject: false, timeoutMs: 10_000 });
    expect({ host: host.name, failed: ls.exitCode !== 0 }).toEqual({ host: host.name, failed: true });
    expect(ls.durationMs).toBeLessThan(2000);
  }
  const tcp = await client.host.run(['rpcinfo', '-p', lab.nfs.serverIp], { reject: false, timeoutMs: 10_000 });
  expect(`${tcp.stdout}${tcp.stderr}`).toMatch(/Connection refused/);
  const udp = await client.host.run(['rpcinfo', '-T', 'udp', lab.nfs.serverIp, '100000'], { reject: false, timeoutMs: 10_000 });
  expect(udp.exitCode).not.toBe(0);
  expect(udp.durationMs).toBeLessThan(2000);
});

test("a guest's own traffic is bridged past the firewall: TCP both ways and UDP from the client", async () => {
  const ip = lab.guestIp(0);
  const client = lab.hosts.client.host;
  const before = await status();
  await listen(guest, ['iperf3', '-s', '-B', ip, '-p', '5201'], 5201);
  const bits = async (extra: string[]) => {
    const r = await client.run(['iperf3', '-c', ip, '-p', '5201', '-t', '1', '-J', ...extra], { timeoutMs: 15_000 });
    return IperfTcpSchema.parse(JSON.parse(r.stdout)).end.sum_received.bits_per_second;
  };
  const up = await bits([]);
  const down = await bits(['-R']);
  const udpRun = await client.run(['iperf3', '-c', ip, '-p', '5201', '-t', '1', '-J', '-u', '-b', '50M'], { timeoutMs: 15_000 });
  const udp = IperfUdpSchema.parse(JSON.parse(udpRun.stdout)).end.sum;
  process.stdout.write(`client->guest on dst: TCP ${(up / 1e6).toFixed(0)} Mbit/s, reverse ${(down / 1e6).toFixed(0)} Mbit/s, UDP ${udp.packets} packets, ${udp.lost_packets} lost\n`);
  expect(up).toBeGreaterThan(100e6);
  expect(down).toBeGreaterThan(100e6);
  expect(udp.packets).toBeGreaterThan(1000);
  expect(udp.lost_packets).toBeLessThan(udp.packets / 10);
  // None of it met a reject rule.
  const after = await status();
  expect([refused(after, 'src'), refused(after, 'dst')]).toEqual([refused(before, 'src'), refused(before, 'dst')]);
});

test('status reports a removed or changed firewall; loading it again (twice) restores exactly one copy', async () => {
  const dst = lab.hosts.dst;
  await dst.host.run(['nft', 'delete', 'table', 'inet', 'miglab']);
  let s = await status();
  expect(s.firewall.find((f) => f.role === 'dst')?.state).toBe('missing');
  expect(s.problems).toEqual([expect.stringMatching(/^the firewall of mfw-dst is missing .*miglab lab up --prefix mfw/)]);

  await applyLabFirewall(lab, { timeoutMs: 10_000 });
  await applyLabFirewall(lab, { timeoutMs: 10_000 });
  s = await status();
  expect(s.problems).toEqual([]);
  const listing = (await dst.host.run(['nft', 'list', 'ruleset'])).stdout;
  expect(listing.match(/reject with tcp reset/g)).toHaveLength(1);

  await dst.host.run(['nft', 'add', 'rule', 'inet', 'miglab', 'input', 'tcp', 'dport', '4444', 'accept']);
  s = await status();
  expect(s.firewall.find((f) => f.role === 'dst')?.state).toBe('altered');
  expect(s.problems).toEqual([expect.stringMatching(/^the firewall of mfw-dst was changed/)]);
  await applyLabFirewall(lab, { timeoutMs: 10_000 });
  expect((await status()).problems).toEqual([]);
});

test('status reports a server listening on a wildcard address', async () => {
  const client = lab.hosts.client.host;
  const server = await listen(client, ['iperf3', '-s', '-p', '5202'], 5202);
  const s = await status();
  expect(s.problems).toEqual([expect.stringMatching(new RegExp(`^mfw-cli has a socket on a wildcard address.*tcp \\*:5202 \\(iperf3 pid ${server.pid}\\)`))]);
  await server.stop(1000);
  expect((await status()).problems).toEqual([]);
});
