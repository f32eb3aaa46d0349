// The hosts file: what a person writes for their own machines. Every bad input is refused with one
// line that names the field and says what to give; a good file comes back with its defaults
// filled, `~` expanded and the client played by the source host when none is named.
import { describe, expect, it, afterAll } from '@jest/globals';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_BRIDGE, DEFAULT_RUN_DIR, DEFAULT_SSH_PORT, parseHostsFile, parseHostsText, sshTarget, type HostsContext } from '../../../src/hosts/file.js';
import { refusedHostsText } from '../../support/hosts-file.js';

const home = mkdtempSync(join(tmpdir(), 'miglab-hosts-home-'));
mkdirSync(join(home, '.ssh'));
writeFileSync(join(home, '.ssh', 'id_ed25519'), 'not really a key\n', { mode: 0o600 });
afterAll(() => rmSync(home, { recursive: true, force: true }));

const noAgent: HostsContext = { env: {}, homeDir: home };
const withAgent: HostsContext = { env: { SSH_AUTH_SOCK: '/tmp/agent.sock' }, homeDir: home };

/** A valid file, with `extra` lines replacing its parts (YAML: later top-level keys are refused, so parts are swapped). */
function file(parts: Partial<Record<'hosts' | 'bridge' | 'guests' | 'migration' | 'storage' | 'runDir', string>> = {}): string {
  const base = {
    hosts: 'hosts:\n  src: { address: 192.168.122.11, key: ~/.ssh/id_ed25519 }\n  dst: { address: 192.168.122.12, user: admin, port: 2222, key: ~/.ssh/id_ed25519 }',
    bridge: 'bridge: br0',
    guests: 'guests:\n  addresses: 192.168.122.200-192.168.122.215',
    migration: '',
    storage: 'storage:\n  nfs: nfs://192.168.122.11/srv/miglab\n  server: src',
    runDir: '',
    ...parts,
  };
  return Object.values(base).filter(Boolean).join('\n') + '\n';
}

const refused = (text: string, ctx: HostsContext = noAgent) => refusedHostsText(text, ctx);

