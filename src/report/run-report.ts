// A run folder's own report: report.md and report.html beside run.json, read from the run report
// alone (as saved), so `miglab plot RUN_DIR` draws the same report again. It says how the run
// ended (and where it failed), the three downtimes each with its source, the times, the RAM and
// the throughput, the pre-copy passes, what was in force and the commands; its figures show
// remaining RAM and throughput over time with the passes and the switchover marked. A failed or
// interrupted run gets one too: what was measured, and what was not and why.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { lineChart, type PlannedChart } from '../plot/charts.js';
import type { DrawingThread } from '../plot/drawing-thread.js';
import { describeSides, type RunReport } from '../migrate/report.js';
import { dirtyRateText } from '../migrate/figures.js';
import { MiB } from '../util/units.js';
import { writeReport, type WrittenReport } from './html.js';
import { fmtMbps, fmtMiB, fmtMs, markdown, type Column, type MarkdownDoc } from './markdown.js';
import { markersOf, migrationMarks } from './migration-marks.js';
import { postcopySection } from './postcopy.js';
import { breakdownLines } from '../qemu/downtime-trace.js';
import { silenceChart, silenceSection } from './client-silence.js';

export interface RunReportWritten extends WrittenReport {
  /** PNG files of the figures drawn (each has an SVG beside it); none when figures were left for `miglab plot`. */
  readonly figures: readonly string[];
}

export interface RunReportOptions {
  /**
   * Draw the figures (plots/). Off for the runs of a sweep or a batch: drawing takes the Node
   * process's CPU for about a second per run, in the middle of other runs' sampling; the report
   * then says that `miglab plot` draws them.
   */
  readonly figures: boolean;
  /** Why the figures could not be drawn, said in the report in their place. */
  readonly figureProblem?: string;
  /** With `figures`: what was drawn while the run cleaned up, and the thread that drew it. */
  readonly ahead?: DrawnAhead;
}

/**
 * Figures drawn ahead of the final record (figures-ahead.ts): kept if they are this record's; the
 * thread, already warm, draws any others.
 */
export interface DrawnAhead {
  readonly early?: Promise<EarlyFigures>;
  readonly thread?: DrawingThread;
}

const TITLES: Record<RunReport['verdict'], string> = {
  completed: 'completed',
  'did-not-converge': 'did not converge',
  stalled: 'stalled',
  failed: 'failed',
  interrupted: 'interrupted',
};

/** A page of 4 KiB unless QEMU said otherwise: dirty rates are counted in pages. */
function pageBytes(r: RunReport): number {
  return r.outputs.final?.ram?.pageSizeBytes ?? 4096;
}

const toS = (ms: number) => ms / 1000;
/** Time 0 is when miglab sent migrate, or (by hand) when miglab saw the person's migration begin. */
const timeZero = (r: RunReport) => (r.inputs.startedBy === 'hand' ? 'the migration began' : 'the migrate command');
const axisT = (r: RunReport) => ({ field: 'tS', title: `Time since ${timeZero(r)}`, unit: 's' }) as const;

