// A sweep: one base scenario, a grid of values to vary, a number of repetitions. Plain validated
// data read from YAML. `expandGrid` turns it into points (the cartesian product, in a stable
// order), each with its scenario input, its link shaping, and a name derived from the values that
// vary, never typed by hand. src/sweep/run.ts executes the points.
import { z } from 'zod';
import { UsageError } from '../errors.js';
import { describeIssue } from '../util/validate.js';
import { parseYaml, readInputFile } from '../util/yaml.js';
import { parseShaping, type Shaping } from '../lab/index.js';
import { faultName, parseFault } from '../fault/spec.js';
import { parseWorkload, workloadName } from '../workload/spec.js';
import { DISK_INTERFACES, NIC_MODELS, type DiskInterface, type NicModel } from '../machine/spec.js';
import { CAPABILITIES, MONITORS, parseScenario, type CapabilityName, type MonitorKind, type Scenario, type ScenarioInput } from '../migrate/scenario.js';

const nonEmpty = <T extends z.ZodType>(item: T) => z.array(item).min(1, 'give at least one value').optional();

/** A workload as the sweep sees it: a name ("idle") or an object; the scenario validates it. */
export type WorkloadValue = string | Readonly<Record<string, unknown>>;

export const SweepGridSchema = z
  .object({
    memoryMiB: nonEmpty(z.number().int()),
    workload: nonEmpty(z.union([z.string().min(1), z.record(z.string(), z.unknown())])),
    maxBandwidthMiBps: nonEmpty(z.number().positive()),
    downtimeLimitMs: nonEmpty(z.number().int()),
    /** tc rate limit of the migration uplinks, per point; null = unshaped. */
    linkBandwidthMbit: nonEmpty(z.number().positive().nullable()),
    /** Each entry is the whole set of capabilities enabled at that point ([] = none). */
    capabilities: nonEmpty(z.array(z.enum(CAPABILITIES))),
    monitor: nonEmpty(z.enum(MONITORS)),
    /**
     * Faults injected at each point: `none`, one fault (`kill-dst@2s`) or a list of faults that
     * fire in the same run. The scenario validates them.
     */
    faults: nonEmpty(z.union([z.string().min(1), z.array(z.string().min(1))])),
    /** The migration stream over TLS or plain TCP (its cost, side by side). */
    tls: nonEmpty(z.boolean()),
    /** The QEMU builds: one for both sides (system, 10.0, a path) or SOURCE->DESTINATION (system->10.0). */
    qemu: nonEmpty(z.string().regex(/^[^>]+(->[^>]+)?$/, 'one QEMU build, or SOURCE->DESTINATION (system->10.0)')),
    /** The machine type: auto, pc, or a versioned type (pc-i440fx-7.2). */
    machineType: nonEmpty(z.string().min(1)),
    /** The guest's NIC model (virtio-net-pci against the emulated e1000 or rtl8139). */
    nicModel: nonEmpty(z.enum(NIC_MODELS)),
    /** The guest's disk interface (virtio against the emulated IDE). */
    diskInterface: nonEmpty(z.enum(DISK_INTERFACES)),
    /** The switchover policy (qemu-default, local-minimum:max=1s, postcopy-after:2, ...). */
    switchover: nonEmpty(z.string().min(1)),
  })
  .strict()
  .readonly();
export type SweepGrid = z.infer<typeof SweepGridSchema>;

/** The grid's dimensions in the order they nest (the first varies slowest) and appear in names. */
export const GRID_DIMENSIONS = ['qemu', 'machineType', 'nicModel', 'diskInterface', 'memoryMiB', 'workload', 'maxBandwidthMiBps', 'downtimeLimitMs', 'linkBandwidthMbit', 'capabilities', 'monitor', 'switchover', 'faults', 'tls'] as const;
export type GridDimension = (typeof GRID_DIMENSIONS)[number];

// The base is checked only for shape here; every point is validated whole by parseScenario.
const BaseSchema = z
  .object({
    guest: z.record(z.string(), z.unknown()).optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    capabilities: z.record(z.string(), z.unknown()).optional(),
  })
  .catchall(z.unknown());

