// What the guest does while it is measured or migrated: plain validated data (a zod
// discriminated union), the compact CLI form (`dirty:512M@200M/s,random`), and names derived from
// the values for run names. src/workload/run.ts executes a spec through the guest agent; scenario
// and sweep specs embed WorkloadSpecSchema, which also takes the compact string inside YAML.
import { z } from 'zod';
import { UsageError } from '../errors.js';
import { objectOrCompact } from '../util/validate.js';
import { parseRateMiBps, parseSizeBytes } from '../util/units.js';

export const DIRTY_PATTERNS = ['sequential', 'random'] as const;
export type DirtyPatternName = (typeof DIRTY_PATTERNS)[number];

/** iperf3's own bitrate syntax (bits per second): 100M, 1G, 500K, 1000000. */
const IPERF_BITRATE_RE = /^\d+(\.\d+)?[kmgt]?$/i;
const DEFAULT_RECORD_BYTES = 4096;
/** 0, 0M/s, 0KiB/s...: as fast as possible. */
const ZERO_RATE_RE = /^0+(\.0*)?\s*([kmgt](i?b)?)?(\/s|ps)?$/i;

const IdleSchema = z.object({ kind: z.literal('idle') }).strict();

const DirtySchema = z
  .object({
    kind: z.literal('dirty'),
    wssMiB: z.number().int().min(1).max(1 << 20),
    /** 0: as fast as the guest can. */
    rateMiBps: z.number().int().min(0).max(1 << 20),
    pattern: z.enum(DIRTY_PATTERNS).default('sequential'),
  })
  .strict();

const CpuSchema = z.object({ kind: z.literal('cpu') }).strict();

const DiskSchema = z
  .object({
    kind: z.literal('disk'),
    /** 0: as fast as the disk takes it. */
    rateKiBps: z.number().int().min(0).max(1 << 22),
    /** Bytes per record, a multiple of 512. */
    recordBytes: z
      .number()
      .int()
      .min(512)
      .max(1 << 20)
      .refine((n) => n % 512 === 0, 'must be a multiple of 512')
      .optional(),
  })
  .strict();

const NetSchema = z
  .object({
    kind: z.literal('net'),
    /** iperf3's -b (bits per second, e.g. 100M); unlimited TCP when absent. */
    bitrate: z.string().regex(IPERF_BITRATE_RE, 'use iperf3 syntax, e.g. 100M or 1G (bits per second)').optional(),
    /** The guest sends, the client host receives (iperf3 -R). */
    reverse: z.boolean().optional(),
  })
  .strict();

export const WorkloadObjectSchema = z.discriminatedUnion('kind', [IdleSchema, DirtySchema, CpuSchema, DiskSchema, NetSchema]);

/** A workload as an object or in the compact CLI form (`dirty:512M@200M/s,random`). */
export const WorkloadSpecSchema = objectOrCompact(WorkloadObjectSchema, (text) => parseWorkload(text));

export type WorkloadSpec = Readonly<z.infer<typeof WorkloadObjectSchema>>;
export type WorkloadKind = WorkloadSpec['kind'];
export type DirtyWorkload = Extract<WorkloadSpec, { kind: 'dirty' }>;
export type DiskWorkload = Extract<WorkloadSpec, { kind: 'disk' }>;
export type NetWorkload = Extract<WorkloadSpec, { kind: 'net' }>;

/**
 * The largest dirty working set a guest of `memoryMiB` can hold. Measured here (Debian 6.1 guest,
 * busybox initramfs, no iperf3 running) by the largest `dirty start` that ran 10 s without the
 * guest's OOM killer ending the agent: 37 MiB of 128, 161 of 256, 410 of 512 (MemAvailable after
 * boot: 44, 168, 414 MiB). The agent is OOM-killed while it fills a set that does not fit (it
 * never gets to answer "nomem"), so the rule is checked on the host, with a margin under each.
 */
export function maxDirtyWssMiB(memoryMiB: number): number {
  return Math.max(0, Math.floor(0.97 * memoryMiB) - 100);
}

/** The smallest guest (a multiple of 64 MiB) whose maxDirtyWssMiB holds `wssMiB`. */
export function memoryForDirtyWssMiB(wssMiB: number): number {
  return Math.ceil((wssMiB + 100) / 0.97 / 64) * 64;
}

