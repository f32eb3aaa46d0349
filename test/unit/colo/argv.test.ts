// The command lines of a COLO pair, as buildQemuCommand makes them: every argument explained, the
// network parts on the lab's own addresses (never a wildcard), the tap without virtio's header
// (else colo-compare compares nothing), and the names the QMP steps refer to.
import { describe, expect, it } from '@jest/globals';
import { buildQemuCommand, type LaunchPlan } from '../../../src/machine/argv.js';
import { parseMachineSpec } from '../../../src/machine/spec.js';
import { COLO_IDS, loopSockets, reconnectOption, type ColoPlan } from '../../../src/colo/argv.js';

const spec = parseMachineSpec({ name: 'g0', accel: 'tcg', memoryMiB: 128, mac: '52:54:00:77:00:00', ip: '10.77.0.100/24' });
const net = { primaryIp: '10.77.0.1', mirrorPort: 4702, comparePort: 4703 };
const primary: ColoPlan = { role: 'primary', imagePath: '/run/x/colo-a/primary.qcow2', loopDir: '/run/x/g0-src-a', traceFile: '/run/x/g0-src-a/src.colo.trace', ...net };
const secondary: ColoPlan = {
  role: 'secondary',
  parentPath: '/run/x/colo-b/parent.qcow2',
  activePath: '/run/x/colo-b/active.qcow2',
  hiddenPath: '/run/x/colo-b/hidden.qcow2',
  traceFile: '/run/x/g0-dst-b/dst.colo.trace',
  reconnect: 'reconnect-ms=1000',
  ...net,
};
const plan = (colo: ColoPlan, extra: Partial<LaunchPlan> = {}): LaunchPlan => ({
  role: colo.role === 'primary' ? 'source' : 'destination',
  accel: 'tcg',
  qmpSocket: '/run/x/q.qmp',
  tap: 'tap-g0',
  media: { kernelPath: '/k', initrdPath: '/i' },
  colo,
  ...extra,
});
/** The value after each occurrence of `flag`. */
const values = (argv: readonly string[], flag: string) => argv.flatMap((a, i) => (a === flag ? [argv[i + 1]!] : []));

describe('a COLO primary', () => {
  const cmd = buildQemuCommand(spec, plan(primary));

  it('has its NIC on the tap with the filters and the comparator, and no plain disk', () => {
    expect(values(cmd.argv, '-netdev')).toEqual(['tap,id=net0,ifname=tap-g0,script=no,downscript=no,vhost=off,vnet_hdr=off']);
    expect(values(cmd.argv, '-object')).toEqual([
      'filter-mirror,id=m0,netdev=net0,queue=tx,outdev=mirror0',
      'filter-redirector,id=redire0,netdev=net0,queue=rx,indev=compare_out',
      'filter-redirector,id=redire1,netdev=net0,queue=rx,outdev=compare0',
      'iothread,id=iothread1',
      'colo-compare,id=comp0,primary_in=compare0-0,secondary_in=compare1,outdev=compare_out0,iothread=iothread1',
    ]);
    expect(values(cmd.argv, '-drive')).toEqual([`if=none,id=${COLO_IDS.disk},driver=quorum,read-pattern=fifo,vote-threshold=1,children.0.file.filename=/run/x/colo-a/primary.qcow2,children.0.driver=qcow2`]);
    expect(values(cmd.argv, '-device')).toContain(`virtio-blk-pci,id=vblk0,drive=${COLO_IDS.disk}`);
  });

  it('listens for the secondary on its lab address only, and loops inside itself over unix sockets', () => {
    const chardevs = values(cmd.argv, '-chardev');
    expect(chardevs.filter((c) => c.includes('host='))).toEqual([
      'socket,id=mirror0,host=10.77.0.1,port=4702,server=on,wait=off',
      'socket,id=compare1,host=10.77.0.1,port=4703,server=on,wait=on',
    ]);
    const loops = loopSockets(primary.loopDir);
    expect(chardevs).toContain(`socket,id=compare0-0,path=${loops.toCompare}`);
    expect(chardevs).toContain(`socket,id=compare_out0,path=${loops.fromCompare}`);
    expect(cmd.argv.join(' ')).not.toMatch(/0\.0\.0\.0|host=::/);
  });

  it("traces COLO's checkpoints with the wall clock", () => {
    expect(values(cmd.argv, '-trace')).toEqual(['colo_*']);
    expect(values(cmd.argv, '-D')).toEqual([primary.traceFile]);
    expect(values(cmd.argv, '-msg')).toEqual(['timestamp=on']);
  });

  it('explains every argument', () => {
    for (const g of cmd.explained) expect(g.why.length).toBeGreaterThan(20);
    expect(cmd.explained.flatMap((g) => g.args)).toEqual(cmd.argv);
    expect(cmd.explained.find((g) => g.args.some((a) => a.includes('vnet_hdr=off')))!.why).toMatch(/compares nothing/);
  });
});

