// The export miglab serves from a host of a hosts file: the commands it runs there (as argv), the
// ganesha config it writes, what it reads from `ss` as taken ports, and the plain refusal of a
// kernel NFS server the host does not have, before anything is made there.
import { describe, expect, it } from '@jest/globals';
import { parseHostsText } from '../../../src/hosts/file.js';
import {
  ensureServedExport,
  ganeshaStartArgv,
  kernelExportArgv,
  kernelUnexportArgv,
  portHolders,
  serveProblem,
  servedExportOf,
  serverFiles,
  servedGaneshaConfig,
} from '../../../src/hosts/nfs-export.js';
import { procStartTime } from '../../../src/lab/proc.js';
import { FakeHost, type FakeProcess } from '../../support/fake-host.js';

const text = (storage: string) => `
hosts:
  src: { address: 10.0.0.1, agent: true }
  dst: { address: 10.0.0.2, agent: true }
guests: { addresses: 10.0.0.100-10.0.0.120 }
storage: ${storage}
`;
const spec = (storage: string) => parseHostsText(text(storage), 'h.yaml', { env: { SSH_AUTH_SOCK: '/agent' }, homeDir: '/nonexistent' });

/** A fake host whose flock holder says it holds the lock, as the real one prints it. */
class LockingHost extends FakeHost {
  override spawn(argv: readonly string[]): FakeProcess {
    const p = super.spawn(argv);
    setImmediate(() => p.print('locked'));
    return p;
  }
}

describe('the commands of a served export', () => {
  it('exports to each client with the options QEMU over libnfs needs, and unexports the same', () => {
    expect(kernelExportArgv('/var/lib/miglab-export', '10.0.0.1')).toEqual(['exportfs', '-o', 'rw,sync,no_root_squash,insecure,no_subtree_check', '10.0.0.1:/var/lib/miglab-export']);
    expect(kernelUnexportArgv('/var/lib/miglab-export', '10.0.0.1')).toEqual(['exportfs', '-u', '10.0.0.1:/var/lib/miglab-export']);
  });

  it('starts nfs-server.sh detached in a mount namespace of its own, bound to the server address', () => {
    const files = serverFiles('/run/miglab-remote/h1234567');
    const argv = ganeshaStartArgv({ address: '10.0.0.2', dir: '/var/lib/miglab-export', runDir: '/run/miglab-remote/h1234567' }, files);
    // A fixed script; every value an argument of its own.
    expect(argv.slice(0, 2)).toEqual(['sh', '-c']);
    expect(argv[2]).toBe('log=$1; shift; setsid "$@" </dev/null >>"$log" 2>&1 & echo $!');
    expect(argv.slice(3)).toEqual([
      'miglab-nfs',
      '/run/miglab-remote/h1234567/nfs/server.log',
      'unshare', '--mount', '--propagation', 'slave', '--',
      'sh', '/run/miglab-remote/h1234567/nfs/bin/nfs-server.sh', '10.0.0.2',
      '/run/miglab-remote/h1234567/nfs/ganesha.conf', '/run/miglab-remote/h1234567/nfs/ganesha.log',
      '/run/miglab-remote/h1234567', '/var/lib/miglab-export',
    ]);
    // socket-activate.pl sits beside the script, where nfs-server.sh looks for it.
    expect(files.activator).toBe('/run/miglab-remote/h1234567/nfs/bin/socket-activate.pl');
  });

  it("binds ganesha to the server's address and lets src and dst in, nobody else", () => {
    const s = spec('{ serve: ganesha, server: dst, dir: /var/lib/miglab-export }');
    const x = servedExportOf(s, { src: new FakeHost('s'), dst: new FakeHost('d'), client: new FakeHost('c') }, '/run/miglab-remote/h1')!;
    expect(x).toMatchObject({ kind: 'ganesha', role: 'dst', address: '10.0.0.2', dir: '/var/lib/miglab-export', clients: ['10.0.0.1', '10.0.0.2'] });
    expect(x.readers.map((r) => r.role)).toEqual(['src', 'dst']);
    const conf = servedGaneshaConfig(x, serverFiles(x.runDir));
    expect(conf).toContain('Bind_Addr = 10.0.0.2;');
    expect(conf).toContain('Path = /var/lib/miglab-export;');
    expect(conf).toContain('CLIENT { Clients = 10.0.0.1, 10.0.0.2; Access_Type = RW; }');
    expect(conf).toContain('RecoveryRoot = /run/miglab-remote/h1/nfs/recov;');
    expect(conf).not.toMatch(/Clients = \*/);
  });

  it('an export of the user\'s is not served', () => {
    expect(servedExportOf(spec('{ nfs: "nfs://10.0.0.1/srv/m", server: src }'), { src: new FakeHost('s'), dst: new FakeHost('d'), client: new FakeHost('c') }, '/r')).toBeUndefined();
  });
});

describe('ports taken on the server address', () => {
  const ss = [
    'tcp   LISTEN 0      4096         0.0.0.0:111        0.0.0.0:*    users:(("rpcbind",pid=612,fd=4),("systemd",pid=1,fd=37))',
    'tcp   LISTEN 0      64          10.0.0.9:2049       0.0.0.0:*',
    'tcp   LISTEN 0      128        10.0.0.2:22         0.0.0.0:*    users:(("sshd",pid=700,fd=3))',
    'udp   UNCONN 0      0      [::ffff:10.0.0.2]:2049          *:*    users:(("ganesha.nfsd",pid=9,fd=5))',
    'tcp   LISTEN 0      64             [::]:20048          [::]:*',
  ].join('\n');
  it('names what holds them on the address or a wildcard one, and leaves other addresses and ports alone', () => {
    expect(portHolders(ss, '10.0.0.2', [2049, 20048, 111])).toEqual([
      '111/tcp on 0.0.0.0:111 (rpcbind pid 612)',
      '2049/udp on [::ffff:10.0.0.2]:2049 (ganesha.nfsd pid 9)',
      '20048/tcp on [::]:20048',
    ]);
    expect(portHolders('', '10.0.0.2', [2049])).toEqual([]);
  });
});

