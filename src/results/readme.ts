// results/README.md, generated: every results folder, file, JSON field and CSV column with its
// meaning and unit, read from the schemas (src/results/*.ts) and from the column lists the CSV
// writers use. It sits on top of the writers (it imports their column lists) and nothing imports
// it but `make results-readme` and the drift tests (test/unit/results/readme.test.ts,
// container-readme.test.ts, container-batch-readme.test.ts). A container run's files and a
// container batch's have no schema module yet: they are described here (ContainerRunDocSchema,
// from what src/containers/record.ts writes; ContainerBatchDocSchema, from
// src/containers/batch/types.ts and record.ts). Edit the schemas or the columns, then run
// `make results-readme`; never edit results/README.md by hand.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { COMPARISON_COLUMNS, EVENT_COLUMNS, MIGRATION_COLUMNS, SAMPLE_COLUMNS, STEP_COLUMNS } from '../batch/report.js';
import { MOVES_CSV_COLUMNS, SAMPLES_CSV_COLUMNS } from '../containers/batch/report.js';
import { HALT_SILENCE_MS, READ_TIMEOUT_MS, SAMPLE_MS } from '../containers/batch/signals.js';
import { BATCH_MODES, CONTAINER_FILES } from '../containers/batch/types.js';
import { BatchSpecSchema } from '../batch/spec.js';
import { FAULT_COLUMNS } from '../fault/table.js';
import { MATRIX_COLUMNS } from '../sweep/qemu-matrix.js';
import { POLICY_COLUMNS } from '../sweep/policy-table.js';
import { FaultObjectSchema } from '../fault/spec.js';
import { PROBE_CSV_COLUMNS } from '../guest/probe.js';
import { ACCEL_CSV_COLUMNS, DEVICES_CSV_COLUMNS, DURING_COLUMNS } from '../homework/report.js';
import { PERF_COLUMNS } from '../homework/perf-csv.js';
import { LabSpecSchema, ShapingSchema } from '../lab/spec.js';
import { MachineSpecSchema } from '../machine/spec.js';
import { ScenarioSchema } from '../migrate/scenario.js';
import type { Column } from '../report/markdown.js';
import { PARAMETER_COLUMNS, SUMMARY_FIELDS, SUMMARY_METRICS } from '../sweep/summary.js';
import { SweepSpecSchema } from '../sweep/spec.js';
import { BatchFileSchema } from './batch.js';
import { COMPARE_CSV_COLUMNS, COMPARE_RUN_FIGURES } from '../compare/compare.js';
import { HomeworkResultsSchema } from './homework.js';
import { ColoRecordSchema } from './colo.js';
import { SERIES_COLUMNS } from '../colo/series.js';
import { PassSchema, RUN_FOLDER_FILES, RunReportSchema, SampleSchema } from './run.js';
import { SweepFileSchema } from './sweep.js';
import { arr, bytes, count, kib, mib, ms, pages, pct, text, unitRegistry, us } from './fields.js';
import { unitOfName } from './units.js';

/** Input specs and nested results: documented by what they come from, not field by field here. */
const SPECS = new Map<unknown, string>();
const docElsewhere = (schema: Any, where: string) => SPECS.set(peel(schema).inner._zod.def, where);

export interface FieldDoc {
  readonly path: string;
  readonly type: string;
  readonly unit: string;
  readonly meaning: string;
}

type Any = z.core.$ZodType;
const defOf = (s: Any) => s._zod.def as z.core.$ZodTypeDef & Record<string, unknown>;
const describedBy = (s: Any) => z.globalRegistry.get(s)?.description;

/** Peel optional/nullable/readonly/default wrappers, keeping the first description and unit met. */
function peel(s: Any): { inner: Any; optional: boolean; nullable: boolean; description?: string; unit?: string } {
  let inner = s;
  let optional = false;
  let nullable = false;
  let description = describedBy(s);
  let unit = unitRegistry.get(s)?.unit;
  for (;;) {
    const d = defOf(inner);
    if (d.type === 'optional' || d.type === 'default' || d.type === 'prefault') optional = true;
    else if (d.type === 'nullable') nullable = true;
    else if (d.type !== 'readonly') break;
    inner = d.innerType as Any;
    description ??= describedBy(inner);
    unit ??= unitRegistry.get(inner)?.unit;
  }
  return { inner, optional, nullable, description, unit };
}

function typeName(s: Any): string {
  const p = peel(s);
  const d = defOf(p.inner);
  let t: string;
  switch (d.type) {
    case 'enum':
      t = Object.values(d.entries as Record<string, string>).join(' \\| ');
      break;
    case 'literal':
      t = (d.values as unknown[]).map((v) => JSON.stringify(v)).join(' \\| ');
      break;
    case 'array':
      t = `list of ${typeName(d.element as Any)}`;
      break;
    case 'record':
      t = `map of ${typeName(d.valueType as Any)}`;
      break;
    case 'union':
      t = (d.options as Any[]).map(typeName).join(' or ');
      break;
    case 'custom':
      t = 'object';
      break;
    default:
      t = String(d.type);
  }
  return p.nullable ? `${t} or null` : t;
}

/**
 * Every field of an object schema, depth first, with dotted paths (`[]` for list items). Stops
 * at input specs (their own docs are named) and at maps.
 */
export function fieldDocs(schema: Any, prefix = ''): FieldDoc[] {
  registerSpecs();
  const out: FieldDoc[] = [];
  const shape = defOf(peel(schema).inner).shape as Record<string, Any> | undefined;
  for (const [key, field] of Object.entries(shape ?? {})) {
    const path = `${prefix}${key}`;
    const p = peel(field);
    const spec = SPECS.get(p.inner._zod.def);
    const sentence = (t: string) => (/\.$/.test(t) ? t : `${t}.`);
    const meaning = [p.description ? sentence(p.description) : '', spec ? `Its fields are ${spec}.` : '', p.optional ? '(optional)' : ''].filter(Boolean).join(' ');
    out.push({ path, type: typeName(field), unit: p.unit ?? '', meaning });
    if (spec) continue;
    out.push(...nested(p.inner, path));
  }
  return out;
}

function nested(inner: Any, path: string): FieldDoc[] {
  const d = defOf(inner);
  if (d.type === 'object') return fieldDocs(inner, `${path}.`);
  if (d.type === 'array') {
    const el = peel(d.element as Any).inner;
    if (SPECS.has(el._zod.def)) return [];
    return nested(el, `${path}[]`);
  }
  if (d.type === 'union') {
    // A tagged union (batch.json's stop): the fields of every variant, once each.
    const seen = new Set<string>();
    return (d.options as Any[]).flatMap((o) => nested(peel(o).inner, path)).filter((f) => !seen.has(f.path) && seen.add(f.path) !== undefined);
  }
  return [];
}

