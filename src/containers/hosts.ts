// The two container hosts of a container run: guests of the chost image (CRIU and the workload in
// them), one on the lab's src host and one on dst, as the companion lab's two VMs sharing NFS. Each
// has the control port (commands over a unix socket, src/guest/control-client.ts) and mounts the
// lab's checkpoint export at /ckpt, so an image one dumps the other restores. A third slot of the
// lab gives the container its own service address, which moves with it from one guest to the other
// (the client keeps talking to one address, as it would to a migrated service).
import { existsSync } from 'node:fs';
import { MiglabError, UsageError } from '../errors.js';
import { GuestControl } from '../guest/control-client.js';
import type { ImageInfo } from '../image/build.js';
import type { GuestHostRole, Lab } from '../lab/index.js';
import { startLabGuest } from '../machine/lab-guest.js';
import { parseMachineSpec } from '../machine/spec.js';
import type { Vm } from '../machine/vm.js';
import type { Teardown } from '../util/teardown.js';
import { CKPT_PSEUDO_PATH } from '../lab/ganesha.js';
import { criuCheckVerdict, type CriuCheckVerdict } from './criu-check.js';

/** Where each guest mounts the checkpoint export. */
export const GUEST_CKPT_DIR = '/ckpt';

export interface ContainerHost {
  /** chost-src or chost-dst: how reports name it. */
  readonly name: string;
  readonly side: GuestHostRole;
  readonly vm: Vm;
  readonly ctl: GuestControl;
  /** The guest's own lab address. */
  readonly ip: string;
  /** Its NIC in the guest (the service address is added to it). */
  readonly iface: string;
  readonly slot: number;
  /** `criu check`, in CRIU's own words. */
  readonly criuCheck: CriuCheckVerdict;
  /** Milliseconds from QEMU's start to the control port answering. */
  readonly bootMs: number;
}

export interface ContainerHosts {
  readonly lab: Lab;
  readonly src: ContainerHost;
  readonly dst: ContainerHost;
  /** The container's service address (a lab slot of its own), with the lab's prefix length. */
  readonly serviceIp: string;
  readonly prefixLength: number;
  readonly criuVersion: string;
}

export interface StartContainerHostsOptions {
  readonly lab: Lab;
  readonly image: Pick<ImageInfo, 'kernelPath' | 'initrdPath' | 'inputs'>;
  readonly td: Teardown;
  readonly runId: string;
  readonly runDir: string;
  readonly memoryMiB: number;
  readonly vcpus: number;
  readonly cpuModel: string;
  readonly signal: AbortSignal;
  readonly progress: (phase: string, line: string) => void;
  /** Boot, control port and mount, each guest (default 120 s: TCG on a loaded machine). */
  readonly timeoutMs?: number;
}

/** Refuse a lab that predates the checkpoint export, before anything is started. */
export function checkLabHasCheckpointExport(lab: Lab): void {
  if (!existsSync(lab.paths.ckptDir)) {
    throw new UsageError(
      `the lab "${lab.spec.prefix}" has no checkpoint export (${lab.paths.ckptDir}): it was brought up by an older miglab`,
      `take it down and up again: miglab lab down --prefix ${lab.spec.prefix} && miglab lab up --prefix ${lab.spec.prefix}`,
    );
  }
}

/** The interface that holds `ip`, from `ip -o -4 addr show` in the guest. */
export function ifaceWithAddress(ipAddrOutput: string, ip: string): string | undefined {
  for (const line of ipAddrOutput.split('\n')) {
    const m = /^\d+:\s+(\S+)\s+inet\s+(\d+\.\d+\.\d+\.\d+)\//.exec(line);
    if (m && m[2] === ip) return m[1];
  }
  return undefined;
}

