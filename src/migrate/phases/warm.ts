// A warm start of the run's source (guest.start: warm; src/machine/warm-start.ts does the saving
// and loading): which saved state fits this run, making it when there is none yet (a cold boot of
// the same guest, saved, then stopped), and bringing the source's guest back from it.
import { MiglabError, UsageError } from '../../errors.js';
import { programIdentity } from '../../host/program-facts.js';
import { QEMU_PROGRAM } from '../../qemu/build.js';
import { buildQemuCommand } from '../../machine/argv.js';
import { ramPadFor } from '../../machine/quirks.js';
import type { MachineSpec } from '../../machine/spec.js';
import type { Vm } from '../../machine/vm.js';
import { findWarmState, forgetWarmState, loadWarmState, saveWarmState, warmKey, type WarmState } from '../../machine/warm-start.js';
import type { ImageInfo } from '../../image/build.js';
import type { LabHost } from '../../lab/index.js';
import type { EngineContext } from '../engine.js';
import type { Run } from '../run-state.js';

/** Bump when what a saved state holds changes in a way the QEMU command line does not show. */
const WARM_FORMAT = 1;

export type WarmRun = Pick<Run, 'scenario' | 'guard' | 'progress' | 'out' | 'qemu'> & {
  readonly ctx: Pick<EngineContext, 'cacheDir' | 'hooks'> & { readonly image: Pick<ImageInfo, 'kernelPath' | 'initrdPath' | 'hash'> };
  readonly lab: { readonly hosts: { readonly src: Pick<LabHost, 'where' | 'host'> } };
};

/**
 * The state's key: the source's QEMU command line as it would be with placeholder sockets, tap
 * and disk (every device, the kernel and its arguments, the RAM and its pad, the accelerator),
 * with the image, both QEMU builds (the source's program file itself: a rebuild at the same path
 * is another QEMU), the data disk's size and, under KVM, this boot of the host (its CPU and
 * kernel are part of the guest's state).
 */
export async function warmConfig(run: WarmRun, machine: MachineSpec, accel: 'kvm' | 'tcg', kvmDirtyRingSize: number | undefined): Promise<Record<string, unknown>> {
  const { ctx, scenario, qemu } = run;
  const releases = qemu ? [qemu.source.release, qemu.destination.release] : [];
  const argv = buildQemuCommand(machine, {
    role: 'source',
    accel,
    qmpSocket: 'QMP',
    tap: 'TAP',
    media: { kernelPath: ctx.image.kernelPath, initrdPath: ctx.image.initrdPath, diskUrl: 'DISK' },
    ramPadKiB: ramPadFor(accel, releases),
    qemu: qemu?.source,
    kvmDirtyRingSize,
  }).argv;
  const host = run.lab.hosts.src.host;
  return {
    format: WARM_FORMAT,
    image: ctx.image.hash,
    qemu: {
      source: (await programIdentity(host, qemu?.source.binary ?? QEMU_PROGRAM)) ?? qemu?.source.release.line ?? 'system',
      destination: qemu?.destination.release.line ?? 'system',
    },
    ...(accel === 'kvm' ? { hostBoot: (await host.readText('/proc/sys/kernel/random/boot_id'))?.trim() } : {}),
    diskSizeMiB: scenario.guest.diskSizeMiB,
    argv,
  };
}

/**
 * Refused before anything starts: the state is written and read on this machine; and a person's
 * migrate would follow an incoming migration QEMU still reports as completed (by hand).
 */
export function checkWarmStart(run: Pick<WarmRun, 'scenario' | 'ctx' | 'lab'>): void {
  if (run.scenario.guest.start !== 'warm') return;
  if (!run.lab.hosts.src.host.sharesLocalFiles) {
    throw new UsageError(`--start warm needs the source on this machine's lab (its saved state is kept here), and the source is ${run.lab.hosts.src.where}`, 'drop --start warm for runs on --hosts');
  }
  if (run.ctx.hooks?.byHand) {
    throw new UsageError('a warm start cannot be migrated by hand: the source QEMU reports its loaded state as a completed migration until the next migrate begins', 'drop --start warm');
  }
}

/**
 * The saved state for `config`, made now when the cache has none: `bootCold` starts a guest of the
 * same configuration (on a disk and a teardown of its own; `stop` takes all of it away); it is
 * saved once it beats, then stopped. A QEMU that exits meanwhile ends the wait at once.
 */
export async function warmState(run: WarmRun, config: Record<string, unknown>, bootCold: () => Promise<{ vm: Vm; stop: () => Promise<void> }>, timeoutMs: number): Promise<WarmState> {
  const { ctx, guard } = run;
  const key = warmKey(config);
  const found = await findWarmState(ctx.cacheDir, key);
  if (found) {
    run.out.start = { kind: 'warm', key, madeNow: false, stateBytes: found.meta.bytes };
    return found;
  }
  run.progress('boot', `no saved state of this guest yet (key ${key}): booting it once to save it for warm starts`);
  const { vm, stop } = await bootCold();
  const exited = vm.process.exited.then((exit) => {
    throw new MiglabError('MIGRATION_FAILED', `the QEMU booting the guest to save for warm starts exited (${exit.signal ?? `status ${exit.exitCode}`}): ${vm.process.tail(3)}`);
  });
  exited.catch(() => undefined);
  try {
    const state = await Promise.race([
      exited,
      (async () => {
        const ready = await vm.console.waitReady({ timeoutMs, signal: guard.signal });
        await vm.console.waitBeat((hb) => hb.bootId === ready.bootId, { timeoutMs, signal: guard.signal });
        return saveWarmState(vm, { cacheDir: ctx.cacheDir, key, config, timeoutMs, signal: guard.signal });
      })(),
    ]);
    run.out.start = { kind: 'warm', key, madeNow: true, saveMs: state.meta.saveMs, stateBytes: state.meta.bytes };
    run.progress('boot', `saved the booted guest (${(state.meta.bytes / 1048576).toFixed(1)} MiB in ${state.meta.saveMs} ms)`);
    return state;
  } finally {
    await stop();
  }
}

/** Bring the source's guest back from `state` (its QEMU started restoring) and wait for its next heartbeat. */
export async function startFromState(run: WarmRun, src: Vm, state: WarmState, timeoutMs: number): Promise<void> {
  const { guard, ctx } = run;
  let loadMs: number;
  try {
    loadMs = await loadWarmState(src, state, { timeoutMs, signal: guard.signal });
  } catch (err) {
    // A state QEMU cannot load is of no use to the next run either: forgotten, so it is made again.
    if (!guard.signal.aborted) {
      await forgetWarmState(ctx.cacheDir, state.meta.key);
      run.progress('boot', `the saved state ${state.meta.key} did not load and was removed; the next warm run makes it again`);
    }
    throw err;
  }
  run.out.start = { ...run.out.start!, loadMs };
  await src.console.waitBeat((hb) => hb.bootId === state.meta.bootId && hb.seq > state.meta.seq, { timeoutMs, signal: guard.signal });
}
