// The host's side of the guest's conventions: the kernel command line miglab boots the guest with,
// and the `MIGLAB-*` lines the guest prints on its serial console (see vm-images/README.md).
// Pure functions; machine and migration code use them to boot the guest and read its console.
import { UsageError } from '../errors.js';
import type { DiskInterface, NicModel } from '../machine/spec.js';

/** The agent's UDP port inside the guest. */
export const AGENT_UDP_PORT = 7777;
export const IPERF3_PORT = 5201;
export const DEFAULT_HEARTBEAT_MS = 100;

export interface GuestBootOptions {
  /** Address with prefix, e.g. "10.77.0.100/24". Without it the guest configures no network. */
  readonly ip?: string;
  readonly gateway?: string;
  /** Default: the first interface other than lo (eth0). */
  readonly iface?: string;
  readonly heartbeatMs?: number;
  readonly iperf?: boolean;
  /** Give a shell on the console if the agent dies (debugging). */
  readonly shell?: boolean;
  /** More kernel arguments, appended as given. */
  readonly extra?: readonly string[];
}

/**
 * Kernel arguments that shorten a TCG boot (measured on Debian 12's 6.1 kernel, 2-core machine,
 * 512 MiB: first heartbeat 2.9 s -> 2.2 s guest time with all of them; none changes what a
 * migration moves or how the agent behaves). Each is kept only for what it saves:
 */
export const FAST_BOOT_ARGS: readonly { readonly arg: string; readonly why: string }[] = [
  { arg: 'cryptomgr.notests', why: "skip the crypto self-tests at boot (the guest's kernel crypto is not what is measured)" },
  { arg: 'init_on_alloc=0', why: "Debian zeroes every page it hands out; TCG pays for each store" },
  { arg: 'mitigations=off', why: 'no Spectre/Meltdown work-arounds inside the guest (they protect nothing in a lab guest, and cost TCG translation time)' },
  { arg: 'apparmor=0', why: 'no LSM policy set-up: the guest runs one agent as root' },
  { arg: 'security=none', why: 'the same: no security module at all' },
  { arg: 'ima_appraise=off', why: 'no file integrity measurement' },
  { arg: 'audit=0', why: 'no audit subsystem' },
  { arg: 'rodata=off', why: 'no W+X page-table walk at the end of boot (0.2 s under TCG)' },
  { arg: '8250.nr_uarts=1', why: 'probe one serial port, the console, not four' },
  { arg: 'no_timer_check', why: 'skip the IO-APIC timer check, slow and needless under QEMU' },
  { arg: 'tsc=reliable', why: "trust QEMU's TSC: no clocksource watchdog" },
];

/** The guest drivers each NIC model and disk interface needs (miglab.modules=; vm-images/init). */
export const DEVICE_MODULES: Readonly<Record<NicModel | DiskInterface, readonly string[]>> = {
  // virtio_pci is the transport: no virtio driver depends on it, yet none finds its device without it.
  'virtio-net-pci': ['virtio_pci', 'virtio_net'],
  e1000: ['e1000'],
  // QEMU's RTL8139 is revision 0x20, which both 8139too and 8139cp claim: load both, as before.
  rtl8139: ['8139too', '8139cp'],
  virtio: ['virtio_pci', 'virtio_blk'],
  ide: ['ata_piix', 'sd_mod'],
};

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

/**
 * The kernel command line for the miglab guest. `panic=-1` reboots at once on a panic, so with
 * QEMU's -no-reboot a guest crash ends QEMU instead of hanging; `quiet` keeps the console for
 * the MIGLAB-* lines.
 */
