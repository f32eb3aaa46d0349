// The CLI's commands, one table: each entry is a yargs command (name, one-line description, its
// options) and the function that runs it and returns the exit status. src/cli.ts registers every
// entry and dispatches on the command's name; a new command is a new entry here.
import chalk from 'chalk';
import type { Argv } from 'yargs';
import * as api from '../api.js';
import { runBatchBench } from '../batch/bench.js';
import { BATCH_OPTIONS, batchCommand } from '../batch/cli.js';
import { runDowntimeBench } from '../bench/downtime.js';
import { runFaultsBench } from '../bench/faults.js';
import { runFoundationBench } from '../bench/foundation.js';
import { compareResults, formatHeadlines } from '../compare/compare.js';
import { runHomework } from '../homework/run.js';
import { QUICK_HOMEWORK } from '../homework/spec.js';
import { LocalHost } from '../host/local.js';
import { buildImage, describeImage, formatImageReport, imageInfo } from '../image/build.js';
import { checkLabDependencies, checkRoot, formatLabStatus, labDown, labStatus, labUp, parseLabSpec, parseShaping } from '../lab/index.js';
import { formatSummary } from '../report/summary.js';
import { PLOT_COMMAND, PLOT_OPTIONS, PLOT_POSITIONALS, SWEEP_COMMAND, SWEEP_OPTIONS, SWEEP_POSITIONALS, plotCommand, sweepCommand } from '../sweep/cli.js';
import { withTeardown } from '../util/teardown.js';
import { ERROR_EXIT, runExit } from './exit.js';
import type { CommandIo } from './io.js';
import { MIGRATE_OPTIONS, SHAPING_OPTIONS, scenarioFromArgsChecked, shapingFromArgs } from './options.js';

export type Args = Record<string, unknown>;

export interface MiglabCommand {
  /** yargs' command string: the name, then positionals. */
  readonly command: string;
  readonly describe: string;
  // yargs' builder types do not compose across a table; each builder is checked where it is written.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly builder: (y: Argv) => Argv<any>;
  /** Runs the command; resolves to the exit status. */
  readonly run: (a: Args, io: CommandIo) => Promise<number>;
}

const PREFIX_OPTION = { type: 'string', default: 'mlab', describe: 'lab to use: the one up with this prefix, or one brought up for the run' } as const;