describe('a COLO secondary', () => {
  const cmd = buildQemuCommand(spec, plan(secondary, { incomingUri: 'tcp:10.77.0.2:4700' }));

  it('connects to the primary, keeps its output off the wire, and waits for the first copy', () => {
    expect(values(cmd.argv, '-chardev')).toEqual(['socket,id=red0,host=10.77.0.1,port=4702,reconnect-ms=1000', 'socket,id=red1,host=10.77.0.1,port=4703,reconnect-ms=1000']);
    expect(values(cmd.argv, '-object')).toEqual(['filter-redirector,id=f1,netdev=net0,queue=tx,indev=red0', 'filter-redirector,id=f2,netdev=net0,queue=rx,outdev=red1', 'filter-rewriter,id=rew0,netdev=net0,queue=all']);
    expect(values(cmd.argv, '-incoming')).toEqual(['tcp:10.77.0.2:4700']);
    // The ids failover removes are the ones made here.
    for (const id of [...COLO_IDS.secondaryFilters, ...COLO_IDS.secondaryChardevs]) expect(cmd.argv.join(' ')).toContain(`id=${id},`);
  });

  it("keeps its disk as replication's active and hidden disks over the parent the primary writes through NBD", () => {
    const drives = values(cmd.argv, '-drive');
    expect(drives[0]).toBe(`if=none,id=${COLO_IDS.parent},file.filename=/run/x/colo-b/parent.qcow2,driver=qcow2`);
    expect(drives[1]).toBe(
      `if=none,id=childs0,driver=replication,mode=secondary,file.driver=qcow2,top-id=${COLO_IDS.disk},file.file.filename=/run/x/colo-b/active.qcow2,file.backing.driver=qcow2,file.backing.file.filename=/run/x/colo-b/hidden.qcow2,file.backing.backing=${COLO_IDS.parent}`,
    );
    expect(drives[2]).toBe(`if=none,id=${COLO_IDS.disk},driver=quorum,read-pattern=fifo,vote-threshold=1,children.0=childs0`);
  });
});

describe('reconnectOption', () => {
  it('follows the build: reconnect-ms from 9.2 (10.0 dropped reconnect)', () => {
    expect(reconnectOption({ major: 7, minor: 2 })).toBe('reconnect=1');
    expect(reconnectOption({ major: 9, minor: 1 })).toBe('reconnect=1');
    expect(reconnectOption({ major: 9, minor: 2 })).toBe('reconnect-ms=1000');
    expect(reconnectOption({ major: 11, minor: 1 })).toBe('reconnect-ms=1000');
  });
});

describe('a plain guest', () => {
  it('keeps its NFS disk and plain NIC', () => {
    const cmd = buildQemuCommand(spec, { role: 'source', accel: 'tcg', qmpSocket: '/q', tap: 'tap-g0', media: { kernelPath: '/k', initrdPath: '/i', diskUrl: 'nfs://10.77.0.1/e/d.qcow2' } });
    expect(values(cmd.argv, '-netdev')).toEqual(['tap,id=net0,ifname=tap-g0,script=no,downscript=no']);
    expect(values(cmd.argv, '-drive')).toEqual(['file=nfs://10.77.0.1/e/d.qcow2,format=qcow2,if=none,id=disk0']);
    expect(cmd.argv).not.toContain('-trace');
  });
});