/** The two container hosts booted side by side, each checked (control port, /ckpt, criu check). */
export async function startContainerHosts(o: StartContainerHostsOptions): Promise<ContainerHosts> {
  checkLabHasCheckpointExport(o.lab);
  const timeoutMs = o.timeoutMs ?? 120_000;
  const lease = async (preferred: number, what: string) => {
    // One run id for the three slots: the lab counts them as one run in progress (lab down, lab status).
    const l = await o.lab.acquireSlot({ preferred, runId: o.runId, signal: o.signal });
    o.td.defer(`release guest slot g${l.index} (${what})`, () => l.release());
    return l;
  };
  // One at a time: each takes the next free slot.
  const srcSlot = await lease(0, 'chost-src');
  const dstSlot = await lease(srcSlot.index + 1, 'chost-dst');
  const svcSlot = await lease(dstSlot.index + 1, 'service');
  const lab = srcSlot.lab;

  const boot = async (side: GuestHostRole, slot: number, name: string): Promise<ContainerHost> => {
    const spec = parseMachineSpec({
      name: `g${slot}`,
      accel: 'tcg',
      cpuModel: o.cpuModel,
      memoryMiB: o.memoryMiB,
      vcpus: o.vcpus,
      mac: lab.guestMac(slot),
      ip: `${lab.guestIp(slot)}/${lab.prefixLength}`,
      kernelArgs: ['miglab.ctl=1'],
    });
    const started = Date.now();
    const vm = await startLabGuest({
      lab,
      side,
      spec,
      accel: 'tcg',
      media: { kernelPath: o.image.kernelPath, initrdPath: o.image.initrdPath },
      runDir: o.runDir,
      teardown: o.td,
      role: 'single',
      controlPort: true,
      timeoutMs,
      signal: o.signal,
    });
    const socket = vm.plan.controlSocket;
    if (!socket) throw new MiglabError('INTERNAL', `${name} was started without a control port`);
    const ctl = await GuestControl.connect(lab.hosts[side].host, socket, name, { timeoutMs, signal: o.signal });
    o.td.defer(`close the control port of ${name}`, () => ctl.close());
    const bootMs = Date.now() - started;
    o.progress('hosts', `${name} up on ${side} (${lab.guestIp(slot)}): control port answered ${bootMs} ms after QEMU started`);
    const server = lab.nfs.serverIp;
    await ctl.exec(['mount', '-t', 'nfs4', '-o', `vers=4.1,proto=tcp,addr=${server},hard,timeo=600`, `${server}:${CKPT_PSEUDO_PATH}`, GUEST_CKPT_DIR], {
      timeoutMs: 30_000,
      signal: o.signal,
    });
    const [check, addrs] = await Promise.all([
      ctl.exec(['criu', 'check'], { reject: false, timeoutMs: 60_000, signal: o.signal }),
      ctl.exec(['ip', '-o', '-4', 'addr', 'show'], { timeoutMs: 10_000, signal: o.signal }),
    ]);
    const criuCheck = criuCheckVerdict({ text: `${check.stdout}${check.stderr}`, exitCode: check.exitCode });
    const iface = ifaceWithAddress(addrs.stdout, lab.guestIp(slot));
    if (!iface) throw new MiglabError('VM_LAUNCH', `${name} has no interface with its address ${lab.guestIp(slot)}: ${addrs.stdout.trim()}`);
    return { name, side, vm, ctl, ip: lab.guestIp(slot), iface, slot, criuCheck, bootMs };
  };
  o.progress('hosts', `booting chost-src on src and chost-dst on dst (${o.memoryMiB} MiB, ${o.vcpus} vCPU, ${o.cpuModel} both)`);
  const [src, dst] = await Promise.all([boot('src', srcSlot.index, 'chost-src'), boot('dst', dstSlot.index, 'chost-dst')]);
  for (const h of [src, dst]) {
    if (!h.criuCheck.ok) {
      throw new MiglabError('COMMAND_FAILED', `CRIU cannot run in ${h.name}: ${h.criuCheck.summary}`);
    }
  }
  const version = await src.ctl.exec(['criu', '--version'], { timeoutMs: 10_000, signal: o.signal });
  return {
    lab,
    src,
    dst,
    serviceIp: lab.guestIp(svcSlot.index),
    prefixLength: lab.prefixLength,
    criuVersion: /Version:\s*(\S+)/.exec(version.stdout)?.[1] ?? version.stdout.trim(),
  };
}
