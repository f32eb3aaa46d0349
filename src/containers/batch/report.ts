// A container batch's report.md, moves.csv and samples.csv, and the rows its plots draw: what was
// done at each step, a table of the steps, the scheduler's reasons, then when, how and why a guest
// halted. Every figure is read from the record (batch.json) alone.
import { stringify } from 'csv-stringify/sync';
import type { Marker } from '../../plot/charts.js';
import { markdown, type Column, type MarkdownDoc } from '../../report/markdown.js';
import { max, median } from '../../stats/index.js';
import { cutShortMoves, dumpsAtOnce, dumpsOf, memoryLow, mib, ms, notAttempted, oomKillCount, pressurePeak, restoresAtOnce, secs, stepSamples, wallsOf } from './diagnose.js';
import type { BatchStep, ContainerBatchRecord, ContainerBatchRequest, ContainerMove, CriuCommandOutcome, GuestName } from './types.js';

const MISSING = '–';
const ms0 = (v: number | undefined) => (v === undefined ? MISSING : ms(v));
const mib0 = (v: number | undefined) => (v === undefined ? MISSING : mib(v));
const pct1 = (v: number | undefined) => (v === undefined ? MISSING : `${v.toFixed(1)} %`);

/** The guest names as table titles and series: short, since the table is wide. */
const SHORT: Readonly<Record<GuestName, string>> = { 'chost-src': 'src', 'chost-dst': 'dst' };

// ---- what was done ----

function modeText(req: ContainerBatchRequest): string {
  switch (req.mode) {
    case 'one-by-one':
      return 'one-by-one: one container dumped, then restored, then the next';
    case 'all-at-once':
      return 'all-at-once: every dump at once, then every restore at once';
    case 'waves':
      return `waves: ${req.waveSize ?? 'an unrecorded number of'} dumps at once, then their restores, wave after wave`;
    case 'scheduled':
      return "scheduled: the scheduler's plan for each step sets how many dumps and restores run at once and how many containers chost-dst can take";
  }
}

function rssText(req: ContainerBatchRequest): string {
  return req.rssMiB > 0 ? `holds ${mib(req.rssMiB)} of resident memory` : 'holds no padding beyond the counter\'s own memory';
}

function whatWasDone(md: MarkdownDoc, r: ContainerBatchRecord): void {
  const q = r.request;
  md.heading(2, 'What was done')
    .paragraph(
      `A ladder of steps, N = ${q.counts.join(', ')} containers, in mode ${modeText(q)}. Two guests of the chost image ${r.imageHash}, chost-src and chost-dst, each with ${mib(q.memoryMiB)} of memory and ${q.vcpus} vCPU, CRIU ${r.criuVersion}. Each container is a counter that writes the next number of its sequence to its log every ${ms(q.periodMs)} and ${rssText(q)}. The ladder stops at the first step where a guest halts, that moves none of its containers, or that stops early (a command stuck, the gate closed, no room on chost-dst, the containers could not be checked).`,
    )
    .paragraph('Each step:')
    .list(
      [
        `N counter containers are started on chost-src, each by the guest agent as PID 1 of its own PID namespace (so its PIDs never clash on chost-dst), ${q.files === 'guest' ? "its log and output in chost-src's own memory" : 'its log and output on the shared NFS export /ckpt that both guests mount (--files export: every running counter writes over NFS)'}.`,
        `Each container is dumped on chost-src with \`criu dump\`, its images written to the shared NFS export /ckpt; the dump kills the tree on chost-src${q.files === 'guest' ? ', and its log and output are copied to /ckpt beside the images, as a migration copies a rootfs' : ''}. How many dump at once is the mode's: ${modeText(q)}.`,
        `Each dumped container is restored on chost-dst with \`criu restore -d\` from the same images (-d: CRIU returns once the tree runs on its own)${q.files === 'guest' ? ", after its log and output are copied from /ckpt into chost-dst's memory at the paths it had them open (CRIU checks each file's size)" : ''}.`,
        `Each restored container is checked: running on chost-dst, its log whole (no number missing, none repeated across the move) and still growing after the restore.`,
      ],
      { ordered: true },
    )
    .paragraph(
      "Through the step both guests are sampled through their control port (MemAvailable, swap, PSI, load, tasks, and the port's round trip), the host likewise, and the guests' consoles are read for OOM kills, panics and the agent exiting.",
    );
}

