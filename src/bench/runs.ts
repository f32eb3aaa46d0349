// `miglab bench --which runs`: issue 13's benchmark. What one run costs beyond the migration
// itself, as a user pays it: `miglab migrate` started as a command (a new process each time, the
// lab already up, uplinks shaped to 1 Gbit/s), 512 MiB guests idle and busy, each started cold
// (booting its kernel) and warm (loading the saved booted guest), the cases interleaved. Per case:
// boot to heartbeat, the command's wall time minus QEMU's total time (the per-run overhead) and
// where it went (run.json's steps, the process before the run, the files after it), and the spread
// over repetitions of total time and downtime. Warm and cold are judged to agree when their medians
// differ by no more than twice the larger standard deviation. Figures go to results/bench/runs.json
// and runs.md, beside the previous file's figures when there was one; nothing here asserts a speed.
import { execa } from 'execa';
import { describeError } from '../errors.js';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT, useLab } from '../api.js';
import type { RunReport } from '../migrate/report.js';
import type { Progress } from '../progress/progress.js';
import { fmtMs, markdown } from '../report/markdown.js';
import { summarize, type Summary } from '../stats/index.js';
import { makePrivateDir } from '../util/private.js';
import { SILENCE_SEGMENTS, type ClientSilence, type SilenceSegmentKey } from '../migrate/client-silence.js';
import { renderChart } from '../plot/render.js';
import { measureSamplingCost, type SamplingCost } from './sampling-cost.js';
import { silenceChart } from '../report/client-silence.js';
import { withTeardown } from '../util/teardown.js';
import { fmtCv, SPREAD_AIM_CV, spreadCase, spreadSection, type SpreadCase } from './spread.js';

export interface RunsBenchOptions {
  readonly outDir: string;
  readonly repetitions?: number;
  readonly progress?: Progress;
  readonly signal?: AbortSignal;
}

const LINK_MBIT = 1000;
const AIMS = { coldBootMs: 2000, overheadMs: 3000, spreadCv: SPREAD_AIM_CV, silenceExcessMs: 10 } as const;
const WORKLOADS = { idle: 'idle', busy: 'dirty:128M@32M/s,random' } as const;
const STARTS = ['cold', 'warm'] as const;

interface RunRow {
  readonly workload: keyof typeof WORKLOADS;
  readonly start: (typeof STARTS)[number];
  readonly repetition: number;
  readonly ok: boolean;
  readonly wallMs: number;
  readonly totalTimeMs?: number;
  readonly downtimeMs?: number;
  readonly clientDowntimeMs?: number;
  /** QEMU's STOP->RESUME: the client's silence beyond it is the network's and the guest's. */
  readonly eventDowntimeMs?: number;
  readonly silence?: ClientSilence;
  readonly transferredMiB?: number;
  readonly bootMs?: number;
  readonly processMsAtStart?: number;
  /** After the run's record was built: its files, figures and report, and the process's exit. */
  readonly afterRunMs?: number;
  readonly steps: Readonly<Record<string, number>>;
  /** A warm run that had to make its state first: not counted among the warm runs. */
  readonly madeState?: boolean;
  readonly runDir?: string;
  /** A run with no run.json: the command's last line on stderr. */
  readonly error?: string;
}

export interface RunsCase {
  readonly workload: string;
  readonly start: string;
  readonly runs: number;
  readonly bootMs: Summary;
  readonly wallMs: Summary;
  readonly overheadMs: Summary;
  readonly totalTimeMs: Summary;
  readonly downtimeMs: Summary;
  readonly clientDowntimeMs: Summary;
  /** The client's silence beyond QEMU's STOP->RESUME (aim: under 10 ms). */
  readonly silenceExcessMs: Summary;
  /** Each stretch of the client's silence, its median (client-silence.ts). */
  readonly silenceMedians: Readonly<Partial<Record<SilenceSegmentKey, number>>>;
  readonly transferredMiB: Summary;
  readonly processMsAtStart: Summary;
  readonly afterRunMs: Summary;
  /** Each step's median, ms (run.json's steps). */
  readonly stepMedians: Readonly<Record<string, number>>;
  readonly spread: SpreadCase;
}