export const SweepSpecSchema = z
  .object({
    /** Names the results directory: results/sweep-NAME/. */
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'a sweep name is 1-64 letters, digits, ".", "_" or "-"'),
    repetitions: z.number().int().min(1).max(1000).default(3),
    /** A partial scenario shared by every point (guest, monitor, parameters, ...). */
    base: BaseSchema.default({}),
    grid: SweepGridSchema.default({}),
    /** The migration deadline of every run (overrides base.timeoutMs). */
    timeoutMs: z.number().int().min(1000).optional(),
  })
  .strict()
  .readonly();

export type SweepSpec = z.infer<typeof SweepSpecSchema>;
export type SweepSpecInput = z.input<typeof SweepSpecSchema>;

/** A scenario input plus the workload, which the scenario schema validates once it knows it. */
export type PointScenarioInput = ScenarioInput & { readonly workload?: WorkloadValue };

/** The grid values of one point (only the dimensions the grid names). */
export interface PointValues {
  readonly memoryMiB?: number;
  readonly workload?: WorkloadValue;
  readonly maxBandwidthMiBps?: number;
  readonly downtimeLimitMs?: number;
  readonly linkBandwidthMbit?: number | null;
  readonly capabilities?: readonly CapabilityName[];
  readonly monitor?: MonitorKind;
  readonly faults?: string | readonly string[];
  readonly tls?: boolean;
  readonly qemu?: string;
  readonly machineType?: string;
  readonly nicModel?: NicModel;
  readonly diskInterface?: DiskInterface;
  readonly switchover?: string;
}

/** SOURCE->DESTINATION, as a grid names a migration from one QEMU build to another. */
export const QEMU_PAIR_SEPARATOR = '->';

/** A grid's qemu value as the scenario's qemu field: "system->10.0" is { source: system, destination: 10.0 }. */
export function qemuOfGridValue(v: string): { source: string; destination?: string } {
  const [source, destination] = v.split(QEMU_PAIR_SEPARATOR).map((x) => x.trim());
  return destination === undefined || destination === source ? { source: source! } : { source: source!, destination };
}

/** A point's faults as a list (`none` is no fault). */
export function pointFaults(v: PointValues['faults']): string[] {
  if (v === undefined || v === 'none') return [];
  return typeof v === 'string' ? [v] : [...v];
}

export interface SweepPoint {
  /** Derived from the values that vary across the grid, e.g. `mem512-caps-xbzrle`. */
  readonly name: string;
  readonly index: number;
  readonly values: PointValues;
  /** The dimensions that vary (more than one value), in grid order. */
  readonly varying: readonly GridDimension[];
  readonly scenario: PointScenarioInput;
  /**
   * Shaping of the migration uplinks during this point: an object to apply, null to clear, or
   * undefined when the grid does not manage link shaping (the lab is left as it is).
   */
  readonly shaping: Shaping | null | undefined;
}

/** A point whose scenario has been validated. */
export interface ValidatedPoint extends SweepPoint {
  readonly parsed: Scenario;
}

/** Validate a sweep spec (already parsed from YAML/JSON). `where` names the source in errors. */
export function parseSweepSpec(input: unknown, where = 'sweep spec'): SweepSpec {
  const r = SweepSpecSchema.safeParse(input);
  if (!r.success) throw new UsageError(`${where}: ${describeIssue(r.error.issues[0]!)}`);
  return r.data;
}

/** Read and validate a YAML (or JSON) sweep file. */
export async function loadSweepSpec(file: string): Promise<SweepSpec> {
  return parseSweepYaml(await readInputFile(file, 'sweep file', 'give the path of a sweep YAML (examples in examples/sweeps/)'), file);
}

export function parseSweepYaml(text: string, where = 'sweep spec'): SweepSpec {
  return parseSweepSpec(parseYaml(text, where), where);
}

// ---- expansion ----------------------------------------------------------------------------------