// ---- the table of steps ----

export interface StepRow {
  count: number;
  mode: string;
  migrated: number;
  intact: number;
  dumpFailures: number;
  restoreFailures: number;
  cutShort: number;
  notAttempted: number;
  oomKills: number;
  halted: string;
  durationMs: number;
  dumpsAtOnce: number;
  restoresAtOnce: number;
  dumpWallMedianMs?: number;
  dumpWallMaxMs?: number;
  frozenMedianMs?: number;
  srcMemMinMiB?: number;
  dstMemMinMiB?: number;
  srcPsiMemMax?: number;
  dstPsiMemMax?: number;
}

function guestFigures(s: BatchStep, r: ContainerBatchRecord, g: GuestName): { memMin?: number; psiMax?: number } {
  const inStep = stepSamples(s, r.guestSamples, g);
  return { memMin: memoryLow(inStep)?.value, psiMax: pressurePeak(inStep, 'psiMemSome10')?.value };
}

export function stepRows(r: ContainerBatchRecord): StepRow[] {
  return r.steps.map((s) => {
    const walls = wallsOf(dumpsOf(s));
    const src = guestFigures(s, r, 'chost-src');
    const dst = guestFigures(s, r, 'chost-dst');
    return {
      count: s.count,
      mode: s.mode,
      migrated: s.migrated,
      intact: s.intact,
      dumpFailures: s.dumpFailures,
      restoreFailures: s.restoreFailures,
      cutShort: cutShortMoves(s),
      notAttempted: notAttempted(s),
      oomKills: oomKillCount(s),
      halted: s.halt ? `${s.halt.guest}: ${s.halt.how} at ${secs(s.halt.atMs - s.startMs)}` : 'no',
      durationMs: s.durationMs,
      dumpsAtOnce: dumpsAtOnce(s),
      restoresAtOnce: restoresAtOnce(s),
      dumpWallMedianMs: median(walls),
      dumpWallMaxMs: max(walls),
      frozenMedianMs: median(s.moves.map((m) => m.frozenMs)),
      srcMemMinMiB: src.memMin,
      dstMemMinMiB: dst.memMin,
      srcPsiMemMax: src.psiMax,
      dstPsiMemMax: dst.psiMax,
    };
  });
}

export const STEP_COLUMNS: Column<StepRow>[] = [
  { key: 'count', title: 'N' },
  { key: 'mode', title: 'mode' },
  { key: 'migrated', title: 'migrated' },
  { key: 'intact', title: 'intact' },
  { key: 'dumpFailures', title: 'dump failures' },
  { key: 'restoreFailures', title: 'restore failures' },
  { key: 'cutShort', title: 'cut short' },
  { key: 'notAttempted', title: 'not attempted' },
  { key: 'oomKills', title: 'OOM kills' },
  { key: 'halted', title: 'halted? (into the step)' },
  { key: 'durationMs', title: 'duration', format: ms0, align: 'right' },
  { key: 'dumpsAtOnce', title: 'dumps at once (most)' },
  { key: 'restoresAtOnce', title: 'restores at once (most)' },
  { key: 'dumpWallMedianMs', title: 'dump wall median', format: ms0, align: 'right' },
  { key: 'dumpWallMaxMs', title: 'dump wall max', format: ms0, align: 'right' },
  { key: 'frozenMedianMs', title: 'frozen median', format: ms0, align: 'right' },
  { key: 'srcMemMinMiB', title: `min MemAvailable ${SHORT['chost-src']}`, format: mib0, align: 'right' },
  { key: 'dstMemMinMiB', title: `min MemAvailable ${SHORT['chost-dst']}`, format: mib0, align: 'right' },
  { key: 'srcPsiMemMax', title: `max PSI mem some ${SHORT['chost-src']}`, format: pct1, align: 'right' },
  { key: 'dstPsiMemMax', title: `max PSI mem some ${SHORT['chost-dst']}`, format: pct1, align: 'right' },
];

