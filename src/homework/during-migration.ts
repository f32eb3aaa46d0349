// Section: perf and iperf while a live migration runs. iperf3 pushes TCP through the guest's NIC
// from the client host; perf stat samples the source and destination QEMU at a fixed interval;
// the migration (HMP `migrate -d`, as in the homework) starts a few seconds into the traffic.
// Everything lands on one time axis (seconds since the migrate command) with the pre-copy
// passes and the switchover marked.
import { join } from 'node:path';
import { AgentClient } from '../guest/agent-client.js';
import { runIperf, type IperfResult } from '../measure/iperf.js';
import { startPerfSampler, type PerfSampler, type PerfSeries } from '../measure/perf.js';
import { runMigration } from '../migrate/engine.js';
import type { RunReport } from '../migrate/report.js';
import { DEFAULT_HMP_PORT, parseScenario } from '../migrate/scenario.js';
import { writeTableCsv } from '../report/markdown.js';
import { migrationMarks } from '../report/migration-marks.js';
import { writeRunFiles } from '../report/run-files.js';
import { mean } from '../stats/index.js';
import { sleep } from '../util/deadline.js';
import type { HomeworkContext } from './context.js';
import { PERF_COLUMNS, perfCsvRows } from './perf-csv.js';
import type { DuringMigration, DuringRow, Mark } from '../results/homework.js';

/** One point of the shared timeline; each row carries one of the series. */
// The shapes homework.json records (src/results/homework.ts).
export type { DuringMigration, DuringRow, Mark };

export async function measureDuringMigration(ctx: HomeworkContext): Promise<DuringMigration> {
  const m = ctx.spec.migration;
  const runDir = join(ctx.dir, 'migration');
  const scenario = parseScenario({
    guest: { accel: ctx.accel.used, memoryMiB: m.memoryMiB, iperfServer: true, diskSizeMiB: 64 },
    monitor: 'hmp',
    hmpTelnetPort: DEFAULT_HMP_PORT,
    parameters: { maxBandwidthMiBps: m.maxBandwidthMiBps },
    timeoutMs: Math.max(30000, m.iperfSeconds * 3000),
  });
  let iperfStartedAt = 0;
  let iperf: Promise<IperfResult> | undefined;
  const samplers: { src?: PerfSampler; dst?: PerfSampler } = {};
  const series: { src?: PerfSeries; dst?: PerfSeries } = {};
  const report = await runMigration(
    {
      lab: ctx.lab,
      image: ctx.image,
      runDir,
      runId: `${ctx.runId}-migration`,
      cacheDir: ctx.cacheDir,
      signal: ctx.signal,
      progress: ctx.progress,
      hooks: {
        afterBoot: async ({ src, dst, lab, guestIp: ip }) => {
          const agent = new AgentClient({ host: lab.hosts.client.host, guestIp: ip, toolPath: ctx.probeTool });
          await agent.waitReachable({ timeoutMs: 30000, signal: ctx.signal });
          // A guest that writes to its memory, as real ones do, so pre-copy has dirty pages to resend.
          if (m.dirtyWssMiB > 0) await agent.dirtyStart({ wssMiB: m.dirtyWssMiB, rateMiBps: m.dirtyRateMiBps, pattern: 'random' });
          samplers.src = startPerfSampler(lab.hosts.src.host, { pid: src.process.pid, intervalMs: m.perfIntervalMs, logFile: join(runDir, 'perf-src.log') });
          samplers.dst = startPerfSampler(lab.hosts.dst.host, { pid: dst.process.pid, intervalMs: m.perfIntervalMs, logFile: join(runDir, 'perf-dst.log') });
          iperfStartedAt = Date.now();
          iperf = runIperf(lab.hosts.client.host, { server: ip, durationS: m.iperfSeconds, intervalS: 0.5 }, { timeoutMs: m.iperfSeconds * 1000 + 60000, signal: ctx.signal });
          iperf.catch(() => undefined); // awaited in afterMigrate
          ctx.progress('during', `iperf3, perf and the guest's dirty-memory workload (${m.dirtyWssMiB} MiB at ${m.dirtyRateMiBps} MiB/s) running; migrating in ${m.leadInS} s`);
          await sleep(m.leadInS * 1000, ctx.signal);
        },
        afterMigrate: async () => {
          ctx.progress('during', 'migration over; letting iperf3 finish');
          await iperf;
          series.src = await samplers.src?.stop();
          series.dst = await samplers.dst?.stop();
        },
      },
    },
    scenario,
  );
  // If the run failed before afterMigrate, the samplers still have to stop.
  series.src ??= await samplers.src?.stop();
  series.dst ??= await samplers.dst?.stop();
  await writeRunFiles(report, runDir);
  await writeTableCsv(join(runDir, 'perf-src.csv'), PERF_COLUMNS, perfCsvRows(series.src));
  await writeTableCsv(join(runDir, 'perf-dst.csv'), PERF_COLUMNS, perfCsvRows(series.dst));
  if (!report.ok) throw new Error(`the migration under load did not complete: ${report.failure}`);
  const t0 = report.outputs.migrateSentAtMs!;
  const result = await iperf!;
  return analyse(report, runDir, t0, iperfStartedAt, result, series.src, series.dst);
}


