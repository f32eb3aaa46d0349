// A lab for one integration test file: brought up before its tests (after taking down one an
// interrupted run may have left with the same prefix) and down after them, with the guest image,
// the probe tool and a scratch directory. Each file uses its own prefix. Only files that need a
// lab of their own use it (each says why); the others share the suite's lab (shared-lab.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureProbeTool } from '../../src/guest/probe-tool.js';
import { assertImageIntact, findImage, type ImageInfo } from '../../src/image/build.js';
import { labDown, labUp, type Lab, type LabSpecInput } from '../../src/lab/index.js';

export interface LabFixture {
  readonly lab: Lab;
  readonly image: ImageInfo;
  readonly toolPath: string;
  readonly runDir: string;
}

/** `spec` is the rest of the lab's spec (an export directory elsewhere, a subnet, shaping). */
export function useTestLab(prefix: string, spec: Omit<LabSpecInput, 'prefix'> = {}): LabFixture {
  return useLabFixture(prefix, {
    attach: async () => {
      await labDown(prefix, { timeoutMs: 20_000 });
      return labUp({ ...spec, prefix }, { timeoutMs: 30_000 });
    },
    detach: async () => void (await labDown(prefix, { timeoutMs: 20_000 })),
  });
}

/**
 * A file's lab, reached by `attach` before its tests (after the image and the probe tool are
 * found) and left by `detach` after them, with a scratch directory named after `name`.
 */
export function useLabFixture(name: string, how: { attach: () => Promise<Lab>; detach: () => Promise<void> }): LabFixture {
  const state: { -readonly [K in keyof LabFixture]?: LabFixture[K] } = { runDir: mkdtempSync(join(tmpdir(), `miglab-it-${name}-`)) };
  beforeAll(async () => {
    const image = await findImage();
    if (!image) throw new Error('the guest image is not built: run `miglab image build` (or make image) first');
    state.image = await assertImageIntact(image);
    state.toolPath = await ensureProbeTool({ timeoutMs: 60_000 });
    state.lab = await how.attach();
  }, 90_000);
  afterAll(async () => {
    try {
      await how.detach();
    } finally {
      rmSync(state.runDir!, { recursive: true, force: true });
    }
  }, 30_000);
  const get = <K extends keyof LabFixture>(k: K): LabFixture[K] => {
    if (state[k] === undefined) throw new Error(`the test lab of ${name} is not up (${k})`);
    return state[k] as LabFixture[K];
  };
  return {
    get lab() {
      return get('lab');
    },
    get image() {
      return get('image');
    },
    get toolPath() {
      return get('toolPath');
    },
    get runDir() {
      return get('runDir');
    },
  };
}