/** What the table's figures are, and any step that ended early. */
function stepNotes(r: ContainerBatchRecord): string[] {
  return [
    'migrated: dumped on chost-src and restored on chost-dst; intact: migrated and its check passed. Dump wall: the agent\'s timing of `criu dump`; frozen: CRIU\'s own frozen time (stats-dump). Minimum MemAvailable and maximum PSI memory some (share of the last 10 s some task waited for memory) over the guest\'s samples during the step; – where none was read.',
    ...r.steps.flatMap((s) => [
      ...(s.stoppedEarly ? [`N=${s.count} stopped early: ${s.stoppedEarly}.`] : []),
      ...(s.halt ? [`N=${s.count}: ${s.halt.guest} halted (${s.halt.how}) at ${secs(s.halt.atMs)} on the batch's clock: ${s.halt.detail}.`] : []),
    ]),
  ];
}

function plans(md: MarkdownDoc, r: ContainerBatchRecord): void {
  const planned = r.steps.filter((s) => s.plan !== undefined);
  if (planned.length === 0) return;
  md.heading(2, "The scheduler's plan");
  for (const s of planned) {
    const p = s.plan!;
    md.heading(3, `N=${s.count}: ${p.atOnce} at once (dumps together, then restores), ${p.admit} of ${s.count} admitted`).list(p.reasons);
  }
}

function headline(r: ContainerBatchRecord): string {
  const v = r.verdict;
  if (v.halt && v.haltedAt !== undefined) return `${v.halt.guest} halted at N=${v.haltedAt}`;
  const top = max(r.steps.map((s) => s.count));
  return top === undefined ? 'no step ran' : `no guest halted up to N=${top}`;
}

function verdictSection(md: MarkdownDoc, r: ContainerBatchRecord): void {
  const v = r.verdict;
  md.heading(2, 'When, how and why it failed')
    .paragraph(`**When.** ${v.when}`)
    .paragraph(`**How.** ${v.how}`)
    .paragraph(`**Why.** ${v.why}`)
    .paragraph(`Most containers migrated intact in one step without a halt: ${v.bestIntact}.`);
  if (v.evidence.length > 0) md.paragraph('The evidence:').list(v.evidence.map((e) => `\`${e.replace(/`/g, "'")}\``));
}

export type BatchPlot = 'memory' | 'pressure' | 'migrated-per-step';

const PLOT_ALT: Readonly<Record<BatchPlot, string>> = {
  memory: 'MemAvailable of each guest over the batch',
  pressure: 'PSI memory, cpu and io some of each guest over the batch',
  'migrated-per-step': 'Containers migrated, intact and failed at each step',
};

/** The plots report.md shows: the ones the record has data for (record.ts draws the same). */
export function plotsOf(r: ContainerBatchRecord): { name: BatchPlot; alt: string }[] {
  const has: Readonly<Record<BatchPlot, boolean>> = { memory: memoryRows(r).length > 0, pressure: pressureRows(r).length > 0, 'migrated-per-step': r.steps.length > 0 };
  return (Object.keys(PLOT_ALT) as BatchPlot[]).filter((name) => has[name]).map((name) => ({ name, alt: PLOT_ALT[name] }));
}

function filesSection(md: MarkdownDoc, r: ContainerBatchRecord): void {
  const plots = plotsOf(r);
  md.heading(2, 'Files').list([
    'batch.json: the whole record (schema miglab.container-batch/1): every step, every move with CRIU\'s outcome and error lines, every sample, the verdict.',
    'moves.csv: one row per container move (step N, index, attempt, outcome, the dump and restore figures, the check); an empty cell where the record has no figure.',
    'samples.csv: one row per sample, its `source` chost-src, chost-dst or host; an empty round trip on a guest\'s row is a read it did not answer.',
    ...(plots.length > 0 ? [`plots/: ${plots.map((p) => `${p.name}.png`).join(', ')} (and SVG), times in seconds from the batch's start, the steps' starts marked.`] : []),
  ]);
  for (const p of plots) md.image(p.alt, `plots/${p.name}.png`);
}

