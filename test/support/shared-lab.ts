// The integration suite's shared lab (test/integration/shared-lab.js: global setup brings it up,
// global teardown takes it down and fails the suite if a file left anything on it). A file reaches
// it as a user reaches a lab they brought up: by prefix, through `useLab`; its guests take guest
// slots (src/lab/slots.ts), as runs do. jest gives each file its own module registry, so nothing
// is shared through module variables: the prefix comes from the environment and the lab from its
// state file.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useLab } from '../../src/api.js';
import { ensureProbeTool } from '../../src/guest/probe-tool.js';
import { assertImageIntact, findImage } from '../../src/image/build.js';
import { attachLab, type Lab, type SlotLease } from '../../src/lab/index.js';
import { SlotTable } from '../../src/lab/slots.js';
import { maxGuestIndex } from '../../src/lab/spec.js';
import { Teardown } from '../../src/util/teardown.js';
import type { LabFixture } from './lab-fixture.js';

/** The shared lab's prefix, set by the suite's global setup. */
export function sharedLabPrefix(): string {
  const prefix = process.env.MIGLAB_SHARED_LAB;
  if (!prefix) throw new Error("the suite's shared lab is not up: test/integration/global-setup.js brings it up (run the integration project, not a file alone)");
  return prefix;
}

/** `lab` for the API's commands (migrate, batch, sweep, homework): they attach to the shared lab. */
export function sharedLabChoice(): { prefix: string } {
  return { prefix: sharedLabPrefix() };
}

/**
 * What a file must leave on the shared lab: the lab up, no shaping, no guest slot held and no
 * process of a run in it. Empty when so, else what is wrong.
 */
export async function sharedLabLeftovers(): Promise<string[]> {
  const lab = await attachLab(sharedLabPrefix());
  if (!lab) return [`the shared lab ${sharedLabPrefix()} is gone`];
  const problems: string[] = [];
  const down = lab.stillUp();
  if (down) problems.push(down);
  if (lab.shaping) problems.push(`its links are still shaped (${JSON.stringify(lab.shaping)})`);
  const held = new SlotTable(lab.paths.slotsDir, maxGuestIndex(lab.spec)).held();
  if (held.length > 0) problems.push(`guest slot(s) ${held.map((s) => `g${s.index} (run ${s.holder.runId})`).join(', ')} still held`);
  const procs = lab.liveProcesses();
  if (procs.length > 0) problems.push(`processes still running in it: ${procs.map((p) => `${p.what} (pid ${p.pid})`).join(', ')}`);
  return problems;
}

export interface SharedLabFixture extends LabFixture {
  /** A guest slot for this file's guests, given back by `td`; run the guest on `lease.lab`. */
  slot(td: Teardown, name: string): Promise<SlotLease>;
}

/** The shared lab for one file, with the guest image, the probe tool and a scratch directory. */
export function useSharedLab(name: string): SharedLabFixture {
  const state: { lab?: Lab; image?: LabFixture['image']; toolPath?: string; runDir: string; td: Teardown } = {
    runDir: mkdtempSync(join(tmpdir(), `miglab-it-${name}-`)),
    td: new Teardown(),
  };
  beforeAll(async () => {
    const image = await findImage();
    if (!image) throw new Error('the guest image is not built: run `miglab image build` (or make image) first');
    state.image = await assertImageIntact(image);
    state.toolPath = await ensureProbeTool({ timeoutMs: 60_000 });
    if (!(await attachLab(sharedLabPrefix()))) throw new Error(`the suite's shared lab ${sharedLabPrefix()} is not up`);
    state.lab = await useLab(state.td, { lab: sharedLabChoice() }, new AbortController().signal);
  }, 90_000);
  afterAll(async () => {
    const problems = [...(await state.td.run()), ...(state.lab ? await sharedLabLeftovers() : [])];
    rmSync(state.runDir, { recursive: true, force: true });
    if (problems.length > 0) throw new Error(`${name} left the shared lab changed: ${problems.join('; ')}`);
  }, 30_000);
  const get = <K extends 'lab' | 'image' | 'toolPath'>(k: K): NonNullable<(typeof state)[K]> => {
    const v = state[k];
    if (v === undefined) throw new Error(`the shared lab is not attached yet (${k})`);
    return v as NonNullable<(typeof state)[K]>;
  };
  let slots = 0;
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
      return state.runDir;
    },
    async slot(td, guest) {
      const lease = await get('lab').acquireSlot({ preferred: 0, runId: `it-${name}-${guest}-${process.pid}-${slots++}` });
      td.defer(`give back guest slot g${lease.index}`, () => lease.release());
      return lease;
    },
  };
}