export interface RunsBenchResult {
  readonly benchmark: string;
  readonly measuredAt: string;
  readonly link: string;
  readonly memoryMiB: number;
  readonly repetitions: number;
  readonly aims: typeof AIMS;
  readonly cases: readonly RunsCase[];
  /** Per workload: do warm and cold agree on QEMU's figures (medians within twice the larger stdev)? */
  readonly warmAgrees: readonly { readonly workload: string; readonly figure: string; readonly cold?: number; readonly warm?: number; readonly allowed?: number; readonly agrees: boolean }[];
  /** What sampling every 10 ms costs the host (sampling-cost.ts). */
  readonly samplingCost?: SamplingCost;
  /** Why it was not measured. */
  readonly samplingCostError?: string;
  readonly rows: readonly RunRow[];
  readonly previous?: { readonly measuredAt: string; readonly cases: readonly RunsCase[]; readonly samplingCost?: SamplingCost };
}

async function runOnce(workload: keyof typeof WORKLOADS, start: (typeof STARTS)[number], repetition: number, resultsRoot: string, signal?: AbortSignal): Promise<RunRow> {
  const results = join(resultsRoot, `${workload}-${start}-${repetition}`);
  await makePrivateDir(results);
  const argv = [join(REPO_ROOT, 'bin', 'miglab.js'), 'migrate', '--memory', '512M', '--disk-size', '64M', '--accel', 'tcg', '--start', start, '--workload', WORKLOADS[workload], '--results', results, '--quiet'];
  const t = Date.now();
  // Ctrl-C reaches the run as SIGTERM; it then stops its QEMUs and taps (seconds), not killed before.
  const r = await execa(process.execPath, argv, { reject: false, cancelSignal: signal, forceKillAfterDelay: 30_000, cwd: REPO_ROOT });
  const wallMs = Date.now() - t;
  const runDir = (await readdir(results).catch(() => [] as string[]))[0];
  // A run that left no readable run.json is a failed row (its last words kept), not the end of the bench.
  const report = runDir ? await readFile(join(results, runDir, 'run.json'), 'utf8').then((text) => JSON.parse(text) as RunReport, () => undefined) : undefined;
  if (!report) return { workload, start, repetition, ok: false, wallMs, steps: {}, error: r.stderr.trim().split('\n').at(-1) ?? `exit ${r.exitCode}` };
  const o = report.outputs;
  const steps: Record<string, number> = {};
  for (const s of report.steps ?? []) steps[s.step] = (steps[s.step] ?? 0) + s.ms;
  return {
    workload,
    start,
    repetition,
    ok: report.ok,
    wallMs,
    totalTimeMs: o.totalTimeMs,
    downtimeMs: o.downtimeMs,
    clientDowntimeMs: o.clientDowntimeMs,
    eventDowntimeMs: o.eventDowntimeMs,
    silence: o.clientSilence,
    transferredMiB: o.transferredBytes !== undefined ? o.transferredBytes / 1048576 : undefined,
    bootMs: report.phases.bootToHeartbeatMs,
    processMsAtStart: report.processMsAtStart,
    afterRunMs: report.processMsAtStart !== undefined ? wallMs - report.processMsAtStart - report.wallMs : undefined,
    steps,
    madeState: o.start?.madeNow === true,
    runDir: join(results, runDir!),
  };
}

function caseOf(rows: readonly RunRow[], workload: string, start: string): RunsCase {
  const mine = rows.filter((r) => r.workload === workload && r.start === start && !r.madeState);
  const ok = mine.filter((r) => r.ok);
  const col = (f: (r: RunRow) => number | undefined) => summarize(ok.map(f));
  const names = [...new Set(ok.flatMap((r) => Object.keys(r.steps)))];
  return {
    workload,
    start,
    runs: ok.length,
    bootMs: col((r) => r.bootMs),
    wallMs: col((r) => r.wallMs),
    overheadMs: col((r) => (r.totalTimeMs !== undefined ? r.wallMs - r.totalTimeMs : undefined)),
    totalTimeMs: col((r) => r.totalTimeMs),
    downtimeMs: col((r) => r.downtimeMs),
    clientDowntimeMs: col((r) => r.clientDowntimeMs),
    silenceExcessMs: col((r) => (r.clientDowntimeMs !== undefined && r.eventDowntimeMs !== undefined ? r.clientDowntimeMs - r.eventDowntimeMs : undefined)),
    silenceMedians: Object.fromEntries(
      SILENCE_SEGMENTS.flatMap((seg) => {
        const m = summarize(ok.map((r) => r.silence?.segments.find((g) => g.key === seg.key)?.ms)).median;
        return m === undefined ? [] : [[seg.key, m]];
      }),
    ),
    transferredMiB: col((r) => r.transferredMiB),
    processMsAtStart: col((r) => r.processMsAtStart),
    afterRunMs: col((r) => r.afterRunMs),
    stepMedians: Object.fromEntries(names.map((n) => [n, summarize(ok.map((r) => r.steps[n])).median ?? NaN])),
    spread: spreadCase(`${workload} ${start}`, mine),
  };
}

