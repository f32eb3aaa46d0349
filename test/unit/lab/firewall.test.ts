// The lab's firewall as text (what `lab up` loads into src and dst) and the comparison `lab status`
// makes between nft's JSON of the live table and of the expected one. The JSON below is real
// output of nft 1.0.6 (Debian 12): `nft --echo --json` of the ruleset in an empty namespace, and
// `nft --json list table inet miglab` in a lab after a few refused connections.
import { describe, expect, it } from '@jest/globals';
import {
  FIREWALL_PURPOSE,
  NFS_SERVER_PORTS,
  NFT_APPLY_ARGV,
  NFT_LIST_ARGV,
  applyLabFirewall,
  checkFirewall,
  describeFirewalls,
  firewallProblem,
  firewallRuleset,
  isNoSuchTableError,
  nftCanonicalArgv,
  parseNftTable,
  sameFirewall,
} from '../../../src/lab/firewall.js';
import { ganeshaConfig } from '../../../src/lab/ganesha.js';
import { parseLabSpec } from '../../../src/lab/spec.js';
import { FakeHost } from '../../support/fake-host.js';

const spec = parseLabSpec({});

const DST_RULESET = `# miglab's firewall for the lab's dst host (new TCP connections from src only); loading it again replaces it.
table inet miglab
delete table inet miglab
table inet miglab {
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "lo" accept comment "dst itself"
		tcp flags syn / fin,syn,rst,ack ip saddr 10.77.0.1 accept comment "src opens the migration stream (and any other connection to dst)"
		tcp flags syn / fin,syn,rst,ack counter reject with tcp reset comment "nobody else opens a TCP connection to dst: a stray one breaks an incoming migration"
	}
}
`;

const SRC_RULESET = `# miglab's firewall for the lab's src host (NFS server for src and dst only); loading it again replaces it.
table inet miglab
delete table inet miglab
table inet miglab {
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "lo" accept comment "src itself (its QEMU opens nfs:// images too)"
		ip saddr { 10.77.0.1, 10.77.0.2 } meta l4proto { tcp, udp } th dport { 111, 2049, 20048 } accept comment "the NFS server answers src and dst"
		ip saddr 10.77.0.100-10.77.0.254 tcp dport 2049 accept comment "guests mount the checkpoint export (NFSv4: port 2049 only; ganesha shows them no other export)"
		meta l4proto tcp th dport { 111, 2049, 20048 } counter reject with tcp reset comment "nobody else reaches the NFS server"
		meta l4proto udp th dport { 111, 2049, 20048 } counter reject with icmpx port-unreachable comment "nobody else reaches the NFS server"
	}
}
`;

// `unshare --net nft --echo --json RULESET` for dst and src.
const DST_ECHO = `{"nftables": [{"add": {"table": {"family": "inet", "name": "miglab", "handle": 1}}}, {"add": {"table": {"family": "inet", "name": "miglab", "handle": 2}}}, {"add": {"chain": {"family": "inet", "table": "miglab", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}}}, {"add": {"rule": {"family": "inet", "table": "miglab", "chain": "input", "handle": 2, "comment": "dst itself", "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "lo"}}, {"accept": null}]}}}, {"add": {"rule": {"family": "inet", "table": "miglab", "chain": "input", "handle": 3, "comment": "src opens the migration stream (and any other connection to dst)", "expr": [{"match": {"op": "==", "left": {"&": [{"payload": {"protocol": "tcp", "field": "flags"}}, ["fin", "syn", "rst", "ack"]]}, "right": "syn"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "10.77.0.1"}}, {"accept": null}]}}}, {"add": {"rule": {"family": "inet", "table": "miglab", "chain": "input", "handle": 4, "comment": "nobody else opens a TCP connection to dst: a stray one breaks an incoming migration", "expr": [{"match": {"op": "==", "left": {"&": [{"payload": {"protocol": "tcp", "field": "flags"}}, ["fin", "syn", "rst", "ack"]]}, "right": "syn"}}, {"counter": {"packets": 0, "bytes": 0}}, {"reject": {"type": "tcp reset"}}]}}}]}`;
const SRC_ECHO = `{"nftables": [{"add": {"table": {"family": "inet", "name": "miglab", "handle": 1}}}, {"add": {"table": {"family": "inet", "name": "miglab", "handle": 2}}}, {"add": {"chain": {"family": "inet", "table": "miglab", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}}}, {"add": {"rule": {"family": "inet", "table": "miglab", "chain": "input", "handle": 2, "comment": "src itself (its QEMU opens nfs:// images too)", "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "lo"}}, {"accept": null}]}}}, {"add": {"rule": {"family": "inet", "table": "miglab", "chain": "input", "handle": 6, "comment": "the NFS server answers src and dst", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"set": ["10.77.0.1", "10.77.0.2"]}}}, {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": {"set": ["tcp", "udp"]}}}, {"match": {"op": "==", "left": {"payload": {"protocol": "th", "field": "dport"}}, "right": {"set": [111, 2049, 20048]}}}, {"accept": null}]}}}, {"add": {"rule": {"family": "inet", "table": "miglab", "chain": "input", "handle": 7, "comment": "guests mount the checkpoint export (NFSv4: port 2049 only; ganesha shows them no other export)", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"range": ["10.77.0.100", "10.77.0.254"]}}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 2049}}, {"accept": null}]}}}, {"add": {"rule": {"family": "inet", "table": "miglab", "chain": "input", "handle": 8, "comment": "nobody else reaches the NFS server", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": {"set": [111, 2049, 20048]}}}, {"counter": {"packets": 0, "bytes": 0}}, {"reject": {"type": "tcp reset"}}]}}}, {"add": {"rule": {"family": "inet", "table": "miglab", "chain": "input", "handle": 10, "comment": "nobody else reaches the NFS server", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": {"set": [111, 2049, 20048]}}}, {"counter": {"packets": 0, "bytes": 0}}, {"reject": {"type": "icmpx", "expr": "port-unreachable"}}]}}}]}`;

