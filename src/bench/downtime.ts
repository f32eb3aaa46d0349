// The measurement benchmark: QEMU's downtime beside the client-seen downtime (1 ms UDP probe)
// and the STOP->RESUME events, for an idle and a busy guest over several repetitions, and the
// spread of total time across repetitions of the idle scenario. Figures go to a file.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { migrate } from '../api.js';
import { AbortedError } from '../errors.js';
import { withTeardown } from '../util/teardown.js';
import type { Progress } from '../progress/progress.js';
import type { ScenarioInput } from '../migrate/scenario.js';
import { fmtMs, markdown } from '../report/markdown.js';
import { summarize, type Summary } from '../stats/index.js';
import { spreadCase, spreadSection, type SpreadCase } from './spread.js';

export interface DowntimeBenchOptions {
  readonly outDir: string;
  readonly repetitions?: number;
  readonly progress?: Progress;
  /** Ctrl-C: the run in progress stops and cleans up, and the bench ends. */
  readonly signal?: AbortSignal;
}

interface Row {
  readonly repetition: number;
  readonly ok: boolean;
  readonly qemuDowntimeMs?: number;
  readonly eventDowntimeMs?: number;
  readonly clientDowntimeMs?: number;
  readonly probeResolutionMs?: number;
  readonly lostAroundGap?: number;
  readonly totalTimeMs?: number;
  readonly runDir: string;
}

const CASES: Record<string, ScenarioInput> = {
  idle: { guest: { memoryMiB: 256, diskSizeMiB: 64 }, timeoutMs: 60000 },
  // Busy, but in the range that stays healthy under TCG here (see the closing notes on faster rates).
  busy: { guest: { memoryMiB: 256, diskSizeMiB: 64 }, workload: 'dirty:64M@16M/s,random', timeoutMs: 60000 },
};

export async function runDowntimeBench(opts: DowntimeBenchOptions) {
  await mkdir(opts.outDir, { recursive: true });
  const reps = opts.repetitions ?? 5;
  const cases: Record<string, DowntimeCase> = {};
  // Ctrl-C ends the bench, not only the run in progress (each run stops and cleans up on it).
  await withTeardown(async (_td, signal) => {
    for (const [name, scenario] of Object.entries(CASES)) {
      const rows: Row[] = [];
      for (let i = 1; i <= reps; i++) {
        opts.progress?.('bench', `downtime ${name} ${i}/${reps}`);
        const { report, dir } = await migrate({ scenario, resultsRoot: join(opts.outDir, 'runs'), progress: opts.progress, signal });
        // The run stopped and cleaned up on a Ctrl-C; the bench ends with it.
        if (signal.aborted) throw new AbortedError('the downtime bench', signal.reason);
        const o = report.outputs;
        rows.push({
          repetition: i,
          ok: report.ok,
          qemuDowntimeMs: o.downtimeMs,
          eventDowntimeMs: o.eventDowntimeMs,
          clientDowntimeMs: o.clientDowntimeMs,
          probeResolutionMs: o.clientProbe?.resolutionMs,
          lostAroundGap: o.clientProbe?.lostAroundGap,
          totalTimeMs: o.totalTimeMs,
          runDir: dir,
        });
      }
      const ok = rows.filter((r) => r.ok);
      const col = (k: 'qemuDowntimeMs' | 'eventDowntimeMs' | 'clientDowntimeMs' | 'totalTimeMs') => ok.map((r) => r[k]).filter((v): v is number => typeof v === 'number');
      cases[name] = {
        scenario,
        rows,
        qemuDowntimeMs: summarize(col('qemuDowntimeMs')),
        eventDowntimeMs: summarize(col('eventDowntimeMs')),
        clientDowntimeMs: summarize(col('clientDowntimeMs')),
        totalTimeMs: summarize(col('totalTimeMs')),
        spread: spreadCase(name, rows.map((r) => ({ ok: r.ok, totalTimeMs: r.totalTimeMs, downtimeMs: r.qemuDowntimeMs }))),
      };
    }
  }, opts.signal);
  const measuredAt = new Date().toISOString();
  const file = join(opts.outDir, 'downtime.json');
  await writeFile(file, JSON.stringify({ benchmark: 'QEMU vs client-seen downtime', measuredAt, aims: { probeResolutionMs: 2 }, cases }, null, 2) + '\n');
  await writeFile(join(opts.outDir, 'downtime.md'), downtimeMarkdown(cases, measuredAt));
  return { file, cases };
}

interface DowntimeCase {
  readonly scenario: ScenarioInput;
  readonly rows: readonly Row[];
  readonly qemuDowntimeMs: Summary;
  readonly eventDowntimeMs: Summary;
  readonly clientDowntimeMs: Summary;
  readonly totalTimeMs: Summary;
  readonly spread: SpreadCase;
}

function downtimeMarkdown(cases: Record<string, DowntimeCase>, measuredAt: string): string {
  const medianRange = (s: Summary) => (s.median === undefined ? '–' : `${fmtMs(s.median)} (${fmtMs(s.min)}-${fmtMs(s.max)})`);
  const doc = markdown()
    .heading(1, 'Benchmark: QEMU against client-seen downtime')
    .paragraph(`Measured ${measuredAt}; 256 MiB guests on the embedded lab. Medians (min-max) over the runs that completed.`)
    .table<{ name: string } & DowntimeCase>(
      [
        { key: 'name', title: 'case' },
        { key: 'qemuDowntimeMs', title: "QEMU's downtime", format: medianRange },
        { key: 'eventDowntimeMs', title: 'STOP->RESUME', format: medianRange },
        { key: 'clientDowntimeMs', title: 'client-seen', format: medianRange },
        { key: 'totalTimeMs', title: 'total time', format: medianRange },
      ],
      Object.entries(cases).map(([name, c]) => ({ name, ...c })),
    );
  return spreadSection(doc, Object.values(cases).map((c) => c.spread)).render();
}
