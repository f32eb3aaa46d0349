// The parts of a QEMU command line that make a guest one half of a COLO pair (QEMU's
// docs/system/qemu-colo.rst, formerly docs/COLO-FT.txt): the NIC with the network filters and the
// comparator, the disk as a quorum over the local image (primary) or over block replication's
// active/hidden/parent chain (secondary), and COLO's trace points. A pure function of the plan;
// src/machine/argv.ts puts these groups where a plain guest has its disk and NIC. Each group says
// why it is there, so the report explains the exact command that ran, as for every run.
import { join } from 'node:path';
import type { ArgGroup } from '../util/explained-command.js';
import type { QemuRelease } from '../machine/quirks.js';

/** Node and object names the QMP steps (run.ts) refer to. */
export const COLO_IDS = {
  /** The guest's disk on both sides: a quorum whose children are changed at run time. */
  disk: 'colo-disk0',
  /** The secondary's copy of the image, exported over NBD to the primary's replication child. */
  parent: 'parent0',
  /** The primary's replication child (NBD to the secondary), added by drive_add + x-blockdev-change. */
  replication: 'replication0',
  /** The secondary's filters removed at failover (f2 first: it sends the SVM's output to the primary). */
  secondaryFilters: ['f2', 'f1'],
  /** The secondary's chardevs to the primary, removed after its filters. */
  secondaryChardevs: ['red1', 'red0'],
} as const;

export interface ColoNet {
  /** The primary's address on the lab network: the secondary connects here for the mirror and the comparator. */
  readonly primaryIp: string;
  /** filter-mirror's output: every packet sent to the guest, copied to the secondary. */
  readonly mirrorPort: number;
  /** colo-compare's secondary input: the secondary's guest's output, sent to the primary to compare. */
  readonly comparePort: number;
}

export interface ColoPrimaryPlan extends ColoNet {
  readonly role: 'primary';
  /** The guest's data disk (qcow2), local to the primary. */
  readonly imagePath: string;
  /** A private directory (the monitors' one) for the two unix-socket loops inside the primary. */
  readonly loopDir: string;
  /** COLO's trace points are written here, each line stamped with the wall clock. */
  readonly traceFile: string;
}

export interface ColoSecondaryPlan extends ColoNet {
  readonly role: 'secondary';
  /** The secondary's copy of the disk image, the same content as the primary's when COLO starts. */
  readonly parentPath: string;
  /** Replication's active disk (takes the secondary guest's writes) and hidden disk (keeps what the primary overwrote): same virtual size as the parent. */
  readonly activePath: string;
  readonly hiddenPath: string;
  readonly traceFile: string;
  /** How its chardevs retry the primary (reconnectOption of its build). */
  readonly reconnect: string;
}

export type ColoPlan = ColoPrimaryPlan | ColoSecondaryPlan;

/** The files of the primary's two socket loops (short names: unix socket paths are limited to 107 bytes). */
export function loopSockets(loopDir: string): { toCompare: string; fromCompare: string } {
  return { toCompare: join(loopDir, 'cmp-in.sock'), fromCompare: join(loopDir, 'cmp-out.sock') };
}

/**
 * A reconnecting client socket: QEMU 9.2 added `reconnect-ms` and deprecated `reconnect` (seconds;
 * QEMU's docs/about/deprecated.rst), and 10.0.2 refuses `reconnect` here (docs/colo-spike.md), so
 * the option follows the build.
 */
export function reconnectOption(release: Pick<QemuRelease, 'major' | 'minor'>): string {
  return release.major > 9 || (release.major === 9 && release.minor >= 2) ? 'reconnect-ms=1000' : 'reconnect=1';
}

/** The disk's guest-visible controller, the same on both sides. */
function diskDevice(diskInterface: 'virtio' | 'ide'): string {
  return diskInterface === 'virtio' ? `virtio-blk-pci,id=vblk0,drive=${COLO_IDS.disk}` : `ide-hd,id=vblk0,drive=${COLO_IDS.disk},bus=ide.0`;
}

