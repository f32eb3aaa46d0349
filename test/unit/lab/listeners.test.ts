// Listening sockets from `ss`, and which sit on a wildcard address. The outputs are real, from a
// lab's src namespace (rpcbind + ganesha) before and after rpcbind got its TCP sockets from
// socket-activate.pl, and from a client namespace running `iperf3 -s` without -B.
import { describe, expect, it } from '@jest/globals';
import { describeListener, isWildcardAddress, parseSsListeners } from '../../../src/lab/listeners.js';

// `ip netns exec hfw-src ss -Hltunp` with rpcbind started as `rpcbind -f -h 10.77.0.1`.
const SRC_BEFORE = `udp UNCONN 0      0               10.77.0.1:111   0.0.0.0:* users:(("rpcbind",pid=10268,fd=7))      
udp UNCONN 0      0               127.0.0.1:111   0.0.0.0:* users:(("rpcbind",pid=10268,fd=6))      
udp UNCONN 0      0                   [::1]:111      [::]:* users:(("rpcbind",pid=10268,fd=9))      
udp UNCONN 0      0      [::ffff:10.77.0.1]:2049        *:* users:(("ganesha.nfsd",pid=10270,fd=11))
udp UNCONN 0      0      [::ffff:10.77.0.1]:20048       *:* users:(("ganesha.nfsd",pid=10270,fd=13))
tcp LISTEN 0      4096              0.0.0.0:111   0.0.0.0:* users:(("rpcbind",pid=10268,fd=8))      
tcp LISTEN 0      4096   [::ffff:10.77.0.1]:20048       *:* users:(("ganesha.nfsd",pid=10270,fd=14))
tcp LISTEN 0      4096   [::ffff:10.77.0.1]:2049        *:* users:(("ganesha.nfsd",pid=10270,fd=12))
tcp LISTEN 0      4096                 [::]:111      [::]:* users:(("rpcbind",pid=10268,fd=11))     
`;

// The same, rpcbind handed tcp:10.77.0.1:111 and tcp6:[::1]:111 (fds 3 and 4).
const SRC_AFTER = `udp UNCONN 0      0               10.77.0.1:111   0.0.0.0:* users:(("rpcbind",pid=22526,fd=9))      
udp UNCONN 0      0               127.0.0.1:111   0.0.0.0:* users:(("rpcbind",pid=22526,fd=8))      
udp UNCONN 0      0                   [::1]:111      [::]:* users:(("rpcbind",pid=22526,fd=10))     
udp UNCONN 0      0      [::ffff:10.77.0.1]:2049        *:* users:(("ganesha.nfsd",pid=22532,fd=11))
udp UNCONN 0      0      [::ffff:10.77.0.1]:20048       *:* users:(("ganesha.nfsd",pid=22532,fd=13))
tcp LISTEN 0      4096            10.77.0.1:111   0.0.0.0:* users:(("rpcbind",pid=22526,fd=3))      
tcp LISTEN 0      4096   [::ffff:10.77.0.1]:2049        *:* users:(("ganesha.nfsd",pid=22532,fd=12))
tcp LISTEN 0      4096   [::ffff:10.77.0.1]:20048       *:* users:(("ganesha.nfsd",pid=22532,fd=14))
tcp LISTEN 0      4096                [::1]:111      [::]:* users:(("rpcbind",pid=22526,fd=4))      
`;

// `ss -Hlunp`: one protocol, so no Netid column.
const SRC_UDP_ONLY = `UNCONN 0      0               10.77.0.1:111   0.0.0.0:* users:(("rpcbind",pid=24613,fd=9))      
UNCONN 0      0               127.0.0.1:111   0.0.0.0:* users:(("rpcbind",pid=24613,fd=8))      
UNCONN 0      0                   [::1]:111      [::]:* users:(("rpcbind",pid=24613,fd=10))     
UNCONN 0      0      [::ffff:10.77.0.1]:2049        *:* users:(("ganesha.nfsd",pid=24617,fd=11))
UNCONN 0      0      [::ffff:10.77.0.1]:20048       *:* users:(("ganesha.nfsd",pid=24617,fd=13))
`;