function registerSpecs(): void {
  if (SPECS.size > 0) return;
  docElsewhere(ScenarioSchema, 'the `miglab migrate` options (`miglab migrate --help`)');
  docElsewhere(MachineSpecSchema, 'the guest options of `miglab migrate`');
  docElsewhere(LabSpecSchema, 'the lab options (`miglab lab up --help`)');
  docElsewhere(ShapingSchema, '`--bandwidth`, `--delay`, `--loss`: bandwidthMbit, delayMs, jitterMs, lossPct');
  docElsewhere(SweepSpecSchema, 'the sweep file (examples/sweeps/)');
  docElsewhere(BatchSpecSchema, 'the `miglab batch` options (docs/batch.md)');
  docElsewhere(FaultObjectSchema, '`--fault` (README, Faults)');
  docElsewhere(RunReportSchema, "run.json's (above)");
}

/** Fields without a description (the drift test wants none). */
export function undocumentedFields(schema: Any): string[] {
  return fieldDocs(schema)
    .filter((f) => f.meaning === '' || f.meaning === '(optional)')
    .map((f) => f.path);
}

interface CsvDoc {
  readonly key: string;
  readonly unit: string;
  readonly meaning: string;
}

function fromColumns<R>(columns: readonly Column<R>[]): CsvDoc[] {
  return columns.map((c) => ({ key: c.key, unit: unitOfName(c.key)?.symbol ?? '', meaning: c.about ?? c.title }));
}

function fromSchema(schema: Any): CsvDoc[] {
  // A CSV cell of a figure that was not measured is empty.
  return fieldDocs(schema).map((f) => ({ key: f.path, unit: f.unit, meaning: f.meaning.replace(/\(optional\)$/, '(empty when absent)') }));
}

const esc = (t: string) => t.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function fieldTable(fields: readonly FieldDoc[]): string {
  return ['| field | type | unit | meaning |', '|---|---|---|---|', ...fields.map((f) => `| \`${f.path}\` | ${f.type} | ${esc(f.unit) || '–'} | ${esc(f.meaning)} |`)].join('\n');
}

function fileTable(files: readonly { readonly names: readonly string[]; readonly what: string }[]): string {
  return ['| file | what |', '|---|---|', ...files.map((f) => `| ${f.names.map((n) => `\`${n}\``).join(', ')} | ${esc(f.what)} |`)].join('\n');
}

function csvTable(cols: readonly CsvDoc[]): string {
  return ['| column | unit | meaning |', '|---|---|---|', ...cols.map((c) => `| \`${c.key}\` | ${esc(c.unit) || '–'} | ${esc(c.meaning)} |`)].join('\n');
}

function summaryColumns(): CsvDoc[] {
  const params: CsvDoc[] = PARAMETER_COLUMNS.map((p) => ({ key: p, unit: unitOfName(p)?.symbol ?? '', meaning: 'The point\'s value of this grid dimension (a column only when the sweep varies or sets it)' }));
  const metrics: CsvDoc[] = SUMMARY_METRICS.map((m) => ({
    key: `${m.key}_{${SUMMARY_FIELDS.join(',')}}`,
    unit: unitOfName(m.key)?.symbol ?? '',
    meaning: `${m.about}: ${SUMMARY_FIELDS.join(', ')} over the point's completed runs (count is a number of runs)`,
  }));
  return [
    { key: 'point', unit: '', meaning: "The point's name (its folder)" },
    ...params,
    { key: 'runs', unit: '', meaning: 'Repetitions, including runs that left no report' },
    { key: 'converged', unit: '', meaning: 'Runs QEMU completed' },
    { key: 'failures', unit: '', meaning: 'Runs failed or stalled, plus runs that left no report' },
    ...metrics,
  ];
}

const PROBE_DOCS: CsvDoc[] = PROBE_CSV_COLUMNS.map((c) => ({ key: c.key, unit: c.unit, meaning: c.about }));

// ---- a container run (`miglab containers migrate`) ------------------------------------------------
// src/containers/record.ts writes run.json without a schema of its own yet; this one describes what
// it writes, field by field, and the drift test (test/unit/results/container-readme.test.ts) parses
// record.ts's output with it, strictly, so a field added there without a line here fails a test.

const nullMs = (d: string) => ms(d).nullable();

const DumpStatsDoc = z
  .strictObject({
    freezingUs: us('Freezing the tree (cgroup freezer or ptrace seize)'),
    frozenUs: us('From the end of freezing until the tree was released (pre-dump) or killed (dump): for a dump, page writing included; for a pre-dump it ends once the pages sit in pipes, before they are written'),
    memdumpUs: us('Collecting the memory pages'),
    memwriteUs: us('Writing them (to the images directory or the page server)'),
    pagesScanned: pages('Pages looked at'),
    pagesSkippedParent: pages('Pages not written because the previous round has them unchanged (soft-dirty tracking)'),
    pagesWritten: pages('Pages written by this step'),
    irmapResolveUs: us('Resolving inotify/fanotify watches').optional(),
    pagesLazy: pages('Pages left for lazy restore (0: lazy is not used)'),
    pagePipes: count('Pipes CRIU used to move the pages').optional(),
    pagePipeBufs: count('Pipe buffers over those pipes').optional(),
    shpagesScanned: pages('Shared memory pages looked at').optional(),
    shpagesSkippedParent: pages('Shared memory pages unchanged since the previous round').optional(),
    shpagesWritten: pages('Shared memory pages written').optional(),
  })
  .describe("CRIU's stats-dump of this step (images/stats.proto dump_stats_entry), decoded by miglab (src/containers/criu-stats.ts)");

const RestoreStatsDoc = z
  .strictObject({
    pagesCompared: pages('Pages compared with the parent images'),
    pagesSkippedCow: pages('Pages shared copy-on-write instead of restored'),
    forkingUs: us('Forking the tree again'),
    restoreUs: us("CRIU's restore time: from start to the tree running (CRIU's figure, inside the restore command's wall time)"),
    pagesRestored: pages('Pages read back into memory').optional(),
  })
  .describe("CRIU's stats-restore (images/stats.proto restore_stats_entry)");

const WorkloadStateDoc = (side: string) =>
  z
    .strictObject({
      mode: z.enum(['counter', 'natural', 'fibonacci', 'prime', 'mem']).describe('The workload'),
      n: count('Values emitted so far'),
      i: count('The last index, n-1 (-1 before the first value)'),
      v: text('The last value as a decimal string (Fibonacci mod 2^64 passes 2^53, which a JSON number cannot hold)'),
      h: text('The chain hash after value i (FNV-1a 64 over each (i, v_i), 16 hex digits): the whole history in one figure'),
      pid: count('Its pid inside its PID namespace (1: the container\'s init)'),
      ppid: count('Its parent inside the namespace (0: outside it)'),
      child: count("Its child's pid inside the namespace"),
      childAlive: z.boolean().describe('A beat came from the child over their pipe in the last 2 s'),
      logBytes: bytes('The sequence log\'s file offset (-1 without a log)'),
      rssKiB: kib('Its resident memory (VmRSS; -1 if /proc did not say)'),
      gen: count("mem: the working set's pass (0 in other modes)"),
      written: pages('mem: pages written since start (0 in other modes)'),
    })
    .describe(`The container's \`state\` reply ${side}`);