/** The cartesian product of the grid, the first dimension varying slowest. */
export function expandGrid(spec: SweepSpec): SweepPoint[] {
  const dims = GRID_DIMENSIONS.filter((d) => spec.grid[d] !== undefined);
  const varying = dims.filter((d) => spec.grid[d]!.length > 1);
  const workloadLabels = spec.grid.workload ? labelWorkloads(spec.grid.workload) : [];

  let combos: PointValues[] = [{}];
  for (const d of dims) {
    const vals = spec.grid[d] as readonly unknown[];
    combos = combos.flatMap((c) => vals.map((v) => ({ ...c, [d]: v })));
  }

  const points = combos.map((values, index): SweepPoint => {
    const tokens = varying.map((d) => {
      if (d === 'workload') return workloadLabels[spec.grid.workload!.indexOf(values.workload!)]!;
      return dimensionToken(d, values);
    });
    return {
      name: tokens.length > 0 ? tokens.join('-') : 'base',
      index,
      values,
      varying,
      scenario: buildScenario(spec, values),
      shaping: values.linkBandwidthMbit === undefined ? undefined : values.linkBandwidthMbit === null ? null : { bandwidthMbit: values.linkBandwidthMbit },
    };
  });

  const seen = new Map<string, number>();
  for (const p of points) {
    const other = seen.get(p.name);
    if (other !== undefined) throw new UsageError(`sweep ${spec.name}: points ${other} and ${p.index} are both named "${p.name}"`, 'a grid dimension lists the same value twice');
    seen.set(p.name, p.index);
  }
  return points;
}

/**
 * Expand and validate every point (scenario and shaping) before anything is started. Errors name
 * the sweep and the point.
 */
export function validateSweep(spec: SweepSpec): ValidatedPoint[] {
  return expandGrid(spec).map((p) => {
    try {
      if (p.shaping) parseShaping(p.shaping);
      return { ...p, parsed: parseScenario(p.scenario) };
    } catch (err) {
      if (err instanceof UsageError) throw new UsageError(`sweep ${spec.name}, point ${p.name}: ${err.message}`);
      throw err;
    }
  });
}

