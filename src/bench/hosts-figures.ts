// The hosts benchmark's arithmetic and its summary (`miglab bench --which hosts`): from the runs
// of one scenario on the embedded lab and on SSH hosts, each figure per mode, the difference of
// the means with its standard error, what SSH control adds to a run (against the 1 s aim) and
// whether QEMU's own figures moved beyond their run-to-run spread. Pure: src/bench/hosts.ts runs
// the migrations and hands the rows here; the JSON, CSV and Markdown files are read from these.
import { csvText, fmtMs, markdown } from '../report/markdown.js';
import type { RunReport } from '../results/run.js';
import { finite, mean, percentile, stdev, summarize, type Summary } from '../stats/index.js';
import { fmtCv, spreadCase, spreadSection, type SpreadCase } from './spread.js';

/** Where a run's QEMUs ran: the embedded lab's namespaces, or the same namespaces as SSH hosts. */
export const BENCH_MODES = ['embedded', 'hosts'] as const;
export type BenchMode = (typeof BENCH_MODES)[number];

/** What SSH may add to a run at most (the issue's aim). */
export const SSH_COST_AIM_MS = 1000;
/**
 * A difference of means is within run-to-run spread when it is no larger than this many standard
 * errors of that difference: about what the runs' own scatter produces by chance one time in twenty.
 */
export const SPREAD_STANDARD_ERRORS = 2;

/** QEMU's figures of a run: SSH control must not change them. */
export const QEMU_FIGURES = ['totalTimeMs', 'downtimeMs', 'eventDowntimeMs', 'clientDowntimeMs'] as const;
/** The harness's figures of a run: what SSH control may cost. */
export const HARNESS_FIGURES = ['wallMs', 'overheadMs', 'unphasedMs'] as const;
export type BenchFigure = (typeof QEMU_FIGURES)[number] | (typeof HARNESS_FIGURES)[number];

const FIGURE_TITLES: Record<BenchFigure, string> = {
  wallMs: 'wall time',
  overheadMs: 'overhead (wall - total time)',
  unphasedMs: 'outside every phase',
  totalTimeMs: 'total time (QEMU)',
  downtimeMs: 'downtime (QEMU)',
  eventDowntimeMs: 'STOP->RESUME',
  clientDowntimeMs: 'client downtime',
};

export interface HostsBenchRun {
  readonly case: string;
  readonly mode: BenchMode;
  readonly repetition: number;
  readonly ok: boolean;
  readonly verdict: string;
  readonly failure?: string;
  /** From calling the migration to its files written, as the caller waits. */
  readonly wallMs: number;
  readonly totalTimeMs?: number;
  readonly downtimeMs?: number;
  /** STOP->RESUME, the hosts' clock offsets removed. */
  readonly eventDowntimeMs?: number;
  readonly clientDowntimeMs?: number;
  /** The harness's share: wall time minus QEMU's total migration time. */
  readonly overheadMs?: number;
  /** The run's phases (run.json `phases`). */
  readonly phases: Readonly<Record<string, number>>;
  /** Wall time outside every phase: the clocks measured, run files written, the lab's bookkeeping. */
  readonly unphasedMs: number;
  readonly runDir: string;
}

/** Phases timed inside another (QEMU's start is the first part of boot to heartbeat): not summed twice. */
const NESTED_PHASES: ReadonlySet<string> = new Set(['qemuStartMs']);

/** One run's row, from its report and the wall time the caller measured around it. */
export function benchRun(p: { case: string; mode: BenchMode; repetition: number; wallMs: number; runDir: string; report: Pick<RunReport, 'ok' | 'verdict' | 'failure' | 'phases' | 'outputs'> }): HostsBenchRun {
  const o = p.report.outputs;
  const phased = Object.entries(p.report.phases)
    .filter(([name]) => !NESTED_PHASES.has(name))
    .reduce((a, [, ms]) => a + ms, 0);
  return {
    case: p.case,
    mode: p.mode,
    repetition: p.repetition,
    ok: p.report.ok,
    verdict: p.report.verdict,
    failure: p.report.failure,
    wallMs: p.wallMs,
    totalTimeMs: o.totalTimeMs,
    downtimeMs: o.downtimeMs,
    eventDowntimeMs: o.eventDowntimeMs,
    clientDowntimeMs: o.clientDowntimeMs,
    overheadMs: o.totalTimeMs === undefined ? undefined : p.wallMs - o.totalTimeMs,
    phases: p.report.phases,
    unphasedMs: p.wallMs - phased,
    runDir: p.runDir,
  };
}