/** run.json of a container run, as record.ts writes it (`miglab.container-run/1`). */
export const ContainerRunDocSchema = z
  .strictObject({
    schema: z.literal('miglab.container-run/1').describe("Version of this file's format"),
    runId: text('`<UTC date>-<time>-ctr-<workload>-<strategy>[-page-server]-<suffix>`: the run folder\'s name'),
    startedAt: text('ISO 8601, UTC'),
    finishedAt: text('ISO 8601, UTC'),
    request: z
      .strictObject({
        workload: text('The workload in its compact form: counter, natural, fibonacci, prime or mem:WSSM@RATEM/s'),
        strategy: z.enum(['stop-and-copy', 'iterative', 'mem-rounds', 'lazy']).describe('How the container was checkpointed (lazy: restored without its memory, the pages fetched from the source on demand)'),
        transfer: z.enum(['nfs', 'page-server']).describe("How the images reached chost-dst: all through the lab's checkpoint export, or the pages through `criu page-server` into chost-dst's memory"),
        rules: z
          .strictObject({
            minPages: pages('iterative: stop when a pre-dump wrote this many pages or fewer ("small dump")'),
            maxGrowthPct: pct('iterative: stop when a pre-dump wrote more than this many percent more pages than the one before ("iteration grows")'),
            maxRounds: count('At most this many pre-dumps ("too many iterations")'),
          })
          .describe("The pre-dump stop rules (P.Haul's by default: 64 pages, 10 %, 8 rounds)"),
        memRounds: z
          .strictObject({
            plateauPct: pct("The final dump once a round's change falls by no more than this many percent against the round before"),
            budgetPages: pages("The final dump once the change since a pre-dump fits in this many pages"),
            maxRounds: count('At most this many pre-dumps'),
          })
          .optional()
          .describe('mem-rounds: when the final dump follows a pre-dump (only for that strategy)'),
        memoryMiB: mib('RAM of each container-host guest'),
        vcpus: count('vCPUs of each container-host guest'),
        cpuModel: text('QEMU CPU model of both guests (CRIU refuses to restore on a CPU with fewer features)'),
      })
      .describe('What was asked'),
    imageHash: text('The chost image both guests booted'),
    lab: text("The lab's prefix"),
    verdict: z.enum(['intact', 'broken', 'failed']).describe('intact: moved and every continuity check passed; broken: moved, a check failed; failed: it did not move (see failure)'),
    failure: text('Why the run failed, CRIU\'s own log lines included when a CRIU command failed').optional(),
    criu: z
      .strictObject({
        version: text('criu --version in chost-src'),
        check: z.record(z.string(), z.string()).describe('`criu check` on each guest, in its own words ("Looks good.")'),
      })
      .optional()
      .describe('CRIU in the guests'),
    hosts: z
      .record(z.string(), z.strictObject({ side: z.enum(['src', 'dst']), ip: z.string(), bootMs: z.number(), slot: z.number() }))
      .optional()
      .describe("chost-src and chost-dst: the lab host each ran on (side), its address, bootMs (QEMU's start to the control port answering) and its guest slot"),
    serviceIp: text("The container's own address, moved with it from chost-src to chost-dst").optional(),
    figures: z
      .strictObject({
        criuFrozenMs: nullMs("The final dump's frozen time from CRIU's stats-dump (freeze to tree killed, page writing included). Not the client's downtime: the hand-over and the restore come on top"),
        criuFrozenRejected: text("Why CRIU's frozen time was left out: it was longer than its dump ran (seen with --lazy-pages); then criuFrozenMs is null").optional(),
        criuFrozenTotalMs: nullMs('Frozen time summed over every pre-dump and the final dump (P.Haul\'s "frozen time")'),
        dumpWallMs: ms('The final `criu dump` command, as the guest agent timed it (fork to reap)'),
        handoverMs: ms("From the dump's end to the restore's start: the address moved, the source's NFS client flushed (page server: the other images copied next to the pages)"),
        restoreWallMs: ms('The `criu restore` command, as the agent timed it'),
        criuRestoreMs: nullMs("CRIU's own restore time (stats-restore)"),
        clientDowntimeMs: nullMs("The longest silence the client's 1 kHz UDP probe saw at the service address: the downtime a user of the container feels (null: the client never heard it again)"),
        totalMs: ms('First CRIU command to the first reply from chost-dst'),
        imageBytes: bytes('Bytes of images written, all steps (page server: counted in chost-dst)'),
        preDumpRounds: count('Pre-dumps before the final dump'),
        transfer: z.enum(['nfs', 'page-server']).describe('How the images reached chost-dst'),
        pageServerWaitMs: ms("Page server: after each dump, until chost-dst's page server had written the pages and exited, summed (0 for nfs)"),
        metaCopyMs: ms("Page server: copying the final dump's other images from the export next to the pages, part of the hand-over (0 for nfs)"),
        lazyPages: count('lazy: pages the lazy-pages daemon took from the source (its log\'s "UFFD transferred pages"); null for the other strategies').nullable(),
        lazyTransferMs: ms("lazy: from the restore's start until the source had sent its last page (the container needed the source until then); null for the other strategies").nullable(),
      })
      .optional()
      .describe('The run\'s figures'),
    stopReason: text('Why the rounds ended (the rule that fired), or "stop-and-copy: one dump"').optional(),
    steps: arr(
      z.strictObject({
        kind: z.enum(['pre-dump', 'dump', 'restore']).describe('The CRIU command'),
        index: count('Its round (1-based); the final dump and the restore carry the last'),
        dir: text('Its images directory under the run\'s directory on the export (r1, r2, ..., final)'),
        atMs: ms("From the run's first CRIU command"),
        wallMs: ms('The command, as the agent timed it'),
        maxRssKiB: kib("CRIU's peak resident memory (wait4's rusage)"),
        dump: DumpStatsDoc.optional(),
        restore: RestoreStatsDoc.optional(),
        imageBytes: bytes("Bytes of this step's images").optional(),
        decision: text('Pre-dump: what the rules said after it, and why').optional(),
        dirtyPolls: arr(z.strictObject({ atMs: ms("From the run's first CRIU command"), dirtyPages: pages('Soft-dirty pages over the tree') }))
          .optional()
          .describe('mem-rounds: the soft-dirty count read right after this pre-dump (one; a list, as older runs had several)'),
        argv: arr(z.string()).describe('The command line as run in the guest (report.md explains each argument)'),
      }),
    )
      .optional()
      .describe('Every CRIU command, in order (also rounds.csv)'),
    before: WorkloadStateDoc('on chost-src just before the final dump').optional(),
    after: WorkloadStateDoc('on chost-dst, the first after the restore').optional(),
    verify: z
      .strictObject({
        ok: z.boolean().describe('Every check passed'),
        checks: arr(z.strictObject({ name: text('sequence, log, process tree, log offset'), ok: z.boolean().describe('Passed'), detail: text('What was found, with the figures') })).describe(
          'The continuity checks (src/containers/verify.ts)',
        ),
      })
      .optional()
      .describe('Whether it is the same container, carrying on where it stopped'),
    probe: z
      .looseObject({})
      .optional()
      .describe("The client probe's figures: the fields of a VM run's `outputs.clientProbe` (above), and `meta`, the probe tool's settings line"),
    workloadArgv: arr(z.string()).optional().describe("The container's command line (report.md explains each argument)"),
  })
  .describe('run.json: one container migration');

