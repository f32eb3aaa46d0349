// The batch report: results/batch-<id>/report.md and report.html with a table per N, the
// comparison of naive parallel against the scheduler, why the batch stopped (first symptom, the
// saturated resource and the sample values), plots of the host over time with the migrations
// marked, and a CSV behind every table plus the samples. Reads only the batch record.
import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { lineChart, type Marker } from '../plot/charts.js';
import { renderChart } from '../plot/render.js';
import { writeReport, type RenderedReport } from '../report/html.js';
import { fmtMs, markdown, writeTableCsv, type Column } from '../report/markdown.js';
import { compareSteps, diagnoseBatch, linkRatesMbps, migrationMbpsOf, type ComparisonRow, type StepDiagnosis } from './diagnose.js';
import type { BatchEvent, BatchFile, BatchRecord, BatchSample, MigrationAttempt } from './record.js';
import { BATCH_CONTRACT, BatchFileSchema, BatchRecordSchema } from '../results/batch.js';
import { asSaved, writeResult } from '../results/contract.js';
import { meanCpuBusyPct, memAvailableMiB, stallStopDetail, swapUsedMiB } from './stall.js';

const n = (digits = 0) => (v: number | undefined | null) => (v === undefined || v === null || !Number.isFinite(v) ? '–' : v.toLocaleString('en-US', { maximumFractionDigits: digits }));

export interface StepRow {
  n: number;
  mode: string;
  migrated: number;
  attempted: number;
  wallMs: number;
  migratingMs?: number;
  transferredMiB?: number;
  lowerBoundMs?: number;
  vsLowerBound?: number;
  concurrency?: number;
  totalTimeMedianMs?: number;
  totalTimeMaxMs?: number;
  downtimeMinMs?: number;
  downtimeMedianMs?: number;
  downtimeMaxMs?: number;
  bootMedianMs?: number;
  failures: string;
  stall: string;
  saturated: string;
  /** The host just before the step: PSI cpu some avg10 and CPU busy, and symptoms already shown. */
  hostBefore: string;
}

/** The host before a step, in a table cell: pressure, and any stall symptom it already showed. */
export function hostBeforeText(b: StepDiagnosis['before']): string {
  if (!b) return 'not sampled';
  const psi = b.psiCpuSomeAvg10 === undefined ? 'PSI cpu –' : `PSI cpu ${b.psiCpuSomeAvg10} %`;
  const busy = b.cpuBusyPct === undefined ? '' : `, CPU busy ${b.cpuBusyPct} %`;
  return `${psi}${busy}, load1 ${b.load1}${b.symptoms.length > 0 ? ` (already: ${b.symptoms.join(', ')})` : ''}`;
}

export function stepRows(ds: readonly StepDiagnosis[]): StepRow[] {
  return ds.map((d) => ({
    n: d.n,
    mode: d.variant === 'naive-parallel' ? 'naive parallel' : d.mode,
    migrated: d.migrated,
    attempted: d.attempted,
    wallMs: d.wallMs,
    migratingMs: d.migratingMs,
    transferredMiB: d.transferredMiB,
    lowerBoundMs: d.lowerBoundMs,
    vsLowerBound: d.vsLowerBound,
    concurrency: d.concurrency ?? (d.mode === 'parallel' ? d.n : d.mode === 'sequential' ? 1 : undefined),
    totalTimeMedianMs: d.totalTimeMs?.median,
    totalTimeMaxMs: d.totalTimeMs?.max,
    downtimeMinMs: d.downtimeMs?.min,
    downtimeMedianMs: d.downtimeMs?.median,
    downtimeMaxMs: d.downtimeMs?.max,
    bootMedianMs: d.bootToHeartbeatMs?.median,
    failures: Object.entries(d.failuresByKind).map(([k, v]) => `${k}: ${v}`).join(', ') || 'none',
    stall: d.stall ? `${d.stall.symptom}${d.stallPredatesStep ? ' (host busy before the step)' : ''}` : 'no',
    saturated: d.saturation.saturated.join(', ') || 'none',
    hostBefore: hostBeforeText(d.before),
  }));
}