/** report.md of a container batch. */
export function batchReportMarkdown(r: ContainerBatchRecord): string {
  const md = markdown()
    .heading(1, `Container batch ${r.batchId}: ${headline(r)}`)
    .paragraph(`\`miglab containers batch\` on lab ${r.lab}, from ${r.startedAt} to ${r.finishedAt}.`);
  if (r.failure !== undefined) md.paragraph(`**The batch itself failed** (not a guest halting): ${r.failure}`);
  whatWasDone(md, r);
  md.heading(2, 'The steps').table(STEP_COLUMNS, stepRows(r)).list(stepNotes(r));
  plans(md, r);
  verdictSection(md, r);
  filesSection(md, r);
  return md.render();
}

// ---- CSV ----

/** A CSV cell: empty when there is no figure (never "n/a" in a number column). */
const cell = (x: number | null | undefined, digits?: number) => (x === null || x === undefined || !Number.isFinite(x) ? '' : digits === undefined ? x : x.toFixed(digits));

type CommandCells<P extends string> = Record<`${P}_${'start_ms' | 'wall_ms' | 'exit' | 'signal' | 'maxrss_kib'}`, string | number>;

function commandCells<P extends 'dump' | 'restore'>(prefix: P, c: CriuCommandOutcome | undefined): CommandCells<P> {
  return {
    [`${prefix}_start_ms`]: cell(c?.startMs, 1),
    [`${prefix}_wall_ms`]: cell(c?.wallMs, 1),
    [`${prefix}_exit`]: cell(c?.exitCode),
    [`${prefix}_signal`]: cell(c?.signal),
    [`${prefix}_maxrss_kib`]: cell(c?.maxRssKiB),
  } as CommandCells<P>;
}

function moveError(m: ContainerMove): string {
  return [m.dump?.error && `dump: ${m.dump.error}`, m.restore?.error && `restore: ${m.restore.error}`].filter(Boolean).join('; ');
}

/** moves.csv's columns, in order: movesCsv writes them, results/README.md documents each (src/results/readme.ts). */
export const MOVES_CSV_COLUMNS = [
  'step_count',
  'index',
  'attempt',
  'outcome',
  'dump_start_ms',
  'dump_wall_ms',
  'dump_exit',
  'dump_signal',
  'dump_maxrss_kib',
  'frozen_ms',
  'restore_start_ms',
  'restore_wall_ms',
  'restore_exit',
  'restore_signal',
  'restore_maxrss_kib',
  'check_ok',
  'check_detail',
  'error',
] as const;

/** moves.csv: one row per container move. */
export function movesCsv(r: ContainerBatchRecord): string {
  return stringify(
    r.steps.flatMap((s) =>
      // Typed by the column list: a column without its cell, or a cell written here without its column, is a type error.
      s.moves.map((m): Record<(typeof MOVES_CSV_COLUMNS)[number], string | number> => ({
        step_count: s.count,
        index: m.index,
        attempt: m.attempt,
        outcome: m.outcome,
        ...commandCells('dump', m.dump),
        frozen_ms: cell(m.frozenMs, 1),
        ...commandCells('restore', m.restore),
        check_ok: m.check === undefined ? '' : String(m.check.ok),
        check_detail: m.check?.detail ?? '',
        error: moveError(m),
      })),
    ),
    { header: true, columns: [...MOVES_CSV_COLUMNS] },
  );
}

/** samples.csv's columns, in order: samplesCsv writes them, results/README.md documents each (src/results/readme.ts). */
export const SAMPLES_CSV_COLUMNS = [
  'source',
  'at_ms',
  'rtt_ms',
  'mem_available_mib',
  'mem_total_mib',
  'swap_total_mib',
  'swap_free_mib',
  'psi_mem_some10',
  'psi_mem_full10',
  'psi_cpu_some10',
  'psi_io_some10',
  'load1',
  'tasks',
  'cpu_busy_pct',
] as const;

