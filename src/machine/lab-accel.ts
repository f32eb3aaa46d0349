// The accelerator of a lab's guests, decided on the lab's source host: the KVM probe boots the
// guest there (its kernel and initrd put on that host first), whatever kind of host it is.
import type { ImageInfo } from '../image/build.js';
import type { Lab } from '../lab/index.js';
import { decideAccel, type AccelDecision } from './accel.js';
import type { Accel } from './spec.js';

export interface LabAccelOptions {
  readonly image: Pick<ImageInfo, 'kernelPath' | 'initrdPath' | 'hash'>;
  readonly cacheDir: string;
  readonly signal?: AbortSignal;
}

export async function decideLabAccel(lab: Lab, requested: Accel, o: LabAccelOptions): Promise<AccelDecision> {
  const src = lab.hosts.src;
  const media = { kernelPath: await lab.placeFile('src', o.image.kernelPath), initrdPath: await lab.placeFile('src', o.image.initrdPath) };
  return decideAccel(requested, { host: src.host, media, socketParent: src.runDir, imageHash: o.image.hash, cacheDir: o.cacheDir, signal: o.signal });
}
