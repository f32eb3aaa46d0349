// The miglab command line. It only parses and calls the API (src/api.ts); every error becomes
// one line on stderr and an exit code derived from the error's code.
import chalk from 'chalk';
import yargs from 'yargs';
import * as api from './api.js';
import { describeError, MiglabError, type ErrorCode } from './errors.js';
import { buildImage, describeImage, formatImageReport, imageInfo } from './image/build.js';
import { formatLabStatus, labDown, labStatus, labUp, parseLabSpec, parseShaping, checkRoot, checkLabDependencies } from './lab/index.js';
import { LocalHost } from './host/local.js';
import { formatSummary } from './report/summary.js';
import type { RunReport } from './migrate/report.js';
import { MIGRATE_OPTIONS, SHAPING_OPTIONS, scenarioFromArgsChecked, shapingFromArgs } from './cli/options.js';
import { withTeardown } from './util/teardown.js';
import { runFoundationBench } from './bench/foundation.js';
import { runHomework } from './homework/run.js';
import { BATCH_OPTIONS, batchCommand } from './batch/cli.js';
import { runBatchBench } from './batch/bench.js';
import { runDowntimeBench } from './bench/downtime.js';
import { runFaultsBench } from './bench/faults.js';
import { QUICK_HOMEWORK } from './homework/spec.js';
import { PLOT_COMMAND, PLOT_OPTIONS, PLOT_POSITIONALS, SWEEP_COMMAND, SWEEP_OPTIONS, SWEEP_POSITIONALS, plotCommand, sweepCommand } from './sweep/cli.js';

/** Exit statuses (README, "Exit statuses"): one per kind of error, and per verdict of a run. */
const EXIT: Partial<Record<ErrorCode, number>> = { BAD_INPUT: 2, MISSING_DEPENDENCY: 3, NOT_ROOT: 4, LAB_STATE: 5, RESULTS: 7, ABORTED: 130 };
const VERDICT_EXIT: Record<RunReport['verdict'], number> = { completed: 0, failed: 1, 'did-not-converge': 6, stalled: 8, interrupted: 130 };

/** 128 + the signal's number, as shells report a process ended by it. */
function signalExit(signal: string | undefined): number {
  return signal === 'SIGTERM' ? 143 : 130;
}

/**
 * yargs reads `--memory -5G` as the option without a value followed by flags -5 and -G. A value
 * that starts with a minus and a digit is glued to its option (`--memory=-5G`), so the option's
 * own check says what is wrong with it.
 */
