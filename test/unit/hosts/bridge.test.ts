// A bridge miglab makes on the hosts (bridge.create): the hosts file's form and its refusals, who
// takes part and with which peers, and the argv each host runs (a fixed script, the names as data).
import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bridgeMarker, bridgeMembers, defaultVni, ensureArgv, overlappingAddress, removeArgv, tunnelName } from '../../../src/hosts/bridge.js';
import { parseHostsFile, parseHostsText, type HostsContext } from '../../../src/hosts/file.js';
import { FakeHost } from '../../support/fake-host.js';
import { refusedHostsText } from '../../support/hosts-file.js';

const home = mkdtempSync(join(tmpdir(), 'miglab-bridge-home-'));
mkdirSync(join(home, '.ssh'));
writeFileSync(join(home, '.ssh', 'id_ed25519'), 'not really a key\n', { mode: 0o600 });
afterAll(() => rmSync(home, { recursive: true, force: true }));
const ctx: HostsContext = { env: {}, homeDir: home };

const HOSTS = 'hosts:\n  src: { address: 192.168.122.11 }\n  dst: { address: 192.168.122.12 }';
const text = (bridge: string, hosts = HOSTS) => `${hosts}\nbridge: ${bridge}\nguests: { addresses: 10.213.0.10-10.213.0.14 }\nstorage: { nfs: "nfs://192.168.122.11/srv/m", server: src }\n`;
const refused = (t: string) => refusedHostsText(t, ctx);

describe('bridge: { create: NAME } in the hosts file', () => {
  it('keeps the last guest address for the client and takes the hosts\' addresses as tunnel endpoints', () => {
    const spec = parseHostsText(text('{ create: mlbr0 }'), 'h.yaml', ctx);
    expect(spec.bridge).toBe('mlbr0');
    expect(spec.bridgeMade).toEqual({ name: 'mlbr0', vni: undefined, port: 4789, endpoints: { src: '192.168.122.11', dst: '192.168.122.12', client: '192.168.122.11' }, clientAddress: '10.213.0.14' });
    expect(spec.guests).toEqual({ first: '10.213.0.10', last: '10.213.0.13', count: 4, prefixLength: 24 });
  });

  it('takes given endpoints, VXLAN id and port; a separate client gets its own endpoint', () => {
    const hosts = `${HOSTS}\n  client: { address: probe.example }`;
    const spec = parseHostsText(text('{ create: mlbr0, vni: 42, port: 8472, endpoints: { client: 192.168.122.13 } }', hosts), 'h.yaml', ctx);
    expect(spec.bridgeMade).toMatchObject({ vni: 42, port: 8472, endpoints: { src: '192.168.122.11', dst: '192.168.122.12', client: '192.168.122.13' } });
  });

  it('reads the example file', async () => {
    const spec = await parseHostsFile(join(import.meta.dirname, '../../../examples/hosts/made-bridge.yaml'), ctx);
    expect(spec.bridgeMade).toMatchObject({ name: 'mlbr0', clientAddress: '10.213.0.30' });
    expect(spec.guests.count).toBe(20);
  });

  it.each([
    ['a host named, not addressed, without an endpoint', text('{ create: mlbr0 }', 'hosts:\n  src: { address: a.example }\n  dst: { address: 192.168.122.12 }'), /^h\.yaml: bridge\.endpoints\.src: missing, and hosts\.src\.address "a\.example" is not an IPv4 address; give the address the other hosts reach src at/],
    ['a name too long', text('{ create: a-very-long-bridge-name }'), /^h\.yaml: bridge\.create: not a Linux interface name/],
    ['a VXLAN id out of range', text('{ create: mlbr0, vni: 0 }'), 'h.yaml: bridge.vni: give 1-16777215'],
    ['an endpoint that is no address', text('{ create: mlbr0, endpoints: { dst: b.example } }'), /^h\.yaml: bridge\.endpoints\.dst: not an IPv4 address/],
    ['an unknown key', text('{ create: mlbr0, mtu: 1450 }'), 'h.yaml: unknown key bridge.mtu'],
    ['a bridge that is neither', text('[br0]'), /^h\.yaml: bridge: .*give a bridge name .*or \{ create: NAME \}/],
    ['one guest address', text('{ create: mlbr0 }').replace('10.213.0.10-10.213.0.14', '10.213.0.10'), /^h\.yaml: guests\.addresses: one address, but a bridge miglab makes takes the last for the client host/],
  ])('refuses %s in one line', (_what, t, message) => {
    const m = refused(t);
    expect(m.split('\n')).toHaveLength(1);
    if (typeof message === 'string') expect(m).toBe(message);
    else expect(m).toMatch(message);
  });
});