// `iperf3 -s -p 5202` in the client namespace: one dual-stack socket, printed as `*`.
const CLIENT_IPERF = `tcp LISTEN 0      4096               *:5202            *:*    users:(("iperf3",pid=25759,fd=3))
`;

describe('parseSsListeners', () => {
  it('flags exactly rpcbind\'s two TCP sockets as wildcards before the fix', () => {
    const all = parseSsListeners(SRC_BEFORE);
    expect(all).toHaveLength(9);
    expect(all.filter((l) => l.wildcard).map(describeListener)).toEqual(['tcp 0.0.0.0:111 (rpcbind pid 10268)', 'tcp [::]:111 (rpcbind pid 10268)']);
  });

  it('finds none after it, and reads addresses, ports and processes', () => {
    const all = parseSsListeners(SRC_AFTER);
    expect(all.filter((l) => l.wildcard)).toEqual([]);
    expect(all.filter((l) => l.netid === 'tcp').map((l) => `${l.address} ${l.port} ${l.state}`)).toEqual([
      '10.77.0.1 111 LISTEN',
      '::ffff:10.77.0.1 2049 LISTEN',
      '::ffff:10.77.0.1 20048 LISTEN',
      '::1 111 LISTEN',
    ]);
    expect(all[0]).toEqual({ netid: 'udp', state: 'UNCONN', address: '10.77.0.1', port: '111', processes: [{ name: 'rpcbind', pid: 22526 }], wildcard: false });
  });

  it('reads output without a Netid column as the protocol the caller names', () => {
    const all = parseSsListeners(SRC_UDP_ONLY, 'udp');
    expect(all.map((l) => `${l.netid} ${l.state} ${l.address}:${l.port}`)).toEqual([
      'udp UNCONN 10.77.0.1:111',
      'udp UNCONN 127.0.0.1:111',
      'udp UNCONN ::1:111',
      'udp UNCONN ::ffff:10.77.0.1:2049',
      'udp UNCONN ::ffff:10.77.0.1:20048',
    ]);
    expect(all.some((l) => l.wildcard)).toBe(false);
  });

  it('flags a server started without a bind address', () => {
    const [l] = parseSsListeners(CLIENT_IPERF);
    expect(l).toMatchObject({ netid: 'tcp', address: '*', port: '5202', wildcard: true });
    expect(describeListener(l!)).toBe('tcp *:5202 (iperf3 pid 25759)');
  });

  it('reads a socket bound to a device, and one shared by two processes', () => {
    const text = [
      'udp UNCONN 0 0 0.0.0.0%br0:67 0.0.0.0:* users:(("dnsmasq",pid=7,fd=4))',
      'udp UNCONN 0 0 [fe80::1]%br0:123 [::]:*',
      'tcp LISTEN 0 128 10.77.0.2:4444 0.0.0.0:* users:(("qemu-system-x86",pid=9,fd=20),("qemu-system-x86",pid=10,fd=20))',
      '',
    ].join('\n');
    const [dhcp, ntp, qemu] = parseSsListeners(text);
    expect(dhcp).toMatchObject({ address: '0.0.0.0', device: 'br0', port: '67', wildcard: true });
    expect(describeListener(dhcp!)).toBe('udp 0.0.0.0%br0:67 (dnsmasq pid 7)');
    expect(ntp).toMatchObject({ address: 'fe80::1', device: 'br0', port: '123', processes: [], wildcard: false });
    expect(qemu!.processes.map((p) => p.pid)).toEqual([9, 10]);
    expect(qemu!.wildcard).toBe(false);
  });

  it('skips empty and short lines', () => {
    expect(parseSsListeners('\n\nnot a socket\n')).toEqual([]);
  });
});

describe('isWildcardAddress', () => {
  it('knows the wildcard spellings, with or without brackets and device', () => {
    for (const a of ['0.0.0.0', '[::]', '::', '*', '[::ffff:0.0.0.0]', '0.0.0.0%br0', '[::]%up0']) expect({ a, wild: isWildcardAddress(a) }).toEqual({ a, wild: true });
    for (const a of ['10.77.0.1', '127.0.0.1', '[::1]', '[::ffff:10.77.0.1]', '[fe80::1]%br0']) expect({ a, wild: isWildcardAddress(a) }).toEqual({ a, wild: false });
  });
});