export const STEP_COLUMNS: Column<StepRow>[] = [
  { key: 'n', title: 'N', about: 'Guests in the step (N)' },
  { key: 'mode', title: 'mode', about: 'sequential, parallel, waves-K, scheduled, or naive parallel (the comparison run)' },
  { key: 'hostBefore', title: 'host before the step', about: 'The host just before the step: its pressure and any stall symptom it already showed (a busy host is not blamed on N)' },
  { key: 'concurrency', title: 'at once', format: n(), about: 'Migrations at once' },
  { key: 'migrated', title: 'migrated', about: 'Guests migrated' },
  { key: 'attempted', title: 'attempted', about: 'Guests attempted' },
  { key: 'wallMs', title: 'step wall time', format: fmtMs, about: 'The step, first boot to last cleanup' },
  { key: 'migratingMs', title: 'migrating (first migrate to last end)', format: fmtMs, about: 'From the first migrate command to the last migration\'s end' },
  { key: 'transferredMiB', title: 'RAM sent (MiB)', format: n(1), about: 'RAM QEMU sent over the step\'s attempts (retries included)' },
  { key: 'lowerBoundMs', title: 'lower bound (bytes / link)', format: fmtMs, about: 'Every byte sent at the shaped link\'s rate, nothing else in the way (empty: unshaped link)' },
  { key: 'vsLowerBound', title: 'x lower bound', format: n(2), about: 'migrating time over the lower bound (1: a perfectly used link)' },
  { key: 'bootMedianMs', title: 'boot to heartbeat (median)', format: fmtMs, about: 'Boot to the guest agent\'s heartbeat, median' },
  { key: 'totalTimeMedianMs', title: 'migration total (median)', format: fmtMs, about: 'QEMU\'s total time, median of the completed migrations' },
  { key: 'totalTimeMaxMs', title: 'migration total (max)', format: fmtMs, about: 'QEMU\'s total time, longest' },
  { key: 'downtimeMinMs', title: 'downtime min', format: fmtMs, about: 'QEMU\'s downtime, shortest' },
  { key: 'downtimeMedianMs', title: 'downtime median', format: fmtMs, about: 'QEMU\'s downtime, median' },
  { key: 'downtimeMaxMs', title: 'downtime max', format: fmtMs, about: 'QEMU\'s downtime, longest' },
  { key: 'failures', title: 'failures by kind', about: 'Failed attempts by outcome (none: every guest migrated)' },
  { key: 'stall', title: 'stall', about: 'The stall symptom that ended the step, or no' },
  { key: 'saturated', title: 'saturated', about: 'Resources over their line during the step (cpu, network, memory) or none' },
];

export interface MigrationRow {
  n: number;
  mode: string;
  guest: string;
  attempt: number;
  outcome: string;
  bootToHeartbeatMs?: number;
  migrationMs?: number;
  totalTimeMs?: number;
  downtimeMs?: number;
  transferredMiB?: number;
  maxBandwidthMiBps?: number;
  startS: number;
  failure: string;
}

export const MIGRATION_COLUMNS: Column<MigrationRow>[] = [
  { key: 'n', title: 'N', about: 'The step (N)' },
  { key: 'mode', title: 'mode', about: 'The step\'s mode' },
  { key: 'guest', title: 'guest', about: 'g0, g1...' },
  { key: 'attempt', title: 'try', about: '1 for the first try, 2 for the scheduler\'s retry' },
  { key: 'outcome', title: 'outcome', about: 'completed, the run symptom it showed, aborted or error' },
  { key: 'startS', title: 'started at (s)', format: n(1), about: 'When the attempt began, since the batch began' },
  { key: 'bootToHeartbeatMs', title: 'boot to heartbeat', format: fmtMs, about: 'Boot to the guest agent\'s heartbeat' },
  { key: 'migrationMs', title: 'migration (engine)', format: fmtMs, about: 'The engine\'s migration phase' },
  { key: 'totalTimeMs', title: 'total (QEMU)', format: fmtMs, about: 'QEMU\'s total time' },
  { key: 'downtimeMs', title: 'downtime (QEMU)', format: fmtMs, about: 'QEMU\'s downtime' },
  { key: 'transferredMiB', title: 'transferred (MiB)', format: n(1), about: 'RAM QEMU sent' },
  { key: 'maxBandwidthMiBps', title: 'max-bandwidth (MiB/s)', format: n(), about: 'QEMU\'s max-bandwidth for this migration' },
  { key: 'failure', title: 'failure', about: 'Why it failed' },
];