/** One figure on both sides, and how far apart they are. */
export interface ModeDifference {
  readonly embedded: Summary;
  readonly hosts: Summary;
  /** Mean on the hosts minus mean on the embedded lab. */
  readonly differenceMs?: number;
  /** Standard error of that difference (Welch: both sides' own variance); needs two runs a side. */
  readonly standardErrorMs?: number;
  /** |difference| within SPREAD_STANDARD_ERRORS standard errors; undefined without a standard error. */
  readonly withinSpread?: boolean;
}

export function modeDifference(embedded: readonly (number | undefined)[], hosts: readonly (number | undefined)[]): ModeDifference {
  const e = finite(embedded);
  const h = finite(hosts);
  const me = mean(e);
  const mh = mean(h);
  const se = stdev(e);
  const sh = stdev(h);
  const differenceMs = me === undefined || mh === undefined ? undefined : mh - me;
  const standardErrorMs = se === undefined || sh === undefined ? undefined : Math.sqrt(se ** 2 / e.length + sh ** 2 / h.length);
  const withinSpread = differenceMs === undefined || standardErrorMs === undefined ? undefined : Math.abs(differenceMs) <= SPREAD_STANDARD_ERRORS * standardErrorMs;
  return { embedded: summarize(e), hosts: summarize(h), differenceMs, standardErrorMs, withinSpread };
}

/**
 * Whether a cost meets its aim: met when even its high end (difference + 2 standard errors) is
 * under the aim, missed when even its low end is not, unclear between; without a standard error
 * (one run a side) the difference alone decides.
 */
export type AimVerdict = 'met' | 'missed' | 'unclear' | 'unknown';

export function aimVerdict(cost: ModeDifference, aimMs: number): AimVerdict {
  if (cost.differenceMs === undefined) return 'unknown';
  const margin = SPREAD_STANDARD_ERRORS * (cost.standardErrorMs ?? 0);
  if (cost.differenceMs + margin < aimMs) return 'met';
  if (cost.differenceMs - margin >= aimMs) return 'missed';
  return 'unclear';
}

export interface HostsBenchCase {
  readonly runs: { readonly embedded: number; readonly hosts: number; readonly failed: number };
  readonly figures: Readonly<Record<BenchFigure, ModeDifference>>;
  /** Each phase of run.json on both sides: where the SSH cost sits. */
  readonly phases: Readonly<Record<string, ModeDifference>>;
  /** What SSH control adds to a run: the overhead's difference. */
  readonly sshCostMs: ModeDifference;
  readonly sshCostVerdict: AimVerdict;
  /** QEMU figures whose difference is beyond run-to-run spread (empty: none moved). */
  readonly qemuFiguresMoved: readonly (typeof QEMU_FIGURES)[number][];
  /** QEMU figures that could not be judged (fewer than two runs a side reported them). */
  readonly qemuFiguresUnjudged: readonly (typeof QEMU_FIGURES)[number][];
}

/** The figures of one scenario; failed runs are counted but not averaged. */
export function caseFigures(runs: readonly HostsBenchRun[]): HostsBenchCase {
  const ok = runs.filter((r) => r.ok);
  const side = (mode: BenchMode) => ok.filter((r) => r.mode === mode);
  const diff = (pick: (r: HostsBenchRun) => number | undefined) => modeDifference(side('embedded').map(pick), side('hosts').map(pick));
  const figures = Object.fromEntries([...QEMU_FIGURES, ...HARNESS_FIGURES].map((f) => [f, diff((r) => r[f])])) as Record<BenchFigure, ModeDifference>;
  const phaseNames = [...new Set(ok.flatMap((r) => Object.keys(r.phases)))];
  const phases = Object.fromEntries(phaseNames.map((p) => [p, diff((r) => r.phases[p])]));
  return {
    runs: { embedded: side('embedded').length, hosts: side('hosts').length, failed: runs.length - ok.length },
    figures,
    phases,
    sshCostMs: figures.overheadMs,
    sshCostVerdict: aimVerdict(figures.overheadMs, SSH_COST_AIM_MS),
    qemuFiguresMoved: QEMU_FIGURES.filter((f) => figures[f].withinSpread === false),
    qemuFiguresUnjudged: QEMU_FIGURES.filter((f) => figures[f].withinSpread === undefined),
  };
}

/** Round trips of one control action, one side. */
export interface ControlSamples {
  readonly samplesMs: readonly number[];
  readonly medianMs?: number;
  readonly p90Ms?: number;
  readonly minMs?: number;
}

