// Faults a run injects on purpose: plain validated data and its compact form `KIND[:ARGS]@WHEN`
// (`kill-dst@2s`, `freeze-dst:5s@pass:2`, `link-loss:20:3s@50%`, `nfs-down@postcopy-active`).
// The scenario embeds FaultSpecSchema (it also takes the compact string in YAML); the engine arms
// them (src/fault/trigger.ts) and src/fault/inject.ts carries them out. Names derive from values.
import { z } from 'zod';
import { UsageError } from '../errors.js';
import { objectOrCompact } from '../util/validate.js';
import { parseDurationMs } from '../util/units.js';

/**
 * What can go wrong, as an operator would say it. `-dst`/`-src` name the host whose QEMU is hit;
 * link faults hit the destination host's cable to the switch (the migration path, and its NFS);
 * NFS faults hit the lab's NFS server, which holds both QEMUs' disk.
 */
export const FAULT_KINDS = ['kill-dst', 'kill-src', 'freeze-dst', 'freeze-src', 'link-down', 'link-loss', 'nfs-down', 'nfs-freeze', 'guest-oom'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Kinds that last a while (an optional duration; without one, until the run ends). */
const TIMED: ReadonlySet<FaultKind> = new Set(['freeze-dst', 'freeze-src', 'link-down', 'link-loss', 'nfs-freeze']);

/** The migration statuses a fault can wait for (the ones a run passes through). */
export const WHEN_STATUSES = ['setup', 'active', 'pre-switchover', 'device', 'postcopy-active', 'postcopy-paused', 'completed'] as const;

const WhenSchema = z.discriminatedUnion('kind', [
  /** This long after the migrate command was sent. */
  z.object({ kind: z.literal('time'), afterMs: z.number().int().min(0) }).strict(),
  /** When pre-copy starts pass N (QEMU's MIGRATION_PASS event, or dirty-sync-count reaching N). */
  z.object({ kind: z.literal('pass'), pass: z.number().int().min(1) }).strict(),
  /** When this share of the guest's RAM has been through the migration once ((total - remaining) / total). */
  z.object({ kind: z.literal('progress'), percent: z.number().gt(0).max(100) }).strict(),
  /** When the migration enters this status (e.g. postcopy-active, device). */
  z.object({ kind: z.literal('status'), status: z.enum(WHEN_STATUSES) }).strict(),
]);
export type FaultWhen = z.infer<typeof WhenSchema>;

export const FaultObjectSchema = z
  .object({
    kind: z.enum(FAULT_KINDS),
    /** How long a timed fault lasts before it is undone; absent: until the run ends. */
    durationMs: z.number().int().min(1).optional(),
    /** link-loss: the share of packets dropped, in percent. */
    lossPercent: z.number().gt(0).max(100).optional(),
    when: WhenSchema,
  })
  .strict()
  .superRefine((f, ctx) => {
    if (f.durationMs !== undefined && !TIMED.has(f.kind)) ctx.addIssue({ code: 'custom', message: `${f.kind} happens at once and takes no duration` });
    if (f.kind === 'link-loss' && f.lossPercent === undefined) ctx.addIssue({ code: 'custom', message: 'link-loss needs a loss percentage, e.g. link-loss:20:3s@2s' });
    if (f.kind !== 'link-loss' && f.lossPercent !== undefined) ctx.addIssue({ code: 'custom', message: `${f.kind} takes no loss percentage` });
  });
export type FaultSpec = Readonly<z.infer<typeof FaultObjectSchema>>;

/** A fault as an object or in the compact form. */
export const FaultSpecSchema = objectOrCompact(FaultObjectSchema, (text) => parseFault(text));

/** The accepted forms, in words (`miglab migrate --help`). */
export const FAULT_FORMS = `KIND[:ARGS]@WHEN (repeatable): kill-dst, kill-src, freeze-dst[:5s], freeze-src[:5s], link-down[:5s], link-loss:PCT[:5s], nfs-down, nfs-freeze[:5s], guest-oom; WHEN: 2s after migrate, pass:2, 50% of RAM sent, or a status (${WHEN_STATUSES.join(', ')}); e.g. --fault freeze-dst:5s@pass:2`;

function bad(text: string, problem: string, hint = 'write KIND[:ARGS]@WHEN, e.g. kill-dst@2s or freeze-dst:5s@pass:2 (every form: miglab migrate --help)'): UsageError {
  return new UsageError(`invalid fault "${text}": ${problem}`, hint);
}

export function parseWhen(text: string, whole = text): FaultWhen {
  const t = text.trim();
  if (/^pass:\d+$/.test(t)) {
    const pass = Number(t.slice(5));
    if (pass < 1) throw bad(whole, 'passes count from 1');
    return { kind: 'pass', pass };
  }
  if (/^\d+(\.\d+)?%$/.test(t)) {
    const percent = Number(t.slice(0, -1));
    if (!(percent > 0 && percent <= 100)) throw bad(whole, `a share of RAM sent is above 0 % and at most 100 %, not ${t}`);
    return { kind: 'progress', percent };
  }
  if (/^\d/.test(t)) {
    try {
      return { kind: 'time', afterMs: parseDurationMs(t, 'fault time') };
    } catch {
      throw bad(whole, `"${t}" is not a time such as 2s or 500ms`);
    }
  }
  const status = WHEN_STATUSES.find((x) => x === t);
  if (status) return { kind: 'status', status };
  throw bad(whole, `"${t}" is not a time, pass:N, a percentage or a migration status (${WHEN_STATUSES.join(', ')})`);
}

/** Parse the compact form; every problem is one UsageError line with the accepted forms. */
export function parseFault(text: string): FaultSpec {
  const at = text.lastIndexOf('@');
  if (at < 0) throw bad(text, 'say when it happens after "@"');
  const [kindText, ...args] = text.slice(0, at).trim().split(':');
  if (text.includes(',')) throw bad(text, 'one fault at a time', 'repeat --fault for each fault (or list them in a sweep or batch spec)');
  const kind = FAULT_KINDS.find((k) => k === kindText);
  if (!kind) throw bad(text, `"${kindText}" is not a fault kind (${FAULT_KINDS.join(', ')})`);
  const when = parseWhen(text.slice(at + 1), text);
  const duration = (s: string) => {
    try {
      return parseDurationMs(s, 'fault duration');
    } catch {
      throw bad(text, `"${s}" is not a duration such as 5s`);
    }
  };
  if (kind === 'link-loss') {
    const [pct, dur, ...rest] = args;
    if (pct === undefined || !/^\d+(\.\d+)?$/.test(pct) || !(Number(pct) > 0 && Number(pct) <= 100)) throw bad(text, 'link-loss needs a loss percentage above 0 and at most 100, e.g. link-loss:20:3s@2s');
    if (rest.length > 0) throw bad(text, 'too many arguments');
    return { kind, lossPercent: Number(pct), ...(dur !== undefined ? { durationMs: duration(dur) } : {}), when };
  }
  if (TIMED.has(kind)) {
    if (args.length > 1) throw bad(text, 'too many arguments');
    return { kind, ...(args[0] !== undefined ? { durationMs: duration(args[0]) } : {}), when };
  }
  if (args.length > 0) throw bad(text, `${kind} takes no arguments`);
  return { kind, when };
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

export function formatWhen(w: FaultWhen): string {
  switch (w.kind) {
    case 'time':
      return formatMs(w.afterMs);
    case 'pass':
      return `pass:${w.pass}`;
    case 'progress':
      return `${w.percent}%`;
    case 'status':
      return w.status;
  }
}

/** The compact form, canonical (parseFault(formatFault(f)) equals f). */
export function formatFault(f: FaultSpec): string {
  const args = [...(f.lossPercent !== undefined ? [String(f.lossPercent)] : []), ...(f.durationMs !== undefined ? [formatMs(f.durationMs)] : [])];
  return `${[f.kind, ...args].join(':')}@${formatWhen(f.when)}`;
}

/** For run and point names: `kill-dst-2s`, `freeze-dst-5s-pass2`, `link-loss-20pct-3s-50pct`. */
export function faultName(f: FaultSpec): string {
  return formatFault(f)
    .replace(/(\d+(?:\.\d+)?)%/g, '$1pct')
    .replace(/^(link-loss):(\d+(?:\.\d+)?)/, '$1-$2pct')
    .replace(/[:@]/g, '-')
    .replace(/pass-(\d+)/, 'pass$1')
    .replace(/\./g, 'p');
}
