// `miglab homework`: the live-migration homework in one command. It validates its input, brings
// up (or reuses) the lab, decides the accelerator, then runs the sections in turn (KVM vs TCG,
// virtio vs emulated, perf and iperf during a migration, the commands explained, fault tolerance
// with COLO) and writes the report. Everything it starts is stopped on success, failure and Ctrl-C.
import { join } from 'node:path';
import { IMAGE_CACHE_DIR, newRunId, preflightFor, REPO_ROOT, useLab } from '../api.js';
import { ensureProbeTool } from '../guest/probe-tool.js';
import type { LabSpecInput } from '../lab/index.js';
import { decideLabAccel } from '../machine/lab-accel.js';
import { hostFacts } from '../migrate/phases/record.js';
import type { Progress } from '../progress/progress.js';
import { checkResultsDir } from '../report/results-dir.js';
import { makePrivateDir } from '../util/private.js';
import { withTeardown } from '../util/teardown.js';
import { compareAccelerators } from './accel-compare.js';
import { explainCommands } from './commands.js';
import { timed, type HomeworkContext } from './context.js';
import { compareDevices } from './device-compare.js';
import { measureDuringMigration } from './during-migration.js';
import { measureFaultTolerance } from './fault-tolerance.js';
import { writeHomeworkReport, type HomeworkResults } from './report.js';
import { HOMEWORK_SCHEMA } from '../results/homework.js';
import { parseHomeworkSpec, type HomeworkSpecInput } from './spec.js';

export interface HomeworkRequest {
  readonly spec?: HomeworkSpecInput;
  readonly lab?: LabSpecInput;
  /** A hosts file: run on the machines it names, over SSH, instead of the embedded lab. */
  readonly hosts?: string;
  readonly resultsRoot?: string;
  readonly progress?: Progress;
  readonly signal?: AbortSignal;
}

export interface HomeworkOutcome {
  readonly dir: string;
  readonly results: HomeworkResults;
  readonly markdownPath: string;
  readonly htmlPath: string;
}

export async function runHomework(req: HomeworkRequest = {}): Promise<HomeworkOutcome> {
  const spec = parseHomeworkSpec(req.spec ?? {});
  const root = await checkResultsDir(req.resultsRoot ?? join(REPO_ROOT, 'results'));
  const where = { lab: req.lab, hosts: req.hosts };
  const image = await preflightFor(where);
  const progress = req.progress ?? (() => undefined);
  return withTeardown(async (td, signal) => {
    const started = Date.now();
    const runId = newRunId('homework');
    const dir = join(root, runId);
    await makePrivateDir(dir);
    const sectionsMs: Record<string, number> = {};

    progress('lab', 'bringing up the two-host lab (or using the one that is up)');
    const setup = await timed(async () => {
      const lab = await useLab(td, where, signal);
      // The probe tool runs on the lab's client host: put there (a no-op on the embedded lab).
      const probeTool = await lab.placeFile('client', await ensureProbeTool({ cacheDir: IMAGE_CACHE_DIR, signal }));
      const accel = await decideLabAccel(lab, 'auto', { image, cacheDir: IMAGE_CACHE_DIR, signal });
      return { lab, probeTool, accel };
    });
    sectionsMs['set-up (lab, KVM probe)'] = setup.wallMs;
    const { lab, probeTool, accel } = setup.result;
    progress('accel', `${accel.used}: ${accel.reason}`);
    const ctx: HomeworkContext = { lab, image, accel, spec, dir, runId, cacheDir: IMAGE_CACHE_DIR, probeTool, signal, progress };

    const a = await timed(() => compareAccelerators(ctx));
    sectionsMs['1. KVM vs TCG'] = a.wallMs;
    const d = await timed(() => compareDevices(ctx));
    sectionsMs['2. virtio vs emulated'] = d.wallMs;
    const m = await timed(() => measureDuringMigration(ctx));
    sectionsMs['3. during migration'] = m.wallMs;
    const c = await timed(() => explainCommands(m.result.report, lab));
    sectionsMs['4. commands explained'] = c.wallMs;
    const ft = await timed(() => measureFaultTolerance(ctx));
    sectionsMs['5. fault tolerance (COLO)'] = ft.wallMs;
    const host = await hostFacts(lab.hosts.src.host);
    const results: HomeworkResults = {
      schema: HOMEWORK_SCHEMA,
      runId,
      startedAt: new Date(started).toISOString(),
      wallMs: 0,
      sectionsMs,
      environment: {
        qemuVersion: m.result.report.inputs.qemu.version,
        kernel: host.kernel,
        cpuModel: host.cpuModel,
        cpus: host.cpus,
        memTotalMiB: host.memTotalMiB,
        imageHash: image.hash,
        guestKernel: image.kernelVersion,
        accelUsed: accel.used,
        kvmUsable: accel.kvmUsable,
        accelReason: accel.reason,
      },
      accel: a.result,
      devices: d.result,
      during: m.result,
      commands: c.result.commands,
      colo: ft.result,
      ganeshaConfig: c.result.ganeshaConfig,
    };
    progress('report', 'writing tables, plots and report');
    // The report states the wall time up to here; writing it (plots) is not part of any section.
    const final = { ...results, wallMs: Date.now() - started };
    const written = await writeHomeworkReport(dir, final);
    return { dir, results: final, ...written };
  }, req.signal);
}
