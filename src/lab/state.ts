// The lab's state file (STATE_ROOT/PREFIX/lab.json): what `lab up` created, so that `lab down`,
// `lab status` and `attachLab` — maybe in another miglab process, later — act on exactly that and
// nothing else. Written atomically (temp file + rename) and validated when read.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { MiglabError } from '../errors.js';
import { LabSpecSchema, ShapingSchema } from './spec.js';

export const STATE_VERSION = 1;

const OwnedProcessSchema = z.object({ pid: z.number().int().positive(), startTime: z.number().int().nonnegative() });

export const LabStateSchema = z.object({
  version: z.literal(STATE_VERSION),
  /** `creating` while `lab up` runs (or if it was killed half-way); `up` once it finished; `going-down` once `lab down` began. */
  phase: z.enum(['creating', 'up', 'going-down']),
  spec: LabSpecSchema,
  createdAt: z.string(),
  /** The miglab process that brought the lab up (for messages only). */
  ownerPid: z.number().int(),
  /** Start time of the owner (from /proc/PID/stat), so a reused pid is not taken for it. */
  ownerStartTime: z.number().int().nonnegative().optional(),
  /** Brought up for one run of the owner, which takes it down itself. */
  ephemeral: z.boolean().default(false),
  labDir: z.string(),
  /** STATE_ROOT did not exist and `lab up` made it (so `down` may remove it if empty). */
  stateRootCreated: z.boolean(),
  /** Namespaces created (deleting one removes its links, bridges and taps). */
  netns: z.array(z.string()),
  exportDir: z.string(),
  /** The export directory was made by `lab up` (outside the lab directory it is never deleted). */
  exportDirCreated: z.boolean(),
  /** Shaping now in force on the uplinks (absent: none). Updated by shapeLinks/clearShaping. */
  shaping: ShapingSchema.optional(),
  nfs: z
    .object({
      server: OwnedProcessSchema,
      serverIp: z.string(),
      configFile: z.string(),
      logFile: z.string(),
      ganeshaLogFile: z.string(),
    })
    .optional(),
});

export type LabState = z.infer<typeof LabStateSchema>;

export function writeLabState(file: string, state: LabState): void {
  const checked = LabStateSchema.parse(state);
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(checked, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}

/** The state in `file`, or undefined if there is none. A corrupt file is a LAB_STATE error. */
export function readLabState(file: string): LabState | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new MiglabError('LAB_STATE', `cannot read the lab state file ${file}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new MiglabError('LAB_STATE', `the lab state file ${file} is not valid JSON; remove the lab by hand (ip netns del ...) and delete it`, { cause: err });
  }
  const r = LabStateSchema.safeParse(json);
  if (!r.success) {
    throw new MiglabError('LAB_STATE', `the lab state file ${file} is not one this miglab understands: ${z.prettifyError(r.error).replace(/\n/g, ' ')}`, {
      context: { file },
    });
  }
  return r.data;
}

/** Read, change and write back the state file (used for small updates such as the shaping). */
export function updateLabState(file: string, change: (s: LabState) => LabState): void {
  const state = readLabState(file);
  if (!state) throw new MiglabError('LAB_STATE', `the lab's state file ${file} is gone (was the lab taken down?)`);
  writeLabState(file, change(state));
}
