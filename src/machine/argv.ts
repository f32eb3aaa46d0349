// A machine spec turned into QEMU's command line by a pure function. Each group of arguments
// carries the reason it is there, so the report can explain the exact command that ran.
import type { ArgGroup, ExplainedCommand } from '../util/explained-command.js';
import type { MachineMedia, MachineSpec } from './spec.js';
import { launchGroups, type QemuBuild } from '../qemu/build.js';
import { DEVICE_MODULES, FAST_BOOT_ARGS } from '../image/guest.js';
import { coloGroups, type ColoPlan } from '../colo/argv.js';

export type ResolvedAccel = 'kvm' | 'tcg';

/** The firmware: QEMU ships it (qemu-system-data), looked up in the build's data directories. */
export const QBOOT_ROM = 'qboot.rom';

/** The id of the tls-creds-x509 object; the migration parameter `tls-creds` names it. */
export const TLS_CREDS_ID = 'miglab-tls';

/** TLS credentials for the migration stream: the destination is the server, the source the client. */
export interface TlsPlan {
  /** A directory in tls-creds-x509's layout (ca-cert.pem, server-cert.pem, ...; see src/lab/tls.ts). */
  readonly dir: string;
  readonly endpoint: 'server' | 'client';
}

export interface LaunchPlan {
  readonly role: 'source' | 'destination' | 'probe' | 'single';
  readonly accel: ResolvedAccel;
  readonly qmpSocket: string;
  /** HMP monitor on a unix socket (miglab's own automation). */
  readonly hmpSocket?: string;
  /** HMP monitor also on telnet 127.0.0.1:PORT, inside the host's namespace, as in the homework. */
  readonly hmpTelnetPort?: number;
  /** A second QMP monitor for a person (socat), on a unix socket: one QMP socket serves one client, and miglab holds qmpSocket. */
  readonly personQmpSocket?: string;
  /** Tap device (already on the host's bridge) that backs the NIC; none = no NIC. */
  readonly tap?: string;
  /** e.g. tcp:10.77.0.2:4444 for the destination. */
  readonly incomingUri?: string;
  /** Start with `-incoming defer`: miglab opens incomingUri with migrate-incoming once the capabilities are set. */
  readonly incomingDeferred?: boolean;
  /** A warm start: `-incoming defer`, then miglab streams the saved state of a booted guest in (warm-start.ts). */
  readonly restoring?: boolean;
  readonly media: MachineMedia;
  /**
   * QEMU 8.2 on: write the vmstate_downtime_* trace points here, stamped with the wall clock
   * (src/qemu/downtime-trace.ts reads them: where the switchover's downtime went).
   */
  readonly downtimeTraceFile?: string;
  /** Under KVM: give it a dirty ring of this many entries per vCPU (QEMU's dirty-limit needs one). */
  readonly kvmDirtyRingSize?: number;
  /** The QEMU build to run (src/qemu/build.ts); none: the host's own. */
  readonly qemu?: QemuBuild;
  /** KiB added to the guest's RAM to steer QEMU < 9.0 off its buggy TCG dirty-sync path (quirks.ts). */
  readonly ramPadKiB?: number;
  /** Load TLS credentials, so the migration stream can be encrypted (migration parameter tls-creds). */
  readonly tls?: TlsPlan;
  /** The guest agent's control port (a container host's), on this unix socket. */
  readonly controlSocket?: string;
  /** One half of a COLO pair: its disk and NIC are COLO's (src/colo/argv.ts) instead of the plain ones. */
  readonly colo?: ColoPlan;
}

/** A value inside a QEMU option list: a comma would end it, and QEMU reads ",," as one comma. */
export function qemuOptValue(value: string): string {
  return value.replaceAll(',', ',,');
}

export function kernelAppend(spec: MachineSpec): string {
  const modules = [...new Set([...DEVICE_MODULES[spec.nicModel], ...DEVICE_MODULES[spec.diskInterface]])];
  const parts = [
    'console=ttyS0',
    'quiet',
    'panic=-1',
    ...FAST_BOOT_ARGS.map((a) => a.arg),
    `miglab.modules=${modules.join(',')}`,
    // Only virtio devices (MSI-X, no legacy interrupt lines): PCI routing from the BIOS table
    // instead of ACPI's link objects, 0.3-0.4 s of AML interpretation under TCG. qboot gives no
    // such table, so e1000, rtl8139 and IDE (INTx) would get no interrupt: they keep ACPI's.
    ...(spec.nicModel === 'virtio-net-pci' && spec.diskInterface === 'virtio' ? ['pci=noacpi'] : []),
    `miglab.ip=${spec.ip}`,
    `miglab.hb_ms=${spec.heartbeatMs}`,
  ];
  if (spec.iperfServer) parts.push('miglab.iperf=1');
  parts.push(...(spec.kernelArgs ?? []));
  return parts.join(' ');
}

