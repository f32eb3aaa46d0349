// The homework report: report.md and report.html with the tables, the plots (PNG and SVG), the
// observations, the environment and the CSV behind every table. It reads only the results.
import { join } from 'node:path';
import { barChart, dualAxisTimeChart, lineChart, wrapText } from '../plot/charts.js';
import { markersOf } from '../report/migration-marks.js';
import { renderChart, type VegaLiteSpec } from '../plot/render.js';
import { writeReport, type RenderedReport } from '../report/html.js';
import { fmtMbps, fmtMs, fmtPct, markdown, writeTableCsv, type Column } from '../report/markdown.js';
import type { AccelRow } from './accel-compare.js';
import type { NicRow } from './device-compare.js';
import type { DuringRow } from './during-migration.js';
import { accelObservations, deviceObservations, duringObservations } from './observe.js';
import { faultToleranceAnswer, faultToleranceRows, liveMigrationAnswer, type ColoFigureRow } from './questions.js';
import { HOMEWORK_CONTRACT, type HomeworkResults } from '../results/homework.js';
import { writeResult } from '../results/contract.js';

export type { HomeworkResults } from '../results/homework.js';

const n = (digits = 0) => (v: number | undefined | null) => (v === undefined || v === null || !Number.isFinite(v) ? '–' : v.toLocaleString('en-US', { maximumFractionDigits: digits }));
/** One decimal always: a figure given to 0.1 shows it (616.0, not 616). */
const tenths = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '–' : v.toLocaleString('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 }));

interface AccelTableRow {
  accel: string;
  status: 'measured' | 'not usable';
  /** Why, in full (the report's table shows its gist; the note below the table, all of it). */
  reason: string;
  cpuOpsPerS?: number;
  memMiBps?: number;
  qemuCpuPct?: number;
  contextSwitchesPerS?: number;
  pageFaults?: number;
  cycles?: string;
  instructions?: string;
}

function counter(c: { value: number | null; supported: boolean } | undefined): string {
  if (!c) return 'not measured';
  if (!c.supported) return 'not supported';
  return c.value === null ? 'not counted' : c.value.toLocaleString('en-US');
}

/** Longest reason a table cell holds; the whole reason is in the note below the table. */
const SHORT_REASON_CHARS = 40;

/** The gist of a reason, for a table cell: its first clause, cut at a word if still long. */
export function shortReason(reason: string): string {
  const clause = reason.split(/ \(|: /)[0]!.trim();
  if (clause.length <= SHORT_REASON_CHARS) return clause;
  return `${clause.slice(0, SHORT_REASON_CHARS + 1).replace(/\s+\S*$/, '')}…`;
}

export function accelTable(rows: readonly AccelRow[]): AccelTableRow[] {
  return rows.map((r) => ({
    accel: r.accel.toUpperCase(),
    status: r.available ? 'measured' : 'not usable',
    reason: r.reason,
    cpuOpsPerS: r.cpuOpsPerS,
    memMiBps: r.memMiBps,
    qemuCpuPct: r.perf?.cpusUtilized == null ? undefined : r.perf.cpusUtilized * 100,
    contextSwitchesPerS: r.perf?.contextSwitchesPerS ?? undefined,
    pageFaults: r.perf?.pageFaults ?? undefined,
    // Not measured at all: an empty CSV cell, as every missing figure.
    cycles: r.available ? counter(r.perf?.cycles) : undefined,
    instructions: r.available ? counter(r.perf?.instructions) : undefined,
  }));
}

export const ACCEL_COLUMNS: Column<AccelTableRow>[] = [
  { key: 'accel', title: 'accelerator', about: 'KVM or TCG' },
  {
    key: 'status',
    title: 'status',
    about: 'measured, or not usable',
    // The gist of why not; the whole reason is in the note below the table (and in accel.csv).
    format: (v, row) => (v === 'measured' ? v : `${v}: ${shortReason(row.reason)} (see below)`),
  },
  { key: 'cpuOpsPerS', title: 'guest CPU (ops/s)', format: n(), about: 'The guest\'s CPU benchmark (xorshift64* steps per second)' },
  { key: 'memMiBps', title: 'guest memcpy (MiB/s)', format: n(), about: 'The guest\'s memory-copy benchmark' },
  { key: 'qemuCpuPct', title: 'QEMU CPU (% of a core, perf)', format: n(0), about: 'CPU the QEMU process used (perf task-clock; 100 = one core)' },
  { key: 'contextSwitchesPerS', title: 'context switches/s', format: n(), about: 'Context switches of the QEMU process per second' },
  { key: 'pageFaults', title: 'page faults', format: n(), about: 'Page faults of the QEMU process' },
  { key: 'cycles', title: 'cycles', about: 'CPU cycles (not supported: the host exposes no hardware counters)' },
  { key: 'instructions', title: 'instructions', about: 'Instructions (not supported: as cycles)' },
];

export const NIC_COLUMNS: Column<NicRow>[] = [
  { key: 'nic', title: 'NIC', about: 'Guest NIC model' },
  { key: 'tcpToGuestMbps', title: 'TCP client→guest', format: fmtMbps, about: 'iperf3 TCP from the client host into the guest' },
  { key: 'tcpFromGuestMbps', title: 'TCP guest→client', format: fmtMbps, about: 'iperf3 TCP out of the guest (-R)' },
  { key: 'tcpRetransmits', title: 'retransmits', format: n(), about: 'TCP retransmits' },
  { key: 'udpReceivedMbps', title: 'UDP received', format: fmtMbps, about: 'iperf3 UDP rate that arrived' },
  { key: 'udpJitterMs', title: 'UDP jitter', format: fmtMs, about: 'UDP jitter' },
  { key: 'udpLostPct', title: 'UDP loss', format: (v) => fmtPct(v), about: 'UDP loss' },
];

export const DISK_COLUMNS: Column<NicRow>[] = [
  { key: 'disk', title: 'disk interface', about: 'Guest disk interface' },
  { key: 'nic', title: 'guest (NIC)' },
  { key: 'diskDevice', title: 'guest device', about: 'The guest block device benchmarked' },
  // The guest agent reports these to 0.1 MiB/s: every cell shows that digit (616.0, not 616).
  { key: 'diskWriteMiBps', title: 'write (MiB/s)', format: tenths, about: 'The guest\'s sequential write' },
  { key: 'diskReadMiBps', title: 'read (MiB/s)', format: tenths, about: 'The guest\'s sequential read' },
];

/** accel.csv: the table, with each accelerator's reason in full. */
export const ACCEL_CSV_COLUMNS: Column<AccelTableRow>[] = [...ACCEL_COLUMNS, { key: 'reason', title: 'reason', about: 'Why the accelerator was or was not usable, in full' }];

/** devices.csv: both tables of section 2 in one row per NIC model. */
export const DEVICES_CSV_COLUMNS: Column<NicRow>[] = [...NIC_COLUMNS, ...DISK_COLUMNS.filter((c) => c.key !== 'nic')];

export const DURING_COLUMNS: Column<DuringRow>[] = [
  { key: 'tS', title: 't (s)', format: n(2), about: 'Since the migrate command' },
  { key: 'series', title: 'series', about: 'iperf, perf-src or perf-dst: which figure the row carries' },
  { key: 'throughputMbps', title: 'iperf3 (Mbit/s)', format: n(0), about: 'iperf3 to the guest in the interval' },
  { key: 'srcCpuPct', title: 'source QEMU CPU (%)', format: n(0), about: 'Source QEMU CPU (100 = one core)' },
  { key: 'dstCpuPct', title: 'destination QEMU CPU (%)', format: n(0), about: 'Destination QEMU CPU (100 = one core)' },
];

/** The homework's results as homework.json, then its report (tables, CSV, figures). */
export async function writeHomeworkReport(dir: string, r: HomeworkResults): Promise<RenderedReport> {
  const saved = await writeResult(HOMEWORK_CONTRACT, join(dir, 'homework.json'), r);
  return renderHomeworkReport(dir, saved);
}

/**
 * One bar per accelerator, in millions of operations per second (an axis of 0, 100, 200 rather than
 * SI-prefixed ticks, which print zero as "0M"); one that could not be used keeps its place, with
 * the reason written in it.
 */
export function accelBars(rows: readonly AccelRow[]): { accel: string; mops?: number; note?: string }[] {
  return rows.map((a) =>
    a.available
      ? { accel: a.accel.toUpperCase(), mops: a.cpuOpsPerS === undefined ? undefined : a.cpuOpsPerS / 1e6 }
      : { accel: a.accel.toUpperCase(), note: `not measured: ${a.accel.toUpperCase()} is not usable on this machine\n${wrapText(a.reason, 44)}` },
  );
}

/**
 * Tables, CSV, figures and report.md/report.html from the results alone (homework.json as saved):
 * `miglab plot` on a homework folder calls this, so a re-rendered report is the same report.
 */
export async function renderHomeworkReport(dir: string, r: HomeworkResults): Promise<RenderedReport> {
  const plots = join(dir, 'plots');
  const figures: string[] = [];
  const draw = async (spec: VegaLiteSpec, base: string) => figures.push((await renderChart(spec, base)).pngPath);
  const accelRows = accelTable(r.accel);
  await writeTableCsv(join(dir, 'accel.csv'), ACCEL_CSV_COLUMNS, accelRows);
  await writeTableCsv(join(dir, 'devices.csv'), DEVICES_CSV_COLUMNS, r.devices);
  await writeTableCsv(join(dir, 'during-migration.csv'), DURING_COLUMNS, r.during.rows);

  await draw(
    barChart({
      title: 'Guest CPU benchmark by accelerator',
      data: accelBars(r.accel),
      category: { field: 'accel', title: 'accelerator' },
      value: { field: 'mops', title: 'guest CPU benchmark', unit: 'million ops/s' },
      note: 'note',
    }),
    join(plots, 'accel'),
  );
  const nicBars = r.devices.flatMap((d) => [
    { nic: d.nic, direction: 'client→guest', mbps: d.tcpToGuestMbps },
    { nic: d.nic, direction: 'guest→client', mbps: d.tcpFromGuestMbps },
  ]);
  await draw(
    barChart({ title: 'iperf3 TCP throughput by NIC model', data: nicBars, category: { field: 'nic', title: 'NIC' }, group: { field: 'direction', title: 'direction' }, value: { field: 'mbps', title: 'throughput', unit: 'Mbit/s' } }),
    join(plots, 'nic-throughput'),
  );
  const diskBars = r.devices.flatMap((d) => [
    { disk: `${d.disk} (${d.nic})`, op: 'write', mibps: d.diskWriteMiBps },
    { disk: `${d.disk} (${d.nic})`, op: 'read', mibps: d.diskReadMiBps },
  ]);
  await draw(
    barChart({ title: 'Guest disk throughput by interface', data: diskBars, category: { field: 'disk', title: 'disk interface' }, group: { field: 'op', title: 'operation' }, value: { field: 'mibps', title: 'throughput', unit: 'MiB/s' } }),
    join(plots, 'disk'),
  );
  const duringData = r.during.rows.filter((x) => x.series !== 'perf-dst');
  const markers = (xs: readonly number[]) => markersOf(r.during.marks.map((m) => ({ ...m, x: m.tS })), xs);
  await draw(
    dualAxisTimeChart({
      title: 'iperf3 through the guest and source QEMU CPU during the migration',
      data: duringData,
      x: { field: 'tS', title: 'time since migrate', unit: 's' },
      left: { field: 'throughputMbps', title: 'iperf3 throughput', unit: 'Mbit/s' },
      right: { field: 'srcCpuPct', title: 'source QEMU CPU', unit: '%' },
      markers: markers(duringData.map((x) => x.tS)),
    }),
    join(plots, 'during-migration'),
  );
  const cpuRows = r.during.rows.flatMap((x) =>
    x.srcCpuPct !== undefined ? [{ tS: x.tS, qemu: 'source', cpuPct: x.srcCpuPct }] : x.dstCpuPct !== undefined ? [{ tS: x.tS, qemu: 'destination', cpuPct: x.dstCpuPct }] : [],
  );
  await draw(
    lineChart({ title: 'QEMU CPU on both hosts (perf task-clock)', data: cpuRows, x: { field: 'tS', title: 'time since migrate', unit: 's' }, y: { field: 'cpuPct', title: 'CPU', unit: '% of a core' }, series: { field: 'qemu', title: 'QEMU' }, markers: markers(cpuRows.map((x) => x.tS)) }),
    join(plots, 'cpu-during-migration'),
  );

  const e = r.environment;
  const md = markdown()
    .heading(1, 'Live migration homework')
    .paragraph(`Run \`${r.runId}\`, started ${r.startedAt}, finished in ${(r.wallMs / 1000).toFixed(1)} s. Every figure below was measured in this run; the CSV behind each table sits next to this report.`)
    .heading(2, 'Environment')
    .table<{ what: string; value: string }>(
      [
        { key: 'what', title: 'component' },
        { key: 'value', title: 'in this run' },
      ],
      [
        { what: 'QEMU', value: e.qemuVersion },
        ...(r.colo?.qemuVersion ? [{ what: 'QEMU for COLO (section 5)', value: r.colo.qemuVersion }] : []),
        { what: 'host kernel', value: e.kernel },
        { what: 'host CPU', value: `${e.cpuModel} (${e.cpus} CPUs, ${e.memTotalMiB} MiB RAM)` },
        { what: 'guest', value: `Debian kernel ${e.guestKernel}, image ${e.imageHash}` },
        { what: 'KVM usable', value: e.kvmUsable === true ? 'yes' : e.kvmUsable === false ? 'no' : 'not probed' },
        // The gist: the whole reason is in section 1's note.
        { what: 'accelerator used', value: `${e.accelUsed}: ${shortReason(e.accelReason)}` },
      ],
    )
    .heading(2, '1. Performance with and without KVM (perf)')
    .paragraph('The guest agent runs a fixed integer compute loop and a memory copy and reports its own throughput; `perf stat` watches the QEMU process on the host during both (task-clock, context switches, page faults, and cycles/instructions where the host exposes them).')
    .table(ACCEL_COLUMNS, accelRows)
    .image('guest CPU benchmark by accelerator', 'plots/accel.png')
    .list(accelObservations(r.accel))
    .paragraph('CSV: [accel.csv](accel.csv)')
    .heading(2, '2. Network and disk with and without virtio (iperf)')
    .paragraph(`iperf3 between the client host and the guest across the lab bridge, ${r.devices.length ? 'both directions' : ''}; TCP throughput, then UDP jitter and loss. The guest's disk benchmark writes then reads its data disk with O_DIRECT.`)
    .table(NIC_COLUMNS, r.devices)
    .image('iperf3 throughput by NIC model', 'plots/nic-throughput.png')
    .table(DISK_COLUMNS, r.devices)
    .image('disk throughput by interface', 'plots/disk.png')
    .list(deviceObservations(r.devices))
    .paragraph('CSV: [devices.csv](devices.csv)')
    .heading(2, '3. perf and iperf during a live migration')
    .paragraph('iperf3 runs through the guest\'s NIC from the client host while `perf stat -I` samples both QEMU processes; the migration starts a few seconds in. Dashed lines mark the pre-copy passes, red lines the switchover and the resume on the destination.')
    .image('iperf3 and source QEMU CPU during the migration', 'plots/during-migration.png')
    .image('QEMU CPU on both hosts during the migration', 'plots/cpu-during-migration.png')
    .list(duringObservations(r.during))
    .table<{ what: string; value: string }>(
      [
        { key: 'what', title: 'QEMU reports' },
        { key: 'value', title: 'value' },
      ],
      [
        { what: 'status', value: String(r.during.report.outputs.status) },
        { what: 'total time', value: fmtMs(r.during.report.outputs.totalTimeMs) },
        { what: 'downtime', value: fmtMs(r.during.report.outputs.downtimeMs) },
        { what: 'setup time', value: fmtMs(r.during.report.outputs.setupTimeMs) },
        { what: 'transferred', value: `${((r.during.report.outputs.transferredBytes ?? 0) / 1048576).toFixed(1)} MiB` },
        { what: 'throughput (last)', value: fmtMbps(r.during.report.outputs.throughputMbps) },
        { what: 'dirty syncs', value: String(r.during.report.outputs.dirtySyncCount ?? '–') },
      ],
    )
    .paragraph('CSV: [during-migration.csv](during-migration.csv); the migration run itself (timeline, passes, serial logs, QMP transcript): [migration/](migration/run.json)')
    .heading(2, '4. The commands, argument by argument');
  for (const c of r.commands) {
    md.heading(3, c.title);
    if (c.note) md.paragraph(c.note);
    // Monitor commands one per line, as typed; a shell command as one line a shell can take.
    md.paragraph(`Runs in: ${c.where}`).explainedCommand(c.command, { perLine: c.perLine });
  }
  if (r.ganeshaConfig !== undefined) md.heading(3, "The NFS server's configuration").code(r.ganeshaConfig, 'text');
  md.heading(2, '5. Live migration and fault tolerance (questions E and F)').heading(3, 'E. What live migration is, and why one needs it');
  for (const p of liveMigrationAnswer(r)) md.paragraph(p);
  md.heading(3, 'F. Fault tolerance, and how COLO relates to live migration');
  for (const p of faultToleranceAnswer(r.colo, r)) md.paragraph(p);
  if (r.colo?.ran) {
    md.table<ColoFigureRow>(
      [
        { key: 'figure', title: 'figure' },
        { key: 'withColo', title: 'with COLO' },
        { key: 'withoutColo', title: 'the same guest without COLO' },
      ],
      faultToleranceRows(r.colo),
    );
  }
  if (r.colo?.ran) md.paragraph('The COLO run itself (checkpoints, traces, every command sent and why): [colo/report.md](colo/report.md)');
  md.heading(2, 'Wall time per section').table<{ section: string; seconds: number }>(
    [
      { key: 'section', title: 'section' },
      { key: 'seconds', title: 'seconds', format: n(1) },
    ],
    Object.entries(r.sectionsMs).map(([section, ms]) => ({ section, seconds: ms / 1000 })),
  );
  return { ...(await writeReport(dir, md.render(), 'Live migration homework')), figures };
}
