// The `miglab sweep` and `miglab plot` commands: options declared as data, and functions that
// turn parsed arguments into calls of the programmatic API (runSweep, plotResults) and print a
// few lines. src/cli/commands.ts lists the commands with these definitions and calls these functions.
import type { Options, PositionalOptions } from 'yargs';
import { UsageError } from '../errors.js';
import { faultRows } from '../fault/table.js';
import type { CommandIo } from '../cli/io.js';
import { HOSTS_OPTION } from '../cli/options.js';
// The modules that run and draw are loaded by the command that needs them (src/cli/commands.ts says why).
import type { PlotResult } from './plots.js';
import type { ReplotResult } from '../replot.js';
import type { SweepResult } from './run.js';

export const SWEEP_COMMAND = {
  command: 'sweep <spec>',
  paths: true,
  describe: 'run a sweep (a YAML grid of scenarios x repetitions) on one lab; a rerun resumes; writes results/sweep-NAME/',
} as const;

export const SWEEP_POSITIONALS = {
  spec: { type: 'string', describe: 'the sweep file (see examples/sweeps/)', demandOption: true },
} as const satisfies Record<string, PositionalOptions>;

export const SWEEP_OPTIONS = {
  results: { type: 'string', default: 'results', describe: 'directory for results/sweep-NAME/' },
  prefix: { type: 'string', default: 'mlab', describe: 'lab to use (or bring up for the sweep and take down after)' },
  hosts: HOSTS_OPTION,
  repetitions: { type: 'number', describe: "override the spec's repetitions (runs already complete are kept)" },
  plot: { type: 'boolean', default: true, describe: 'draw the figures and report.md when the sweep is done (--no-plot to skip)' },
} as const satisfies Record<string, Options>;

export const PLOT_COMMAND = {
  command: 'plot <dir>',
  paths: true,
  describe: "draw a results folder's figures and report again from its saved results (a run, sweep, homework or batch folder; anything else is refused)",
} as const;

export const PLOT_POSITIONALS = {
  dir: { type: 'string', describe: "a results folder: a run's (results/RUN-ID/), a sweep's (results/sweep-NAME/), the homework's or a batch's (results/batch-ID/)", demandOption: true },
} as const satisfies Record<string, PositionalOptions>;

export const PLOT_OPTIONS = {} as const satisfies Record<string, Options>;

function stringArg(a: Record<string, unknown>, key: string): string {
  const v = a[key];
  if (typeof v !== 'string' || v === '') throw new UsageError(`missing ${key}`, 'see miglab --help');
  return v;
}

/** `miglab sweep SPEC`: returns the exit status (0 also when some runs failed: they are results). */
export async function sweepCommand(a: Record<string, unknown>, io: CommandIo): Promise<{ code: number; sweep: SweepResult; plots?: PlotResult }> {
  const repetitions = a.repetitions === undefined ? undefined : Number(a.repetitions);
  const { runSweep } = await import('./run.js');
  const sweep = await runSweep({
    specPath: stringArg(a, 'spec'),
    resultsRoot: typeof a.results === 'string' ? a.results : undefined,
    lab: { prefix: typeof a.prefix === 'string' ? a.prefix : 'mlab' },
    hosts: typeof a.hosts === 'string' ? a.hosts : undefined,
    repetitions,
    progress: io.progress,
    signal: io.signal,
  });
  io.out(`sweep ${sweep.spec.name}: ${sweep.runs.length} runs (${sweep.ran} ran, ${sweep.skipped} already complete, ${sweep.errors} errors)`);
  for (const p of sweep.summary) {
    const d = p.metrics.downtimeMs;
    // A point with faults: whether its runs ended as the faults require is what matters.
    const faults = faultRows(p.entries);
    const judged = faults.length > 0 ? `  faults: ${faults.filter((f) => f.asExpected === 'yes').length}/${faults.length} as they must` : '';
    io.out(`  ${p.point.padEnd(32)} ${p.converged}/${p.runs} converged  downtime ${d.mean === undefined ? '-' : `${d.mean.toFixed(0)} ms mean`}${judged}`);
  }
  io.out(`  summary         ${sweep.files.summaryCsv}`);
  let plots: PlotResult | undefined;
  if (a.plot !== false && sweep.summary.some((p) => p.runs > 0)) {
    const { plotResults } = await import('./plots.js');
    plots = await plotResults(sweep.dir);
    io.out(`  report          ${plots.report.markdownPath}`);
  }
  io.json?.({ ...sweep, report: plots?.report.markdownPath });
  return { code: sweep.errors > 0 ? 1 : 0, sweep, plots };
}

/** `miglab plot DIR`: the folder's own report drawn again (replot.ts). */
export async function plotCommand(a: Record<string, unknown>, io: CommandIo): Promise<{ code: number; plots: ReplotResult }> {
  const { replot } = await import('../replot.js');
  const plots = await replot(stringArg(a, 'dir'));
  io.out(`${plots.kind} report drawn again: ${plots.figures.length} figure${plots.figures.length === 1 ? '' : 's'}`);
  for (const f of plots.figures) io.out(`  ${f}`);
  io.out(`  report          ${plots.markdownPath}`);
  io.out(`  html            ${plots.htmlPath}`);
  return { code: 0, plots };
}