export interface ColoNic {
  readonly tap: string;
  readonly nicModel: string;
  readonly mac: string;
  readonly diskInterface: 'virtio' | 'ide';
}

/** The NIC's host side, the same on both sides but for the tap. */
function netdevGroups(nic: ColoNic, side: string): ArgGroup[] {
  return [
    {
      args: ['-netdev', `tap,id=net0,ifname=${nic.tap},script=no,downscript=no,vhost=off,vnet_hdr=off`],
      why:
        `the NIC's host side, a tap on this host (the ${side}'s). vhost=off: the COLO filters work on QEMU's own network queues, which vhost would bypass. ` +
        "vnet_hdr=off: with virtio-net's header in front of each frame, colo-compare reads the Ethernet header at the wrong offset, takes every packet as 'unsupported' and compares nothing (seen here: traffic flows, unprotected)",
    },
    { args: ['-device', `${nic.nicModel},netdev=net0,mac=${nic.mac}`], why: `the guest NIC (${nic.nicModel}) with the same MAC on both sides: both guests are one guest, whichever survives` },
  ];
}

/** Trace points of COLO's checkpoints: the only place QEMU says when each checkpoint paused the guest, and how many pages it flushed. */
function traceGroup(traceFile: string): ArgGroup {
  return {
    args: ['-trace', 'colo_*', '-D', traceFile, '-msg', 'timestamp=on'],
    why: "COLO's trace points (checkpoint messages, the guest's stop and run around each checkpoint, the pages flushed, colo-compare's miscompares), written to a file of their own, each line stamped with the wall clock: query-migrate says only \"colo\", so the checkpoints' count, spacing and pauses are read from here",
  };
}

export function coloGroups(plan: ColoPlan, nic: ColoNic): ArgGroup[] {
  return plan.role === 'primary' ? primaryGroups(plan, nic) : secondaryGroups(plan, nic);
}

function primaryGroups(p: ColoPrimaryPlan, nic: ColoNic): ArgGroup[] {
  const loops = loopSockets(p.loopDir);
  return [
    ...netdevGroups(nic, 'primary'),
    {
      args: ['-chardev', `socket,id=mirror0,host=${p.primaryIp},port=${p.mirrorPort},server=on,wait=off`],
      why: `where filter-mirror sends its copies: the secondary connects here (its red0), on the primary's lab address only, never a wildcard`,
    },
    {
      args: ['-chardev', `socket,id=compare1,host=${p.primaryIp},port=${p.comparePort},server=on,wait=on`],
      why: "colo-compare's secondary input: the secondary connects here (its red1) and sends its guest's output. wait=on: this QEMU starts only once the secondary has connected, so no packet is compared against nothing",
    },
    {
      args: ['-chardev', `socket,id=compare0,path=${loops.toCompare},server=on,wait=off`, '-chardev', `socket,id=compare0-0,path=${loops.toCompare}`],
      why: "a loop inside this QEMU (a unix socket in its private monitor folder): filter-redirector redire1 writes the guest's output into compare0, colo-compare reads it from compare0-0 as its primary input",
    },
    {
      args: ['-chardev', `socket,id=compare_out,path=${loops.fromCompare},server=on,wait=off`, '-chardev', `socket,id=compare_out0,path=${loops.fromCompare}`],
      why: 'the loop back: colo-compare releases the packets it has compared into compare_out0, and redire0 reads them from compare_out and sends them out of the tap',
    },
    { args: ['-object', 'filter-mirror,id=m0,netdev=net0,queue=tx,outdev=mirror0'], why: 'copies every packet arriving for the guest (the clients\' requests) to the secondary, whose guest must see the same input' },
    { args: ['-object', 'filter-redirector,id=redire0,netdev=net0,queue=rx,indev=compare_out'], why: "puts what colo-compare released back on the guest's way out" },
    { args: ['-object', 'filter-redirector,id=redire1,netdev=net0,queue=rx,outdev=compare0'], why: "takes the guest's output off the wire and into colo-compare: nothing leaves until the secondary's guest has said the same, or a checkpoint has made them the same" },
    { args: ['-object', 'iothread,id=iothread1'], why: 'a thread of its own for the comparator (colo-compare requires one)' },
    {
      args: ['-object', 'colo-compare,id=comp0,primary_in=compare0-0,secondary_in=compare1,outdev=compare_out0,iothread=iothread1'],
      why: 'the comparator: a packet from both guests that differs forces a checkpoint at once (COLO\'s on-demand checkpoint); one that matches is released. A packet the secondary never matches is released after compare_timeout (3 s by default)',
    },
    {
      args: ['-drive', `if=none,id=${COLO_IDS.disk},driver=quorum,read-pattern=fifo,vote-threshold=1,children.0.file.filename=${p.imagePath},children.0.driver=qcow2`],
      why: "the guest's disk as a quorum with one child, its local image (COLO shares no storage); at COLO's start block replication to the secondary is added as a second child (x-blockdev-change), so every write also goes there. vote-threshold=1, read-pattern=fifo: reads come from the local image",
    },
    { args: ['-device', diskDevice(nic.diskInterface)], why: `the disk's guest-visible controller (${nic.diskInterface}), over the quorum` },
    traceGroup(p.traceFile),
  ];
}