const FORMS = 'idle, cpu, dirty:<wss>@<rate>[,sequential|random] (e.g. dirty:512M@200M/s,random), disk:<rate> (e.g. disk:1M/s), net[:reverse][,<bitrate>]';

/**
 * A compact workload form split at its first colon: `dirty:512M@200M/s` is kind `dirty` with
 * arg `512M@200M/s`; `cpu` has no arg. `t` is the trimmed text, for messages.
 */
export function splitCompactForm(text: string): { t: string; kind: string; arg: string | undefined } {
  const t = text.trim();
  const colon = t.indexOf(':');
  return { t, kind: (colon < 0 ? t : t.slice(0, colon)).toLowerCase(), arg: colon < 0 ? undefined : t.slice(colon + 1).trim() };
}

/** Parse the compact form. Bare numbers take the field's unit: MiB, MiB/s (dirty), KiB/s (disk). */
export function parseWorkload(text: string): WorkloadSpec {
  const { t, kind, arg } = splitCompactForm(text);
  switch (kind) {
    case 'idle':
    case 'cpu':
      if (arg !== undefined) throw new UsageError(`workload "${t}": ${kind} takes no options`, `write just "${kind}"`);
      return { kind };
    case 'dirty':
      return parseDirty(t, arg);
    case 'disk':
      return parseDisk(t, arg);
    case 'net':
      return parseNet(t, arg);
    default:
      throw new UsageError(`unknown workload "${t}"`, `use one of ${FORMS}`);
  }
}

function parseDirty(t: string, arg: string | undefined): WorkloadSpec {
  const hint = 'write dirty:<working set>@<rate>[,sequential|random], e.g. dirty:512M@200M/s,random (rate 0 = as fast as possible)';
  if (!arg) throw new UsageError(`workload "${t}" lacks its working set and rate`, hint);
  const [sizeRate = '', pattern, ...rest] = arg.split(',').map((s) => s.trim());
  if (rest.length > 0) throw new UsageError(`invalid workload "${t}"`, hint);
  const { wssMiB, rateMiBps } = parseWssAtRate(t, sizeRate, hint);
  let p: DirtyPatternName = 'sequential';
  if (pattern !== undefined) {
    const lower = pattern.toLowerCase();
    if (lower === 'sequential' || lower === 'seq') p = 'sequential';
    else if (lower === 'random') p = 'random';
    else throw new UsageError(`workload "${t}": unknown pattern "${pattern}"`, 'use sequential or random');
  }
  return checked(t, { kind: 'dirty', wssMiB, rateMiBps, pattern: p });
}

/**
 * `<working set>@<rate>` of a memory-writing workload (the agent's `dirty:`, the container's
 * `mem:`): whole MiB (at least 1) and whole MiB/s (0 allowed). Bare numbers are MiB and MiB/s.
 * `t` is the whole workload text the errors quote; `hint` ends them.
 */
export function parseWssAtRate(t: string, sizeRate: string, hint: string): { wssMiB: number; rateMiBps: number } {
  const at = sizeRate.indexOf('@');
  if (at < 0) throw new UsageError(`workload "${t}" lacks its write rate (after @)`, hint);
  const sizeText = sizeRate.slice(0, at).trim();
  const rateText = sizeRate.slice(at + 1).trim();
  const wssMiB = /^\d+$/.test(sizeText) ? Number(sizeText) : wrapUnits(() => parseSizeBytes(sizeText, 'working set') / 1024 ** 2, t, hint);
  if (!Number.isInteger(wssMiB) || wssMiB < 1) throw new UsageError(`workload "${t}": the working set must be a whole number of MiB, at least 1`, hint);
  const rateMiBps = ZERO_RATE_RE.test(rateText) ? 0 : wrapUnits(() => parseRateMiBps(rateText, 'write rate'), t, hint);
  if (!Number.isInteger(rateMiBps) || rateMiBps < 0) throw new UsageError(`workload "${t}": the write rate must be a whole number of MiB/s`, hint);
  return { wssMiB, rateMiBps };
}