/** Warm against cold on one figure: medians apart by no more than twice the larger standard deviation. */
export function agreement(cold: Summary, warm: Summary): { cold?: number; warm?: number; allowed?: number; agrees: boolean } {
  if (cold.median === undefined || warm.median === undefined) return { agrees: false };
  const allowed = 2 * Math.max(cold.stdev ?? 0, warm.stdev ?? 0);
  return { cold: cold.median, warm: warm.median, allowed, agrees: Math.abs(warm.median - cold.median) <= allowed };
}

export async function runRunsBench(opts: RunsBenchOptions): Promise<{ files: { json: string; markdown: string; figure?: string }; result: RunsBenchResult }> {
  const repetitions = opts.repetitions ?? 3;
  await makePrivateDir(opts.outDir);
  const json = join(opts.outDir, 'runs.json');
  const previous = await readFile(json, 'utf8').then((t) => JSON.parse(t) as RunsBenchResult, () => undefined);
  const runsRoot = join(opts.outDir, 'runs-runs');
  await rm(runsRoot, { recursive: true, force: true });
  const rows: RunRow[] = [];
  let samplingCost: SamplingCost | undefined;
  let samplingCostError: string | undefined;
  await withTeardown(async (td, signal) => {
    // The lab stays up for every run (each command attaches to it, as a user's runs on a lab they brought up).
    const lab = await useLab(td, { shaping: { bandwidthMbit: LINK_MBIT } }, signal, { sharedWithOtherProcesses: true });
    for (let i = 1; i <= repetitions; i++) {
      for (const workload of Object.keys(WORKLOADS) as (keyof typeof WORKLOADS)[]) {
        // Which start goes first alternates, so neither always follows the other.
        for (const start of i % 2 === 1 ? STARTS : [...STARTS].reverse()) {
          opts.progress?.('bench', `runs: ${workload} ${start} ${i}/${repetitions}`);
          const row = await runOnce(workload, start, i, runsRoot, signal);
          rows.push(row);
          // A warm case whose state was made by this run is run again, so that it counts.
          if (row.madeState) rows.push(await runOnce(workload, start, i, join(runsRoot, 'again'), signal));
        }
      }
    }
    // With no run going: what each sampler costs at 10 ms (a link's counters read on the lab's switch).
    opts.progress?.('bench', 'runs: the cost of sampling every 10 ms');
    // A figure beside the runs': one that cannot be had is said, and the runs' figures still written.
    samplingCost = await measureSamplingCost({ linkNetns: lab.names.switchNs, linkDev: lab.names.switchPort.dst, signal }).catch((err: unknown) => {
      if (signal.aborted) throw err;
      samplingCostError = describeError(err);
      return undefined;
    });
  }, opts.signal);
  const cases = (Object.keys(WORKLOADS) as string[]).flatMap((w) => STARTS.map((s) => caseOf(rows, w, s)));
  const warmAgrees = (Object.keys(WORKLOADS) as string[]).flatMap((workload) => {
    const cold = cases.find((c) => c.workload === workload && c.start === 'cold')!;
    const warm = cases.find((c) => c.workload === workload && c.start === 'warm')!;
    return (['totalTimeMs', 'downtimeMs', 'transferredMiB'] as const).map((figure) => ({ workload, figure, ...agreement(cold[figure], warm[figure]) }));
  });
  const result: RunsBenchResult = {
    benchmark: 'per-run cost of `miglab migrate` (issue 13): boot, overhead beyond the migration, warm against cold, spread',
    measuredAt: new Date().toISOString(),
    link: `${LINK_MBIT} Mbit/s`,
    memoryMiB: 512,
    repetitions,
    aims: AIMS,
    cases,
    warmAgrees,
    ...(samplingCost ? { samplingCost } : {}),
    ...(samplingCostError ? { samplingCostError } : {}),
    rows,
    ...(previous ? { previous: { measuredAt: previous.measuredAt, cases: previous.cases, ...(previous.samplingCost ? { samplingCost: previous.samplingCost } : {}) } } : {}),
  };
  await writeFile(json, `${JSON.stringify(result, null, 2)}\n`);
  const md = join(opts.outDir, 'runs.md');
  await writeFile(md, runsMarkdown(result));
  // A stacked bar per run: where each client's silence went.
  const chart = silenceChart(rows.flatMap((row) => (row.silence ? [{ label: `${row.workload} ${row.start} ${row.repetition}`, silence: row.silence }] : [])), 'runs-client-silence');
  const figure = chart ? (await renderChart(chart.spec, join(opts.outDir, chart.name))).pngPath : undefined;
  return { files: { json, markdown: md, ...(figure ? { figure } : {}) }, result };
}