export function controlSamples(samplesMs: readonly number[]): ControlSamples {
  const s = summarize(samplesMs);
  return { samplesMs, medianMs: s.median, p90Ms: percentile(samplesMs, 90), minMs: s.min };
}

/** One control action (a command run, a QMP round trip) on both sides. */
export interface ControlCost {
  readonly embedded: ControlSamples;
  readonly hosts: ControlSamples;
  /** Median on the hosts minus median on the embedded lab. */
  readonly medianDifferenceMs?: number;
}

export function controlCost(embeddedMs: readonly number[], hostsMs: readonly number[]): ControlCost {
  const embedded = controlSamples(embeddedMs);
  const hosts = controlSamples(hostsMs);
  const medianDifferenceMs = embedded.medianMs === undefined || hosts.medianMs === undefined ? undefined : hosts.medianMs - embedded.medianMs;
  return { embedded, hosts, medianDifferenceMs };
}

export const CONTROL_ACTIONS = {
  runTrue: '`true` run on the source host (Host.run)',
  qmpQueryStatus: "a QMP query-status round trip to a QEMU on the source host (its socket forwarded over SSH on the hosts)",
} as const;
export type ControlAction = keyof typeof CONTROL_ACTIONS;

export interface HostsBenchResult {
  readonly benchmark: string;
  readonly measuredAt: string;
  readonly aims: { readonly sshCostPerRunMs: number; readonly qemuFigures: string };
  /** How "within run-to-run spread" is judged, in words. */
  readonly judgedBy: string;
  readonly repetitions: number;
  readonly scenarios: Readonly<Record<string, unknown>>;
  /** Once per bench, not per run: the lab up, the SSH hosts started, the hosts connected and checked. */
  readonly setupMs: Readonly<Record<string, number>>;
  readonly control: Readonly<Record<ControlAction, ControlCost>>;
  /** One run a side first, not averaged: the hosts' first run puts the probe tool there. */
  readonly warmup: readonly HostsBenchRun[];
  readonly cases: Readonly<Record<string, HostsBenchCase>>;
  /** Each scenario on each side: total time and downtime over its repetitions (warm-ups left out). */
  readonly spread: readonly SpreadCase[];
  readonly runs: readonly HostsBenchRun[];
}

export const JUDGED_BY = `a QEMU figure changed beyond run-to-run spread when its mean on the hosts differs from its mean on the embedded lab by more than ${SPREAD_STANDARD_ERRORS} standard errors of that difference (Welch: sqrt(s_e^2/n_e + s_h^2/n_h), each side's own scatter); the SSH cost meets the ${SSH_COST_AIM_MS} ms aim when the overhead's difference plus ${SPREAD_STANDARD_ERRORS} standard errors is under it, misses when the difference minus them is not, and is unclear between`;

/** The spread of each scenario on each side, in the order the runs came. */
export function hostsSpread(runs: readonly HostsBenchRun[]): SpreadCase[] {
  const keys = [...new Set(runs.map((r) => `${r.case} ${r.mode}`))];
  return keys.map((key) => spreadCase(key, runs.filter((r) => `${r.case} ${r.mode}` === key)));
}

/** runs.csv: one row per run (warm-ups included, marked), each phase a column. */
export function runsCsv(runs: readonly HostsBenchRun[], warmup: readonly HostsBenchRun[]): string {
  const phaseNames = [...new Set([...warmup, ...runs].flatMap((r) => Object.keys(r.phases)))];
  const rows = [...warmup.map((r) => ({ r, warmup: true })), ...runs.map((r) => ({ r, warmup: false }))].map(({ r, warmup }) => {
    const { phases, ...rest } = r;
    return { ...rest, warmup, ...Object.fromEntries(phaseNames.map((p) => [p, phases[p]])) } as Record<string, unknown>;
  });
  const keys = ['case', 'mode', 'repetition', 'warmup', 'ok', 'verdict', 'wallMs', 'overheadMs', 'unphasedMs', ...QEMU_FIGURES, ...phaseNames, 'failure', 'runDir'];
  return csvText(rows, keys);
}

const pm = (d: ModeDifference) => (d.differenceMs === undefined ? '–' : `${d.differenceMs >= 0 ? '+' : ''}${fmtMs(d.differenceMs)}${d.standardErrorMs === undefined ? '' : ` ± ${fmtMs(d.standardErrorMs)}`}`);
const meanSd = (s: Summary) => (s.mean === undefined ? '–' : `${fmtMs(s.mean)}${s.stdev === undefined ? '' : ` ± ${fmtMs(s.stdev)}`}${s.cv === undefined ? '' : ` (CV ${fmtCv(s.cv)})`}`);
const spreadWord = (d: ModeDifference) => (d.withinSpread === undefined ? 'not judged' : d.withinSpread ? 'within spread' : '**beyond spread**');