function parseDisk(t: string, arg: string | undefined): WorkloadSpec {
  const hint = 'write disk:<rate>, e.g. disk:1M/s or disk:512K/s (a bare number is KiB/s; 0 = as fast as possible)';
  if (!arg) throw new UsageError(`workload "${t}" lacks its rate`, hint);
  const r = arg.replace(/\/s$/i, '').replace(/ps$/i, '').trim();
  const rateKiBps = ZERO_RATE_RE.test(arg) ? 0 : /^\d+$/.test(r) ? Number(r) : wrapUnits(() => parseSizeBytes(r, 'disk rate') / 1024, t, hint);
  if (!Number.isInteger(rateKiBps)) throw new UsageError(`workload "${t}": the disk rate must be a whole number of KiB/s`, hint);
  return checked(t, { kind: 'disk', rateKiBps });
}

function parseNet(t: string, arg: string | undefined): WorkloadSpec {
  const hint = 'write net, net:reverse, net:100M or net:100M,reverse (bitrate in bits/s, as iperf3 -b takes it)';
  const out: { kind: 'net'; bitrate?: string; reverse?: boolean } = { kind: 'net' };
  if (arg === undefined) return out;
  if (arg === '') throw new UsageError(`invalid workload "${t}"`, hint);
  for (const part of arg.split(',').map((s) => s.trim())) {
    if (part.toLowerCase() === 'reverse' && out.reverse === undefined) out.reverse = true;
    else if (IPERF_BITRATE_RE.test(part) && out.bitrate === undefined) out.bitrate = part;
    else throw new UsageError(`workload "${t}": unexpected "${part}"`, hint);
  }
  return out;
}

function wrapUnits(f: () => number, t: string, hint: string): number {
  try {
    return f();
  } catch (err) {
    if (err instanceof UsageError) throw new UsageError(`invalid workload "${t}"`, hint);
    throw err;
  }
}

/** Limits beyond the grammar (the schema's ranges), reported as one line. */
function checked(t: string, spec: WorkloadSpec): WorkloadSpec {
  const r = WorkloadObjectSchema.safeParse(spec);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new UsageError(`workload "${t}": ${issue?.path.join('.') ?? ''} ${issue?.message ?? 'is invalid'}`.replace(/\s+/g, ' '), `use one of ${FORMS}`);
  }
  return r.data;
}

function sizeTag(mib: number): string {
  return mib % 1024 === 0 ? `${mib / 1024}g` : `${mib}m`;
}

/** A short name from the values, for run names: `dirty512m-200mbps-random`, `disk1mbps`, `net-reverse`. */
export function workloadName(spec: WorkloadSpec): string {
  switch (spec.kind) {
    case 'idle':
    case 'cpu':
      return spec.kind;
    case 'dirty':
      return `dirty${sizeTag(spec.wssMiB)}-${spec.rateMiBps === 0 ? 'max' : `${spec.rateMiBps}mbps`}-${spec.pattern}`;
    case 'disk': {
      const rate = spec.rateKiBps === 0 ? 'max' : spec.rateKiBps % 1024 === 0 ? `${spec.rateKiBps / 1024}mbps` : `${spec.rateKiBps}kbps`;
      const rec = spec.recordBytes === undefined || spec.recordBytes === DEFAULT_RECORD_BYTES ? '' : `-rec${spec.recordBytes % 1024 === 0 ? `${spec.recordBytes / 1024}k` : spec.recordBytes}`;
      return `disk${rate}${rec}`;
    }
    case 'net':
      return ['net', spec.bitrate?.toLowerCase(), spec.reverse ? 'reverse' : undefined].filter(Boolean).join('-');
  }
}

/** The compact form of a spec; parseWorkload(formatWorkload(s)) gives s back (record size aside). */
export function formatWorkload(spec: WorkloadSpec): string {
  switch (spec.kind) {
    case 'idle':
    case 'cpu':
      return spec.kind;
    case 'dirty':
      return `dirty:${spec.wssMiB}M@${spec.rateMiBps}M/s,${spec.pattern}`;
    case 'disk':
      return `disk:${spec.rateKiBps}K/s`;
    case 'net': {
      const opts = [spec.bitrate, spec.reverse ? 'reverse' : undefined].filter(Boolean);
      return opts.length ? `net:${opts.join(',')}` : 'net';
    }
  }
}
