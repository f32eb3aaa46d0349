// The integration suite's shared lab (test/integration/shared-lab.js: global setup brings it up,
// global teardown takes it down and fails the suite if a file left anything on it). A file reaches
// it as a user reaches a lab they brought up: by prefix, through `useLab`; its guests take guest
// slots (src/lab/slots.ts), as runs do. jest gives each file its own module registry, so nothing
// is shared through module variables: the prefix comes from the environment and the lab from its
// state file.
import { useLab } from '../../src/api.js';
import { attachLab, type Lab, type SlotLease } from '../../src/lab/index.js';
import { SlotTable } from '../../src/lab/slots.js';
import { maxGuestIndex } from '../../src/lab/spec.js';
import { Teardown } from '../../src/util/teardown.js';
import { useLabFixture, type LabFixture } from './lab-fixture.js';

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

/** The shared lab for one file, with the guest image, the probe tool and a scratch directory. */
export function useSharedLab(name: string): LabFixture {
  const td = new Teardown();
  return useLabFixture(name, {
    attach: async () => {
      if (!(await attachLab(sharedLabPrefix()))) throw new Error(`the suite's shared lab ${sharedLabPrefix()} is not up`);
      return useLab(td, { lab: sharedLabChoice() }, new AbortController().signal);
    },
    detach: async () => {
      const problems = [...(await td.run()), ...(await sharedLabLeftovers())];
      if (problems.length > 0) throw new Error(`${name} left the shared lab changed: ${problems.join('; ')}`);
    },
  });
}

let slots = 0;

/** A guest slot of `lab` for one guest (or pair), given back by `td`; run the guest on `lease.lab`. */
export async function takeSlot(lab: Lab, td: Teardown, guest: string): Promise<SlotLease> {
  const lease = await lab.acquireSlot({ preferred: 0, runId: `it-${guest}-${process.pid}-${slots++}` });
  td.defer(`give back guest slot g${lease.index}`, () => lease.release());
  return lease;
}