/** The files of a container run folder. */
export const CONTAINER_RUN_FOLDER_FILES: readonly { readonly names: readonly string[]; readonly what: string }[] = [
  { names: ['run.json'], what: 'every input and figure of the run; schema `miglab.container-run/1` (below). A run that failed writes it too, with `failure`' },
  { names: ['report.md'], what: 'the report: the two container hosts, the container, what CRIU did step by step, downtime and time with the source of each figure, the continuity checks, every command with each argument explained' },
  { names: ['rounds.csv'], what: 'one row per CRIU command (below)' },
  {
    names: ['probe.csv'],
    what: "the client's 1 kHz UDP probe at the container's service address, one row per probe (columns as a VM run's probe.csv, above); run.json's `probe` has its figures",
  },
  { names: ['src.serial.log', 'dst.serial.log', 'src.qmp.jsonl', 'dst.qmp.jsonl'], what: "the two container hosts' consoles (the agent's MIGLAB-* lines) and QMP transcripts, as a VM run's" },
  { names: ['plots/downtime-parts.png', 'plots/pages-per-step.png'], what: "bars (with .svg): the client's downtime beside CRIU's frozen time, the dump, the hand-over and the restore; and the pages each pre-dump and the final dump wrote" },
  { names: ['seq.log', 'workload.out'], what: "the container's own files from the export: its sequence log (one line `i v` per value; what the log check read) and what it printed (why it did not start, if it did not)" },
  { names: ['criu/STEP/'], what: "CRIU's own files of each step (r1, r2, ..., final), copied from the checkpoint export: `criu.log` (a pre-dump), `dump.log`, `restore.log`, `page-server.log`, `stats-dump`, `stats-restore`; the images themselves stay out (removed from the export after the run unless `--keep-images`)" },
];

/** rounds.csv's columns (record.ts roundsCsv): the drift test holds this list to its header. */
export const CONTAINER_ROUNDS_COLUMNS: readonly CsvDoc[] = [
  { key: 'kind', unit: '', meaning: 'pre-dump, dump or restore' },
  { key: 'index', unit: '', meaning: 'The round (1-based); the final dump and the restore carry the last' },
  { key: 'at_ms', unit: 'ms', meaning: "From the run's first CRIU command" },
  { key: 'wall_ms', unit: 'ms', meaning: 'The command, as the guest agent timed it' },
  { key: 'criu_maxrss_kib', unit: 'KiB', meaning: "CRIU's peak resident memory" },
  { key: 'freezing_ms', unit: 'ms', meaning: 'CRIU: freezing the tree (empty for the restore)' },
  { key: 'frozen_ms', unit: 'ms', meaning: 'CRIU: the tree frozen (for a pre-dump, until the pages sit in pipes; for the dump, page writing included)' },
  { key: 'memdump_ms', unit: 'ms', meaning: 'CRIU: collecting the pages' },
  { key: 'memwrite_ms', unit: 'ms', meaning: 'CRIU: writing them' },
  { key: 'pages_scanned', unit: 'pages', meaning: 'CRIU: pages looked at' },
  { key: 'pages_skipped_parent', unit: 'pages', meaning: 'CRIU: pages the previous round has unchanged' },
  { key: 'pages_written', unit: 'pages', meaning: 'CRIU: pages written' },
  { key: 'restore_ms', unit: 'ms', meaning: "CRIU's own restore time (n/a for a dump)" },
  { key: 'pages_restored', unit: 'pages', meaning: 'CRIU: pages read back' },
  { key: 'image_bytes', unit: 'bytes', meaning: "This step's images" },
  { key: 'soft_dirty_after', unit: 'pages', meaning: 'mem-rounds: the soft-dirty count read right after this pre-dump (what a final dump then would carry)' },
  { key: 'decision', unit: '', meaning: 'Pre-dump: what the stop rules said, and why' },
];

// ---- a container batch (`miglab containers batch`) ------------------------------------------------
// src/containers/batch/record.ts writes batch.json (the ContainerBatchRecord of
// src/containers/batch/types.ts) without a schema of its own; this one describes it field by field,
// and the drift test (test/unit/results/container-batch-readme.test.ts) parses a record with it,
// strictly. moves.csv's and samples.csv's columns are the lists report.ts writes them by: each
// column's line below is keyed by its name, so a column added there without its line here is a type
// error.

const GuestDoc = (d: string) => z.enum(['chost-src', 'chost-dst']).describe(d);

const CriuCommandDoc = (what: string) =>
  z
    .strictObject({
      startMs: ms("From the step's start"),
      wallMs: nullMs("The command, as the guest agent timed it (fork to reap); null when it never returned (the guest halted or the step was stopped)"),
      exitCode: z.number().nullable().describe('Its exit status (0: it succeeded); null when a signal ended it or it never returned'),
      signal: z.number().nullable().describe('The signal that ended it (9: the OOM killer, or the agent at its deadline); null when it exited or never returned'),
      maxRssKiB: kib("CRIU's peak resident memory (wait4's ru_maxrss); null when it never returned").nullable(),
      error: text("On failure: the last three error lines of CRIU's log, time stamps dropped, joined by \" | \"; or why there are none (killed by a signal, no reply, never started), or the tail of its stderr").optional(),
      gaveUpAfterMs: ms('The deadline at which miglab stopped waiting for the command, still running (stuck): 180 s in scheduled mode, which then stops the step; 900 s in the naive modes').optional(),
    })
    .describe(what);

const ConsoleEventDoc = z.strictObject({
  guest: GuestDoc('Whose console'),
  atMs: ms("From the batch's start, when the line reached the host"),
  kind: z
    .enum(['oom', 'panic', 'crash', 'agent-exit', 'initramfs'])
    .describe("oom: the OOM killer killed a process; panic: a kernel panic; crash: an oops, BUG or general protection fault; agent-exit: the miglab agent (the guest's control port) exited; initramfs: the initramfs could not be unpacked"),
  line: text('The console line, cleaned of terminal escapes and the kernel time stamp'),
});