// `nft --json list table inet miglab` in hfw-dst and hfw-src, loaded twice (other handles) and
// after one client connection to dst and one to src's rpcbind were refused.
const DST_LIVE = `{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "miglab", "handle": 7}}, {"chain": {"family": "inet", "table": "miglab", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}}, {"rule": {"family": "inet", "table": "miglab", "chain": "input", "handle": 2, "comment": "dst itself", "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "lo"}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "miglab", "chain": "input", "handle": 3, "comment": "src opens the migration stream (and any other connection to dst)", "expr": [{"match": {"op": "==", "left": {"&": [{"payload": {"protocol": "tcp", "field": "flags"}}, ["fin", "syn", "rst", "ack"]]}, "right": "syn"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "10.77.0.1"}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "miglab", "chain": "input", "handle": 4, "comment": "nobody else opens a TCP connection to dst: a stray one breaks an incoming migration", "expr": [{"match": {"op": "==", "left": {"&": [{"payload": {"protocol": "tcp", "field": "flags"}}, ["fin", "syn", "rst", "ack"]]}, "right": "syn"}}, {"counter": {"packets": 1, "bytes": 60}}, {"reject": {"type": "tcp reset"}}]}}]}`;
const SRC_LIVE = `{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "miglab", "handle": 5}}, {"chain": {"family": "inet", "table": "miglab", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}}, {"rule": {"family": "inet", "table": "miglab", "chain": "input", "handle": 2, "comment": "src itself (its QEMU opens nfs:// images too)", "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "lo"}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "miglab", "chain": "input", "handle": 6, "comment": "the NFS server answers src and dst", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"set": ["10.77.0.1", "10.77.0.2"]}}}, {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": {"set": ["tcp", "udp"]}}}, {"match": {"op": "==", "left": {"payload": {"protocol": "th", "field": "dport"}}, "right": {"set": [111, 2049, 20048]}}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "miglab", "chain": "input", "handle": 7, "comment": "guests mount the checkpoint export (NFSv4: port 2049 only; ganesha shows them no other export)", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"range": ["10.77.0.100", "10.77.0.254"]}}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 2049}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "miglab", "chain": "input", "handle": 8, "comment": "nobody else reaches the NFS server", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": {"set": [111, 2049, 20048]}}}, {"counter": {"packets": 1, "bytes": 60}}, {"reject": {"type": "tcp reset"}}]}}, {"rule": {"family": "inet", "table": "miglab", "chain": "input", "handle": 10, "comment": "nobody else reaches the NFS server", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": {"set": [111, 2049, 20048]}}}, {"counter": {"packets": 0, "bytes": 0}}, {"reject": {"type": "icmpx", "expr": "port-unreachable"}}]}}]}`;

/** The live dst table as JSON, changed by `edit` (a rule added, an address changed...). */
function editedLive(edit: (entries: Array<Record<string, unknown>>) => void): string {
  const doc = JSON.parse(DST_LIVE) as { nftables: Array<Record<string, unknown>> };
  edit(doc.nftables);
  return JSON.stringify(doc);
}