function secondaryGroups(s: ColoSecondaryPlan, nic: ColoNic): ArgGroup[] {
  const again = s.reconnect;
  return [
    ...netdevGroups(nic, 'secondary'),
    {
      args: ['-chardev', `socket,id=red0,host=${s.primaryIp},port=${s.mirrorPort},${again}`, '-chardev', `socket,id=red1,host=${s.primaryIp},port=${s.comparePort},${again}`],
      why: `the two connections to the primary: red0 receives filter-mirror's copies, red1 carries this guest's output to colo-compare. ${again}: retried each second until the primary listens`,
    },
    { args: ['-object', 'filter-redirector,id=f1,netdev=net0,queue=tx,indev=red0'], why: 'injects the mirrored packets towards this guest, as if they had come from its tap (which is on no bridge while COLO runs)' },
    { args: ['-object', 'filter-redirector,id=f2,netdev=net0,queue=rx,outdev=red1'], why: "sends this guest's output to the primary's comparator, never to the wire" },
    { args: ['-object', 'filter-rewriter,id=rew0,netdev=net0,queue=all'], why: "shifts TCP sequence numbers of this guest's connections so that its packets compare equal to the primary's (they differ after each checkpoint)" },
    {
      args: ['-drive', `if=none,id=${COLO_IDS.parent},file.filename=${s.parentPath},driver=qcow2`],
      why: "this host's copy of the guest's disk image, the same content as the primary's at COLO's start; exported over NBD, it receives the primary's writes",
    },
    {
      args: [
        '-drive',
        `if=none,id=childs0,driver=replication,mode=secondary,file.driver=qcow2,top-id=${COLO_IDS.disk},file.file.filename=${s.activePath},file.backing.driver=qcow2,file.backing.file.filename=${s.hiddenPath},file.backing.backing=${COLO_IDS.parent}`,
      ],
      why: "block replication, secondary side: this guest writes to the active disk; the hidden disk keeps the parent's old blocks while the primary's writes land there, so each checkpoint can drop what this guest wrote since the last one; at failover active and hidden are merged into the parent",
    },
    { args: ['-drive', `if=none,id=${COLO_IDS.disk},driver=quorum,read-pattern=fifo,vote-threshold=1,children.0=childs0`], why: "the guest's disk, a quorum over the replication chain, named like the primary's so the migration stream finds it" },
    { args: ['-device', diskDevice(nic.diskInterface)], why: `the disk's guest-visible controller (${nic.diskInterface}), the same as the primary's` },
    traceGroup(s.traceFile),
  ];
}