/** The run's figures, built from the report alone (pure): remaining RAM, and throughput against the dirty rate. */
export function planRunFigures(r: RunReport): PlannedChart[] {
  const markers = markersOf(migrationMarks(r).map((m) => ({ ...m, x: toS(m.tMs) })));
  const charts: PlannedChart[] = [];
  const remaining = r.timeline.filter((s) => s.remainingBytes !== undefined).map((s) => ({ tS: toS(s.tMs), remainingMiB: s.remainingBytes! / MiB }));
  const marked = 'Dashed lines mark the start of each pre-copy pass, red lines the switchover (the source stops the guest) and the resume on the destination.';
  if (remaining.length > 0) {
    const title = 'RAM still to send';
    charts.push({
      name: 'remaining-ram',
      title,
      caption: `QEMU's remaining RAM in each query-migrate sample: each pass sends what the guest dirtied during the one before, so a run that converges steps down to the switchover. ${marked}`,
      spec: lineChart({ title, data: remaining, x: axisT(r), y: { field: 'remainingMiB', title: 'Remaining RAM', unit: 'MiB' }, markers }),
    });
  }
  const page = pageBytes(r);
  // Named so that the throughput sorts first and keeps the first colour, with or without a dirty rate.
  const throughput = r.timeline.flatMap((s) => (s.mbps !== undefined ? [{ tS: toS(s.tMs), series: "QEMU's migration throughput", mbps: s.mbps }] : []));
  const dirty = r.timeline.flatMap((s) => (s.dirtyPagesRate !== undefined ? [{ tS: toS(s.tMs), series: "guest dirty rate (QEMU's estimate)", mbps: (s.dirtyPagesRate * page * 8) / 1e6 }] : []));
  if (throughput.length > 0) {
    const title = dirty.length > 0 ? 'Migration throughput and the guest dirty rate' : 'Migration throughput';
    const rate =
      dirty.length > 0
        ? `and its estimate of the rate the guest dirties memory (pages/s × ${page} B, from its second dirty sync on): pre-copy converges only while the first stays above the second.`
        : '(QEMU had not yet measured the guest dirty rate: it does from its second dirty sync on).';
    charts.push({
      name: 'throughput',
      title,
      caption: `QEMU's migration throughput in each query-migrate sample ${rate} ${marked}`,
      spec: lineChart({ title, data: [...throughput, ...dirty], x: axisT(r), y: { field: 'mbps', title: 'Rate', unit: 'Mbit/s' }, series: { field: 'series', title: '' }, markers }),
    });
  }
  const silence = r.outputs.clientSilence ? silenceChart([{ label: 'this run', silence: r.outputs.clientSilence }]) : undefined;
  if (silence) charts.push(silence);
  return charts;
}

interface Row {
  readonly what: string;
  readonly value: string;
  readonly source?: string;
}

const ROW_COLUMNS: Column<Row>[] = [
  { key: 'what', title: 'figure' },
  { key: 'value', title: 'value', align: 'right' },
  { key: 'source', title: 'from', format: (v) => v ?? '' },
];

const pagesPerS = (v: number | undefined) => (v === undefined ? '–' : `${v.toLocaleString('en-US')} pages/s`);

type PassRow = RunReport['passes'][number];
const PASS_REPORT_COLUMNS: Column<PassRow>[] = [
  { key: 'pass', title: 'pass' },
  { key: 'tMs', title: 'began at', format: fmtMs },
  { key: 'transferredBytes', title: 'sent by then', format: (v) => fmtMiB(v) },
  { key: 'remainingBytes', title: 'remaining', format: (v) => fmtMiB(v) },
  { key: 'dirtyPagesRate', title: 'dirty rate', format: pagesPerS, align: 'right' },
  { key: 'mbps', title: 'throughput', format: fmtMbps },
  { key: 'expectedDowntimeMs', title: 'expected downtime', format: fmtMs },
  { key: 'source', title: 'seen as' },
];

function qemuSource(s: string | undefined, what: string): string {
  if (s === 'events') return `QEMU's event stamps (its query-migrate had no ${what})`;
  if (s === 'missing') return 'QEMU gave none';
  return `QEMU's query-migrate (${what})`;
}

