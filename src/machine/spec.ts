// The machine spec: plain, readonly, validated data describing one guest. Nothing here starts
// anything; src/machine/argv.ts turns a spec into QEMU's command line and src/machine/vm.ts runs it.
import { z } from 'zod';
import { parseInput } from '../util/validate.js';

export const ACCELS = ['kvm', 'tcg', 'auto'] as const;
export const NIC_MODELS = ['virtio-net-pci', 'e1000', 'rtl8139'] as const;
export const DISK_INTERFACES = ['virtio', 'ide'] as const;

export type Accel = (typeof ACCELS)[number];
export type NicModel = (typeof NIC_MODELS)[number];
export type DiskInterface = (typeof DISK_INTERFACES)[number];

const MAC_RE = /^52:54:00(:[0-9a-f]{2}){3}$/i;
/** A machine type's name as QEMU lists them (pc, pc-i440fx-7.2, q35), or miglab's auto. */
export const MACHINE_TYPE_RE = /^[a-z][a-z0-9.-]{0,40}$/;
const NAME_RE = /^[a-z][a-z0-9-]{0,11}$/;

export const MachineSpecSchema = z
  .object({
    name: z.string().regex(NAME_RE, 'a guest name is 1-12 lower-case letters, digits or dashes, starting with a letter'),
    accel: z.enum(ACCELS).default('auto'),
    /** CPU model; both sides of a migration must use the same one. */
    cpuModel: z.string().regex(/^[A-Za-z0-9_.,=+-]+$/, 'a CPU model name such as qemu64 or host').default('qemu64'),
    /** QEMU's -machine, the same on both sides (pc, or a versioned type pinned for two QEMU builds: src/qemu/pair.ts). */
    machineType: z.string().regex(MACHINE_TYPE_RE, 'not a machine type name (lower case, as qemu-system-x86_64 -machine help lists them)').default('pc'),
    memoryMiB: z.number().int().min(64, 'at least 64 MiB').max(65536, 'at most 64 GiB'),
    vcpus: z.number().int().min(1).max(64).default(1),
    nicModel: z.enum(NIC_MODELS).default('virtio-net-pci'),
    diskInterface: z.enum(DISK_INTERFACES).default('virtio'),
    mac: z.string().regex(MAC_RE, 'a locally administered MAC of the form 52:54:00:xx:xx:xx'),
    /** Guest address with prefix length, inside the lab subnet, e.g. 10.77.0.100/24. */
    ip: z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, 'an IPv4 address with prefix, e.g. 10.77.0.100/24'),
    heartbeatMs: z.number().int().min(10).max(10000).default(100),
    /** Start an iperf3 server inside the guest. */
    iperfServer: z.boolean().default(false),
    /** More `miglab.KEY=VALUE` settings for the guest's init and agent (a container host's miglab.ctl=1). */
    kernelArgs: z.array(z.string().regex(/^miglab\.[a-z_]+=[A-Za-z0-9_.:/,-]*$/, 'a guest setting of the form miglab.key=value')).optional(),
  })
  .readonly();

export type MachineSpec = z.infer<typeof MachineSpecSchema>;
export type MachineSpecInput = z.input<typeof MachineSpecSchema>;

/** Validate a machine spec; bad input becomes one UsageError line naming the field. */
export function parseMachineSpec(input: MachineSpecInput): MachineSpec {
  return parseInput(MachineSpecSchema, input, 'machine spec');
}

/** Where the guest's boot files and data disk come from (resolved by the image and lab). */
export interface MachineMedia {
  readonly kernelPath: string;
  readonly initrdPath: string;
  /** `nfs://server/path/disk.qcow2` in the lab, or a plain path on a shared mount; none = no disk. */
  readonly diskUrl?: string;
}