const DISK_DEVICE: Record<MachineSpec['diskInterface'], (drive: string) => string> = {
  virtio: (drive) => `virtio-blk-pci,drive=${drive}`,
  // The pc machine's built-in PIIX IDE controller: bus ide.0 is the first channel.
  ide: (drive) => `ide-hd,drive=${drive},bus=ide.0`,
};

export function buildQemuCommand(spec: MachineSpec, plan: LaunchPlan): ExplainedCommand {
  const g: ArgGroup[] = [];
  const add = (why: string, ...args: string[]) => g.push({ args, why });

  g.push(...launchGroups(plan.qemu));
  add('names the guest in logs and ps, and names QEMU threads after their role (vCPU, migration)', '-name', `guest=${spec.name}-${plan.role},debug-threads=on`);
  add('no default devices and no user config files: the guest has exactly the devices listed here, identically on both sides of a migration', '-nodefaults', '-no-user-config');
  add(
    spec.machineType === 'pc'
      ? 'the i440fx PC machine type (it has the PIIX IDE controller that the ide disk interface needs)'
      : `the machine type pinned to one version, the same on both sides: a QEMU's plain pc is its own newest type, and a destination refuses a type other than its own`,
    '-machine',
    spec.machineType,
  );
  add(
    "qboot, QEMU's minimal firmware, instead of SeaBIOS: it only hands over to the kernel given with -kernel (0.2-0.3 s less of every TCG boot, measured); both sides load the same 64 KiB ROM, so the migration's RAM blocks match",
    '-bios',
    QBOOT_ROM,
  );
  add(
    plan.accel === 'kvm'
      ? `hardware virtualisation through /dev/kvm: guest code runs natively on the host CPU${plan.kvmDirtyRingSize ? `; with a dirty ring of ${plan.kvmDirtyRingSize} entries per vCPU, which the dirty-limit capability needs` : ''}`
      : 'TCG, QEMU\'s dynamic binary translator: guest code is translated in software (no KVM)',
    '-accel',
    plan.accel === 'kvm' && plan.kvmDirtyRingSize ? `kvm,dirty-ring-size=${plan.kvmDirtyRingSize}` : plan.accel,
  );
  add('the CPU model the guest sees; source and destination must match for a migration', '-cpu', spec.cpuModel);
  if (plan.ramPadKiB) {
    add(
      `guest RAM: ${spec.memoryMiB} MiB plus ${plan.ramPadKiB} KiB, so the RAM block is not a multiple of 256 KiB; QEMU before 9.0 under TCG otherwise loses guest writes during pre-copy (its fast dirty-bitmap sync does not re-arm TCG's TLB) and the destination gets stale pages`,
      '-m',
      `${spec.memoryMiB * 1024 + plan.ramPadKiB}k`,
    );
  } else {
    add('guest RAM in MiB: the amount pre-copy has to transfer', '-m', String(spec.memoryMiB));
  }
  add('number of virtual CPUs', '-smp', String(spec.vcpus));
  add('no graphical display: the guest talks on its serial port', '-display', 'none', '-vga', 'none');
  add('the Debian kernel booted directly, without a bootloader', '-kernel', plan.media.kernelPath);
  add('the initramfs holding busybox, iperf3, the NIC/disk modules and the miglab guest agent', '-initrd', plan.media.initrdPath);
  add(
    `kernel command line: serial console, no reboot on panic, the drivers of this machine's devices only (miglab.modules), the guest's network settings for the agent, and what shortens a TCG boot (${FAST_BOOT_ARGS.map((a) => `${a.arg}: ${a.why}`).join('; ')}; pci=noacpi with only virtio devices: PCI interrupts routed without ACPI's link objects, 0.3-0.4 s)`,
    '-append',
    kernelAppend(spec),
  );
  add('the guest\'s serial console goes to QEMU\'s stdout, where miglab reads the agent\'s heartbeat', '-serial', 'stdio');
  if (plan.downtimeTraceFile) {
    add(
      "QEMU's downtime trace points (8.2 on): each device's save or load time in the switchover and the moments it passes, written to a file of their own, each line stamped with the wall clock (which also stamps QEMU's error lines)",
      '-trace',
      'vmstate_downtime_*',
      '-D',
      plan.downtimeTraceFile,
      '-msg',
      'timestamp=on',
    );
  }
  add('exit instead of rebooting, so a guest crash ends the run visibly', '-no-reboot');
  if (plan.colo) {
    if (!plan.tap) throw new Error('a COLO guest needs a tap');
    g.push(...coloGroups(plan.colo, { tap: plan.tap, nicModel: spec.nicModel, mac: spec.mac, diskInterface: spec.diskInterface }));
  } else {
    if (plan.media.diskUrl) {
      add(
        'the qcow2 data disk, opened by both QEMUs from shared storage (NFS), so only RAM and device state migrate',
        '-drive',
        `file=${plan.media.diskUrl},format=qcow2,if=none,id=disk0`,
      );
      add(`the disk's guest-visible controller (${spec.diskInterface})`, '-device', DISK_DEVICE[spec.diskInterface]('disk0'));
    }
    if (plan.tap) {
      add(
        'the NIC\'s host side: a tap device already on this host\'s bridge; no helper scripts are run',
        '-netdev',
        `tap,id=net0,ifname=${plan.tap},script=no,downscript=no`,
      );
      add(`the guest NIC (${spec.nicModel}) with a fixed MAC, the same on both sides so the guest keeps its identity`, '-device', `${spec.nicModel},netdev=net0,mac=${spec.mac}`);
    }
  }
  add('QMP, the JSON machine protocol, on a unix socket only this host\'s root can open', '-qmp', `unix:${plan.qmpSocket},server=on,wait=off`);
  if (plan.personQmpSocket) {
    add(
      'a second QMP monitor, for a person with socat (a QMP socket serves one client at a time, and miglab holds the first); a unix socket only root can open',
      '-qmp',
      `unix:${plan.personQmpSocket},server=on,wait=off`,
    );
  }
  if (plan.hmpSocket) add('the human monitor (HMP) on a unix socket, for scripted `info migrate` and `migrate -d`', '-monitor', `unix:${plan.hmpSocket},server=on,wait=off`);
  if (plan.hmpTelnetPort) {
    add(
      'the human monitor on telnet, bound to 127.0.0.1 inside this host\'s network namespace only (never a wildcard address)',
      '-monitor',
      `telnet:127.0.0.1:${plan.hmpTelnetPort},server=on,wait=off`,
    );
  }
  if (plan.tls) {
    add(
      `x509 TLS credentials for the migration stream, read from ${plan.tls.dir} (the lab's CA, and this side's certificate and key); ` +
        `endpoint=${plan.tls.endpoint}: the ${plan.tls.endpoint === 'server' ? 'destination accepts' : 'source opens'} the TLS session; ` +
        'verify-peer=on: each side checks the other\'s certificate against the CA, so only the lab\'s two QEMUs can take part. ' +
        `Used once the migration parameter tls-creds names ${TLS_CREDS_ID}`,
      '-object',
      `tls-creds-x509,id=${TLS_CREDS_ID},dir=${qemuOptValue(plan.tls.dir)},endpoint=${plan.tls.endpoint},verify-peer=on`,
    );
  }
  if (plan.controlSocket) {
    add('a virtio-serial bus for the control port', '-device', 'virtio-serial-pci,id=ctlbus');
    add(
      'the control port\'s host side: a unix socket only this host\'s root can open, where miglab sends the guest agent commands to run (CRIU); never on the network',
      '-chardev',
      `socket,id=ctl,path=${qemuOptValue(plan.controlSocket)},server=on,wait=off`,
    );
    add('the control port in the guest, found by its name (org.miglab.ctl) by the agent', '-device', 'virtserialport,bus=ctlbus.0,chardev=ctl,name=org.miglab.ctl');
  }
  if (plan.restoring) {
    add(
      'a warm start: start paused and load the saved state of an already booted guest instead of booting its kernel (migrate-incoming on a unix socket in this QEMU\'s monitor folder, which miglab streams the state into)',
      '-incoming',
      'defer',
    );
  } else if (plan.incomingUri && plan.incomingDeferred) {
    add(
      `start paused, not listening yet: capabilities such as multifd and postcopy-preempt must be set before the destination listens, then migrate-incoming ${plan.incomingUri} opens the address`,
      '-incoming',
      'defer',
    );
  } else if (plan.incomingUri) {
    add('start paused, waiting for the migration stream on this address (the destination side)', '-incoming', plan.incomingUri);
  }

  return { argv: g.flatMap((x) => x.args), explained: g };
}