describe('firewallRuleset', () => {
  it('is, for the default lab, exactly the policy the report shows', () => {
    expect(firewallRuleset(spec, 'dst')).toBe(DST_RULESET);
    expect(firewallRuleset(spec, 'src')).toBe(SRC_RULESET);
  });

  it('takes every address from the spec, none written in', () => {
    const other = parseLabSpec({ subnet: '192.168.40.0/24' });
    for (const role of ['src', 'dst'] as const) {
      const text = firewallRuleset(other, role);
      expect(text).not.toContain('10.77.');
      expect(text).toContain('192.168.40.1');
    }
    expect(firewallRuleset(other, 'src')).toContain('ip saddr { 192.168.40.1, 192.168.40.2 }');
    expect(firewallRuleset(other, 'dst')).toContain('ip saddr 192.168.40.1 accept');
  });

  it('touches only its own table, and replaces it when loaded again instead of adding a copy', () => {
    for (const role of ['src', 'dst'] as const) {
      const statements = firewallRuleset(spec, role)
        .split('\n')
        .filter((l) => l && !l.startsWith('#') && !l.startsWith('\t') && l !== '}');
      expect(statements).toEqual(['table inet miglab', 'delete table inet miglab', 'table inet miglab {']);
      expect(firewallRuleset(spec, role)).not.toMatch(/flush ruleset|hook (forward|prerouting|postrouting|output)/);
    }
  });

  it('guards the NFS server ports ganesha is configured with', () => {
    const conf = ganeshaConfig({ serverIp: '10.77.0.1', clients: '10.77.0.0/24', exportDir: '/e', recoveryRoot: '/r' });
    expect(conf).toContain(`NFS_Port = ${NFS_SERVER_PORTS.nfs};`);
    expect(conf).toContain(`MNT_Port = ${NFS_SERVER_PORTS.mountd};`);
    expect(SRC_RULESET).toContain('th dport { 111, 2049, 20048 }');
  });

  it('refuses with a reset (TCP) or port unreachable (UDP), so a client hears no at once', () => {
    expect(DST_RULESET).toMatch(/reject with tcp reset/);
    expect(SRC_RULESET).toMatch(/meta l4proto udp .* reject with icmpx port-unreachable/);
    expect(`${DST_RULESET}${SRC_RULESET}`).not.toMatch(/\bdrop\b/);
  });

  it('is passed to nft as its command, not on stdin', () => {
    expect(nftCanonicalArgv(DST_RULESET)).toEqual(['unshare', '--net', 'nft', '--echo', '--json', DST_RULESET]);
  });
});

describe('parseNftTable and sameFirewall', () => {
  it('finds the live tables equal to the expected ones, whatever their handles and counters', () => {
    expect(sameFirewall(parseNftTable(DST_ECHO), parseNftTable(DST_LIVE))).toBe(true);
    expect(sameFirewall(parseNftTable(SRC_ECHO), parseNftTable(SRC_LIVE))).toBe(true);
    expect(sameFirewall(parseNftTable(SRC_ECHO), parseNftTable(DST_LIVE))).toBe(false);
  });

  it('counts the packets the reject rules refused', () => {
    expect(parseNftTable(DST_LIVE).refusedPackets).toBe(1);
    expect(parseNftTable(SRC_LIVE).refusedPackets).toBe(1);
    expect(parseNftTable(DST_ECHO).refusedPackets).toBe(0);
  });

  it('sees a rule added to the table', () => {
    const added = editedLive((e) =>
      e.push({ rule: { family: 'inet', table: 'miglab', chain: 'input', handle: 9, expr: [{ match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: 22 } }, { accept: null }] } }),
    );
    expect(sameFirewall(parseNftTable(DST_ECHO), parseNftTable(added))).toBe(false);
  });

  it('sees an address changed, and a rule removed', () => {
    expect(sameFirewall(parseNftTable(DST_ECHO), parseNftTable(DST_LIVE.replace('"right": "10.77.0.1"', '"right": "10.77.0.3"')))).toBe(false);
    const removed = editedLive((e) => e.splice(e.length - 1, 1));
    expect(sameFirewall(parseNftTable(DST_ECHO), parseNftTable(removed))).toBe(false);
  });

  it('sees the rules reordered (a reject before the accept changes the policy)', () => {
    const reordered = editedLive((e) => {
      const [accept] = e.splice(4, 1);
      e.push(accept!);
    });
    expect(sameFirewall(parseNftTable(DST_ECHO), parseNftTable(reordered))).toBe(false);
  });

  it('ignores the order of a set\'s elements', () => {
    const swapped = SRC_LIVE.replace('{"set": ["10.77.0.1", "10.77.0.2"]}', '{"set": ["10.77.0.2", "10.77.0.1"]}');
    expect(swapped).not.toBe(SRC_LIVE);
    expect(sameFirewall(parseNftTable(SRC_ECHO), parseNftTable(swapped))).toBe(true);
  });

  it('knows nft\'s answer for a table that is not there', () => {
    expect(isNoSuchTableError('Error: No such file or directory\nlist table inet miglab\n                 ^^^^^^')).toBe(true);
    expect(isNoSuchTableError('Error: syntax error')).toBe(false);
  });
});