const GuestHaltDoc = (d: string) =>
  z
    .strictObject({
      guest: GuestDoc('The guest that halted'),
      atMs: ms("From the batch's start, when the halt was declared"),
      how: z
        .enum(['qemu-exited', 'no-answer', 'kernel-panic', 'agent-killed'])
        .describe(`qemu-exited: its QEMU process exited; no-answer: its control port did not answer for ${HALT_SILENCE_MS / 1000} s; kernel-panic: a panic line on its console; agent-killed: its console said the agent exited`),
      detail: text('What showed it, in words (the exit status, the silence, the console line)'),
    })
    .describe(d);

const BATCH_MODE_DOC =
  'one-by-one: dump one container, restore it, then the next; all-at-once: every dump at once, then every restore at once; waves: `waveSize` dumps at once, then their restores, wave after wave; scheduled: the scheduler\'s plan (`plan`)';

const ContainerMoveDoc = z.strictObject({
  index: z.number().describe("The container, 0-based within its step: c<index> (its directory on the export, and criu/n<N>/c<index>/ when its move failed)"),
  attempt: z.number().describe("1, or 2 for the scheduler's second try of a dump that failed in contention (CRIU's error, not a kill), alone at the end of the step"),
  outcome: z
    .enum(['migrated', 'dump-failed', 'restore-failed', 'cut-short', 'not-attempted'])
    .describe(
      'migrated: dumped on chost-src and restored on chost-dst; dump-failed: the dump failed (CRIU leaves the tree running on chost-src unless it was killed); restore-failed: dumped (the tree is gone from chost-src) but not restored: the container is lost; cut-short: its dump or restore was still running when the step stopped (a guest halted, or Ctrl-C), so it neither failed nor succeeded; not-attempted: the step stopped first (a guest halted, or the scheduler found no room)',
    ),
  dump: CriuCommandDoc('`criu dump` on chost-src').optional(),
  frozenMs: nullMs("CRIU's frozen time for this dump (its stats-dump); null when the dump wrote none").optional(),
  restore: CriuCommandDoc('`criu restore -d` on chost-dst (a restore that never started, because a guest halted, has wallMs null and says so in error)').optional(),
  check: z
    .strictObject({ ok: z.boolean().describe('It passed'), detail: text('What was found') })
    .optional()
    .describe('A migrated container checked afterwards: running on chost-dst, its log whole (no number missing or repeated across the move) and still growing'),
});

const GuestSampleDoc = z.strictObject({
  atMs: ms("From the batch's start, when the read was sent"),
  guest: GuestDoc('The guest read'),
  rttMs: nullMs(
    `Round trip of the read through the guest's control port (one program reading /proc; one read every ${SAMPLE_MS / 1000} s); null when the read failed or took longer than ${READ_TIMEOUT_MS / 1000} s, and then the sample has no other figure`,
  ),
  memAvailableMiB: mib('/proc/meminfo MemAvailable').optional(),
  memTotalMiB: mib('/proc/meminfo MemTotal').optional(),
  swapTotalMiB: mib('/proc/meminfo SwapTotal').optional(),
  swapFreeMiB: mib('/proc/meminfo SwapFree').optional(),
  psiMemSome10: pct('PSI memory some avg10: the share of the last 10 s some task waited for memory').optional(),
  psiMemFull10: pct('PSI memory full avg10: the share of the last 10 s every non-idle task waited for memory at once').optional(),
  psiCpuSome10: pct('PSI cpu some avg10: the share of the last 10 s some task waited for a CPU').optional(),
  psiIoSome10: pct('PSI io some avg10: the share of the last 10 s some task waited for I/O').optional(),
  load1: z.number().optional().describe('The 1-minute load average (/proc/loadavg)'),
  tasks: count("Threads in the guest: the total of /proc/loadavg's running/total field").optional(),
});

const HostSignalsDoc = z.strictObject({
  atMs: ms("From the batch's start"),
  cpuBusyPct: pct("Busy share of all the host's CPUs since the previous sample (iowait counts as idle); null on the first").nullable(),
  memAvailableMiB: mib("The host's MemAvailable").nullable(),
  psiMemSome10: pct("The host's PSI memory some avg10; null without PSI").nullable(),
  psiCpuSome10: pct("The host's PSI cpu some avg10; null without PSI").nullable(),
  load1: z.number().nullable().describe("The host's 1-minute load average"),
});

const BatchStepDoc = z.strictObject({
  count: count('N: the containers started on chost-src for this step'),
  mode: z.enum(BATCH_MODES).describe(`How the step moved them (as the request's mode): ${BATCH_MODE_DOC}`),
  startMs: ms("From the batch's start"),
  durationMs: ms('The whole step: starting the containers, moving and checking them, and ending them'),
  startContainersMs: ms('Starting the N containers: from the step\'s start until every one was writing its log (0 when the step stopped before)'),
  moves: arr(ContainerMoveDoc).describe('One per container and attempt, by index then attempt (also moves.csv)'),
  plan: z
    .strictObject({
      atOnce: count('Containers moved at once: their dumps together on chost-src, then their restores together on chost-dst'),
      admit: count("Containers chost-dst has room for, the first (moved alone to measure CRIU's memory) included; the rest stay on chost-src, said so in stoppedEarly"),
      reasons: arr(z.string()).describe('Each figure the plan rests on and the rule it fed, one sentence each; the first is what the first container, moved alone, measured'),
    })
    .optional()
    .describe("scheduled: the scheduler's plan for this step (src/containers/batch/schedule.ts)"),
  migrated: count('Containers whose last attempt migrated'),
  dumpFailures: count("Failed dumps, counted per attempt (a container the scheduler retried counts its first try even when the second migrated)"),
  restoreFailures: count('Failed restores: containers dumped and lost'),
  intact: count('Containers whose last attempt migrated and passed its check'),
  console: arr(ConsoleEventDoc).describe("The lines of the guests' consoles that said one was in trouble, from the step's start on"),
  halt: GuestHaltDoc('The guest that halted during this step, how and when (the ladder stops here)').optional(),
  stoppedEarly: text('Why the step ended before every container was moved (a guest halted, Ctrl-C, the scheduler found no room or its gate stopped admitting)').optional(),
});