/** The three downtimes, each with where it came from; one that was not measured says why. */
function downtimeRows(r: RunReport): Row[] {
  const o = r.outputs;
  const switched = r.events.some((e) => e.side === 'source' && e.event === 'STOP');
  const notSwitched = switched ? undefined : 'none: the guest never stopped for a switchover';
  const probe = o.clientProbe;
  return [
    { what: "QEMU's downtime", value: fmtMs(o.downtimeMs), source: o.downtimeMs === undefined ? (notSwitched ?? qemuSource(o.figureSources?.downtimeMs, 'downtime')) : qemuSource(o.figureSources?.downtimeMs, 'downtime') },
    {
      what: 'STOP→RESUME',
      value: fmtMs(o.eventDowntimeMs),
      source:
        o.eventDowntimeMs === undefined && notSwitched
          ? notSwitched
          : o.clocks && o.clocks.method !== 'one-clock'
            ? `the source's STOP event to the destination's RESUME event (QEMU's timestamps on two hosts' clocks, each host's offset measured over SSH removed: ± ${fmtMs(2 * o.clocks.before.uncertaintyMs)}; ${fmtMs(o.eventDowntimeUncorrectedMs)} as the clocks stamped it)`
            : "the source's STOP event to the destination's RESUME event (QEMU's timestamps)",
    },
    {
      what: "client probe's longest gap",
      value: fmtMs(o.clientDowntimeMs),
      source: probe
        ? o.clientDowntimeMs === undefined && typeof probe.silentAtEndMs === 'number'
          ? `none: the client never heard the guest again after the switchover (its last ${probe.unansweredAtEnd ?? 0} probes, ${fmtMs(probe.silentAtEndMs)}, went unanswered until probing stopped; the guest ran on at the destination by its heartbeat): the network between the client and the destination host did not carry the guest's replies`
          : `UDP probe from the client host every ${fmtMs(probe.intervalMs)} (resolution ${fmtMs(probe.resolutionMs)}), ${probe.lostAroundGap} lost around the gap, from the STOP to 2 s after the RESUME`
        : r.inputs.scenario.clientProbe === false
          ? 'none: the probe was off (clientProbe: false)'
          : (notSwitched ?? 'none: the probe gave no figure'),
    },
    ...(o.downtimeTrace?.totalMs === undefined
      ? []
      : [{ what: 'trace points', value: fmtMs(o.downtimeTrace.totalMs), source: "QEMU's vmstate_downtime_checkpoint trace points, from the source stopping the guest to the destination starting it (8.2 on; broken down below)" }]),
  ];
}

/** Why QEMU's final record lacks a figure: the run ended first, or QEMU gave none. */
function missingWhy(r: RunReport): string {
  const o = r.outputs;
  if (!o.final) return 'none: the run ended before the migration did';
  return o.status === 'completed' ? 'none: QEMU gave none' : `none: QEMU's record of a ${o.status} migration keeps none`;
}

function figureRows(r: RunReport): Row[] {
  const o = r.outputs;
  const from = (v: number | undefined, source: string) => (v === undefined ? missingWhy(r) : source);
  // A migration that did not complete keeps no RAM figures in QEMU's last record: its last
  // active sample says what had been sent by then.
  const last = o.transferredBytes === undefined ? o.lastActive : undefined;
  const ram = last
    ? { transferred: last.transferredBytes, total: last.totalBytes, mbps: last.mbps, passes: last.dirtySyncCount, source: `the last active sample, at ${fmtMs(last.tMs)} (${missingWhy(r).replace(/^none: /, '')})` }
    : { transferred: o.transferredBytes, total: o.totalBytes, mbps: o.throughputMbps, passes: o.dirtySyncCount, source: undefined };
  const rows: Row[] = [
    { what: 'total time', value: fmtMs(o.totalTimeMs), source: from(o.totalTimeMs, qemuSource(o.figureSources?.totalTimeMs, 'total-time')) },
    { what: 'setup time', value: fmtMs(o.setupTimeMs), source: from(o.setupTimeMs, "QEMU's query-migrate (setup-time)") },
    { what: 'RAM transferred / guest RAM', value: `${fmtMiB(ram.transferred)} / ${fmtMiB(ram.total)}`, source: ram.source ?? from(ram.transferred, "QEMU's query-migrate (ram.transferred, ram.total)") },
    {
      what: 'average throughput',
      value: o.averageThroughputMiBps === undefined ? '–' : `${o.averageThroughputMiBps.toFixed(1)} MiB/s`,
      source: from(o.averageThroughputMiBps, 'RAM transferred over total time'),
    },
    { what: 'last throughput', value: fmtMbps(ram.mbps), source: ram.source ?? from(ram.mbps, "QEMU's query-migrate (ram.mbps)") },
    { what: 'pre-copy passes', value: ram.passes === undefined ? '–' : String(ram.passes), source: ram.source ?? from(ram.passes, "QEMU's dirty-sync-count") },
    { what: 'run, boot to cleanup', value: fmtMs(r.wallMs), source: 'miglab' },
  ];
  if (o.qemuCpuMs) rows.push({ what: 'QEMU CPU, source / destination', value: `${fmtMs(o.qemuCpuMs.source)} / ${fmtMs(o.qemuCpuMs.destination)}`, source: '/proc, from the migrate command to the end' });
  return rows;
}

