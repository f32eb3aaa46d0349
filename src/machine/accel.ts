// Which accelerator a guest really gets. "KVM present" is not "KVM usable": on some hosts
// /dev/kvm exists but a standard guest kernel aborts or hangs under it. So `auto` boots the real
// guest under KVM with a deadline and falls back to TCG, keeping the measured reason. The verdict
// is cached per host boot, QEMU binary and guest image, so the probe costs its time once.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { describeError, MiglabError } from '../errors.js';
import type { Host } from '../host/host.js';
import { Teardown } from '../util/teardown.js';
import type { ResolvedAccel } from './argv.js';
import { parseMachineSpec, type Accel, type MachineMedia } from './spec.js';
import { oncePerHost } from '../host/once-per-host.js';
import { qemuRelease } from './quirks.js';
import { Vm, VmLaunchError } from './vm.js';

export interface AccelDecision {
  readonly requested: Accel;
  readonly used: ResolvedAccel;
  /** Whether KVM was found usable (undefined when it was not probed, e.g. `--accel tcg`). */
  readonly kvmUsable: boolean | undefined;
  /** Why this accelerator: the probe's finding in plain words. */
  readonly reason: string;
  readonly probedAt?: string;
  readonly probeMs?: number;
}

export interface KvmProbe {
  readonly usable: boolean;
  readonly reason: string;
  readonly probedAt: string;
  readonly probeMs: number;
}

export interface ProbeOptions {
  /** The host whose KVM is probed (the guest boots there). */
  readonly host: Host;
  /** Kernel and initrd as paths on that host. */
  readonly media: MachineMedia;
  /** A directory on that host for the probe's monitor socket (a private one is made inside). */
  readonly socketParent: string;
  /** Key for the cache: the guest image hash. */
  readonly imageHash: string;
  readonly cacheDir: string;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** Boot the guest under KVM and wait for its first heartbeat. */
export async function probeKvm(opts: ProbeOptions): Promise<KvmProbe> {
  const started = Date.now();
  const probedAt = new Date(started).toISOString();
  const done = (usable: boolean, reason: string): KvmProbe => ({ usable, reason, probedAt, probeMs: Date.now() - started });
  const kvm = await opts.host.run(['test', '-r', '/dev/kvm', '-a', '-w', '/dev/kvm'], { reject: false, timeoutMs: 10_000, signal: opts.signal });
  if (kvm.exitCode !== 0) return done(false, `/dev/kvm is not available on ${opts.host.name} (absent, or not readable and writable)`);
  const timeoutMs = opts.timeoutMs ?? 20000;
  const td = new Teardown();
  // The serial log stays with miglab; the monitor socket is made where QEMU runs.
  const dir = await mkdtemp(join(tmpdir(), 'miglab-kvm-probe-'));
  td.defer('remove probe directory', () => rm(dir, { recursive: true, force: true }));
  const sockDir = await opts.host.makeTempDir(opts.socketParent, 'kvm-probe-');
  td.defer('remove probe socket directory', () => opts.host.remove(sockDir));
  try {
    const spec = parseMachineSpec({ name: 'kvmprobe', accel: 'kvm', cpuModel: 'host', memoryMiB: 128, mac: '52:54:00:77:ff:ff', ip: '10.77.0.254/24' });
    const vm = await Vm.launch({
      host: opts.host,
      spec,
      plan: { role: 'probe', accel: 'kvm', qmpSocket: posix.join(sockDir, 'qmp.sock'), media: { kernelPath: opts.media.kernelPath, initrdPath: opts.media.initrdPath } },
      runDir: dir,
      label: 'probe',
      teardown: td,
      timeoutMs,
      signal: opts.signal,
    });
    const exited = vm.process.exited.then((e) => {
      throw new MiglabError('VM_LAUNCH', `QEMU exited (${e.signal ?? `code ${e.exitCode}`}): ${vm.process.tail(3).replace(/\n/g, ' | ')}`);
    });
    exited.catch(() => undefined); // raced below
    await Promise.race([vm.console.waitBeat(undefined, { timeoutMs, signal: opts.signal }), exited]);
    return done(true, 'a guest booted under KVM and its agent answered');
  } catch (err) {
    if (opts.signal?.aborted) throw err;
    // A launch error's own message already says how QEMU died; its causes add only noise.
    const msg = (err instanceof VmLaunchError ? err.message : describeError(err)).replace(/^QEMU for kvmprobe \(probe\) /, 'QEMU ').replace(/qemu-system-x86_64: \S+:\d+: /, '');
    const reason = /did not finish within/.test(msg)
      ? `/dev/kvm exists but a guest booted with -accel kvm -cpu host printed no heartbeat within ${timeoutMs} ms (it hangs)`
      : `/dev/kvm exists but booting a guest with -accel kvm -cpu host failed: ${msg}`;
    return done(false, reason);
  } finally {
    await td.run();
  }
}

// A host's boot id and QEMU's version do not change while miglab runs: read them once per host
// and process, not once per migration (a batch runs many).
const hostKey = oncePerHost(async (host) => {
  const bootId = (await host.readText('/proc/sys/kernel/random/boot_id'))?.trim();
  if (!bootId) throw new MiglabError('COMMAND_FAILED', `cannot read the boot id of ${host.name} (/proc/sys/kernel/random/boot_id)`);
  return `${bootId}|${(await qemuRelease(host)).line}`;
});

async function cacheKey(host: Host, imageHash: string): Promise<string> {
  return `${await hostKey(host)}|${imageHash}`;
}

/** Resolve the requested accelerator, probing KVM (cached) when needed. */
export async function decideAccel(requested: Accel, opts: ProbeOptions): Promise<AccelDecision> {
  if (requested === 'tcg') return { requested, used: 'tcg', kvmUsable: undefined, reason: 'TCG was requested' };
  const key = await cacheKey(opts.host, opts.imageHash);
  const cacheFile = join(opts.cacheDir, 'kvm-probe.json');
  // One verdict per host boot, QEMU and image: hosts reached over SSH each have their own entry.
  let entries: Record<string, KvmProbe> = {};
  try {
    const cached = JSON.parse(await readFile(cacheFile, 'utf8')) as { entries?: Record<string, KvmProbe> };
    entries = cached.entries ?? {};
  } catch {
    // No cached verdict yet (or an unreadable one): probe afresh below.
  }
  let probe = entries[key];
  if (!probe) {
    probe = await probeKvm(opts);
    await mkdir(opts.cacheDir, { recursive: true });
    await writeFile(cacheFile, JSON.stringify({ entries: { ...entries, [key]: probe } }, null, 2));
  }
  if (probe.usable) return { requested, used: 'kvm', kvmUsable: true, reason: probe.reason, probedAt: probe.probedAt, probeMs: probe.probeMs };
  if (requested === 'kvm') throw new MiglabError('BAD_INPUT', `KVM was requested but is not usable on ${opts.host.name}: ${probe.reason}; use --accel tcg or --accel auto`);
  return { requested, used: 'tcg', kvmUsable: false, reason: `fell back to TCG: ${probe.reason}`, probedAt: probe.probedAt, probeMs: probe.probeMs };
}