describe('a good hosts file', () => {
  it('takes storage miglab serves, its NFS URL made from the server host\'s address and the directory', () => {
    const spec = parseHostsText(file({ storage: 'storage: { serve: ganesha, server: dst, dir: /var/lib/miglab-export/ }' }), 'h.yaml', noAgent);
    expect(spec.storage).toEqual({ nfs: 'nfs://192.168.122.12/var/lib/miglab-export', serverAddress: '192.168.122.12', server: 'dst', dir: '/var/lib/miglab-export', serve: 'ganesha' });
    // The client role played by src (none named) serves from src's address; an address given wins.
    expect(parseHostsText(file({ storage: 'storage: { serve: kernel, server: client, dir: /srv/m }' }), 'h.yaml', noAgent).storage).toMatchObject({ nfs: 'nfs://192.168.122.11/srv/m', serve: 'kernel', server: 'client' });
    expect(parseHostsText(file({ storage: 'storage: { serve: ganesha, server: dst, dir: /srv/m, address: 10.9.0.2 }' }), 'h.yaml', noAgent).storage).toMatchObject({ nfs: 'nfs://10.9.0.2/srv/m', serverAddress: '10.9.0.2' });
  });

  it('fills every default and expands ~ in key paths', () => {
    const spec = parseHostsText(file({ bridge: '' }), 'h.yaml', noAgent);
    expect(spec.hosts.src).toEqual({ address: '192.168.122.11', port: DEFAULT_SSH_PORT, user: 'root', key: join(home, '.ssh/id_ed25519'), agent: undefined, hostKeySha256: undefined, proxy: undefined });
    expect(spec.hosts.dst).toMatchObject({ user: 'admin', port: 2222 });
    // No client named: the source host plays it.
    expect(spec.clientGiven).toBe(false);
    expect(spec.hosts.client).toEqual(spec.hosts.src);
    expect(spec.bridge).toBe(DEFAULT_BRIDGE);
    expect(spec.guests).toEqual({ first: '192.168.122.200', last: '192.168.122.215', count: 16, prefixLength: 24 });
    expect(spec.migration.address).toBe('192.168.122.12');
    expect(spec.storage).toEqual({ nfs: 'nfs://192.168.122.11/srv/miglab', serverAddress: '192.168.122.11', server: 'src', dir: '/srv/miglab' });
    expect(spec.runDir).toBe(DEFAULT_RUN_DIR);
  });

  it('takes the agent when asked, and when no key is given and an agent runs', () => {
    const hosts = 'hosts:\n  src: { address: a.example, agent: true }\n  dst: { address: b.example }\n  client: { address: c.example, proxy: [ip, netns, exec, x, socat, STDIO, "TCP:127.0.0.1:22"] }';
    const spec = parseHostsText(file({ hosts }), 'h.yaml', withAgent);
    expect(spec.hosts.src).toMatchObject({ agent: '/tmp/agent.sock', key: undefined });
    expect(spec.hosts.dst).toMatchObject({ agent: '/tmp/agent.sock', key: undefined });
    expect(spec.clientGiven).toBe(true);
    expect(sshTarget(spec.hosts.client)).toEqual({ host: 'c.example', port: 22, username: 'root', privateKeyPath: undefined, agent: '/tmp/agent.sock', hostKeySha256: undefined, proxy: ['ip', 'netns', 'exec', 'x', 'socat', 'STDIO', 'TCP:127.0.0.1:22'] });
  });

  it("falls back to the user's usual key file when there is neither key nor agent", () => {
    const spec = parseHostsText(file({ hosts: 'hosts:\n  src: { address: a }\n  dst: { address: b }' }), 'h.yaml', noAgent);
    expect(spec.hosts.dst.key).toBe(join(home, '.ssh/id_ed25519'));
  });

  it("takes a host key as ssh-keygen prints it, or as ssh2's hex digest", () => {
    const hex = 'ab'.repeat(32);
    const b64 = Buffer.from(hex, 'hex').toString('base64').replace(/=+$/, '');
    const hosts = `hosts:\n  src: { address: a, hostKey: "SHA256:${b64}" }\n  dst: { address: b, hostKey: ${hex.toUpperCase()} }`;
    const spec = parseHostsText(file({ hosts }), 'h.yaml', withAgent);
    expect(spec.hosts.src.hostKeySha256).toBe(hex);
    expect(spec.hosts.dst.hostKeySha256).toBe(hex);
  });

  it('keeps a migration address, a storage dir and a runDir given', () => {
    const spec = parseHostsText(
      file({ migration: 'migration: { address: 10.0.0.2 }', storage: 'storage: { nfs: "nfs://nas/export/vm%20disks", server: dst }', runDir: 'runDir: /var/tmp/m/' }),
      'h.yaml',
      noAgent,
    );
    expect(spec.migration.address).toBe('10.0.0.2');
    expect(spec.storage).toMatchObject({ server: 'dst', serverAddress: 'nas', dir: '/export/vm disks' });
    expect(spec.runDir).toBe('/var/tmp/m');
  });

  it('reads the example file shipped for the two VMs', async () => {
    const spec = await parseHostsFile(join(import.meta.dirname, '../../../examples/hosts/two-vms.yaml'), withAgent);
    expect(spec.hosts.src.address).not.toBe(spec.hosts.dst.address);
    expect(spec.storage.server).toBe('src');
    expect(spec.storage.serverAddress).toBe(spec.hosts.src.address);
  });

  it('reads the example file shipped for an export miglab serves', async () => {
    const spec = await parseHostsFile(join(import.meta.dirname, '../../../examples/hosts/served-nfs.yaml'), withAgent);
    expect(spec.storage).toEqual({ nfs: `nfs://${spec.hosts.dst.address}/var/lib/miglab-export`, serverAddress: spec.hosts.dst.address, server: 'dst', dir: '/var/lib/miglab-export', serve: 'ganesha' });
  });
});