/** How the run ended, in sentences: the verdict, where and how it failed, what the watchers saw. */
function outcome(doc: MarkdownDoc, r: RunReport): void {
  const o = r.outputs;
  const lines = [`**Verdict: ${TITLES[r.verdict]}**${o.status ? ` (QEMU's migration status: ${o.status})` : ''}.`];
  if (r.failure) lines.push(`Why: ${r.failure.replace(/[^.!?]$/, '$&.')}`);
  if (r.failedIn) lines.push(`Failed in the ${r.failedIn.phase} phase, code \`${r.failedIn.code}\`${r.failedIn.watcher ? `, stopped by the ${r.failedIn.watcher} watcher` : ''}.`);
  if (o.interruptedBy) lines.push(`Interrupted by ${o.interruptedBy}: what had been measured by then is below.`);
  doc.paragraph(lines.join(' '));
  const facts: string[] = [];
  if (o.lastActive && o.status !== 'completed') {
    facts.push(`Last active sample at ${fmtMs(o.lastActive.tMs)}: ${fmtMiB(o.lastActive.transferredBytes)} sent, ${fmtMiB(o.lastActive.remainingBytes)} remaining, ${dirtyRateText(o.lastActive.dirtyPagesRate)}.`);
  }
  if (o.stall) facts.push(`No byte moved for ${fmtMs(o.stall.forMs)} from ${fmtMs(o.stall.sinceMs)} on (${fmtMiB(o.stall.transferredBytes)} sent, status ${o.stall.status}).`);
  if (o.heartbeat) facts.push(`Guest heartbeat: ${o.heartbeat.continuous ? 'continued on the destination' : 'broken'}${o.heartbeat.sameBoot ? ', same boot' : ', NOT the same boot'} (seq ${o.heartbeat.sourceLastSeq ?? '?'} → ${o.heartbeat.destinationFirstSeq ?? '?'}).`);
  if (o.integrity) facts.push(`Integrity (${o.integrity.checked}, on the ${o.integrityCheckedOn ?? 'destination'}): ${o.integrity.ok ? 'intact' : 'DAMAGED'}, ${o.integrity.detail}.`);
  if (o.qemuImgCheck) facts.push(`qemu-img check of the shared disk: ${o.qemuImgCheck.ok ? 'clean' : `not clean (${o.qemuImgCheck.meaning})`}.`);
  // Looked at before cleanup stopped anything (observeAfter): say so, or 'running' reads as still running.
  if (o.after) facts.push(`When the run ended (before cleanup): ${describeSides(o.after)}.`);
  if (o.guestTrouble) facts.push(`The guest's console on the ${o.guestTrouble.side} reported ${o.guestTrouble.kind}: \`${o.guestTrouble.lines.at(-1) ?? ''}\`.`);
  for (const f of o.faults ?? []) facts.push(`Fault \`${f.fault}\`: ${f.fired ? `fired at ${fmtMs(f.firedAtMs)} (${f.detail ?? ''})` : `never fired (${f.notFired ?? '?'})`}${f.error ? `; ${f.error}` : ''}.`);
  for (const i of o.incidents ?? []) facts.push(`At ${fmtMs(i.tMs)} the ${i.source} watcher saw: ${i.what}.`);
  for (const p of o.teardownProblems ?? []) facts.push(`Cleanup problem: ${p}.`);
  for (const l of o.leftovers ?? []) facts.push(`Left behind: ${l}.`);
  doc.list(facts);
}

function inForce(doc: MarkdownDoc, r: RunReport): void {
  const caps = Object.entries(r.inputs.capabilitiesInForce);
  const on = caps.filter(([, v]) => v).map(([k]) => `\`${k}\``);
  const params = Object.entries(r.inputs.parametersInForce).sort(([a], [b]) => a.localeCompare(b));
  doc
    .heading(2, 'Parameters and capabilities in force')
    .paragraph(
      caps.length === 0
        ? 'The run ended before the source was set up: nothing was in force yet.'
        : `Read back from the source after set-up (query-migrate-capabilities, query-migrate-parameters). Capabilities on: ${on.join(', ') || 'none'}; off: ${caps.length - on.length} others (run.json has each).`,
    );
  if (params.length > 0) {
    doc.table<{ name: string; value: string }>(
      [
        { key: 'name', title: 'parameter' },
        { key: 'value', title: 'value', align: 'right' },
      ],
      params.map(([name, v]) => ({ name, value: v === '' ? '(empty)' : typeof v === 'object' ? JSON.stringify(v) : String(v) })),
    );
  }
  doc.paragraph('The scenario as validated (the `migrate` options):').code(JSON.stringify(r.inputs.scenario, null, 2), 'json');
}

function commands(doc: MarkdownDoc, r: RunReport): void {
  const i = r.inputs;
  const monitor = i.scenario.monitor.toUpperCase();
  const sent = i.monitorCommands.length > 0 ? i.monitorCommands.join('\n') : '(none: the run ended before the migration was set up)';
  doc.heading(2, 'The commands');
  if (i.startedBy === 'hand') {
    // miglab only set the migration up: the person started it at a monitor of their own.
    doc.heading(3, 'Migration').paragraph(`Sent by miglab to the source's ${monitor} monitor to set the migration up, in order:`).code(sent, 'text');
    doc.paragraph(
      i.migrateCommand
        ? `Then the person started the migration to \`${i.migrationUri}\` at the source's monitor; miglab cannot see what was typed there, and recorded it as \`${i.migrateCommand}\`.`
        : 'Nobody started the migration at the monitor before the run ended.',
    );
  } else {
    doc.heading(3, 'Migration').paragraph(`Sent to the source's ${monitor} monitor, in order (the first \`migrate\` started the migration to \`${i.migrationUri}\`):`).code(sent, 'text');
  }
  if (i.destinationMonitorCommands?.length) doc.paragraph("Sent to the destination's QMP monitor, in order:").code(i.destinationMonitorCommands.join('\n'), 'text');
  for (const [side, cmd] of [
    ['Source QEMU', i.commands.source],
    ['Destination QEMU', i.commands.destination],
  ] as const) {
    doc.heading(3, side);
    // A QEMU that was never launched has no command line (a run that failed before the boot).
    if (cmd.argv.length === 0) doc.paragraph('QEMU was not started: the run ended before it was launched.');
    else doc.explainedCommand(cmd);
  }
}

/** One QEMU row, or with builds chosen (--qemu), one per side and the machine type with its reason. */
function qemuRows(q: RunReport['inputs']['qemu']): Row[] {
  const one = (v: string, pkg?: string) => `${v}${pkg ? ` (${pkg})` : ''}`;
  if (!q.builds) return [{ what: 'QEMU', value: one(q.version, q.package) }];
  const dst = q.destination ?? { version: q.version, package: q.package };
  return [
    { what: 'QEMU, source', value: `${one(q.version, q.package)}: ${q.builds.source.choice}, ${q.builds.source.origin}` },
    { what: 'QEMU, destination', value: `${one(dst.version, dst.package)}: ${q.builds.destination.choice}, ${q.builds.destination.origin}` },
    ...(q.machineTypeWhy ? [{ what: 'machine type', value: q.machineTypeWhy }] : []),
  ];
}

function environment(doc: MarkdownDoc, r: RunReport): void {
  const i = r.inputs;
  doc.heading(2, 'Environment').table<Row>(
    [
      { key: 'what', title: 'component' },
      { key: 'value', title: 'in this run' },
    ],
    [
    ...qemuRows(i.qemu),
    { what: 'accelerator', value: `${i.accel.used}: ${i.accel.reason}` },
    { what: 'host', value: `${i.host.cpuModel}, ${i.host.cpus} CPUs, ${i.host.memTotalMiB} MiB, kernel ${i.host.kernel}` },
    { what: 'guest image', value: `${i.image.hash}, kernel ${i.image.kernelVersion}` },
    { what: 'migration links', value: i.shaping ? JSON.stringify(i.shaping) : 'unshaped' },
    ],
  );
}

type DecisionRow = NonNullable<RunReport['outputs']['switchover']>['decisions'][number];
const DECISION_COLUMNS: Column<DecisionRow>[] = [
  { key: 'tMs', title: 't', format: (v) => fmtMs(v as number), align: 'right' },
  { key: 'pass', title: 'pass', align: 'right' },
  { key: 'remainingBytes', title: 'left', format: (v) => (typeof v === 'number' ? `${(v / 1048576).toFixed(1)} MiB` : '–'), align: 'right' },
  { key: 'action', title: 'action' },
  { key: 'downtimeLimitMs', title: 'downtime-limit', format: (v) => fmtMs(v as number | undefined), align: 'right' },
  { key: 'why', title: 'why' },
];

/** The switchover policy's decisions, each with the figures behind it. */
function switchover(doc: MarkdownDoc, r: RunReport): void {
  const sw = r.outputs.switchover;
  if (!sw) return;
  doc.heading(2, 'Switchover decisions').paragraph(
    `Policy \`${sw.policy}\` (--switchover): ${sw.decisions.length} decision${sw.decisions.length === 1 ? '' : 's'}, one as each pre-copy pass began${sw.policy.startsWith('downtime-steps') ? ' and one at each step' : ''}; run.json keeps the send and dirty rates behind each.`,
  );
  if (sw.decisions.length > 0) doc.table(DECISION_COLUMNS, sw.decisions);
}

/** report.md for run `r`; `figures` are those drawn, or undefined when they were left for `miglab plot`. */
export function runReportMarkdown(r: RunReport, figures: readonly PlannedChart[] | undefined, figureProblem?: string): string {
  const doc = markdown().heading(1, `Run ${r.runId}`);
  doc.paragraph(`\`${r.name}\`: started ${r.startedAt}, finished ${r.finishedAt}. Every figure below is read from \`run.json\` beside this report; \`miglab plot\` on this folder draws the report again.`);
  outcome(doc, r);
  doc
    .heading(2, 'Downtime, three ways')
    .paragraph("QEMU's own figure, the span between its STOP and RESUME events, and the longest silence a client of the guest saw: the last is what a user feels.")
    .table(ROW_COLUMNS, downtimeRows(r));
  if (r.outputs.downtimeTrace) {
    doc
      .heading(3, 'Where the downtime went')
      .paragraph("From both QEMUs' vmstate_downtime_* trace points: the switchover checkpoint to checkpoint, and the device sections that took longest to save and to load (run.json keeps every one).")
      .raw(breakdownLines(r.outputs.downtimeTrace).join('\n'));
  }
  silenceSection(doc, r.outputs.clientSilence, r.inputs.accel.used, r.outputs.postcopy?.enteredAtMs !== undefined);
  doc
    .heading(2, 'Time, RAM and throughput')
    .table(ROW_COLUMNS, figureRows(r))
    .heading(2, 'Pre-copy passes');
  if (r.passes.length === 0) doc.paragraph('No pass was seen: the run ended before the migration sent its first.');
  else doc.paragraph(`One row per pass (also \`passes.csv\`); times since ${timeZero(r)}, figures from the nearest sample at or after the pass began.`).table(PASS_REPORT_COLUMNS, r.passes);
  switchover(doc, r);
  postcopySection(doc, r);
  doc.heading(2, 'Figures');
  if (figureProblem !== undefined) {
    doc.paragraph(`Not drawn: ${figureProblem}. \`miglab plot\` on this folder draws them once that is mended.`);
  } else if (figures === undefined) {
    doc.paragraph('Not drawn when the run was written (a run of a sweep or a batch leaves them out, so drawing does not hold up the others): `miglab plot` on this folder draws them into `plots/`.');
  } else if (figures.length === 0) {
    doc.paragraph('None: the run has no query-migrate sample with RAM figures to draw (it ended before the migration ran).');
  }
  for (const f of figures ?? []) doc.heading(3, f.title).image(f.title, `plots/${f.name}.png`).paragraph(`${f.caption} ([SVG](plots/${f.name}.svg))`);
  inForce(doc, r);
  commands(doc, r);
  environment(doc, r);
  doc.heading(2, 'Files').table<{ file: string; what: string }>(
    [
      { key: 'file', title: 'file' },
      { key: 'what', title: 'what' },
    ],
    Object.entries(r.files).map(([file, what]) => ({ file: `\`${file}\``, what })),
  );
  return doc.render();
}

/**
 * Starts loading the figures' modules (vega, vega-lite, resvg: about 0.4 s) on this thread without
 * waiting, where there is no drawing thread (miglab run from source): a run that will draw its
 * figures calls this once its migration has ended, so the loading overlaps the checks and cleanup
 * that wait on the guests instead of adding to the run's end (not during the migration, whose
 * figures it would disturb). A failure here is the later import's to report.
 */
export function preloadFigures(): void {
  import('../plot/render.js').catch(() => undefined);
}

/** A run's figures drawn before its record was final (drawRunFiguresEarly): their plan and PNGs. */
export interface EarlyFigures {
  readonly planned: readonly PlannedChart[];
  readonly pngPaths: readonly string[];
}

/**
 * Draws a run's figures into `dir`/plots from its record so far (as it will be saved), in the
 * drawing thread, once the run has concluded: the figures are laid out on the other core while the
 * run stops its QEMUs, instead of after. renderRunReport keeps them only when the final record plans
 * the very same charts.
 */
export async function drawRunFiguresEarly(dir: string, r: RunReport, thread: DrawingThread): Promise<EarlyFigures> {
  const planned = planRunFigures(r);
  return { planned, pngPaths: await drawFigures(dir, planned, thread) };
}

/** Each chart in `thread`, or on this thread when there is none or it has ended (`miglab plot`, tests). */
async function drawFigures(dir: string, planned: readonly PlannedChart[], thread?: DrawingThread): Promise<string[]> {
  if (planned.length === 0) return [];
  // vega and resvg take ~0.4 s to load: only a run that draws its figures loads them.
  const draw = thread?.alive ? thread.draw.bind(thread) : (await import('../plot/render.js')).renderChart;
  // Side by side: each rasterises in the thread pool while the next is laid out (render.ts).
  // All are awaited before a failure is thrown, so none is still writing when the report is
  // written without figures.
  const drawn = await Promise.allSettled(planned.map((c) => draw(c.spec, join(dir, 'plots', c.name))));
  return drawn.map((d) => {
    if (d.status === 'rejected') throw d.reason;
    return d.value.pngPath;
  });
}

const samePlan = (a: readonly PlannedChart[], b: readonly PlannedChart[]) => JSON.stringify(a) === JSON.stringify(b);

/** report.md, report.html and (with `figures`) plots/ for the run `r` (as saved in run.json) in `dir`. */
export async function renderRunReport(dir: string, r: RunReport, opts: RunReportOptions): Promise<RunReportWritten> {
  const planned = opts.figures ? planRunFigures(r) : undefined;
  let figures: readonly string[] = [];
  if (planned) {
    const early = await opts.ahead?.early?.catch(() => undefined);
    if (early && samePlan(early.planned, planned)) {
      figures = early.pngPaths;
    } else {
      // Drawn early from a record that changed since: none of those is left beside this record's.
      if (early) await Promise.all(early.pngPaths.flatMap((png) => [png, png.replace(/\.png$/, '.svg')]).map((f) => rm(f, { force: true })));
      figures = await drawFigures(dir, planned, opts.ahead?.thread);
    }
  }
  const written = await writeReport(dir, runReportMarkdown(r, planned, opts.figureProblem), `miglab run ${r.runId}`);
  return { ...written, figures };
}