export function glueNegativeValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (/^--[a-z][a-z-]*$/.test(a) && next !== undefined && /^-\d/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

const out = (line: string) => process.stdout.write(`${line}\n`);
const progress = (phase: string, detail?: string) => process.stderr.write(`${chalk.dim(new Date().toISOString().slice(11, 23))} ${chalk.cyan(phase.padEnd(8))} ${detail ?? ''}\n`);

export async function main(argv: readonly string[]): Promise<number> {
  let code = 0;
  const parser = yargs(glueNegativeValues(argv))
    .scriptName('miglab')
    .usage('$0 <command> [options]\n\nQEMU live migration on a two-host lab: real QEMU, real networks, real numbers.')
    .command('image <action>', 'build the guest image, or print what went into it', (y) =>
      y.positional('action', { choices: ['build', 'info'] as const, demandOption: true }).option('force', { type: 'boolean', default: false, describe: 'rebuild even if cached' }),
    )
    .command('lab <action>', 'bring the two-host lab up or down, or show its state', (y) =>
      y
        .positional('action', { choices: ['up', 'down', 'status'] as const, demandOption: true })
        .option('prefix', { type: 'string', default: 'mlab', describe: 'name prefix of the lab namespaces' })
        .option('force', { type: 'boolean', default: false, describe: "with down: take the lab down even while runs are in progress on it (their QEMUs are stopped first), or while a running miglab holds it for its own run" })
        .options(SHAPING_OPTIONS),
    )
    .command('migrate', 'boot a guest on src, migrate it to dst, and record what happened', (y) => y.options(MIGRATE_OPTIONS).option('prefix', { type: 'string', default: 'mlab', describe: 'lab to use: the one up with this prefix, or one brought up for the run' }))
    .command('homework', 'the live-migration homework in one run: perf with/without KVM, iperf with/without virtio, both during a migration, the commands explained; writes results/<run-id>/report.md', (y) =>
      y
        .option('quick', { type: 'boolean', default: false, describe: 'short durations (a smoke run of every section)' })
        .option('results', { type: 'string', default: 'results', describe: 'directory for results/<run-id>/' })
        .option('prefix', { type: 'string', default: 'mlab', describe: 'lab to use: the one up with this prefix, or one brought up for the run' }),
    )
    .command(SWEEP_COMMAND.command, SWEEP_COMMAND.describe, (y) => y.positional('spec', SWEEP_POSITIONALS.spec).options(SWEEP_OPTIONS))
    .command(PLOT_COMMAND.command, PLOT_COMMAND.describe, (y) => y.positional('dir', PLOT_POSITIONALS.dir).options(PLOT_OPTIONS))
    .command('batch', 'migrate many guests (sequential, parallel, waves, or the scheduler) stepping N up until the host stalls; explains why', (y) => y.options(BATCH_OPTIONS))
    .command('bench', 'run the foundation benchmark; figures go to a file', (y) =>
      y
        .option('out', { type: 'string', default: 'results/bench', describe: 'where the figures go' })
        .option('repetitions', { type: 'number', default: 3, describe: 'repetitions of each case (downtime uses at least 5)' })
        .option('which', { choices: ['all', 'foundation', 'downtime', 'batch', 'faults'] as const, default: 'all', describe: 'which benchmark (batch and faults are long and run only when named)' }),
    )
    .demandCommand(1, 'name a command: image, lab, migrate, homework, sweep, plot, batch or bench')
    .strict()
    .help()
    .version(false)
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err) => {
      throw err ?? new MiglabError('BAD_INPUT', `${msg}; see miglab --help`);
    });

  try {
    const a = (await parser.parseAsync()) as Record<string, unknown> & { _: (string | number)[] };
    const cmd = String(a._[0]);
    if (a.help) return 0;
    if (cmd === 'image') {
      if (a.action === 'build') {
        const info = await buildImage({ cacheDir: api.IMAGE_CACHE_DIR, force: Boolean(a.force), log: (m: string) => progress('image', m) });
        process.stdout.write(describeImage(info) + '\n');
      } else {
        const report = await imageInfo({ cacheDir: api.IMAGE_CACHE_DIR });
        process.stdout.write(formatImageReport(report) + '\n');
        // Not built or damaged: a run would refuse it, so the check fails too.
        if (!report.image || report.damage) code = 1;
      }
    } else if (cmd === 'lab') {
      const prefix = String(a.prefix);
      if (a.action === 'up') {
        const spec = parseLabSpec({ prefix, shaping: (() => { const s = shapingFromArgs(a); return s ? parseShaping(s) : undefined; })() });
        checkRoot();
        await checkLabDependencies(new LocalHost());
        await withTeardown(async (_td, signal) => {
          await labUp(spec, { timeoutMs: 60000, signal });
        });
        process.stdout.write(formatLabStatus(await labStatus(prefix)) + '\n');
      } else if (a.action === 'down') {
        checkRoot();
        const r = await labDown(prefix, { timeoutMs: 60000, force: Boolean(a.force) });
        process.stdout.write(`${r.message}\n`);
      } else {
        const status = await labStatus(prefix);
        process.stdout.write(formatLabStatus(status) + '\n');
        // Scripts can tell a usable lab from a broken or absent one.
        if (!status.up || status.problems.length > 0) code = EXIT.LAB_STATE!;
      }
    } else if (cmd === 'migrate') {
      const { report, dir } = await api.migrate({
        scenario: scenarioFromArgsChecked(a),
        shaping: shapingFromArgs(a),
        lab: { prefix: String(a.prefix) },
        resultsRoot: String(a.results),
        progress,
      });
      process.stdout.write(formatSummary(report, dir) + '\n');
      code = report.verdict === 'interrupted' ? signalExit(report.outputs.interruptedBy) : report.ok ? 0 : VERDICT_EXIT[report.verdict] || 1;
    } else if (cmd === 'homework') {
      const out = await runHomework({ spec: a.quick ? QUICK_HOMEWORK : {}, lab: { prefix: String(a.prefix) }, resultsRoot: String(a.results), progress });
      process.stdout.write(`${chalk.green.bold('homework done')} in ${(out.results.wallMs / 1000).toFixed(0)} s\n  report  ${out.markdownPath}\n  html    ${out.htmlPath}\n`);
    } else if (cmd === 'sweep') {
      code = (await sweepCommand(a, { out, progress })).code;
    } else if (cmd === 'plot') {
      code = (await plotCommand(a, { out, progress })).code;
    } else if (cmd === 'batch') {
      code = await batchCommand(a, { progress, out: (t) => process.stdout.write(t) });
    } else if (cmd === 'bench') {
      const outDir = String(a.out);
      const which = String(a.which);
      if (which === 'all' || which === 'foundation') {
        const { file, result } = await runFoundationBench({ outDir, repetitions: Number(a.repetitions), progress });
        out(`foundation: ${JSON.stringify(result.medians)}; harness peak RSS ${result.harnessPeakRssMiB.toFixed(0)} MiB -> ${file}`);
      }
      if (which === 'all' || which === 'downtime') {
        const { file } = await runDowntimeBench({ outDir, repetitions: Math.max(5, Number(a.repetitions)), progress });
        out(`downtime: -> ${file}`);
      }
      if (which === 'batch') {
        const { file } = await runBatchBench(outDir, { progress });
        out(`batch: -> ${file}`);
      }
      if (which === 'faults') {
        const { file, result } = await runFaultsBench({ outDir, progress, repetitions: Number(a.repetitions) });
        out(`faults: ${result.faults.asExpected}/${result.faults.runs} ended as they must, ${result.faults.leftovers} left behind -> ${file}`);
      }
    }
  } catch (err) {
    const c = err instanceof MiglabError ? err.code : 'INTERNAL';
    const text = describeError(err);
    process.stderr.write(`${chalk.red('miglab:')} ${text}\n`);
    if (process.env.MIGLAB_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    if (c === 'ABORTED') return signalExit(/\bSIGTERM\b/.test(text) ? 'SIGTERM' : 'SIGINT');
    return EXIT[c] ?? 1;
  }
  return code;
}
