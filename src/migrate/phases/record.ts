// Record: the run's report, built from what the phases measured and recorded (every input and
// every sample; run.json's shape is src/results/run.ts). Pure: the host's facts and the time it
// finished are passed in. A shared disk that qemu-img check found inconsistent fails a run that
// had not failed otherwise.
import type { Host } from '../../host/host.js';
import type { ImageInfo } from '../../image/build.js';
import type { AccelDecision } from '../../machine/accel.js';
import type { ExplainedCommand } from '../../util/explained-command.js';
import { headlineFigures } from '../figures.js';
import { derivePasses, RUN_SCHEMA, type HostFacts, type RunOutputs, type RunReport } from '../report.js';
import type { Run } from '../run-state.js';
import { scenarioName } from '../scenario.js';

/** Read in one command on the host: kernel release, CPU count, MemTotal (kB), the first CPU model. */
const FACTS_SCRIPT = 'uname -r; nproc; grep -m1 MemTotal /proc/meminfo; grep -m1 "model name" /proc/cpuinfo || true';

/**
 * The machine the guests ran on (the lab's source host), as the report records it: read there,
 * since on hosts from a hosts file it is not miglab's own machine. A host that cannot be asked
 * (its connection lost) gives "unknown" rather than another machine's figures.
 */
export async function hostFacts(host: Host): Promise<HostFacts> {
  const r = await host.run(['sh', '-c', FACTS_SCRIPT], { reject: false, timeoutMs: 10_000 }).catch(() => undefined);
  const [kernel, nproc, mem, model] = (r?.exitCode === 0 ? r.stdout : '').split('\n');
  const kib = Number(/MemTotal:\s*(\d+)/.exec(mem ?? '')?.[1]);
  return {
    kernel: kernel?.trim() || 'unknown',
    cpuModel: /model name\s*:\s*(.+)/.exec(model ?? '')?.[1]?.trim() ?? 'unknown',
    cpus: Number(nproc) || 0,
    memTotalMiB: Number.isFinite(kib) ? Math.round(kib / 1024) : 0,
    nodeVersion: process.version,
    machine: host.name,
  };
}

/** What the report reads of a run (narrow, so that a report can be built from plain data). */
export type RecordRun = Pick<Run, 'scenario' | 'started' | 'out' | 'phases' | 'steps' | 'processMsAtStart' | 'timeline' | 'events' | 'record' | 'final' | 'verdict' | 'failure' | 'failedIn'> & {
  readonly ctx: Pick<Run['ctx'], 'runId'> & { readonly image: Pick<ImageInfo, 'hash' | 'kernelVersion' | 'inputs'> };
  readonly lab: Pick<Run['lab'], 'spec' | 'shaping'>;
  readonly held: Pick<Run['held'], 'src' | 'dst'>;
  readonly faults: Pick<Run['faults'], 'any' | 'records'>;
  readonly guard: Pick<Run['guard'], 'migrateSentAt' | 'incidents'>;
};

/** What the report is made from besides the run: the accelerator (decided before anything ran), the host, the time it ended. */
export interface RecordFacts {
  readonly accel: AccelDecision;
  readonly host: HostFacts;
  readonly finishedAtMs: number;
}

export function buildReport(run: RecordRun, { accel, host, finishedAtMs }: RecordFacts): RunReport {
  const { ctx, scenario, out, record } = run;
  let { verdict, failure, failedIn } = run;
  const imgCheck = out.qemuImgCheck;
  if (imgCheck && !imgCheck.ok && !failure) {
    failure = `qemu-img check found the shared disk inconsistent after the run: ${imgCheck.meaning}`;
    failedIn = { phase: 'cleanup', code: 'DISK_CHECK' };
    verdict = verdict === 'interrupted' ? verdict : 'failed';
  }
  const final = run.final;
  const figures = headlineFigures(final, run.events, out.figureRequeries ?? 0);
  const ram = final?.ram;
  const outputs: RunOutputs = {
    ...out,
    final,
    status: final?.status,
    totalTimeMs: figures.totalTimeMs,
    downtimeMs: figures.downtimeMs,
    setupTimeMs: figures.setupTimeMs,
    figureSources: figures.sources,
    transferredBytes: ram?.transferredBytes,
    totalBytes: ram?.totalBytes,
    remainingBytes: ram?.remainingBytes,
    throughputMbps: ram?.mbps,
    averageThroughputMiBps: ram?.transferredBytes !== undefined && figures.totalTimeMs ? ram.transferredBytes / 1024 / 1024 / (figures.totalTimeMs / 1000) : undefined,
    dirtySyncCount: ram?.dirtySyncCount,
    duplicatePages: ram?.duplicatePages,
    migrateSentAtMs: run.guard.migrateSentAt || undefined,
    normalPages: ram?.normalPages,
    ...(run.faults.any ? { faults: run.faults.records } : {}),
    incidents: run.guard.incidents,
  };
  const empty: ExplainedCommand = { argv: [], explained: [] };
  return {
    schema: RUN_SCHEMA,
    runId: ctx.runId,
    name: scenarioName(scenario),
    startedAt: new Date(run.started).toISOString(),
    finishedAt: new Date(finishedAtMs).toISOString(),
    wallMs: finishedAtMs - run.started,
    ok: verdict === 'completed' && !failure,
    verdict,
    failure,
    failedIn: failure ? failedIn : undefined,
    inputs: {
      scenario,
      machine: record.machine,
      lab: run.lab.spec,
      shaping: run.lab.shaping,
      image: { hash: ctx.image.hash, kernelVersion: ctx.image.kernelVersion, inputs: ctx.image.inputs },
      qemu: record.qemu,
      host,
      accel,
      parametersInForce: record.parametersInForce,
      capabilitiesInForce: record.capabilitiesInForce,
      commands: { source: run.held.src?.command ?? record.failedLaunch.source ?? empty, destination: run.held.dst?.command ?? record.failedLaunch.destination ?? empty },
      migrateCommand: record.migrateCommand,
      startedBy: record.startedBy,
      monitorCommands: record.monitorCommands,
      destinationMonitorCommands: record.destinationMonitorCommands,
      migrationUri: record.uri,
    },
    outputs,
    phases: run.phases,
    steps: [...run.steps].sort((a, b) => a.startMs - b.startMs),
    processMsAtStart: run.processMsAtStart,
    timeline: run.timeline,
    passes: derivePasses(run.timeline, run.events),
    events: run.events,
    files: {},
  };
}
