// The measurement benchmark: QEMU's downtime beside the client-seen downtime (1 ms UDP probe)
// and the STOP->RESUME events, for an idle and a busy guest over several repetitions, and the
// spread of total time across repetitions of the idle scenario. Figures go to a file.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { migrate } from '../api.js';
import type { Progress } from '../progress/progress.js';
import type { ScenarioInput } from '../migrate/scenario.js';
import { coefficientOfVariation, summarize } from '../stats/index.js';

export interface DowntimeBenchOptions {
  readonly outDir: string;
  readonly repetitions?: number;
  readonly progress?: Progress;
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
  const cases: Record<string, unknown> = {};
  for (const [name, scenario] of Object.entries(CASES)) {
    const rows: Row[] = [];
    for (let i = 1; i <= reps; i++) {
      opts.progress?.('bench', `downtime ${name} ${i}/${reps}`);
      const { report, dir } = await migrate({ scenario, resultsRoot: join(opts.outDir, 'runs'), progress: opts.progress });
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
      totalTimeCoefficientOfVariation: coefficientOfVariation(col('totalTimeMs')),
    };
  }
  const file = join(opts.outDir, 'downtime.json');
  await writeFile(file, JSON.stringify({ benchmark: 'QEMU vs client-seen downtime', measuredAt: new Date().toISOString(), aims: { probeResolutionMs: 2, idleTotalTimeCv: 0.15 }, cases }, null, 2) + '\n');
  return { file, cases };
}