describe('describeFirewalls and firewallProblem', () => {
  it('puts both hosts on one line', () => {
    expect(
      describeFirewalls([
        { role: 'src', state: 'in-force', refusedPackets: 0 },
        { role: 'dst', state: 'missing' },
      ]),
    ).toBe(`firewall (nft table inet miglab): src in force (${FIREWALL_PURPOSE.src}; 0 packets refused); dst MISSING`);
  });

  it('says what is wrong and how to put it right', () => {
    expect(firewallProblem({ role: 'dst', state: 'in-force', refusedPackets: 3 }, 'mlab-dst', 'mlab')).toBeUndefined();
    expect(firewallProblem({ role: 'dst', state: 'missing' }, 'mlab-dst', 'mlab')).toMatch(/^the firewall of mlab-dst is missing .*miglab lab down --prefix mlab; miglab lab up --prefix mlab/);
    expect(firewallProblem({ role: 'src', state: 'altered' }, 'mlab-src', 'mlab')).toMatch(/^the firewall of mlab-src was changed .*NFS server for src and dst only/);
    expect(firewallProblem({ role: 'src', state: 'unknown', detail: 'nft: not found' }, 'mlab-src', 'mlab')).toBe('could not read the firewall of mlab-src: nft: not found');
  });
});

describe('applyLabFirewall and checkFirewall on a host', () => {
  it('loads each host\'s ruleset with nft on that host, src first', async () => {
    const src = new FakeHost('src');
    const dst = new FakeHost('dst');
    const inputs: string[] = [];
    const record = (h: FakeHost) => {
      const run = h.run.bind(h);
      h.run = async (argv, opts) => {
        if (opts?.input !== undefined) inputs.push(`${h.name}: ${String(opts.input)}`);
        return run(argv, opts);
      };
    };
    record(src);
    record(dst);
    await applyLabFirewall({ spec, hosts: { src: { host: src }, dst: { host: dst } } }, { timeoutMs: 1000 });
    expect(src.ran).toEqual([NFT_APPLY_ARGV]);
    expect(dst.ran).toEqual([NFT_APPLY_ARGV]);
    expect(inputs).toEqual([`src: ${SRC_RULESET}`, `dst: ${DST_RULESET}`]);
  });

  it('compares the live table with the policy as the same host\'s nft prints it', async () => {
    const dst = new FakeHost('dst', { run: (argv) => ({ stdout: argv[0] === 'unshare' ? DST_ECHO : DST_LIVE }) });
    expect(await checkFirewall(dst, spec, 'dst', { timeoutMs: 1000 })).toEqual({ role: 'dst', state: 'in-force', refusedPackets: 1 });
    expect(dst.ran).toEqual([NFT_LIST_ARGV, nftCanonicalArgv(DST_RULESET)]);
  });

  it('reports a missing table without asking for the policy, and a failing nft as unknown', async () => {
    const missing = new FakeHost('dst', { run: () => ({ exitCode: 1, stderr: 'Error: No such file or directory; did you mean table \'miglab\' in family inet?' }) });
    expect(await checkFirewall(missing, spec, 'dst', { timeoutMs: 1000 })).toEqual({ role: 'dst', state: 'missing' });
    expect(missing.ran).toEqual([NFT_LIST_ARGV]);
    const broken = new FakeHost('src', { run: () => ({ exitCode: 127, stderr: 'nft: command not found' }) });
    expect(await checkFirewall(broken, spec, 'src', { timeoutMs: 1000 })).toMatchObject({ role: 'src', state: 'unknown', detail: expect.stringMatching(/exited 127: nft: command not found/) });
  });
});
