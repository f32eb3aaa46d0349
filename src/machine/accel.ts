// Which accelerator a guest really gets. "KVM present" is not "KVM usable": on some hosts
// /dev/kvm exists but a standard guest kernel aborts or hangs under it. So `auto` boots the real
// guest under KVM with a deadline and falls back to TCG, keeping the measured reason. The verdict
// is cached per host boot, QEMU binary and guest image, so the probe costs its time once.
import { constants } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeError, MiglabError } from '../errors.js';
import type { Host } from '../host/host.js';
import { Teardown } from '../util/teardown.js';
import type { ResolvedAccel } from './argv.js';
import { parseMachineSpec, type Accel, type MachineMedia } from './spec.js';
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
  readonly host: Host;
  readonly media: MachineMedia;
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
  try {
    await access('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch (err) {
    return done(false, `/dev/kvm is not available (${describeError(err)})`);
  }
  const timeoutMs = opts.timeoutMs ?? 20000;
  const dir = await mkdtemp(join(tmpdir(), 'miglab-kvm-probe-'));
  const td = new Teardown();
  td.defer('remove probe directory', () => rm(dir, { recursive: true, force: true }));
  try {
    const spec = parseMachineSpec({ name: 'kvmprobe', accel: 'kvm', cpuModel: 'host', memoryMiB: 128, mac: '52:54:00:77:ff:ff', ip: '10.77.0.254/24' });
    const vm = await Vm.launch({
      host: opts.host,
      spec,
      plan: { role: 'probe', accel: 'kvm', qmpSocket: join(dir, 'qmp.sock'), media: { kernelPath: opts.media.kernelPath, initrdPath: opts.media.initrdPath } },
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

// The boot id and QEMU's version do not change while miglab runs: read them once per process,
// not once per migration (a batch runs many).
let hostKey: Promise<string> | undefined;

async function cacheKey(host: Host, imageHash: string): Promise<string> {
  hostKey ??= (async () => {
    const bootId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
    return `${bootId}|${(await qemuRelease(host)).line}`;
  })().catch((err: unknown) => {
    hostKey = undefined; // try again next time rather than remember a failure
    throw err;
  });
  return `${await hostKey}|${imageHash}`;
}

/** Resolve the requested accelerator, probing KVM (cached) when needed. */
export async function decideAccel(requested: Accel, opts: ProbeOptions): Promise<AccelDecision> {
  if (requested === 'tcg') return { requested, used: 'tcg', kvmUsable: undefined, reason: 'TCG was requested' };
  const key = await cacheKey(opts.host, opts.imageHash);
  const cacheFile = join(opts.cacheDir, 'kvm-probe.json');
  let probe: KvmProbe | undefined;
  try {
    const cached = JSON.parse(await readFile(cacheFile, 'utf8')) as { key: string; probe: KvmProbe };
    if (cached.key === key) probe = cached.probe;
  } catch {
    // No cached verdict yet (or an unreadable one): probe afresh below.
  }
  if (!probe) {
    probe = await probeKvm(opts);
    await mkdir(opts.cacheDir, { recursive: true });
    await writeFile(cacheFile, JSON.stringify({ key, probe }, null, 2));
  }
  if (probe.usable) return { requested, used: 'kvm', kvmUsable: true, reason: probe.reason, probedAt: probe.probedAt, probeMs: probe.probeMs };
  if (requested === 'kvm') throw new MiglabError('BAD_INPUT', `KVM was requested but is not usable here: ${probe.reason}; use --accel tcg or --accel auto`);
  return { requested, used: 'tcg', kvmUsable: false, reason: `fell back to TCG: ${probe.reason}`, probedAt: probe.probedAt, probeMs: probe.probeMs };
}