/** batch.json of a container batch, as record.ts writes it (`miglab.container-batch/1`). */
export const ContainerBatchDocSchema = z
  .strictObject({
    schema: z.literal('miglab.container-batch/1').describe("Version of this file's format"),
    batchId: text("`<UTC date>-<time>-ctr-batch-<mode>-<suffix>`: the batch folder's name"),
    startedAt: text('ISO 8601, UTC'),
    finishedAt: text('ISO 8601, UTC'),
    request: z
      .strictObject({
        counts: arr(z.number()).describe('The ladder: N containers at each step, rising (a step after the one where a guest halted does not run)'),
        mode: z.enum(BATCH_MODES).describe(BATCH_MODE_DOC),
        waveSize: count('waves: dumps at once (only for that mode)').optional(),
        memoryMiB: mib('RAM of each container-host guest'),
        vcpus: count('vCPUs of each container-host guest'),
        rssMiB: mib("Resident memory each container holds on top of the counter's own (the workload's --rss-mib; 0: none)"),
        periodMs: ms('Each counter writes the next number of its sequence to its log this often'),
        files: z.enum(CONTAINER_FILES).describe("Where each container's log and output live while it runs: guest (the guest's own memory; a move copies them through the export beside the images) or export (on the shared NFS export, written over NFS from both guests)"),
      })
      .describe('What was asked (both guests run the QEMU CPU model qemu64)'),
    imageHash: text('The chost image both guests booted'),
    criuVersion: text('CRIU\'s version in chost-src (`criu --version`); empty when the guests did not come up'),
    lab: text("The lab's prefix"),
    steps: arr(BatchStepDoc).describe('Each step of the ladder that ran, in order'),
    guestSamples: arr(GuestSampleDoc).describe(`Both guests read through their control ports every ${SAMPLE_MS / 1000} s, by time (also samples.csv)`),
    hostSamples: arr(HostSignalsDoc).describe(`The machine the guests run on, every ${SAMPLE_MS / 1000} s (also samples.csv, source host)`),
    verdict: z
      .strictObject({
        haltedAt: count('N of the step where a guest halted; absent when none did').optional(),
        halt: GuestHaltDoc('The halt (as that step\'s halt)').optional(),
        bestIntact: count('The most containers migrated and checked intact in one step that ended without a halt'),
        when: text('When it failed (or that no guest halted), one paragraph, every figure from the record'),
        how: text('How, one paragraph: what failed and in what way (the guest\'s halt, the CRIU commands that failed)'),
        why: text('Why, one paragraph: the figures that explain it (memory, pressure, CRIU\'s own memory, commands at once)'),
        evidence: arr(z.string()).describe('The samples and console lines the explanation rests on, one per entry'),
      })
      .describe("The diagnosis (src/containers/batch/diagnose.ts), report.md's last section"),
    failure: text('Set when the batch itself failed (not a guest halting: that is a result): what went wrong').optional(),
  })
  .describe('batch.json: one container batch');

/** The files of a container batch folder. */
export const CONTAINER_BATCH_FOLDER_FILES: readonly { readonly names: readonly string[]; readonly what: string }[] = [
  { names: ['batch.json'], what: 'the whole record: the request, every step with every move and CRIU\'s outcome in its own words, every sample, the verdict; schema `miglab.container-batch/1` (below). A batch that failed writes it too, with `failure`' },
  { names: ['report.md'], what: "the report: what was done, a table of the steps, the scheduler's plan (scheduled mode), when, how and why a guest halted with the evidence, the plots" },
  { names: ['moves.csv'], what: 'one row per container move (below)' },
  { names: ['samples.csv'], what: 'one row per sample of a guest or of the host, by time (below)' },
  {
    names: ['plots/memory.png', 'plots/pressure.png', 'plots/migrated-per-step.png'],
    what: "(with .svg) each guest's MemAvailable, and its PSI memory, cpu and io some, over the batch with the steps' starts and the halt marked; the containers migrated, intact and failed at each step. A plot is drawn only when the record has its data",
  },
  { names: ['src.serial.log', 'dst.serial.log', 'src.qmp.jsonl', 'dst.qmp.jsonl'], what: "the two container hosts' consoles (the OOM killer's lines, panics, the agent's MIGLAB-* lines) and QMP transcripts, as a VM run's" },
  {
    names: ['criu/n<N>/c<i>/'],
    what: "CRIU's own files of container i's failed move at step N (`dump.log`, `restore.log`, `stats-dump`, ...), copied from the checkpoint export without the images (*.img); at most 50 a step, the lowest indexes. The images stay out of the results (removed from the export after each step unless `--keep-images`)",
  },
];

type MovesCsvColumn = (typeof MOVES_CSV_COLUMNS)[number];
type SamplesCsvColumn = (typeof SAMPLES_CSV_COLUMNS)[number];
type ColumnDoc = Omit<CsvDoc, 'key'>;

const commandColumns = <P extends 'dump' | 'restore'>(p: P, what: string) =>
  ({
    [`${p}_start_ms`]: { unit: 'ms', meaning: `${what}: from the step's start` },
    [`${p}_wall_ms`]: { unit: 'ms', meaning: `${what}: as the guest agent timed it (empty: it never returned)` },
    [`${p}_exit`]: { unit: '', meaning: `${what}: its exit status (empty: a signal ended it, or it never returned)` },
    [`${p}_signal`]: { unit: '', meaning: `${what}: the signal that ended it (9: the OOM killer or a deadline)` },
    [`${p}_maxrss_kib`]: { unit: 'KiB', meaning: `${what}: CRIU's peak resident memory` },
  }) as Record<`${P}_${'start_ms' | 'wall_ms' | 'exit' | 'signal' | 'maxrss_kib'}`, ColumnDoc>;

// Keyed by report.ts's column lists: TypeScript wants a line for every column and no other.
const MOVES_COLUMN_DOCS: Readonly<Record<MovesCsvColumn, ColumnDoc>> = {
  step_count: { unit: '', meaning: 'N of the step' },
  index: { unit: '', meaning: 'The container, 0-based within its step' },
  attempt: { unit: '', meaning: "1, or 2 for the scheduler's second try alone" },
  outcome: { unit: '', meaning: 'migrated, dump-failed, restore-failed, cut-short or not-attempted (batch.json, above)' },
  ...commandColumns('dump', '`criu dump` on chost-src'),
  frozen_ms: { unit: 'ms', meaning: "CRIU's frozen time for the dump (stats-dump)" },
  ...commandColumns('restore', '`criu restore` on chost-dst'),
  check_ok: { unit: '', meaning: 'true or false: the migrated container ran on chost-dst, its log whole and growing (empty: not checked)' },
  check_detail: { unit: '', meaning: 'What the check found' },
  error: { unit: '', meaning: "CRIU's error lines, `dump: ...; restore: ...`" },
};

const GUESTS_ONLY = ' (guests only)';
const SAMPLES_COLUMN_DOCS: Readonly<Record<SamplesCsvColumn, ColumnDoc>> = {
  source: { unit: '', meaning: 'chost-src, chost-dst or host' },
  at_ms: { unit: 'ms', meaning: "From the batch's start" },
  rtt_ms: { unit: 'ms', meaning: `The read's round trip through the guest's control port (empty: it did not answer, and the row has no other figure)${GUESTS_ONLY}` },
  mem_available_mib: { unit: 'MiB', meaning: 'MemAvailable' },
  mem_total_mib: { unit: 'MiB', meaning: `MemTotal${GUESTS_ONLY}` },
  swap_total_mib: { unit: 'MiB', meaning: `SwapTotal${GUESTS_ONLY}` },
  swap_free_mib: { unit: 'MiB', meaning: `SwapFree${GUESTS_ONLY}` },
  psi_mem_some10: { unit: '%', meaning: 'PSI memory some avg10' },
  psi_mem_full10: { unit: '%', meaning: `PSI memory full avg10${GUESTS_ONLY}` },
  psi_cpu_some10: { unit: '%', meaning: 'PSI cpu some avg10' },
  psi_io_some10: { unit: '%', meaning: `PSI io some avg10${GUESTS_ONLY}` },
  load1: { unit: '', meaning: 'The 1-minute load average' },
  tasks: { unit: 'count', meaning: `Threads (/proc/loadavg's total)${GUESTS_ONLY}` },
  cpu_busy_pct: { unit: '%', meaning: "Busy share of all the host's CPUs since the previous sample (host only)" },
};