export const COMMANDS: readonly MiglabCommand[] = [
  {
    command: 'image <action>',
    describe: 'build the guest image, or print what went into it',
    builder: (y) => y.positional('action', { choices: ['build', 'info'] as const, demandOption: true }).option('force', { type: 'boolean', default: false, describe: 'rebuild even if cached' }),
    run: async (a, io) => {
      if (a.action === 'build') {
        const info = await buildImage({ cacheDir: api.IMAGE_CACHE_DIR, force: Boolean(a.force), log: (m: string) => io.progress?.('image', m) });
        io.out(describeImage(info));
        return 0;
      }
      const report = await imageInfo({ cacheDir: api.IMAGE_CACHE_DIR });
      io.out(formatImageReport(report));
      // Not built or damaged: a run would refuse it, so the check fails too.
      return !report.image || report.damage ? 1 : 0;
    },
  },
  {
    command: 'lab <action>',
    describe: 'bring the two-host lab up or down, or show its state',
    builder: (y) =>
      y
        .positional('action', { choices: ['up', 'down', 'status'] as const, demandOption: true })
        .option('prefix', { type: 'string', default: 'mlab', describe: 'name prefix of the lab namespaces' })
        .option('force', { type: 'boolean', default: false, describe: 'with down: take the lab down even while runs are in progress on it (their QEMUs are stopped first), or while a running miglab holds it for its own run' })
        .options(SHAPING_OPTIONS),
    run: async (a, io) => {
      const prefix = String(a.prefix);
      if (a.action === 'up') {
        const shaping = shapingFromArgs(a);
        const spec = parseLabSpec({ prefix, shaping: shaping ? parseShaping(shaping) : undefined });
        checkRoot();
        await checkLabDependencies(new LocalHost());
        await withTeardown(async (_td, signal) => {
          await labUp(spec, { timeoutMs: 60000, signal });
        });
        io.out(formatLabStatus(await labStatus(prefix)));
        return 0;
      }
      if (a.action === 'down') {
        checkRoot();
        io.out((await labDown(prefix, { timeoutMs: 60000, force: Boolean(a.force) })).message);
        return 0;
      }
      const status = await labStatus(prefix);
      io.out(formatLabStatus(status));
      // Scripts can tell a usable lab from a broken or absent one.
      return !status.up || status.problems.length > 0 ? ERROR_EXIT.LAB_STATE! : 0;
    },
  },
  {
    command: 'migrate',
    describe: 'boot a guest on src, migrate it to dst, and record what happened',
    builder: (y) => y.options(MIGRATE_OPTIONS).option('prefix', PREFIX_OPTION),
    run: async (a, io) => {
      const { report, dir } = await api.migrate({
        scenario: scenarioFromArgsChecked(a),
        shaping: shapingFromArgs(a),
        lab: { prefix: String(a.prefix) },
        resultsRoot: String(a.results),
        progress: io.progress,
      });
      io.out(formatSummary(report, dir));
      return runExit(report);
    },
  },
  {
    command: 'homework',
    describe: 'the live-migration homework in one run: perf with/without KVM, iperf with/without virtio, both during a migration, the commands explained; writes results/<run-id>/report.md',
    builder: (y) =>
      y
        .option('quick', { type: 'boolean', default: false, describe: 'short durations (a smoke run of every section)' })
        .option('results', { type: 'string', default: 'results', describe: 'directory for results/<run-id>/' })
        .option('prefix', PREFIX_OPTION),
    run: async (a, io) => {
      const out = await runHomework({ spec: a.quick ? QUICK_HOMEWORK : {}, lab: { prefix: String(a.prefix) }, resultsRoot: String(a.results), progress: io.progress });
      io.out(`${chalk.green.bold('homework done')} in ${(out.results.wallMs / 1000).toFixed(0)} s\n  report  ${out.markdownPath}\n  html    ${out.htmlPath}`);
      return 0;
    },
  },
  {
    command: SWEEP_COMMAND.command,
    describe: SWEEP_COMMAND.describe,
    builder: (y) => y.positional('spec', SWEEP_POSITIONALS.spec).options(SWEEP_OPTIONS),
    run: async (a, io) => (await sweepCommand(a, io)).code,
  },
  {
    command: PLOT_COMMAND.command,
    describe: PLOT_COMMAND.describe,
    builder: (y) => y.positional('dir', PLOT_POSITIONALS.dir).options(PLOT_OPTIONS),
    run: async (a, io) => (await plotCommand(a, io)).code,
  },
  {
    command: 'compare <dirs..>',
    describe: 'set saved runs (run folders) or sweeps (sweep folders) side by side: headline figures with deltas against the first, as a table (Markdown, CSV) and a figure',
    builder: (y) =>
      y
        .positional('dirs', { type: 'string', array: true, demandOption: true, describe: 'two or more run folders (results/<run-id>/) or sweep folders (results/sweep-NAME/); the first is the baseline' })
        .option('results', { type: 'string', default: 'results', describe: 'directory for results/compare-ID/' }),
    run: async (a, io) => {
      const r = await compareResults((a.dirs as unknown[]).map(String), String(a.results));
      io.out(`compared ${r.sets.length} ${r.sets[0]!.kind}s (deltas against ${r.sets[0]!.label})`);
      for (const s of r.sets) io.out(`  ${s.label}  ${s.name}  ${s.outcome}  ${s.dir}`);
      io.out(formatHeadlines(r));
      io.out(`  report  ${r.markdownPath}\n  html    ${r.htmlPath}\n  csv     ${r.csvPath}`);
      for (const p of r.pngPaths) io.out(`  figure  ${p}`);
      return 0;
    },
  },
  {
    command: 'batch',
    describe: 'migrate many guests (sequential, parallel, waves, or the scheduler) stepping N up until the host stalls; explains why',
    builder: (y) => y.options(BATCH_OPTIONS),
    run: (a, io) => batchCommand(a, io),
  },
  {
    command: 'bench',
    describe: 'run the foundation benchmark; figures go to a file',
    builder: (y) =>
      y
        .option('out', { type: 'string', default: 'results/bench', describe: 'where the figures go' })
        .option('repetitions', { type: 'number', default: 3, describe: 'repetitions of each case (downtime uses at least 5)' })
        .option('which', { choices: ['all', 'foundation', 'downtime', 'batch', 'faults'] as const, default: 'all', describe: 'which benchmark (batch and faults are long and run only when named)' }),
    run: async (a, io) => {
      const outDir = String(a.out);
      const which = String(a.which);
      const progress = io.progress;
      if (which === 'all' || which === 'foundation') {
        const { file, result } = await runFoundationBench({ outDir, repetitions: Number(a.repetitions), progress });
        io.out(`foundation: ${JSON.stringify(result.medians)}; harness peak RSS ${result.harnessPeakRssMiB.toFixed(0)} MiB -> ${file}`);
      }
      if (which === 'all' || which === 'downtime') {
        const { file } = await runDowntimeBench({ outDir, repetitions: Math.max(5, Number(a.repetitions)), progress });
        io.out(`downtime: -> ${file}`);
      }
      if (which === 'batch') {
        const { file } = await runBatchBench(outDir, { progress });
        io.out(`batch: -> ${file}`);
      }
      if (which === 'faults') {
        const { file, result } = await runFaultsBench({ outDir, progress, repetitions: Number(a.repetitions) });
        io.out(`faults: ${result.faults.asExpected}/${result.faults.runs} ended as they must, ${result.faults.leftovers} left behind -> ${file}`);
      }
      return 0;
    },
  },
];

/** The command names, for the message when none is given. */
export function commandNames(): string[] {
  return COMMANDS.map((c) => c.command.split(' ')[0]!);
}