export function runsMarkdown(r: RunsBenchResult): string {
  const doc = markdown()
    .heading(1, 'Per-run cost of `miglab migrate`')
    .paragraph(
      `${r.benchmark}. Measured ${r.measuredAt}; ${r.memoryMiB} MiB guests, uplinks shaped to ${r.link}, ${r.repetitions} repetitions a case, each run a new \`miglab migrate\` process on a lab already up. Aims: cold boot to heartbeat under ${fmtMs(r.aims.coldBootMs)}, overhead (wall time minus QEMU's total time) under ${fmtMs(r.aims.overheadMs)}, spread (coefficient of variation) of total time and downtime under ${fmtCv(r.aims.spreadCv)}.`,
    );
  const prev = (c: RunsCase, f: (p: RunsCase) => number | undefined) => {
    const p = r.previous?.cases.find((x) => x.workload === c.workload && x.start === c.start);
    return p ? fmtMs(f(p)) : '-';
  };
  doc.heading(2, 'Boot and overhead').table<RunsCase & { prevBoot: string; prevOverhead: string }>(
    [
      { key: 'workload', title: 'workload' },
      { key: 'start', title: 'start' },
      { key: 'runs', title: 'runs' },
      { key: 'bootMs', title: 'boot to heartbeat, median', format: (s) => `${fmtMs(s.median)} (${fmtMs(s.min)}-${fmtMs(s.max)})` },
      { key: 'prevBoot', title: 'previous' },
      { key: 'overheadMs', title: 'overhead, median', format: (s) => `${fmtMs(s.median)} (${fmtMs(s.min)}-${fmtMs(s.max)})` },
      { key: 'prevOverhead', title: 'previous' },
      { key: 'totalTimeMs', title: 'total time', format: (s) => fmtMs(s.median) },
      { key: 'downtimeMs', title: 'downtime', format: (s) => fmtMs(s.median) },
      { key: 'clientDowntimeMs', title: 'client downtime', format: (s) => fmtMs(s.median) },
      { key: 'silenceExcessMs', title: 'client beyond STOP->RESUME', format: (s) => `${fmtMs(s.median)} (${fmtMs(s.min)}-${fmtMs(s.max)})` },
    ],
    r.cases.map((c) => ({ ...c, prevBoot: prev(c, (p) => p.bootMs.median), prevOverhead: prev(c, (p) => p.overheadMs.median) })),
  );
  spreadSection(doc, r.cases.map((c) => c.spread), { note: 'Warm and cold runs are separate cases (they do not agree, below).' });
  const stepNames = [...new Set(r.cases.flatMap((c) => Object.keys(c.stepMedians)))];
  doc.heading(2, 'Where the overhead goes (medians)').paragraph(
    '`before the run`: the process from its start to the run\'s (loading miglab, the checks before anything starts, the lab); `after the run`: writing the run\'s files, figures and report, and the exit. The steps are run.json\'s; a step may lie within another (qemuStart within bootToHeartbeat, agentReachable within instrument).',
  );
  doc.table<{ step: string } & Record<string, string>>(
    [{ key: 'step', title: 'step' }, ...r.cases.map((c) => ({ key: `${c.workload}-${c.start}`, title: `${c.workload} ${c.start}` }))],
    [
      { step: 'before the run', ...Object.fromEntries(r.cases.map((c) => [`${c.workload}-${c.start}`, fmtMs(c.processMsAtStart.median)])) },
      ...stepNames.map((step) => ({ step, ...Object.fromEntries(r.cases.map((c) => [`${c.workload}-${c.start}`, fmtMs(c.stepMedians[step])])) })),
      { step: 'after the run', ...Object.fromEntries(r.cases.map((c) => [`${c.workload}-${c.start}`, fmtMs(c.afterRunMs.median)])) },
    ],
  );
  doc
    .heading(2, "Where the client's silence went (medians)")
    .paragraph(
      `Each run's probe gap cut at QEMU's STOP and RESUME, QEMU's first self-announce at the lab switch's port to the destination, the guest's first frame of its own from there, and the probe's first answer (run.json's clientSilence; one bar per run in runs-client-silence.png). Aim: the client's silence within STOP->RESUME plus ${fmtMs(r.aims.silenceExcessMs)}.`,
    )
    .table<{ stretch: string } & Record<string, string>>(
      [{ key: 'stretch', title: 'stretch' }, ...r.cases.map((c) => ({ key: `${c.workload}-${c.start}`, title: `${c.workload} ${c.start}` }))],
      SILENCE_SEGMENTS.map((seg) => ({ stretch: seg.label, ...Object.fromEntries(r.cases.map((c) => [`${c.workload}-${c.start}`, fmtMs(c.silenceMedians?.[seg.key])])) })),
    );
  const sc = r.samplingCost;
  if (r.samplingCostError) doc.heading(2, 'What sampling costs').paragraph(`Not measured: ${r.samplingCostError}.`);
  if (sc) {
    const before = (x: SamplingCost['samplers'][number]) => r.previous?.samplingCost?.samplers.find((p) => p.sampler === x.sampler && p.intervalMs === x.intervalMs)?.pctOfCpu;
    doc
      .heading(2, 'What sampling costs')
      .paragraph(
        `Each sampler alone for ${fmtMs(sc.windowMs)}, with no run going, against the same window with nothing sampled: the CPU of every process it takes (miglab's, the commands it runs, QEMU's, the probe's), as % of one CPU. query-migrate goes to a QEMU with no guest (\`-machine none\`: its answer is \`{}\`, shorter than a migration's); rows marked "before" are how miglab read them until this version, for the comparison. query-migrate, host counters, a link's counters and the probe at its 1 ms default together, as miglab samples now: ${sc.totalPct.toFixed(2)} % (aim: under ${sc.aimPct} %${sc.totalPct < sc.aimPct ? ', met' : ', NOT met'}).`,
      )
      .table<SamplingCost['samplers'][number] & { previous: string }>(
        [
          { key: 'sampler', title: 'sampler' },
          { key: 'intervalMs', title: 'every', format: (v) => fmtMs(v as number) },
          { key: 'samples', title: 'samples' },
          { key: 'cpuMs', title: 'CPU beyond idle', format: (v) => Object.entries(v as Record<string, number>).map(([k, ms]) => `${k} ${fmtMs(ms)}`).join(', ') },
          { key: 'pctOfCpu', title: '% of a CPU', format: (v) => `${(v as number).toFixed(2)} %` },
          { key: 'previous', title: 'previous' },
        ],
        sc.samplers.map((x) => ({ ...x, previous: before(x) === undefined ? '-' : `${before(x)!.toFixed(2)} %` })),
      );
  }
  doc.heading(2, 'Warm against cold').table<RunsBenchResult['warmAgrees'][number]>(
    [
      { key: 'workload', title: 'workload' },
      { key: 'figure', title: 'figure' },
      { key: 'cold', title: 'cold, median', format: (v) => (v === undefined ? '-' : v.toFixed(1)) },
      { key: 'warm', title: 'warm, median', format: (v) => (v === undefined ? '-' : v.toFixed(1)) },
      { key: 'allowed', title: 'allowed difference (2 stdev)', format: (v) => (v === undefined ? '-' : v.toFixed(1)) },
      { key: 'agrees', title: 'agree', format: (v) => (v ? 'yes' : 'NO') },
    ],
    r.warmAgrees,
  );
  return doc.render();
}