export const COMPARISON_COLUMNS: Column<ComparisonRow>[] = [
  { key: 'n', title: 'N', about: 'The step (N)' },
  { key: 'variant', title: 'how', about: 'naive parallel or the scheduler' },
  { key: 'concurrency', title: 'at once', about: 'Migrations at once' },
  { key: 'migrated', title: 'guests migrated', about: 'Guests migrated' },
  { key: 'wallMs', title: 'total time', format: fmtMs, about: 'The step, first boot to last cleanup' },
  { key: 'migratingMs', title: 'migrating', format: fmtMs, about: 'From the first migrate command to the last migration\'s end' },
  { key: 'vsLowerBound', title: 'x lower bound', format: n(2), about: 'migrating time over the lower bound (1: a perfectly used link)' },
  { key: 'worstDowntimeMs', title: 'worst downtime', format: fmtMs, about: 'QEMU\'s longest downtime in the step' },
  { key: 'failures', title: 'failures', about: 'Failed attempts' },
  { key: 'stalled', title: 'stalled', about: 'The stall symptom, or no' },
];

export interface SampleRow {
  tS: number;
  cpuBusyPct?: number;
  psiCpuSomeAvg10?: number;
  psiMemorySomeAvg10?: number;
  psiIoSomeAvg10?: number;
  load1: number;
  memAvailableMiB: number;
  swapUsedMiB: number;
  migrationLinkMbps?: number;
  srcUplinkTxMbps?: number;
  dstUplinkRxMbps?: number;
  qemuProcesses: number;
  qemuCpuPct: number;
  qemuRssMiB: number;
}

export function sampleRows(samples: readonly BatchSample[], t0Ms: number): SampleRow[] {
  return samples.map((s) => {
    const qemu = s.processes.filter((p) => p.alive && s.qemuLabels[String(p.pid)] !== undefined);
    const link = linkRatesMbps(s);
    return {
      tS: (s.atMs - t0Ms) / 1000,
      cpuBusyPct: meanCpuBusyPct(s),
      psiCpuSomeAvg10: s.pressure.cpu?.some.avg10,
      psiMemorySomeAvg10: s.pressure.memory?.some.avg10,
      psiIoSomeAvg10: s.pressure.io?.some.avg10,
      load1: s.loadavg.load1,
      memAvailableMiB: memAvailableMiB(s),
      swapUsedMiB: swapUsedMiB(s),
      migrationLinkMbps: migrationMbpsOf(s, link),
      srcUplinkTxMbps: link.srcTxMbps,
      dstUplinkRxMbps: link.dstRxMbps,
      qemuProcesses: qemu.length,
      qemuCpuPct: qemu.reduce((a, p) => a + (p.cpuPct ?? 0), 0),
      qemuRssMiB: qemu.reduce((a, p) => a + (p.vmRssKiB ?? 0), 0) / 1024,
    };
  });
}

/** samples.csv: one row per host sample. */
export const SAMPLE_COLUMNS: Column<SampleRow>[] = [
  { key: 'tS', title: 'tS', about: 'Since the batch began' },
  { key: 'cpuBusyPct', title: 'cpuBusyPct', about: 'Host CPU busy, mean of the CPUs' },
  { key: 'psiCpuSomeAvg10', title: 'psiCpuSomeAvg10', about: 'PSI cpu some avg10: share of time some task waited for a CPU' },
  { key: 'psiMemorySomeAvg10', title: 'psiMemorySomeAvg10', about: 'PSI memory some avg10' },
  { key: 'psiIoSomeAvg10', title: 'psiIoSomeAvg10', about: 'PSI io some avg10' },
  { key: 'load1', title: 'load1', about: '1 min load average' },
  { key: 'memAvailableMiB', title: 'memAvailableMiB', about: 'MemAvailable' },
  { key: 'swapUsedMiB', title: 'swapUsedMiB', about: 'Swap in use' },
  { key: 'migrationLinkMbps', title: 'migrationLinkMbps', about: 'Migration link throughput' },
  { key: 'srcUplinkTxMbps', title: 'srcUplinkTxMbps', about: "Source host's uplink, sent" },
  { key: 'dstUplinkRxMbps', title: 'dstUplinkRxMbps', about: "Destination host's uplink, received" },
  { key: 'qemuProcesses', title: 'qemuProcesses', about: 'QEMU processes alive' },
  { key: 'qemuCpuPct', title: 'qemuCpuPct', about: 'CPU of all QEMUs (100 = one CPU)' },
  { key: 'qemuRssMiB', title: 'qemuRssMiB', about: 'Resident memory of all QEMUs' },
];

interface EventRow {
  n: number;
  mode: string;
  tS: number;
  guest: string;
  event: string;
  detail: string;
}