export function guestAppend(opts: GuestBootOptions = {}): string {
  const args = ['console=ttyS0', 'quiet', 'panic=-1', ...FAST_BOOT_ARGS.map((a) => a.arg)];
  if (opts.ip !== undefined) {
    const [addr, prefix, more] = opts.ip.split('/');
    if (!addr || !IPV4.test(addr) || more !== undefined || (prefix !== undefined && !/^([0-9]|[12]\d|3[0-2])$/.test(prefix))) {
      throw new UsageError(`invalid guest address "${opts.ip}"`, 'use an IPv4 address with a prefix, e.g. 10.77.0.100/24');
    }
    args.push(`miglab.ip=${prefix === undefined ? `${addr}/24` : opts.ip}`);
  }
  if (opts.gateway !== undefined) {
    if (!IPV4.test(opts.gateway)) throw new UsageError(`invalid gateway "${opts.gateway}"`, 'use an IPv4 address');
    args.push(`miglab.gw=${opts.gateway}`);
  }
  if (opts.iface !== undefined) {
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(opts.iface)) throw new UsageError(`invalid interface name "${opts.iface}"`);
    args.push(`miglab.iface=${opts.iface}`);
  }
  if (opts.heartbeatMs !== undefined) {
    if (!Number.isInteger(opts.heartbeatMs) || opts.heartbeatMs < 1) {
      throw new UsageError(`invalid heartbeat period ${opts.heartbeatMs} ms`, 'use a whole number of ms, at least 1');
    }
    args.push(`miglab.hb_ms=${opts.heartbeatMs}`);
  }
  if (opts.iperf) args.push('miglab.iperf=1');
  if (opts.shell) args.push('miglab.shell=1');
  for (const e of opts.extra ?? []) {
    if (/\s/.test(e) || e === '') throw new UsageError(`invalid kernel argument "${e}"`, 'one argument per entry, no spaces');
    args.push(e);
  }
  return args.join(' ');
}

/** The QEMU arguments that boot an image (kernel, initrd, command line). */
export function bootArgv(image: { readonly kernelPath: string; readonly initrdPath: string }, append: string): string[] {
  return ['-kernel', image.kernelPath, '-initrd', image.initrdPath, '-append', append];
}

export type GuestLine =
  | { readonly kind: 'heartbeat'; readonly seq: number; readonly monoNs: number; readonly boot: string }
  | { readonly kind: 'ready'; readonly ip: string | undefined; readonly boot: string }
  | { readonly kind: 'modules'; readonly loaded: number; readonly failed: readonly string[] }
  | { readonly kind: 'net'; readonly iface: string | undefined; readonly ip: string | undefined; readonly error?: string }
  | { readonly kind: 'agent-exit'; readonly status: number };

function fields(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const part of text.trim().split(/\s+/)) {
    const eq = part.indexOf('=');
    if (eq > 0) m.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return m;
}

const orUndefined = (v: string | undefined) => (v === undefined || v === 'none' || v === '' ? undefined : v);

/**
 * One console line of the guest, or undefined if it is not a MIGLAB-* line. The line may carry
 * a prefix (a timestamp, a carriage return): the tag is looked for anywhere. `monoNs` is exact
 * up to 2^53 ns (104 days of guest uptime).
 */
export function parseGuestLine(line: string): GuestLine | undefined {
  const m = /MIGLAB-(HB|READY|MODULES|NET|AGENT-EXIT)\b(.*)$/.exec(line);
  if (!m) return undefined;
  const f = fields(m[2] ?? '');
  switch (m[1]) {
    case 'HB': {
      const seq = Number(f.get('seq'));
      const monoNs = Number(f.get('mono_ns'));
      const boot = f.get('boot');
      if (!Number.isInteger(seq) || !Number.isFinite(monoNs) || !boot) return undefined;
      return { kind: 'heartbeat', seq, monoNs, boot };
    }
    case 'READY': {
      const boot = f.get('boot');
      return boot ? { kind: 'ready', ip: orUndefined(f.get('ip')), boot } : undefined;
    }
    case 'MODULES': {
      const loaded = Number(f.get('loaded'));
      if (!Number.isInteger(loaded)) return undefined;
      const failed = (f.get('failed') ?? '').split(',').filter(Boolean);
      return { kind: 'modules', loaded, failed };
    }
    case 'NET': {
      const error = f.get('error');
      return { kind: 'net', iface: orUndefined(f.get('iface')), ip: orUndefined(f.get('ip')), ...(error ? { error } : {}) };
    }
    default: {
      const status = Number(f.get('status'));
      return Number.isInteger(status) ? { kind: 'agent-exit', status } : undefined;
    }
  }
}