/** Put iperf intervals, perf intervals and migration events on one axis and summarise them. Pure. */
export function analyse(report: RunReport, runDir: string, t0: number, iperfStartedAt: number, iperf: IperfResult, src?: PerfSeries, dst?: PerfSeries): DuringMigration {
  const rows: DuringRow[] = [];
  for (const i of iperf.intervals) rows.push({ tS: (iperfStartedAt + i.endS * 1000 - t0) / 1000, series: 'iperf', throughputMbps: i.bitsPerSecond / 1e6 });
  const cpuRows = (s: PerfSeries | undefined, key: 'srcCpuPct' | 'dstCpuPct', name: DuringRow['series']) => {
    for (const iv of s?.intervals ?? []) {
      if (iv.cpusUtilized === null) continue;
      rows.push({ tS: (s!.startedAtMs + iv.tMs - t0) / 1000, series: name, [key]: iv.cpusUtilized * 100 });
    }
  };
  cpuRows(src, 'srcCpuPct', 'perf-src');
  cpuRows(dst, 'dstCpuPct', 'perf-dst');
  rows.sort((a, b) => a.tS - b.tS);

  // Every pass is kept, those at the switchover too: the figures label crowded ones together.
  const marks: Mark[] = migrationMarks(report).map(({ tMs, ...m }) => ({ ...m, tS: tMs / 1000 }));
  const resume = report.events.find((e) => e.side === 'destination' && e.event === 'RESUME');

  const endS = (resume?.tMs ?? report.outputs.totalTimeMs ?? 0) / 1000;
  const iperfRows = rows.filter((r) => r.series === 'iperf');
  const thr = (pred: (t: number) => boolean) => iperfRows.filter((r) => pred(r.tS)).map((r) => r.throughputMbps!);
  const cpu = (key: 'srcCpuPct' | 'dstCpuPct', pred: (t: number) => boolean) => rows.filter((r) => r[key] !== undefined && pred(r.tS)).map((r) => r[key]!);
  const during = thr((t) => t > 0 && t <= endS + 0.5);
  return {
    report,
    runDir,
    rows,
    marks,
    iperf: {
      meanBeforeMbps: mean(thr((t) => t <= 0)),
      meanDuringMbps: mean(during),
      meanAfterMbps: mean(thr((t) => t > endS + 0.5)),
      minDuringMbps: during.length ? Math.min(...during) : undefined,
      summaryMbps: iperf.summary.receivedBps / 1e6,
    },
    cpu: {
      srcMeanBeforePct: mean(cpu('srcCpuPct', (t) => t <= 0)),
      srcMeanDuringPct: mean(cpu('srcCpuPct', (t) => t > 0 && t <= endS)),
      dstMeanAfterPct: mean(cpu('dstCpuPct', (t) => t > endS)),
    },
    unsupportedPerfEvents: [...new Set([...(src?.unsupported ?? []), ...(dst?.unsupported ?? [])])],
  };
}
