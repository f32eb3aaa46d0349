// The doctor's view of this machine: the local host, the project's KVM decision and guest image
// lookup, the default lab's name and ports. `miglab doctor` runs the checks (checks.ts) on it.
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { IMAGE_CACHE_DIR, REPO_ROOT } from '../api.js';
import { describeError } from '../errors.js';
import { LocalHost } from '../host/local.js';
import { assertImageIntact, findImage } from '../image/build.js';
import { DEFAULT_PREFIX, DEFAULT_STATE_ROOT } from '../lab/spec.js';
import { decideAccel } from '../machine/accel.js';
import { DEFAULT_HMP_PORT, DEFAULT_MIGRATION_PORT } from '../migrate/scenario.js';
import type { DoctorProbes, KvmVerdict } from './checks.js';

export interface LocalProbeOptions {
  /** The lab whose ports are checked (the one runs use by default). */
  readonly prefix?: string;
  readonly ports?: DoctorProbes['ports'];
}

export function localProbes(opts: LocalProbeOptions = {}): DoctorProbes {
  const host = new LocalHost();
  // The image check and the KVM check both need the image; finding it hashes its inputs (dpkg,
  // files), so it is done once.
  let image: ReturnType<typeof findImage> | undefined;
  const findImageOnce = () => (image ??= findImage({ cacheDir: IMAGE_CACHE_DIR }));
  return {
    host,
    isRoot: process.getuid?.() === 0,
    cpus: availableParallelism(),
    stateRoot: DEFAULT_STATE_ROOT,
    prefix: opts.prefix ?? DEFAULT_PREFIX,
    ports: opts.ports ?? { migration: DEFAULT_MIGRATION_PORT, hmp: DEFAULT_HMP_PORT },
    makefile: join(REPO_ROOT, 'Makefile'),
    guestImage: async () => {
      const image = await findImageOnce();
      if (!image) return undefined;
      await assertImageIntact(image);
      return `built ${image.builtAt.slice(0, 10)}: Linux ${image.kernelVersion}, ${image.modules.length} modules (${IMAGE_CACHE_DIR})`;
    },
    kvm: async (): Promise<KvmVerdict> => {
      const image = await findImageOnce().catch(() => undefined);
      if (!image) {
        // Without the guest there is nothing to boot: a missing /dev/kvm still decides it.
        try {
          await access('/dev/kvm', constants.R_OK | constants.W_OK);
        } catch (err) {
          return { usable: false, reason: `/dev/kvm is not available (${describeError(err)})` };
        }
        return { usable: undefined, reason: '/dev/kvm exists, but only booting the guest under it tells whether it works, and the guest image is not built' };
      }
      const d = await decideAccel('auto', { host, media: { kernelPath: image.kernelPath, initrdPath: image.initrdPath }, socketParent: tmpdir(), imageHash: image.hash, cacheDir: IMAGE_CACHE_DIR });
      return { usable: d.kvmUsable, reason: d.reason.replace(/^fell back to TCG: /, '') };
    },
  };
}