describe('a kernel NFS server the host does not have', () => {
  const kernelSpec = spec('{ serve: kernel, server: dst, dir: /srv/served }');

  it('is said plainly with the way out, whether exportfs is missing or nfsd is not running', async () => {
    const noExportfs = new FakeHost('d');
    noExportfs.which = async (p: string) => (p === 'exportfs' ? undefined : `/usr/bin/${p}`);
    expect(await serveProblem({ kind: 'kernel', role: 'dst', host: noExportfs })).toEqual({
      problem: 'no kernel NFS server on dst: exportfs is missing',
      fix: 'use serve: ganesha (miglab starts its own), or install and start the kernel NFS server there (apt-get install -y nfs-kernel-server; systemctl start nfs-server)',
    });
    const idle = new FakeHost('d');
    idle.files.set('/proc/fs/nfsd/threads', '0\n');
    expect((await serveProblem({ kind: 'kernel', role: 'dst', host: idle }))!.problem).toBe('no kernel NFS server on dst: nfsd is not running (/proc/fs/nfsd/threads is 0)');
    const running = new FakeHost('d');
    running.files.set('/proc/fs/nfsd/threads', '8\n');
    expect(await serveProblem({ kind: 'kernel', role: 'dst', host: running })).toBeUndefined();
  });

  it('refuses the run before anything is made or exported on the host', async () => {
    const dst = new LockingHost('d');
    dst.which = async (p: string) => (p === 'exportfs' ? undefined : `/usr/bin/${p}`);
    const x = servedExportOf(kernelSpec, { src: new FakeHost('s'), dst, client: new FakeHost('c') }, '/run/miglab-remote/h1')!;
    await expect(ensureServedExport(x, { timeoutMs: 5000 })).rejects.toThrow('no kernel NFS server on dst: exportfs is missing; use serve: ganesha');
    expect(dst.ran.filter((a) => a[0] === 'exportfs' || a.includes('/srv/served'))).toEqual([]);
    // Refused before the lock was even taken.
    expect(dst.spawned).toEqual([]);
  });

  it('with a running nfsd: exports to src and dst, refusing a directory the user exports already', async () => {
    const dst = new LockingHost('d', { run: (argv) => (argv.join(' ') === 'exportfs -v' ? { stdout: '/srv/served  \t10.0.0.0/24(sync,wdelay,hide,no_subtree_check,sec=sys,rw,root_squash)' } : undefined) });
    dst.files.set('/proc/fs/nfsd/threads', '8\n');
    const x = servedExportOf(kernelSpec, { src: new FakeHost('s'), dst, client: new FakeHost('c') }, '/run/miglab-remote/h1')!;
    await expect(ensureServedExport(x, { timeoutMs: 5000 })).rejects.toThrow('/srv/served is exported on dst already (exportfs -v lists it): give it as storage: { nfs: nfs://10.0.0.2/srv/served, server: dst } instead of serve: kernel');
    expect(dst.ran.filter((a) => a[0] === 'exportfs' && a[1] === '-o')).toEqual([]);
  });
});

describe('a served export recorded already', () => {
  const ganeshaSpec = spec('{ serve: ganesha, server: dst, dir: /srv/served }');
  const record = (pid: number, startTime: number) => JSON.stringify({ kind: 'ganesha', address: '10.0.0.2', dir: '/srv/served', clients: ['10.0.0.1', '10.0.0.2'], madeDir: true, pid, startTime });

  it('is used as it is while its pid runs with the recorded start time: nothing is started again', async () => {
    const dst = new LockingHost('d');
    const x = servedExportOf(ganeshaSpec, { src: new FakeHost('s'), dst, client: new FakeHost('c') }, '/run/miglab-remote/h1')!;
    // A live process whose /proc this machine answers for: the test's own.
    dst.files.set(serverFiles(x.runDir).record, record(process.pid, procStartTime(process.pid)!));
    const r = await ensureServedExport(x, { timeoutMs: 5000 });
    expect(r).toEqual({ started: false, line: `dst: serving /srv/served at nfs://10.0.0.2/srv/served with nfs-ganesha (pid ${process.pid}) to 10.0.0.1, 10.0.0.2 (/srv/served made by miglab)` });
    expect(dst.ran).toEqual([]);
    expect(dst.spawned).toEqual([]);
  });

  it('refuses to start another where the file now asks for a different export, naming the way out', async () => {
    const dst = new LockingHost('d');
    const x = servedExportOf(spec('{ serve: ganesha, server: dst, dir: /srv/other }'), { src: new FakeHost('s'), dst, client: new FakeHost('c') }, '/run/miglab-remote/h1')!;
    // The recorded pid's start time does not match: that server is gone (its pid reused).
    dst.files.set(serverFiles(x.runDir).record, record(process.pid, 1));
    await expect(ensureServedExport(x, { timeoutMs: 5000 })).rejects.toThrow('dst has /srv/served served (ganesha, at 10.0.0.2) as the hosts file said before, not /srv/other (ganesha, at 10.0.0.2) as it says now; take it away first: miglab lab down --hosts FILE (it stops what the record names)');
  });
});