/** The Markdown summary: the verdicts first, then each case's table, the phases, the raw control costs. */
export function hostsBenchMarkdown(r: HostsBenchResult): string {
  const doc = markdown().heading(1, 'Embedded lab against SSH hosts');
  doc.paragraph(
    `${r.benchmark}. Measured ${r.measuredAt}; ${r.repetitions} repetitions a side and scenario, embedded and hosts runs alternating (which goes first alternates too). Aim: SSH adds under ${fmtMs(r.aims.sshCostPerRunMs)} a run and changes no QEMU figure beyond run-to-run spread.`,
  );
  doc.list(
    Object.entries(r.cases).map(([name, c]) => {
      const moved = c.qemuFiguresMoved.length ? `QEMU figures beyond spread: ${c.qemuFiguresMoved.map((f) => FIGURE_TITLES[f]).join(', ')}` : 'no QEMU figure beyond spread';
      const unjudged = c.qemuFiguresUnjudged.length ? ` (not judged: ${c.qemuFiguresUnjudged.map((f) => FIGURE_TITLES[f]).join(', ')})` : '';
      const failed = c.runs.failed ? `; ${c.runs.failed} run(s) failed and are left out` : '';
      return `**${name}**: SSH adds ${pm(c.sshCostMs)} a run (aim ${c.sshCostVerdict}); ${moved}${unjudged}${failed}`;
    }),
  );
  for (const [name, c] of Object.entries(r.cases)) {
    doc.heading(2, `${name}: ${c.runs.embedded} embedded, ${c.runs.hosts} hosts runs`);
    if (r.scenarios[name] !== undefined) doc.paragraph(`Scenario: \`${JSON.stringify(r.scenarios[name])}\``);
    type Row = { figure: string; embedded: string; hosts: string; difference: string; spread: string };
    const rows: Row[] = [...HARNESS_FIGURES, ...QEMU_FIGURES].map((f) => ({ figure: FIGURE_TITLES[f], embedded: meanSd(c.figures[f].embedded), hosts: meanSd(c.figures[f].hosts), difference: pm(c.figures[f]), spread: (QEMU_FIGURES as readonly string[]).includes(f) ? spreadWord(c.figures[f]) : '' }));
    const phaseRows: Row[] = Object.entries(c.phases).map(([p, d]) => ({ figure: `phase ${p}`, embedded: meanSd(d.embedded), hosts: meanSd(d.hosts), difference: pm(d), spread: '' }));
    doc.table<Row>(
      [
        { key: 'figure', title: 'figure' },
        { key: 'embedded', title: 'embedded (mean ± sd)', align: 'right' },
        { key: 'hosts', title: 'SSH hosts (mean ± sd)', align: 'right' },
        { key: 'difference', title: 'hosts - embedded (± se)', align: 'right' },
        { key: 'spread', title: 'QEMU figure' },
      ],
      [...rows, ...phaseRows],
    );
  }
  spreadSection(doc, r.spread);
  doc.heading(2, 'The raw cost of control');
  type ControlRow = { action: string; embedded: string; hosts: string; difference: string };
  doc.table<ControlRow>(
    [
      { key: 'action', title: 'action' },
      { key: 'embedded', title: 'embedded median (p90)', align: 'right' },
      { key: 'hosts', title: 'SSH hosts median (p90)', align: 'right' },
      { key: 'difference', title: 'difference of medians', align: 'right' },
    ],
    (Object.keys(CONTROL_ACTIONS) as ControlAction[]).map((a) => {
      const c = r.control[a];
      const side = (s: ControlSamples) => `${fmtMs(s.medianMs)} (${fmtMs(s.p90Ms)}), n=${s.samplesMs.length}`;
      return { action: CONTROL_ACTIONS[a], embedded: side(c.embedded), hosts: side(c.hosts), difference: fmtMs(c.medianDifferenceMs) };
    }),
  );
  doc.paragraph(`Once per session, not per run: ${Object.entries(r.setupMs).map(([k, v]) => `${k} ${fmtMs(v)}`).join(', ')}.`);
  if (r.warmup.length) doc.paragraph(`Warm-up runs (not averaged; the hosts' first run puts the probe tool on them): ${r.warmup.map((w) => `${w.mode} ${fmtMs(w.wallMs)} wall, overhead ${fmtMs(w.overheadMs)}`).join('; ')}.`);
  doc.paragraph(`How it is judged: ${r.judgedBy}.`);
  return doc.render();
}