/** events.csv: every migration event on the batch's time axis. */
export const EVENT_COLUMNS: Column<EventRow>[] = [
  { key: 'n', title: 'N', about: 'The step' },
  { key: 'mode', title: 'mode', about: 'The step\'s mode' },
  { key: 'tS', title: 'tS', about: 'Since the batch began' },
  { key: 'guest', title: 'guest', about: 'g0, g1...' },
  { key: 'event', title: 'event', about: 'migrate-sent, pass, migration-end, guest-up' },
  { key: 'detail', title: 'detail', about: 'Pass number or final status' },
];

function migrationRows(r: BatchRecord): MigrationRow[] {
  const t0 = Date.parse(r.startedAt);
  return r.steps.flatMap((s) =>
    s.attempts.map((a: MigrationAttempt) => ({
      n: s.n,
      mode: s.variant === 'naive-parallel' ? 'naive parallel' : s.mode,
      guest: `g${a.guestIndex}`,
      attempt: a.attempt,
      outcome: a.outcome,
      bootToHeartbeatMs: a.bootToHeartbeatMs,
      migrationMs: a.migrationMs,
      totalTimeMs: a.totalTimeMs,
      downtimeMs: a.downtimeMs,
      transferredMiB: a.transferredMiB,
      maxBandwidthMiBps: a.maxBandwidthMiBps,
      startS: (a.startedAtMs - t0) / 1000,
      failure: a.failure ?? '',
    })),
  );
}

/** The link's samples plus, when it is shaped, its rate as a flat line across them: the ceiling to read them against. */
export function linkChartRows(rows: readonly { tS: number; value: number; series: string }[], shapedMbit: number | undefined): { tS: number; value: number; series: string }[] {
  if (shapedMbit === undefined || rows.length === 0) return [...rows];
  const ts = rows.map((x) => x.tS);
  const series = `shaped rate (${shapedMbit} Mbit/s)`;
  return [...rows, { tS: Math.min(...ts), value: shapedMbit, series }, { tS: Math.max(...ts), value: shapedMbit, series }];
}

/** Step starts, the stall (emphasised) and, when there are few, each migration's end. */
export function batchMarkers(r: BatchRecord): Marker[] {
  const t0 = Date.parse(r.startedAt);
  const s = (ms: number) => (ms - t0) / 1000;
  const markers: Marker[] = r.steps.map((st) => ({ x: s(st.startedAtMs), label: `N=${st.n} ${st.variant === 'naive-parallel' ? 'naive' : st.mode}` }));
  const ends = r.steps.flatMap((st) => st.attempts.flatMap((a) => a.events.filter((e: BatchEvent) => e.event === 'migration-end')));
  if (ends.length <= 8) for (const e of ends) markers.push({ x: s(e.atMs), label: `g${e.guestIndex} ${e.detail ?? 'end'}` });
  if (r.stop.kind === 'stall') markers.push({ x: s(r.stop.stall.atMs), label: `stall: ${r.stop.stall.symptom}`, emphasis: true });
  return markers;
}

/**
 * What batch.json holds for a record: the record as saved (each figure rounded to its precision)
 * and the diagnosis of that saved record, rounded the same way. The batch writes this and its
 * report is drawn from it; `miglab plot` diagnoses a saved record again the same way, so the file,
 * the report and a redrawn report say the same.
 */
export function batchFile(r: BatchRecord): BatchFile {
  // A record that does not match its schema is a bug: writeResult saves it all the same and says so.
  const record = asSaved(BatchRecordSchema, r) ?? r;
  const file: BatchFile = { ...record, diagnoses: diagnoseBatch(record) };
  return asSaved(BatchFileSchema, file) ?? file;
}

/** batch.json, then the report drawn from it; returns the record and diagnosis as saved. */
export async function writeBatchReport(dir: string, r: BatchRecord): Promise<{ record: BatchRecord; diagnoses: readonly StepDiagnosis[] } & RenderedReport> {
  const file = await writeResult(BATCH_CONTRACT, join(dir, 'batch.json'), batchFile(r));
  const { diagnoses, ...record } = file;
  return { record, diagnoses, ...(await renderBatchReport(dir, file)) };
}

/**
 * Tables, CSV, figures and report.md/report.html from a batch file (batchFile) alone: `miglab
 * plot` on a batch folder calls this, so a re-rendered report is the same report. The report's
 * list of files names only those written here or present in the folder.
 */