/** moves.csv's columns, in report.ts's order. */
export const CONTAINER_BATCH_MOVES_COLUMNS: readonly CsvDoc[] = MOVES_CSV_COLUMNS.map((key) => ({ key, ...MOVES_COLUMN_DOCS[key] }));
/** samples.csv's columns, in report.ts's order. */
export const CONTAINER_BATCH_SAMPLES_COLUMNS: readonly CsvDoc[] = SAMPLES_CSV_COLUMNS.map((key) => ({ key, ...SAMPLES_COLUMN_DOCS[key] }));

const INTRO = `# results/

<!-- Generated by src/results/readme.ts from the result schemas and the CSV column lists: do
not edit by hand; run \`make results-readme\` (a unit test fails when this file is out of date). -->

Every miglab command that measures something writes one folder here and nothing else. Generated
content is git-ignored; keep, copy or archive the folders you care about. Folders are made 0700
and files 0600: a guest's memory, disk and console can hold secrets. Before a run starts miglab
checks that the folder can be written and has at least 64 MiB free; a disk that fills during a
run stops the run cleanly (QEMUs stopped, the reason named, exit status 7).

Each JSON file carries a \`schema\` version. miglab reads its results back only through these
schemas (sweep resume, \`miglab plot\`, \`miglab compare\`): a file of an older version is
migrated when it can be (a homework.json without a version is read as \`miglab.homework/0\`) or
refused with one line naming the file, its version and what to do.

Units: every figure's unit is in its name (\`downtimeMs\`, \`memoryMiB\`, \`throughputMbps\`) and
in the unit column below. Sizes are binary (MiB = 2^20 bytes, as QEMU counts); link rates are
decimal (Mbit/s = 10^6 bit/s, as tc counts). Numbers are rounded to the precision they were
measured with: ms to 0.1 (µs below 1 ms), MiB, MiB/s, Mbit/s and % to 0.1, seconds to 0.001,
bytes and pages whole, ratios to 3 significant digits. A figure that was not measured is absent
(an empty CSV cell), never 0.`;