describe('the bridge on the hosts', () => {
  const hosts = { src: new FakeHost('src'), dst: new FakeHost('dst'), client: new FakeHost('client') };

  it('joins each host to the others once; the client (here the source host) takes the address', () => {
    const spec = parseHostsText(text('{ create: mlbr0 }'), 'h.yaml', ctx);
    const members = bridgeMembers(spec, spec.bridgeMade!, { ...hosts, client: hosts.src });
    expect(members.map((m) => ({ roles: m.roles, endpoint: m.endpoint, peers: m.peers, address: m.address }))).toEqual([
      { roles: ['src', 'client'], endpoint: '192.168.122.11', peers: ['192.168.122.12'], address: '10.213.0.14/24' },
      { roles: ['dst'], endpoint: '192.168.122.12', peers: ['192.168.122.11'], address: undefined },
    ]);
  });

  it('passes names and addresses as arguments of a fixed script, never inside it', () => {
    const spec = parseHostsText(text('{ create: mlbr0 }'), 'h.yaml', ctx);
    const lab = { prefix: 'h1a2b3c4', spec, made: spec.bridgeMade!, hosts, runDir: '/run/miglab-remote/h1a2b3c4' };
    const [member] = bridgeMembers(spec, lab.made, hosts);
    const argv = ensureArgv(lab, member!);
    expect(argv.slice(0, 2)).toEqual(['sh', '-c']);
    expect(argv[2]).not.toContain('mlbr0');
    expect(argv.slice(3)).toEqual(['miglab-bridge', '/run/miglab-remote/h1a2b3c4/bridge.lock', 'mlbr0', 'vx-h1a2b3c4', String(defaultVni('h1a2b3c4')), '4789', '192.168.122.11', 'miglab:h1a2b3c4', '10.213.0.14/24', '192.168.122.12']);
    expect(removeArgv(lab).slice(3)).toEqual(['miglab-bridge', 'mlbr0', bridgeMarker('h1a2b3c4')]);
    expect(tunnelName('h1a2b3c4')).toBe('vx-h1a2b3c4');
  });

  it('finds a host address on the guests\' network (not the client\'s own on the bridge)', () => {
    const spec = parseHostsText(text('{ create: mlbr0 }'), 'h.yaml', ctx);
    const addrs = (lines: string[]) => lines.map((l, i) => `${i + 1}: ${l}`).join('\n');
    expect(overlappingAddress(addrs(['lo    inet 127.0.0.1/8 scope host lo', 'eth0    inet 192.168.122.11/24 brd 192.168.122.255 scope global eth0', 'mlbr0    inet 10.213.0.14/24 scope global mlbr0']), spec, 'mlbr0')).toBeUndefined();
    expect(overlappingAddress(addrs(['eth1    inet 10.213.0.2/24 scope global eth1']), spec, 'mlbr0')).toBe('10.213.0.2/24 on eth1');
    // A wider network of the host that holds the guests' /24 overlaps too.
    expect(overlappingAddress(addrs(['eth1    inet 10.0.0.5/8 scope global eth1']), spec, 'mlbr0')).toBe('10.0.0.5/8 on eth1');
  });

  it('derives a VXLAN id from the lab name, in range and different for different labs', () => {
    expect(defaultVni('h1a2b3c4')).toBe((0x1a2b3c4 % 16_777_215) + 1);
    expect(defaultVni('h1a2b3c5')).not.toBe(defaultVni('h1a2b3c4'));
    for (const p of ['h0000000', 'hfffffff']) expect(defaultVni(p)).toBeGreaterThanOrEqual(1);
    expect(defaultVni('hfffffff')).toBeLessThanOrEqual(16_777_215);
  });
});