export async function renderBatchReport(dir: string, file: BatchFile): Promise<RenderedReport> {
  const { diagnoses: ds, ...r } = file;
  const t0 = Date.parse(r.startedAt);
  const steps = stepRows(ds);
  const migrations = migrationRows(r);
  const comparison = compareSteps(ds);
  const samples = sampleRows(r.samples, t0);
  const events: EventRow[] = r.steps.flatMap((st) => st.attempts.flatMap((a) => a.events.map((e) => ({ n: st.n, mode: st.variant === 'naive-parallel' ? 'naive parallel' : st.mode, tS: (e.atMs - t0) / 1000, guest: `g${e.guestIndex}`, event: e.event, detail: e.detail ?? '' }))));
  await writeTableCsv(join(dir, 'steps.csv'), STEP_COLUMNS, steps);
  await writeTableCsv(join(dir, 'migrations.csv'), MIGRATION_COLUMNS, migrations);
  // A comparison from an earlier rendering must not stay behind to be listed.
  if (comparison.length > 0) await writeTableCsv(join(dir, 'comparison.csv'), COMPARISON_COLUMNS, comparison);
  else await rm(join(dir, 'comparison.csv'), { force: true });
  await writeTableCsv(join(dir, 'samples.csv'), SAMPLE_COLUMNS, samples);
  await writeTableCsv(join(dir, 'events.csv'), EVENT_COLUMNS, events);

  const markers = batchMarkers(r);
  const long = <K extends keyof SampleRow>(keys: readonly [K, string][]) =>
    samples.flatMap((row) => keys.filter(([k]) => typeof row[k] === 'number').map(([k, label]) => ({ tS: row.tS, value: row[k] as number, series: label })));
  const x = { field: 'tS' as const, title: 'time since the batch began', unit: 's' };
  const charts: [string, string][] = [];
  if (samples.length > 0) {
    const plots = join(dir, 'plots');
    await renderChart(
      lineChart({ title: 'CPU busy (mean of CPUs) and pressure (PSI some avg10)', data: long([['cpuBusyPct', 'CPU busy'], ['psiCpuSomeAvg10', 'PSI cpu'], ['psiMemorySomeAvg10', 'PSI memory'], ['psiIoSomeAvg10', 'PSI io']]), x, y: { field: 'value', title: 'share of time', unit: '%' }, series: { field: 'series', title: '' }, markers }),
      join(plots, 'cpu'),
    );
    charts.push(['CPU busy and PSI over time', 'plots/cpu.png']);
    await renderChart(
      lineChart({ title: 'Memory', data: long([['memAvailableMiB', 'MemAvailable'], ['qemuRssMiB', 'QEMU RSS (sum)'], ['swapUsedMiB', 'swap used']]), x, y: { field: 'value', title: 'memory', unit: 'MiB' }, series: { field: 'series', title: '' }, markers }),
      join(plots, 'memory'),
    );
    charts.push(['MemAvailable over time', 'plots/memory.png']);
    await renderChart(
      lineChart({ title: 'Migration link throughput (read on the lab switch)', data: linkChartRows(long([['srcUplinkTxMbps', 'sent by src'], ['dstUplinkRxMbps', 'received by dst']]), r.host.linkBandwidthMbit), x, y: { field: 'value', title: 'throughput', unit: 'Mbit/s' }, series: { field: 'series', title: '' }, markers }),
      join(plots, 'link'),
    );
    charts.push(['Link throughput over time', 'plots/link.png']);
  }

  const doc = markdown().heading(1, `Batch ${r.batchId}`);
  const g = r.spec.guests;
  const guests = (Array.isArray(g) ? g : [g]).map((x) => `${x.memoryMiB} MiB${x.workload ? ` ${JSON.stringify(x.workload)}` : ' idle'}`).join(', ');
  doc.paragraph(
    `Mode **${ds[ds.length - 1]?.mode ?? '?'}**${r.spec.compare ? ' (with naive parallel at each N for comparison)' : ''}, guests ${guests}, per-migration deadline ${fmtMs(r.spec.timeoutMs)}, batch deadline ${fmtMs(r.spec.deadlineMs)}, memory reserve ${r.spec.memoryReserveMiB} MiB. ` +
      `Host: ${r.host.cpus} CPUs, ${r.host.memTotalMiB} MiB, kernel ${r.host.kernel}; migration link ${r.host.linkBandwidthMbit !== undefined ? `shaped to ${r.host.linkBandwidthMbit} Mbit/s` : 'not shaped'}. Wall time ${fmtMs(r.wallMs)}.`,
  );
  doc.heading(2, 'Why the batch stopped');
  // A stall is told again from the diagnosis, so a record written before the host's state was
  // kept with each step still says when the host was busy before the step.
  const stopped = r.stop.kind === 'stall' ? ds.find((d) => d.stall && d.n === (r.stop as { n: number }).n) : undefined;
  doc.paragraph(`**${r.stop.kind}**: ${r.stop.kind === 'stall' ? stallStopDetail(r.stop.n, r.stop.stall, stopped?.before) : r.stop.detail}`);
  const stalled = ds.filter((d) => d.stall);
  for (const d of stalled) {
    const s = d.stall!;
    doc.list([
      `N=${d.n} (${d.variant === 'naive-parallel' ? 'naive parallel' : d.mode}): first symptom **${s.symptom}** at ${((s.atMs - t0) / 1000).toFixed(1)} s (confirmed at ${((s.confirmedAtMs - t0) / 1000).toFixed(1)} s): ${s.detail}`,
      `evidence: ${Object.entries(s.evidence).map(([k, v]) => `${k}=${v}`).join(', ') || '–'}`,
      `saturated resource: **${d.saturation.resource}**: ${d.saturation.evidence}`,
    ]);
  }
  if (stalled.length === 0) doc.paragraph(`Peak figures of the last step: ${ds[ds.length - 1]?.saturation.evidence ?? 'no step ran'}.`);

  doc.heading(2, 'Per N');
  doc.table(STEP_COLUMNS, steps);
  doc.paragraph('"Host before the step" is the last host sample before the step\'s first guest started (PSI cpu some avg10, CPU busy, load1), with any stall symptom it already showed: pressure that was there before a step is not caused by its N.');
  doc.paragraph('Downtime and migration times are QEMU\'s figures for the migrations that completed. Boot to heartbeat is measured separately: under `parallel` (and in each wave) all guests boot first and wait at a barrier, then migrate together.');
  if (comparison.length > 0) {
    doc.heading(2, 'Naive parallel against the scheduler');
    doc.table(COMPARISON_COLUMNS, comparison);
  }
  const plans = r.steps.filter((s) => s.plan);
  if (plans.length > 0) {
    doc.heading(2, 'Scheduler decisions');
    for (const s of plans) doc.paragraph(`N=${s.n}: **${s.plan!.concurrency} migrating at once**, ${s.plan!.inFlight ?? s.plan!.concurrency} in flight, limited by ${s.plan!.limitedBy}.`).list([...s.plan!.reasons]);
  }
  doc.heading(2, 'Host over time');
  doc.paragraph('Dashed lines: each step\'s start and, when there are few, each migration\'s end; the red line is the first stall symptom.');
  for (const [alt, p] of charts) doc.image(alt, p);
  doc.heading(2, 'Every migration');
  doc.table(MIGRATION_COLUMNS, migrations);
  doc.heading(2, 'Files');
  doc.list(await batchFiles(dir));
  const written = await writeReport(dir, doc.render(), `miglab batch ${r.batchId}`);
  return { markdownPath: written.markdownPath, htmlPath: written.htmlPath, figures: charts.map(([, p]) => join(dir, p)) };
}