function dimensionToken(d: Exclude<GridDimension, 'workload'>, v: PointValues): string {
  switch (d) {
    case 'memoryMiB':
      return `mem${v.memoryMiB}`;
    case 'maxBandwidthMiBps':
      return `bw${v.maxBandwidthMiBps}`;
    case 'downtimeLimitMs':
      return `dl${v.downtimeLimitMs}`;
    case 'linkBandwidthMbit':
      return v.linkBandwidthMbit === null ? 'link-unshaped' : `link${v.linkBandwidthMbit}`;
    case 'capabilities':
      return v.capabilities!.length === 0 ? 'caps-none' : `caps-${v.capabilities!.join('-')}`;
    case 'monitor':
      return v.monitor!;
    case 'faults': {
      const fs = pointFaults(v.faults);
      return fs.length === 0 ? 'no-fault' : fs.map(faultToken).join('+');
    }
    case 'tls':
      return v.tls ? 'tls' : 'plain';
    case 'qemu': {
      const q = qemuOfGridValue(v.qemu!);
      const label = (c: string) => safe(c.replace(/^\//, ''));
      return `qemu-${label(q.source)}${q.destination ? `-to-${label(q.destination)}` : ''}`;
    }
    case 'machineType':
      return `mt-${v.machineType}`;
    case 'nicModel':
      return `nic-${v.nicModel!.replace('-net-pci', '')}`;
    case 'diskInterface':
      return `disk-${v.diskInterface}`;
    case 'switchover':
      return `sw-${safe(v.switchover!.replace(/[:=,%]+/g, '-'))}`;
  }
}

/** kill-dst@2s -> kill-dst-2s (the run name's form); text that is no fault is left for validateSweep to report. */
function faultToken(text: string): string {
  try {
    return faultName(parseFault(text));
  } catch {
    return safe(text);
  }
}

function asRecord(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? { ...(v as Record<string, unknown>) } : {};
}

function buildScenario(spec: SweepSpec, v: PointValues): PointScenarioInput {
  const s: Record<string, unknown> = structuredClone({ ...spec.base });
  if (v.memoryMiB !== undefined) s.guest = { ...asRecord(s.guest), memoryMiB: v.memoryMiB };
  if (v.workload !== undefined) s.workload = structuredClone(v.workload);
  if (v.maxBandwidthMiBps !== undefined) s.parameters = { ...asRecord(s.parameters), maxBandwidthMiBps: v.maxBandwidthMiBps };
  if (v.downtimeLimitMs !== undefined) s.parameters = { ...asRecord(s.parameters), downtimeLimitMs: v.downtimeLimitMs };
  if (v.capabilities !== undefined) {
    s.capabilities = Object.fromEntries(v.capabilities.map((c) => [c, true]));
    // A base postcopyAfterMs applies to the points that enable postcopy-ram, and only to them.
    if (!v.capabilities.includes('postcopy-ram')) delete s.postcopyAfterMs;
  }
  if (v.monitor !== undefined) s.monitor = v.monitor;
  if (v.faults !== undefined) s.faults = pointFaults(v.faults);
  if (v.tls !== undefined) s.tls = v.tls;
  if (v.qemu !== undefined) s.qemu = qemuOfGridValue(v.qemu);
  if (v.machineType !== undefined) s.guest = { ...asRecord(s.guest), machineType: v.machineType };
  if (v.nicModel !== undefined) s.guest = { ...asRecord(s.guest), nicModel: v.nicModel };
  if (v.diskInterface !== undefined) s.guest = { ...asRecord(s.guest), diskInterface: v.diskInterface };
  if (v.switchover !== undefined) s.switchover = v.switchover;
  if (spec.timeoutMs !== undefined) s.timeoutMs = spec.timeoutMs;
  return s as PointScenarioInput;
}

// ---- workload labels ------------------------------------------------------------------------------

const UNIT_SUFFIX = /(MiBps|MiB|Mbit|Ms|Us|Pct)$/;

function safe(text: string): string {
  return text.replace(/[^A-Za-z0-9._-]+/g, '_');
}

/** A workload in its compact form, named as run names name it (dirty:32M@8M/s,random -> dirty32m-8mbps-random). */
function compactLabel(text: string): string {
  try {
    return workloadName(parseWorkload(text));
  } catch {
    return safe(text); // not a workload: validateSweep says why
  }
}

/** The kind of a workload: its name, or the `kind` (or `type`) field of its object. */
export function workloadKind(w: unknown): string | undefined {
  if (typeof w === 'string') {
    try {
      return parseWorkload(w).kind;
    } catch {
      return w;
    }
  }
  const o = asRecord(w);
  const k = o.kind ?? o.type;
  return typeof k === 'string' ? k : undefined;
}

function fieldToken(key: string, value: unknown): string {
  if (typeof value === 'number') return `${key.replace(UNIT_SUFFIX, '') || key}${value}`;
  if (typeof value === 'boolean') return value ? key : `no-${key}`;
  if (typeof value === 'string') return value;
  return `${key}_${JSON.stringify(value)}`;
}

/**
 * A label per workload: its kind, then only the fields that differ between the workloads of the
 * grid (`dirty-rate64` rather than `dirty-size256-rate64-random`).
 */
export function labelWorkloads(workloads: readonly WorkloadValue[]): string[] {
  const objects = workloads.map((w) => (typeof w === 'string' ? undefined : asRecord(w)));
  // Fields are compared among workloads of the same kind: `idle` next to `dirty` says enough.
  const differing = (kind: string | undefined) => {
    const same = objects.filter((o): o is Record<string, unknown> => o !== undefined && workloadKind(o) === kind);
    const keys = [...new Set(same.flatMap((o) => Object.keys(o)))].filter((k) => k !== 'kind' && k !== 'type');
    return keys.filter((k) => new Set(same.map((o) => JSON.stringify(o[k]))).size > 1);
  };
  return workloads.map((w, i) => {
    if (typeof w === 'string') return compactLabel(w);
    const o = objects[i]!;
    const kind = workloadKind(o);
    const parts = [kind ?? 'workload', ...differing(kind).filter((k) => o[k] !== undefined).map((k) => fieldToken(k, o[k]))];
    return safe(parts.join('-'));
  });
}

/** A workload's full label: its kind and every field (`dirty-size256-rate64-random`). */
export function workloadLabel(w: WorkloadValue): string {
  if (typeof w === 'string') return compactLabel(w);
  const o = asRecord(w);
  const fields = Object.keys(o).filter((k) => k !== 'kind' && k !== 'type');
  return safe([workloadKind(o) ?? 'workload', ...fields.map((k) => fieldToken(k, o[k]))].join('-'));
}
