import { LocalHost } from '../../../src/host/local.js';
import { tcpByInode, whereStuck } from '../../../src/machine/stuck.js';

describe('tcpByInode', () => {
  it("names a hung QEMU's TCP sockets by address and state, from /proc/PID/net/tcp", () => {
    // Two lines as Linux prints them: a listener on 10.77.0.2:4444 and a SYN to 10.77.0.1:2049.
    const table = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 02004D0A:115C 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1336066 1 0000000000000000 100 0 0 10 0',
      '   1: 02004D0A:0259 01004D0A:0801 02 00000001:00000000 01:00000190 00000002     0        0 1336070 2 0000000000000000 200 0 0 1 7',
    ].join('\n');
    const m = tcpByInode(table);
    expect(m.get('1336066')).toBe('tcp 10.77.0.2:4444->0.0.0.0:0 LISTEN');
    expect(m.get('1336070')).toBe('tcp 10.77.0.2:601->10.77.0.1:2049 SYN_SENT');
    expect(tcpByInode('header only\n').size).toBe(0);
  });
});

describe('whereStuck', () => {
  it('reads a live process through its host: name, state, threads, open files, whether the QMP socket is there', async () => {
    const host = new LocalHost();
    const proc = host.spawn(['sleep', '30']);
    try {
      const where = await whereStuck(host, proc.pid, '/nonexistent/miglab-qmp.sock');
      expect(where).toContain(`pid ${proc.pid} is still running as "sleep"`);
      expect(where).toMatch(/state S\b/);
      expect(where).toContain('QMP socket as QEMU sees it: ENOENT, not listening');
      expect(where).toMatch(/threads sleep:\S+/);
      expect(where).toMatch(/fds 0->\S+/);
    } finally {
      await proc.stop(1000);
    }
  }, 30000);
});