/** The whole of results/README.md. */
export function renderResultsReadme(): string {
  const parts: string[] = [INTRO];
  const h = (level: number, text: string) => parts.push(`${'#'.repeat(level)} ${text}`);
  const p = (text: string) => parts.push(text);

  h(2, 'A run: `results/<run-id>/`');
  p(
    'Written by `miglab migrate` (and by every run of a sweep, a batch and the homework). The run id is `<UTC date>-<time>-<name derived from the scenario>-<suffix>`.',
  );
  p(fileTable(RUN_FOLDER_FILES));
  h(3, 'run.json');
  p(fieldTable(fieldDocs(RunReportSchema)));
  h(3, 'timeline.csv');
  p(csvTable(fromSchema(SampleSchema)));
  h(3, 'passes.csv');
  p(csvTable(fromSchema(PassSchema)));
  h(3, 'probe.csv');
  p(
    'Written by the probe tool (vm-images/tools/miglab-probe.c). A first `#` line holds its settings and totals (`target`, `interval_us`, `realtime_minus_monotonic_ns`, `sent`, `received`, ...); then the header and one row per probe.',
  );
  p(csvTable(PROBE_DOCS));

  h(2, 'A container run: `results/<run-id>/` (`miglab containers migrate`)');
  p(
    "One container moved with CRIU from the container-host guest chost-src to chost-dst (README, Containers). The run id is `<UTC date>-<time>-ctr-<workload>-<strategy>[-page-server]-<suffix>`. miglab does not read these folders back yet: `miglab plot` and `miglab compare` take VM runs only.",
  );
  p(fileTable(CONTAINER_RUN_FOLDER_FILES));
  h(3, 'run.json (container)');
  p(fieldTable(fieldDocs(ContainerRunDocSchema)));
  h(3, 'rounds.csv');
  p(csvTable(CONTAINER_ROUNDS_COLUMNS));

  h(2, 'A container batch (`miglab containers batch`)');
  p(
    "Written to `results/<batch-id>/`, the batch id `<UTC date>-<time>-ctr-batch-<mode>-<suffix>`. A ladder of steps (N = 1, 10, 100, ... containers) on the same two container-host guests: each step starts N counter containers on chost-src, moves them to chost-dst with CRIU in the chosen mode, checks them and ends them, while both guests and the host are sampled; the ladder stops at the first step where a guest halts, that moves none of its containers, or that stops early (README, Containers). miglab does not read these folders back.",
  );
  p(fileTable(CONTAINER_BATCH_FOLDER_FILES));
  h(3, 'batch.json (container batch)');
  p(fieldTable(fieldDocs(ContainerBatchDocSchema)));
  h(3, 'moves.csv');
  p('One row per container move, as batch.json\'s `steps[].moves[]`; an empty cell where the move has no figure.');
  p(csvTable(CONTAINER_BATCH_MOVES_COLUMNS));
  h(3, 'samples.csv (container batch)');
  p("One row per sample, batch.json's `guestSamples` and `hostSamples` by time; a host row leaves the guests' columns empty and a guest row `cpu_busy_pct`.");
  p(csvTable(CONTAINER_BATCH_SAMPLES_COLUMNS));

  h(2, 'A container sweep: `results/<UTC date>-<time>-ctr-sweep-<suffix>/`');
  p(
    [
      '| file | what |',
      '|---|---|',
      '| `<run-id>/` | the folder of each container run (above) |',
      '| `sweep.json` | the axes, the points, every run\'s figures or failure and the summary rows; schema `miglab.container-sweep/1` |',
      '| `sweep.csv` | one row per run: strategy, working set, write rate, repetition, verdict, CRIU\'s frozen time, client downtime, restore, total, pre-dumps, run id, failure |',
      '| `summary.md` | per strategy and point: intact runs, median (min-max) frozen time and client downtime |',
      '| `plots/` | frozen time and client downtime against the working set and against the write rate, per strategy, median with min-max whiskers; PNG and SVG |',
    ].join('\n'),
  );

  h(2, 'A sweep: `results/sweep-NAME/`');
  p(
    [
      '| file | what |',
      '|---|---|',
      '| `sweep.json` | the spec, the expanded points and what happened to every run; schema `miglab.sweep/1` (below) |',
      '| `POINT/repK/` | one run folder each (above) |',
      '| `summary.csv` | count, mean, median, stdev, min and max of each figure per point |',
      '| `faults.csv` | the fault x outcome table, when points inject faults |',
      '| `matrix.csv` | the QEMU version matrix, when points differ in their QEMU builds (grid.qemu) |',
      '| `policies.csv` | the switchover policies side by side, when points differ in their policy (grid.switchover) |',
      '| `report.md`, `report.html` | tables and figures (`miglab plot` draws them again from the saved runs) |',
      '| `plots/` | the figures, PNG and SVG |',
    ].join('\n'),
  );
  h(3, 'sweep.json');
  p(fieldTable(fieldDocs(SweepFileSchema)));
  h(3, 'summary.csv');
  p(csvTable(summaryColumns()));
  h(3, 'faults.csv');
  p(csvTable(fromColumns(FAULT_COLUMNS)));
  h(3, 'matrix.csv');
  p(csvTable(fromColumns(MATRIX_COLUMNS)));
  h(3, 'policies.csv');
  p(csvTable(fromColumns(POLICY_COLUMNS)));

  h(2, 'A batch: `results/batch-ID/`');
  p(
    [
      '| file | what |',
      '|---|---|',
      '| `batch.json` | the whole record: spec, every attempt, every host sample, the diagnosis; schema `miglab.batch/1` (below) |',
      '| `nN-MODE/gK/` | the run folder of each guest\'s migration (above) |',
      '| `steps.csv` | one row per step |',
      '| `migrations.csv` | one row per migration attempt |',
      '| `comparison.csv` | naive parallel against the scheduler at each N (only with `--compare`) |',
      '| `samples.csv` | one row per host sample |',
      '| `events.csv` | every migration event on the batch\'s time axis |',
      '| `report.md`, `report.html`, `plots/` | the report (see docs/batch.md) |',
    ].join('\n'),
  );
  h(3, 'batch.json');
  p(fieldTable(fieldDocs(BatchFileSchema)));
  for (const [file, cols] of [
    ['steps.csv', STEP_COLUMNS],
    ['migrations.csv', MIGRATION_COLUMNS],
    ['comparison.csv', COMPARISON_COLUMNS],
    ['samples.csv', SAMPLE_COLUMNS],
    ['events.csv', EVENT_COLUMNS],
  ] as const) {
    h(3, file);
    p(csvTable(fromColumns(cols as readonly Column<never>[])));
  }

  h(2, 'The homework: `results/<UTC date>-<time>-homework-<suffix>/`');
  p(
    [
      '| file | what |',
      '|---|---|',
      "| `homework.json` | every figure of the homework; schema `miglab.homework/1` (below) |",
      '| `accel.csv`, `devices.csv`, `during-migration.csv` | the CSV behind each table (below) |',
      '| `migration/` | the run folder of section 3\'s migration (above), plus `perf-src.csv` and `perf-dst.csv` (below) and `perf-src.log`, `perf-dst.log` (perf\'s output as it printed it, its warnings included) |',
      '| `report.md`, `report.html`, `plots/` | the report |',
    ].join('\n'),
  );
  h(3, 'homework.json');
  p(fieldTable(fieldDocs(HomeworkResultsSchema)));
  for (const [file, cols] of [
    ['accel.csv', ACCEL_CSV_COLUMNS],
    ['devices.csv', DEVICES_CSV_COLUMNS],
    ['during-migration.csv', DURING_COLUMNS],
  ] as const) {
    h(3, file);
    p(csvTable(fromColumns(cols as readonly Column<never>[])));
  }
  h(3, 'perf-src.csv, perf-dst.csv');
  p('`perf stat -x, -I` on each QEMU process during the migration, parsed from its output: one row per event and interval.');
  p(csvTable(fromColumns(PERF_COLUMNS as readonly Column<never>[])));

  h(2, 'A COLO run: `results/<UTC date>-<time>-colo-<suffix>/`');
  p(
    [
      '| file | what |',
      '|---|---|',
      "| `colo.json` | the run: what was asked, every monitor command, what was measured; schema `miglab.colo/1` (below) |",
      '| `report.md` | the run in words and tables |',
      "| `primary.colo.trace`, `secondary.colo.trace` | each QEMU's COLO trace points (`-trace colo_*`), as QEMU wrote them: the checkpoints and pauses are read from these |",
      "| `probe.csv` | the client's UDP probe, one row per probe (as for a migration run, above) |",
      "| `src.serial.log`, `dst.serial.log`, `src.qmp.jsonl`, `dst.qmp.jsonl` | each QEMU's console and QMP transcript (src: the primary, dst: the secondary) |",
    ].join('\n'),
  );
  h(3, 'colo.json');
  p(fieldTable(fieldDocs(ColoRecordSchema)));
  h(2, 'A COLO series: `results/<UTC date>-<time>-colo-series-<suffix>/`');
  p('Written by `miglab colo --interval A,B,... --repeat N` and `miglab bench --which colo`: one COLO run folder (above) per interval and repetition, `series.json` (the settings, the rows below, the runs\' ids), `series.md` with two figures (`plots/`), and:');
  h(3, 'series.csv');
  p(csvTable(fromColumns(SERIES_COLUMNS as readonly Column<never>[])));

  h(2, 'A comparison: `results/compare-ID/`');
  p(
    'Written by `miglab compare A B ...` (runs or sweeps side by side; the first, A, is the baseline). `report.md` and `report.html` hold the tables (each figure of each set, with its delta against A) and the figures (`plots/`: for runs, each figure\'s change against A\'s in %, 0 being "as A"; for sweeps, downtime, total time and RAM sent by point), `compare.csv` the same figures in long form.',
  );
  p(`Figures compared: ${COMPARE_RUN_FIGURES.map((f) => `\`${f.key}\` (${f.title})`).join(', ')}.`);
  h(3, 'compare.csv');
  p(csvTable(COMPARE_CSV_COLUMNS.map((c) => ({ key: c.key, unit: c.unit, meaning: c.about }))));

  h(2, 'Benchmarks: `results/bench/`');
  p(
    'The benchmark figures, each a `.json` with a `.md` beside it (`foundation`, `downtime`, `batch-bench`, `faults` with the fault sweep `sweep-faults-bench/` and the TLS sweep `sweep-tls-bench/`, `hosts`, `containers`, `containers-batch`, `qemu`, `runs`); every `.md` ends with the spread of its repetitions (median and coefficient of variation of total time and downtime per case, `spread` in the `.json`); see README, Tests and benchmarks.',
  );
  return `${parts.join('\n\n')}\n`;
}

/** Write results/README.md under `repoRoot`. */
export async function writeResultsReadme(repoRoot: string): Promise<string> {
  const file = join(repoRoot, 'results', 'README.md');
  await writeFile(file, renderResultsReadme());
  return file;
}