describe('a bad hosts file is refused in one line naming the field and the fix', () => {
  const src = (fields: string) => file({ hosts: `hosts:\n  src: { ${fields} }\n  dst: { address: b, key: ~/.ssh/id_ed25519 }` });
  const cases: ReadonlyArray<readonly [what: string, text: string, message: string | RegExp, ctx?: HostsContext]> = [
    ['an unknown role', file({ hosts: 'hosts:\n  src: { address: a }\n  dst: { address: b }\n  nas: { address: c }' }), 'h.yaml: unknown role hosts.nas; the roles are src, dst, client (client is optional)', withAgent],
    ['no hosts at all', 'bridge: br0\n', /^h\.yaml: hosts: missing; give hosts: with src: and dst:/],
    ['a missing role', file({ hosts: 'hosts:\n  src: { address: a }' }), 'h.yaml: hosts.dst: missing; give the dst host as { address: ADDRESS, user: root, key: ~/.ssh/id_ed25519 } (or agent: true instead of key)', withAgent],
    ['a missing address', src('user: root, key: ~/.ssh/id_ed25519'), /^h\.yaml: hosts\.src\.address: missing; give the address .* the src host at over SSH/],
    ['an unknown key of a host', src('address: a, adress: b, key: ~/.ssh/id_ed25519'), 'h.yaml: unknown key hosts.src.adress'],
    ['a key file that does not exist', src('address: a, key: ~/.ssh/nope'), `h.yaml: hosts.src.key: ${join(home, '.ssh/nope')} does not exist; give the private key ssh uses for this host (ssh -i PATH)`],
    ['a key path that is a directory', src('address: a, key: ~/.ssh'), `h.yaml: hosts.src.key: ${join(home, '.ssh')} is not a file; give the private key ssh uses for this host (ssh -i PATH)`],
    ['a relative key path', src('address: a, key: id_ed25519'), 'h.yaml: hosts.src.key: "id_ed25519" is a relative path; give the private key ssh uses for this host (ssh -i PATH) as an absolute path (or ~/...)'],
    ['both key and agent', src('address: a, key: ~/.ssh/id_ed25519, agent: true'), /^h\.yaml: hosts\.src\.agent: given with key; give one of them: key .* or agent: true/, withAgent],
    ['agent without SSH_AUTH_SOCK', src('address: a, agent: true'), /^h\.yaml: hosts\.src\.agent: true, but SSH_AUTH_SOCK is not set; start an agent/],
    ['a bad port', src('address: a, port: 70000, key: ~/.ssh/id_ed25519'), 'h.yaml: hosts.src.port: give a port 1-65535'],
    ['a bad host key', src('address: a, hostKey: abc, key: ~/.ssh/id_ed25519'), /^h\.yaml: hosts\.src\.hostKey: "abc" is not a SHA-256 fingerprint; give what ssh-keygen -lf/],
    ['an empty proxy', src('address: a, proxy: [], key: ~/.ssh/id_ed25519'), /^h\.yaml: hosts\.src\.proxy: empty; give the command as a list/],
    ['a bridge that is no interface name', file({ bridge: 'bridge: a-very-long-bridge-name' }), /^h\.yaml: bridge: not a Linux interface name/],
    ['no guests', file({ guests: '' }), /^h\.yaml: guests: missing; give guests: \{ addresses: FIRST-LAST/],
    ['a malformed guest range', file({ guests: 'guests: { addresses: 192.168.122.200..215 }' }), /^h\.yaml: guests\.addresses: "192\.168\.122\.200\.\.215" is not an address range; give FIRST-LAST/],
    ['a guest address above 255', file({ guests: 'guests: { addresses: 192.168.122.200-192.168.122.300 }' }), /^h\.yaml: guests\.addresses: .* has an address part above 255/],
    ['a reversed guest range', file({ guests: 'guests: { addresses: 192.168.122.215-192.168.122.200 }' }), 'h.yaml: guests.addresses: "192.168.122.215-192.168.122.200" is reversed; give the lower address first (192.168.122.200-192.168.122.215)'],
    ['a guest range across networks', file({ guests: 'guests: { addresses: 192.168.122.200-192.168.123.5 }' }), /^h\.yaml: guests\.addresses: .* spans more than one \/24 network \(192\.168\.122\.0\/24 and 192\.168\.123\.0\/24\)/],
    ['a guest range over the broadcast address', file({ guests: 'guests: { addresses: 192.168.122.250-192.168.122.255 }' }), /^h\.yaml: guests\.addresses: .* includes the network's broadcast address \(192\.168\.122\.255\)/],
    ['a bad prefix length', file({ guests: 'guests: { addresses: 10.0.0.5-10.0.0.9, prefixLength: 33 }' }), 'h.yaml: guests.prefixLength: give 8-30'],
    ['a storage server that is no role', file({ storage: 'storage: { nfs: "nfs://a/srv/m", server: nas }' }), 'h.yaml: storage.server: "nas" is not a role of hosts; give src, dst, client (the host on which the export is a directory)'],
    ['no storage server', file({ storage: 'storage: { nfs: "nfs://a/srv/m" }' }), 'h.yaml: storage.server: missing; give the role (src, dst, client) on which the export is a directory'],
    ['an NFS URL without a path', file({ storage: 'storage: { nfs: "nfs://a/", server: src }' }), 'h.yaml: storage.nfs: not an NFS URL; give nfs://HOST/PATH, e.g. nfs://192.168.122.11/srv/miglab'],
    ['a path where the NFS URL goes', file({ storage: 'storage: { nfs: /srv/miglab, server: src }' }), /^h\.yaml: storage\.nfs: not an NFS URL/],
    ['a relative storage dir', file({ storage: 'storage: { nfs: "nfs://a/srv/m", server: src, dir: srv/m }' }), `h.yaml: storage.dir: "srv/m" is a relative path; give the export's directory on the server host as an absolute path`],
    ['both an NFS URL and serve', file({ storage: 'storage: { nfs: "nfs://a/srv/m", serve: ganesha, server: dst, dir: /srv/m }' }), 'h.yaml: storage.nfs: given with serve: ganesha; give one of them: nfs: (an export you have) or serve: (miglab serves dir from the server host, at nfs://ITS_ADDRESS/DIR)'],
    ['serve without a directory', file({ storage: 'storage: { serve: ganesha, server: dst }' }), 'h.yaml: storage.dir: missing; give the directory serve: ganesha exports on the dst host, e.g. /var/lib/miglab-export (made if missing)'],
    ['a served directory with odd characters', file({ storage: 'storage: { serve: kernel, server: dst, dir: "/srv/my disks" }' }), /^h\.yaml: storage\.dir: "\/srv\/my disks" cannot be served; give a directory of its own, its path of letters, digits and \. _ - \/ only/],
    ['the root directory served', file({ storage: 'storage: { serve: ganesha, server: dst, dir: / }' }), /^h\.yaml: storage\.dir: "\/" cannot be served/],
    ['a system directory served', file({ storage: 'storage: { serve: ganesha, server: dst, dir: /etc }' }), 'h.yaml: storage.dir: "/etc" is a system directory, and the export is read-write with root\'s rights; give a directory of its own, e.g. /var/lib/miglab-export'],
    ['a directory under one served', file({ storage: 'storage: { serve: kernel, server: dst, dir: /usr/local/share }' }), /^h\.yaml: storage\.dir: "\/usr\/local\/share" is a system directory/],
    ['a top-level directory served', file({ storage: 'storage: { serve: ganesha, server: dst, dir: /srv }' }), /^h\.yaml: storage\.dir: "\/srv" is a system directory/],
    ['an unknown server kind', file({ storage: 'storage: { serve: knfsd, server: dst, dir: /srv/m }' }), /^h\.yaml: storage\.serve: give ganesha \(miglab starts nfs-ganesha on the server host\) or kernel/],
    ['neither an NFS URL nor serve', file({ storage: 'storage: { server: src }' }), 'h.yaml: storage.nfs: missing; give the export QEMU opens, e.g. nfs://192.168.122.11/srv/miglab (or serve: ganesha with dir: PATH to have miglab serve one)'],
    ['an address without serve', file({ storage: 'storage: { nfs: "nfs://a/srv/m", server: src, address: 10.0.0.1 }' }), 'h.yaml: storage.address: given without serve; the address of an export you have is in its nfs: URL'],
    ['a served export on a host known by name', file({ hosts: 'hosts:\n  src: { address: a.example }\n  dst: { address: b.example }', storage: 'storage: { serve: ganesha, server: dst, dir: /srv/m }' }), 'h.yaml: storage.address: missing; the dst host\'s address "b.example" is a name, and the export is served at an IPv4 address: give storage.address: the dst host\'s address on the network src and dst share', withAgent],
    ['a relative runDir', file({ runDir: 'runDir: run/m' }), 'h.yaml: runDir: "run/m" is a relative path; give where miglab keeps sockets and tools on each host, e.g. /run/miglab-remote as an absolute path'],
    ['an unknown top-level key', file({ runDir: 'rundir: /run/m' }), 'h.yaml: unknown key rundir'],
    ['YAML that does not parse', 'hosts: [\n', /^h\.yaml:\d+:\d+: invalid YAML: /],
  ];
  it.each(cases)('%s', (_what, text, message, ctx = noAgent) => {
    const m = refused(text, ctx);
    expect(m.split('\n')).toHaveLength(1);
    if (typeof message === 'string') expect(m).toBe(message);
    else expect(m).toMatch(message);
  });

  it('says when a key file cannot be read', () => {
    if (process.getuid?.() === 0) return; // root reads any file: nothing to refuse
    const locked = join(home, '.ssh', 'locked');
    writeFileSync(locked, 'x');
    chmodSync(locked, 0);
    expect(refused(file({ hosts: `hosts:\n  src: { address: a, key: ${locked} }\n  dst: { address: b }` }))).toMatch(/hosts\.src\.key: .*locked cannot be read \(EACCES\)/);
  });

  it('says when there is no key at all', () => {
    const bare: HostsContext = { env: {}, homeDir: join(home, 'nobody') };
    expect(refused(file({ hosts: 'hosts:\n  src: { address: a }\n  dst: { address: b }' }), bare)).toBe(
      `h.yaml: hosts.src.key: missing, no SSH_AUTH_SOCK and no ~/.ssh/{id_ed25519,id_ecdsa,id_rsa} (in ${join(home, 'nobody')}); give the private key ssh uses for this host (ssh -i PATH), or agent: true with an agent running`,
    );
  });

  it('names a file it cannot read', async () => {
    await expect(parseHostsFile(join(home, 'none.yaml'), noAgent)).rejects.toThrow(`cannot read hosts file ${join(home, 'none.yaml')}: ENOENT; give the path of a hosts YAML (an example: examples/hosts/two-vms.yaml)`);
  });
});