/** samples.csv: one row per guest sample and per host sample, by time, with the `source` of each. */
export function samplesCsv(r: ContainerBatchRecord): string {
  const guests = r.guestSamples.map((s) => ({
    source: s.guest,
    at_ms: s.atMs,
    rtt_ms: cell(s.rttMs, 1),
    mem_available_mib: cell(s.memAvailableMiB),
    mem_total_mib: cell(s.memTotalMiB),
    swap_total_mib: cell(s.swapTotalMiB),
    swap_free_mib: cell(s.swapFreeMiB),
    psi_mem_some10: cell(s.psiMemSome10),
    psi_mem_full10: cell(s.psiMemFull10),
    psi_cpu_some10: cell(s.psiCpuSome10),
    psi_io_some10: cell(s.psiIoSome10),
    load1: cell(s.load1),
    tasks: cell(s.tasks),
    cpu_busy_pct: '',
  }));
  const host = r.hostSamples.map((s) => ({
    source: 'host',
    at_ms: s.atMs,
    mem_available_mib: cell(s.memAvailableMiB),
    psi_mem_some10: cell(s.psiMemSome10),
    psi_cpu_some10: cell(s.psiCpuSome10),
    load1: cell(s.load1),
    cpu_busy_pct: cell(s.cpuBusyPct, 1),
  }));
  // A stable sort: at one instant, the guests' rows keep their place before the host's.
  const rows = [...guests, ...host].sort((a, b) => a.at_ms - b.at_ms);
  return stringify(rows, { header: true, columns: [...SAMPLES_CSV_COLUMNS] });
}

// ---- the rows of the plots ----

/** MemAvailable of each guest, seconds from the batch's start. */
export function memoryRows(r: ContainerBatchRecord): { tS: number; guest: GuestName; memAvailableMiB: number }[] {
  return r.guestSamples.flatMap((s) => (s.memAvailableMiB === undefined ? [] : [{ tS: s.atMs / 1000, guest: s.guest, memAvailableMiB: s.memAvailableMiB }]));
}

/** PSI memory, cpu and io some of each guest, one series per guest and resource. */
export function pressureRows(r: ContainerBatchRecord): { tS: number; series: string; psiPct: number }[] {
  return r.guestSamples.flatMap((s) => [
    ...(s.psiMemSome10 === undefined ? [] : [{ tS: s.atMs / 1000, series: `${s.guest} memory some`, psiPct: s.psiMemSome10 }]),
    ...(s.psiCpuSome10 === undefined ? [] : [{ tS: s.atMs / 1000, series: `${s.guest} cpu some`, psiPct: s.psiCpuSome10 }]),
    // I/O: how a saturated shared export showed (--files export stalled with it at 95-100 %).
    ...(s.psiIoSome10 === undefined ? [] : [{ tS: s.atMs / 1000, series: `${s.guest} io some`, psiPct: s.psiIoSome10 }]),
  ]);
}

/** Containers per step by what became of them: the bars of plots/migrated-per-step. */
export function stepBars(r: ContainerBatchRecord): { step: string; what: string; containers: number }[] {
  return r.steps.flatMap((s) =>
    (
      [
        ['migrated', s.migrated],
        ['intact', s.intact],
        ['dump failed', s.dumpFailures],
        ['restore failed', s.restoreFailures],
        // A step a halt stopped: what it never finished shows, not an empty chart.
        ['cut short', cutShortMoves(s)],
        ['not attempted', notAttempted(s)],
      ] as const
    ).map(([what, containers]) => ({ step: `N=${s.count}`, what, containers })),
  );
}

/** Each step's start (and the halt, in red) on the plots' time axis. */
export function stepMarkers(r: ContainerBatchRecord): Marker[] {
  return r.steps.flatMap((s) => [
    { x: s.startMs / 1000, label: `N=${s.count}` },
    ...(s.halt ? [{ x: s.halt.atMs / 1000, label: `${s.halt.guest} halted`, emphasis: true }] : []),
  ]);
}