/** What each file of a batch folder holds; the report lists those present. */
const BATCH_FILES: readonly (readonly [string, string])[] = [
  ['batch.json', 'the whole record (spec, every attempt, every host sample, the host before each step, the diagnosis)'],
  ['steps.csv', 'the "Per N" table, raw values'],
  ['comparison.csv', 'naive parallel against the scheduler, raw values'],
  ['migrations.csv', 'the "Every migration" table, raw values'],
  ['samples.csv', 'one row per host sample (the link rates read on the lab switch, both ports at once)'],
  ['events.csv', 'migration events on the same time axis'],
  ['plots/cpu.png', 'CPU busy and PSI over time (and .svg)'],
  ['plots/memory.png', 'memory over time (and .svg)'],
  ['plots/link.png', 'migration link throughput over time (and .svg)'],
];

/** The files of the batch folder that exist, with what each holds. */
async function batchFiles(dir: string): Promise<string[]> {
  const out = BATCH_FILES.filter(([f]) => existsSync(join(dir, f))).map(([f, what]) => `\`${f}\`: ${what}`);
  const stepDirs = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory() && /^n\d+-/.test(e.name)).map((e) => e.name);
  if (stepDirs.length > 0) out.push(`${stepDirs.map((d) => `\`${d}/\``).join(', ')}: one folder per step, with each migration's own run files in \`g<i>/\` (run.json, timeline, serial logs, QMP transcripts)`);
  return out;
}
