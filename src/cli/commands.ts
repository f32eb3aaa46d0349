// The CLI's commands, one table: each entry is a yargs command (name, one-line description, its
// options) and the function that runs it and returns the exit status. src/cli.ts registers every
// entry and dispatches on the command's name; a new command is a new entry here.
// A command that draws figures imports what draws them when it runs (`await import`): the plotting
// stack (vega, vega-lite, resvg) takes about 0.4 s to load, which `--help`, `doctor` and every
// other command would otherwise pay. test/unit/cli/startup.test.ts holds the line.
import chalk from 'chalk';
import type { Argv } from 'yargs';
import * as api from '../api.js';
import { BATCH_OPTIONS, batchCommand } from '../batch/cli.js';
import { BATCH_MODES } from '../batch/spec.js';
import { runDowntimeBench } from '../bench/downtime.js';
import { runFoundationBench } from '../bench/foundation.js';
import { guestsDown } from '../guests/down.js';
import { DEFAULT_HOLD_MS, guestsUp, MIN_HOLD_MS } from '../guests/up.js';
import { QUICK_HOMEWORK } from '../homework/spec.js';
import { LocalHost } from '../host/local.js';
import { runDoctor, formatDoctor } from '../doctor/checks.js';
import { localProbes } from '../doctor/local.js';
import { buildImage, describeImage, formatImageReport, imageInfo } from '../image/build.js';
import { IMAGE_VARIANTS, type ImageVariant } from '../image/inputs.js';
import { checkLabDependencies, checkRoot, formatLabStatus, labDown, labStatus, labUp, parseLabSpec, parseShaping } from '../lab/index.js';
import { formatSummary } from '../report/summary.js';
import { parseDurationMs, parsePort, subject } from '../util/units.js';
import { UsageError } from '../errors.js';
import { PLOT_COMMAND, PLOT_OPTIONS, PLOT_POSITIONALS, SWEEP_COMMAND, SWEEP_OPTIONS, SWEEP_POSITIONALS, plotCommand, sweepCommand } from '../sweep/cli.js';
import { withTeardown } from '../util/teardown.js';
import { QEMU_COMMAND, qemuBuilder, qemuCommand } from '../qemu/cli.js';
import { coloBuilder } from '../colo/options.js';
import { qemuCacheDir } from '../qemu/fetch.js';
import { describeSides } from '../migrate/report.js';
import { DEFAULT_HMP_PORT, DEFAULT_MIGRATION_PORT } from '../migrate/scenario.js';
import { FAULT_KINDS } from '../fault/spec.js';
import { doctorExit, ERROR_EXIT, runExit } from './exit.js';
import type { CommandIo } from './io.js';
import { HOSTS_OPTION, MIGRATE_OPTIONS, SHAPING_OPTIONS, scenarioFromArgsChecked, shapingFromArgs, wholeNumberFromArgs } from './options.js';

/**
 * migrate's options that mean something when a person sends the migrate command. Not --start: a
 * warm source has just completed an incoming migration, and query-migrate says completed until
 * the person's migrate begins, so the run would see a migration that never happened.
 */
const { monitor: _monitor, fault: _fault, 'postcopy-after': _postcopyAfter, 'postcopy-stall': _postcopyStall, 'postcopy-recover-within': _postcopyRecoverWithin, switchover: _switchover, start: _start, ...GUESTS_UP_OPTIONS } = MIGRATE_OPTIONS;

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
  /** What its summary holds under --json; a command without one refuses --json. */
  readonly json?: string;
  /** Values shell completion offers after an option whose values yargs cannot check (a mode with a parameter). */
  readonly values?: Readonly<Record<string, readonly string[]>>;
  /** Its positional words are files or folders: completion offers nothing there, so the shell completes paths. */
  readonly paths?: true;
  /**
   * For a command with an `<action>` positional whose actions read different options: option ->
   * the actions that read it. An option given to another action is refused (src/cli/parser.ts),
   * not silently ignored; options not listed are read by every action.
   */
  readonly actionOptions?: Readonly<Record<string, readonly string[]>>;
  /** Options read only for some values of one choice (option -> values of `choice`): typed with another, refused. */
  readonly choiceOptions?: { readonly choice: string; readonly table: Readonly<Record<string, readonly string[]>> };
}

/** Which `containers migrate --strategy` reads which stop rule: stop-and-copy and lazy read none. */
const CONTAINER_STRATEGY_OPTIONS: Readonly<Record<string, readonly string[]>> = {
  'max-rounds': ['iterative', 'mem-rounds'],
  'min-pages': ['iterative'],
  'max-growth': ['iterative'],
  'budget-pages': ['mem-rounds'],
  'plateau-pct': ['mem-rounds'],
};

/** Which `containers` action reads which option (the rest, --memory, --results, --prefix, every one). */
const CONTAINER_ACTION_OPTIONS: Readonly<Record<string, readonly string[]>> = {
  workload: ['migrate'],
  strategy: ['migrate'],
  'max-rounds': ['migrate'],
  'min-pages': ['migrate'],
  'max-growth': ['migrate'],
  'budget-pages': ['migrate'],
  'plateau-pct': ['migrate'],
  transfer: ['migrate', 'sweep'],
  'period-ms': ['migrate', 'batch'],
  'keep-images': ['migrate', 'batch'],
  wss: ['sweep'],
  'at-rate': ['sweep'],
  rates: ['sweep'],
  'at-wss': ['sweep'],
  strategies: ['sweep'],
  repeat: ['sweep'],
  counts: ['batch'],
  mode: ['batch'],
  files: ['batch'],
  'wave-size': ['batch'],
  'rss-mib': ['batch'],
};

/** --help's groups from an option -> actions table: "migrate:", "migrate and sweep:", ... */
function groupByActions(y: Argv, table: Readonly<Record<string, readonly string[]>>): Argv {
  const groups = new Map<string, string[]>();
  for (const [option, actions] of Object.entries(table)) {
    const title = `${actions.join(' and ')}:`;
    groups.set(title, [...(groups.get(title) ?? []), option]);
  }
  for (const [title, options] of groups) y = y.group(options, title);
  return y;
}

const PREFIX_OPTION = { type: 'string', default: 'mlab', describe: 'lab to use: the one up with this prefix, or one brought up for the run' } as const;

export const COMMANDS: readonly MiglabCommand[] = [
  {
    command: 'image <action>',
    describe: 'build the guest image, or print what went into it',
    builder: (y) =>
      y
        .positional('action', { choices: ['build', 'info'] as const, demandOption: true })
        .option('force', { type: 'boolean', default: false, describe: 'rebuild even if cached' })
        .option('variant', { choices: IMAGE_VARIANTS, default: 'base' as const, describe: 'base: the guest of VM runs; chost: a container host (CRIU and the container workload), for `miglab containers`' }),
    run: async (a, io) => {
      const variant = a.variant as ImageVariant;
      if (a.action === 'build') {
        const info = await buildImage({ cacheDir: api.IMAGE_CACHE_DIR, force: Boolean(a.force), variant, log: (m: string) => io.progress?.('image', m) });
        io.out(describeImage(info));
        io.json?.(info);
        return 0;
      }
      const report = await imageInfo({ cacheDir: api.IMAGE_CACHE_DIR, variant });
      io.out(formatImageReport(report));
      io.json?.(report);
      // Not built or damaged: a run would refuse it, so the check fails too.
      return !report.image || report.damage ? 1 : 0;
    },
    json: 'the image (build) or what went into it (info)',
  },
  {
    command: QEMU_COMMAND,
    describe: 'list the QEMU builds a run can use (--qemu), or fetch a newer one from Debian',
    builder: qemuBuilder,
    run: (a, io) => qemuCommand(a, io, qemuCacheDir(api.IMAGE_CACHE_DIR)),
    json: 'the builds (list) or the one fetched (fetch)',
  },
  {
    command: 'lab <action>',
    describe: 'bring the two-host lab up or down, or show its state',
    builder: (y) =>
      y
        .positional('action', { choices: ['up', 'down', 'status'] as const, demandOption: true })
        .option('prefix', { type: 'string', default: 'mlab', describe: 'name prefix of the lab namespaces' })
        .option('force', { type: 'boolean', default: false, describe: 'with down: take the lab down even while runs are in progress on it (their QEMUs are stopped first), or while a running miglab holds it for its own run' })
        .option('hosts', { type: 'string', describe: 'the lab of this hosts file (your machines over SSH): up checks them and puts the guest image and probe tool there, status lists what miglab runs there, down removes all of it' })
        .options(SHAPING_OPTIONS),
    run: async (a, io) => {
      const prefix = String(a.prefix);
      if (a.hosts !== undefined) {
        const file = String(a.hosts);
        // ssh2 and yaml take ~0.15 s to load: only commands on hosts from a hosts file load them.
        const { hostsLabDown, hostsLabStatus, hostsLabUp } = await import('../hosts/commands.js');
        const report = a.action === 'up' ? await hostsLabUp(file) : a.action === 'down' ? await hostsLabDown(file, Boolean(a.force)) : await hostsLabStatus(file);
        io.out([`hosts of ${report.hostsFile} (lab ${report.prefix}):`, ...report.lines.map((l) => `  ${l}`)].join('\n'));
        io.json?.(report);
        return 0;
      }
      if (a.action === 'up') {
        const shaping = shapingFromArgs(a);
        const spec = parseLabSpec({ prefix, shaping: shaping ? parseShaping(shaping) : undefined });
        checkRoot();
        await checkLabDependencies(new LocalHost());
        await withTeardown(async (_td, signal) => {
          await labUp(spec, { timeoutMs: 60000, signal });
        });
        const up = await labStatus(prefix);
        io.out(formatLabStatus(up));
        io.json?.(up);
        return 0;
      }
      if (a.action === 'down') {
        checkRoot();
        const down = await labDown(prefix, { timeoutMs: 60000, force: Boolean(a.force) });
        io.out(down.message);
        io.json?.(down);
        return 0;
      }
      const status = await labStatus(prefix);
      io.out(formatLabStatus(status));
      io.json?.(status);
      // Scripts can tell a usable lab from a broken or absent one.
      return !status.up || status.problems.length > 0 ? ERROR_EXIT.LAB_STATE! : 0;
    },
    json: "the lab's status (up, status) or what was removed (down)",
  },
  {
    command: 'migrate',
    describe: 'boot a guest on src, migrate it to dst, and record what happened',
    // --fault is KIND[:ARGS]@WHEN: the kinds are what a person cannot guess.
    values: { fault: FAULT_KINDS },
    builder: (y) => y.options(MIGRATE_OPTIONS).option('prefix', PREFIX_OPTION).option('hosts', HOSTS_OPTION),
    run: async (a, io) => {
      const { report, dir } = await api.migrate({
        scenario: scenarioFromArgsChecked(a),
        shaping: shapingFromArgs(a),
        lab: { prefix: String(a.prefix) },
        hosts: a.hosts === undefined ? undefined : String(a.hosts),
        resultsRoot: String(a.results),
        progress: io.progress,
      });
      io.out(formatSummary(report, dir));
      io.json?.(report);
      return runExit(report);
    },
    json: 'the run report, as in run.json (its folder is RESULTS/<runId>)',
  },
  {
    command: 'containers <action>',
    describe: 'containers with CRIU between two container-host guests: `check` boots the pair and prints what CRIU says; `migrate` moves one container and checks it is intact; `sweep` plots downtime against working set and write rate, per strategy; `batch` moves 1, 10, 100 ... counters until a guest halts, and says when, how and why',
    builder: (y) =>
      groupByActions(
      y
        .positional('action', { choices: ['check', 'migrate', 'sweep', 'batch'] as const, demandOption: true })
        .option('workload', { type: 'string', default: 'counter', describe: 'what the container runs: counter (one value a second, as the reference report), natural, fibonacci, prime, or mem:WSS@RATE (e.g. mem:64M@16M/s)' })
        .option('strategy', { choices: ['stop-and-copy', 'iterative', 'mem-rounds', 'lazy'] as const, default: 'stop-and-copy' as const, describe: 'stop-and-copy: one dump, then restore; iterative: pre-dump rounds while it runs (P.Haul\'s stop rules), then a final dump; mem-rounds: the final dump triggered by rounds of memory change (the soft-dirty count read after each pre-dump); lazy: restored without its memory, pages fetched from the source on demand (post-copy)' })
        .option('transfer', { choices: ['nfs', 'page-server'] as const, default: 'nfs' as const, describe: "nfs: every image through the lab's checkpoint export; page-server: the pages straight into chost-dst's memory through `criu page-server`" })
        .option('max-rounds', { type: 'number', default: 8, describe: 'iterative and mem-rounds: at most this many pre-dumps' })
        .option('min-pages', { type: 'number', default: 64, describe: 'iterative: stop when a pre-dump wrote this many pages or fewer' })
        .option('max-growth', { type: 'number', default: 10, describe: 'iterative: stop when a pre-dump wrote more than this many percent more pages than the one before' })
        .option('budget-pages', { type: 'number', default: 1024, describe: 'mem-rounds: the final dump once the change after a pre-dump fits in this many pages' })
        .option('plateau-pct', { type: 'number', default: 10, describe: "mem-rounds: the final dump once the change after a pre-dump falls by no more than this many percent against the round before" })
        .option('period-ms', { type: 'number', describe: "the workload's period between values (default: counter 1000, generators 10)" })
        .option('memory', { type: 'number', describe: 'MiB of RAM of each container-host guest (default 512; batch: 2048, as the reference report\'s VMs)' })
        .option('counts', { type: 'string', default: '1,10,100,400', describe: 'batch: the ladder of container counts, one step each, until a guest halts' })
        .option('mode', { choices: ['one-by-one', 'all-at-once', 'waves', 'scheduled'] as const, default: 'one-by-one' as const, describe: 'batch: one-by-one (dump, restore, next), all-at-once (every dump, then every restore), waves (--wave-size at once), scheduled (the fix: dumps then restores in turns, as many at once as the guests\' vCPUs and memory allow, gated on memory and I/O pressure)' })
        .option('files', { choices: ['guest', 'export'] as const, default: 'guest' as const, describe: "batch: where each container's log and output live: guest (in the guest's memory, copied with its images when it moves) or export (on the shared NFS export, written over NFS while it runs: the bottleneck the first batches hit)" })
        .option('wave-size', { type: 'number', describe: 'batch --mode waves: containers per wave (default 10)' })
        .option('rss-mib', { type: 'number', default: 0, describe: "batch: resident memory each counter holds, MiB (0: the counter's own; 12: about a Go program's)" })
        .option('wss', { type: 'string', default: '16,32,64', describe: 'sweep: working sets in MiB, each at --at-rate' })
        .option('at-rate', { type: 'number', default: 16, describe: 'sweep: the write rate (MiB/s) of the working-set points' })
        .option('rates', { type: 'string', default: '0,8,16,32', describe: 'sweep: write rates in MiB/s, each at --at-wss' })
        .option('at-wss', { type: 'number', default: 64, describe: 'sweep: the working set (MiB) of the write-rate points' })
        .option('strategies', { type: 'string', default: 'stop-and-copy,iterative,mem-rounds', describe: 'sweep: the strategies to compare' })
        .option('repeat', { type: 'number', default: 2, describe: 'sweep: runs per point and strategy' })
        .option('keep-images', { type: 'boolean', default: false, describe: "keep CRIU's images in the lab's checkpoint export after the run" })
        .option('results', { type: 'string', default: 'results', describe: 'directory for results/<run-id>/' })
        .option('prefix', PREFIX_OPTION),
        // One option table for four actions: --help says which action reads which option.
        CONTAINER_ACTION_OPTIONS,
      ),
    actionOptions: CONTAINER_ACTION_OPTIONS,
    choiceOptions: { choice: 'strategy', table: CONTAINER_STRATEGY_OPTIONS },
    run: async (a, io) => {
      const { containersCheck, containersMigrate } = await import('../containers/run.js');
      if (a.action === 'sweep') {
        const { containersSweep } = await import('../containers/sweep.js');
        const list = (v: unknown) => String(v).split(',').map((x) => x.trim()).filter(Boolean);
        const nums = (v: unknown) => list(v).map(Number);
        const r = await containersSweep({
          wssMiB: nums(a.wss),
          atRateMiBps: Number(a['at-rate']),
          ratesMiBps: nums(a.rates),
          atWssMiB: Number(a['at-wss']),
          strategies: list(a.strategies),
          transfer: String(a.transfer),
          repeat: Number(a.repeat),
          memoryMiB: a.memory === undefined ? undefined : Number(a.memory),
          lab: { prefix: String(a.prefix) },
          resultsRoot: String(a.results),
          progress: io.progress,
        });
        const failed = r.runs.filter((x) => x.verdict !== 'intact').length;
        io.out(`container sweep: ${r.runs.length} runs, ${failed} not intact; results in ${r.dir} (summary.md, plots/)`);
        io.json?.({ dir: r.dir, rows: r.rows });
        return failed === 0 ? 0 : 1;
      }
      if (a.action === 'batch') {
        const { containersBatch } = await import('../containers/batch/run.js');
        const r = await containersBatch({
          counts: String(a.counts),
          mode: String(a.mode),
          waveSize: a['wave-size'] === undefined ? undefined : Number(a['wave-size']),
          memoryMiB: a.memory === undefined ? undefined : Number(a.memory),
          rssMiB: Number(a['rss-mib']),
          files: String(a.files),
          periodMs: a['period-ms'] === undefined ? undefined : Number(a['period-ms']),
          keepImages: Boolean(a['keep-images']),
          lab: { prefix: String(a.prefix) },
          resultsRoot: String(a.results),
          progress: io.progress,
        });
        const v = r.record.verdict;
        io.out([`container batch ${r.batchId}:`, ...r.record.steps.map((s) => `  N=${s.count}: ${s.migrated} migrated, ${s.intact} intact, ${s.dumpFailures} dump / ${s.restoreFailures} restore failure(s), ${(s.durationMs / 1000).toFixed(1)} s${s.halt ? `; ${s.halt.guest} HALTED (${s.halt.how})` : ''}`), `  ${v.when}`, ...(v.haltedAt !== undefined ? [`  how: ${v.how}`, `  why: ${v.why}`] : []), `  results in ${r.dir} (report.md, batch.json, moves.csv, samples.csv, plots/)`].join('\n'));
        io.json?.({ batchId: r.batchId, dir: r.dir, steps: r.record.steps.map(({ moves: _m, ...s }) => s), verdict: v });
        return 0;
      }
      if (a.action === 'check') {
        const r = await containersCheck({ lab: { prefix: String(a.prefix) }, memoryMiB: a.memory === undefined ? undefined : Number(a.memory), progress: io.progress });
        io.out(r.lines.join('\n'));
        io.json?.(r);
        return r.ok ? 0 : 1;
      }
      const r = await containersMigrate({
        workload: String(a.workload),
        strategy: String(a.strategy),
        transfer: String(a.transfer),
        rules: { maxRounds: Number(a['max-rounds']), minPages: Number(a['min-pages']), maxGrowthPct: Number(a['max-growth']) },
        memRounds: { budgetPages: Number(a['budget-pages']), plateauPct: Number(a['plateau-pct']) },
        periodMs: a['period-ms'] === undefined ? undefined : Number(a['period-ms']),
        memoryMiB: a.memory === undefined ? undefined : Number(a.memory),
        keepImages: Boolean(a['keep-images']),
        lab: { prefix: String(a.prefix) },
        resultsRoot: String(a.results),
        progress: io.progress,
      });
      const f = r.result.figures;
      io.out(
        [
          `container ${r.runId}: ${r.verdict}`,
          `  client downtime ${f.clientDowntimeMs === null ? 'not measured (the client never heard the container again)' : `${f.clientDowntimeMs.toFixed(1)} ms`}: dump ${f.dumpWallMs.toFixed(0)} ms (CRIU frozen ${f.criuFrozenMs !== null ? `${f.criuFrozenMs.toFixed(1)} ms` : f.criuFrozenRejected ? 'not measured: CRIU\'s figure was longer than the dump ran' : 'n/a'}), hand-over ${f.handoverMs.toFixed(0)} ms, restore ${f.restoreWallMs.toFixed(0)} ms`,
          `  total ${f.totalMs} ms; ${f.preDumpRounds} pre-dump round(s); images by ${f.transfer}`,
          ...r.result.verify.checks.filter((c) => !c.ok).map((c) => `  FAILED ${c.name}: ${c.detail}`),
          `  results in ${r.dir}`,
        ].join('\n'),
      );
      io.json?.({ runId: r.runId, dir: r.dir, verdict: r.verdict, figures: f, verify: r.result.verify });
      return r.verdict === 'intact' ? 0 : 1;
    },
    json: 'check: what CRIU says on each host; migrate: the verdict, figures and checks (run.json has everything)',
  },
  {
    command: 'guests <action>',
    describe: 'the homework by hand: `up` boots the source and a waiting destination, prints what to type to migrate it yourself, and records the run; `down` ends it',
    builder: (y) =>
      y
        .positional('action', { choices: ['up', 'down'] as const, demandOption: true })
        .options(GUESTS_UP_OPTIONS)
        .option('hmp-port', { type: 'string', default: String(DEFAULT_HMP_PORT), describe: "the source's HMP on telnet 127.0.0.1:PORT inside the src namespace" })
        .option('hold', { type: 'string', default: `${DEFAULT_HOLD_MS / 60_000}m`, describe: 'with up: how long to wait for your migrate command, and to keep the guests after the migration ended' })
        .option('prefix', PREFIX_OPTION)
        .option('hosts', { ...HOSTS_OPTION, describe: `${HOSTS_OPTION.describe}; up prints the ssh lines that reach the source's monitors there, down ends the guests up of that file` }),
    run: async (a, io) => {
      if (a.action === 'down') {
        let lab: { prefix: string; hostsFile?: string };
        if (a.hosts === undefined) {
          checkRoot();
          lab = { prefix: String(a.prefix) };
        } else {
          // The holder's record is in the hosts file's lab state here; yaml loads only on this path.
          lab = await (await import('../hosts/use.js')).hostsLabOf(String(a.hosts));
        }
        const r = await guestsDown(lab);
        for (const line of r.lines) io.out(line);
        return r.killed > 0 ? 1 : 0;
      }
      // Its minimum checked here too, so that the message names the option as typed.
      const holdMs = parseDurationMs(String(a.hold), '--hold');
      if (holdMs < MIN_HOLD_MS) throw new UsageError(`${subject('--hold', String(a.hold))}: shorter than ${MIN_HOLD_MS / 1000} s`, `give ${MIN_HOLD_MS / 1000}s or more, e.g. 2m (a bare number is milliseconds)`);
      const r = await guestsUp({
        scenario: scenarioFromArgsChecked({ ...a, monitor: 'qmp', fault: [] }),
        shaping: shapingFromArgs(a),
        lab: { prefix: String(a.prefix) },
        hosts: a.hosts === undefined ? undefined : String(a.hosts),
        resultsRoot: String(a.results),
        holdMs,
        out: io.out,
        progress: io.progress,
      });
      // A held run printed its summary when the migration ended; say how it ended and what cleaning up found.
      io.out(r.held ? formatEnd(r.report, r.dir, r.endedBy) : formatSummary(r.report, r.dir));
      if (r.report.outputs.migrateSentAtMs === undefined) io.out('  no migration was started by hand: nothing migrated (the record keeps the QEMU command lines and serial logs)');
      return runExit(r.report);
    },
  },
  {
    command: 'homework',
    describe: 'the live-migration homework in one run: perf with/without KVM, iperf with/without virtio, both during a migration, the commands explained, fault tolerance with COLO (QEMU 11.1, fetched on first use); writes results/<run-id>/report.md',
    builder: (y) =>
      y
        .option('quick', { type: 'boolean', default: false, describe: 'short durations (a smoke run of every section)' })
        .option('results', { type: 'string', default: 'results', describe: 'directory for results/<run-id>/' })
        .option('prefix', PREFIX_OPTION)
        .option('hosts', HOSTS_OPTION),
    run: async (a, io) => {
      const { runHomework } = await import('../homework/run.js');
      const out = await runHomework({
        spec: a.quick ? QUICK_HOMEWORK : {},
        lab: { prefix: String(a.prefix) },
        hosts: a.hosts === undefined ? undefined : String(a.hosts),
        resultsRoot: String(a.results),
        progress: io.progress,
      });
      io.out(`${chalk.green.bold('homework done')} in ${(out.results.wallMs / 1000).toFixed(0)} s\n  report  ${out.markdownPath}\n  html    ${out.htmlPath}`);
      io.json?.(out);
      return 0;
    },
    json: 'the homework results (as in homework.json) with the report paths',
  },
  {
    command: 'colo',
    describe: 'fault tolerance with COLO: the guest in lock-step on src (primary) and dst (secondary), the primary killed, failover on the secondary, checked and measured; writes results/<run-id>/report.md',
    builder: coloBuilder,
    run: async (a, io) => (await import('../colo/cli.js')).coloCommand(a, io),
    json: 'the COLO run (as in colo.json)',
  },
  {
    ...SWEEP_COMMAND,
    builder: (y) => y.positional('spec', SWEEP_POSITIONALS.spec).options(SWEEP_OPTIONS),
    run: async (a, io) => {
      // Checked here against the option, before the spec's own check would name its field.
      if (a.repetitions !== undefined) wholeNumberFromArgs(a, 'repetitions', 1, 1000);
      return (await sweepCommand(a, io)).code;
    },
    json: 'the sweep: every run, the summary per point, the files',
  },
  {
    ...PLOT_COMMAND,
    builder: (y) => y.positional('dir', PLOT_POSITIONALS.dir).options(PLOT_OPTIONS),
    run: async (a, io) => (await plotCommand(a, io)).code,
  },
  {
    command: 'compare <dirs..>',
    paths: true,
    describe: 'set saved runs (run folders) or sweeps (sweep folders) side by side: headline figures with deltas against the first, as a table (Markdown, CSV) and a figure',
    builder: (y) =>
      y
        .positional('dirs', { type: 'string', array: true, demandOption: true, describe: 'two or more run folders (results/<run-id>/) or sweep folders (results/sweep-NAME/); the first is the baseline' })
        .option('results', { type: 'string', default: 'results', describe: 'directory for results/compare-ID/' }),
    run: async (a, io) => {
      const { compareResults, formatHeadlines } = await import('../compare/compare.js');
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
    builder: (y) => y.options(BATCH_OPTIONS).option('hosts', { ...HOSTS_OPTION, describe: `${HOSTS_OPTION.describe}; the source host is the one sampled and judged (stall, memory guard)` }),
    run: (a, io) => batchCommand(a, io),
    json: 'the batch record, its diagnosis per step and the report paths',
    values: { mode: [...BATCH_MODES, 'waves:2'] },
  },
  {
    command: 'bench',
    describe: 'run the benchmarks (--which: all by default, or one of them); figures go to a file',
    builder: (y) =>
      y
        .option('out', { type: 'string', default: 'results/bench', describe: 'where the figures go' })
        .option('repetitions', { type: 'number', default: 3, describe: 'repetitions of each case (downtime uses at least 5)' })
        .option('which', { choices: ['all', 'foundation', 'downtime', 'batch', 'faults', 'hosts', 'containers', 'containers-batch', 'qemu', 'runs', 'colo'] as const, default: 'all', describe: 'which benchmark (batch, faults, hosts, containers, containers-batch, qemu, runs and colo are long and run only when named)' }),
    run: async (a, io) => {
      const outDir = String(a.out);
      const which = String(a.which);
      const repetitions = wholeNumberFromArgs(a, 'repetitions', 1, 100);
      const progress = io.progress;
      const summary: Record<string, unknown> = {};
      if (which === 'all' || which === 'foundation') {
        const { file, result } = await runFoundationBench({ outDir, repetitions, progress });
        io.out(`foundation: ${JSON.stringify(result.medians)}; harness peak RSS ${result.harnessPeakRssMiB.toFixed(0)} MiB -> ${file}`);
        summary.foundation = { file, result };
      }
      if (which === 'all' || which === 'downtime') {
        const downtime = await runDowntimeBench({ outDir, repetitions: Math.max(5, repetitions), progress });
        io.out(`downtime: -> ${downtime.file}`);
        summary.downtime = downtime;
      }
      if (which === 'batch') {
        const { runBatchBench } = await import('../batch/bench.js');
        const batch = await runBatchBench(outDir, { progress });
        io.out(`batch: ${batch.cases.map((c) => `${c.name}: naive up to N=${c.largestNaiveN ?? 'none'}, scheduler ${c.schedulerLimit ?? '?'}`).join('; ')} -> ${batch.markdown}`);
        summary.batch = batch;
      }
      if (which === 'faults') {
        const { runFaultsBench } = await import('../bench/faults.js');
        const { file, result } = await runFaultsBench({ outDir, progress, repetitions });
        io.out(`faults: ${result.faults.asExpected}/${result.faults.runs} ended as they must, ${result.faults.leftovers} left behind -> ${file}`);
        summary.faults = { file, result };
      }
      if (which === 'hosts') {
        // Loads ssh2 and yaml (the SSH hosts), which no other command pays for at startup.
        const { runHostsBench } = await import('../bench/hosts.js');
        const { files, result } = await runHostsBench({ outDir, repetitions, progress });
        const cases = Object.entries(result.cases).map(([name, c]) => `${name}: SSH adds ${c.sshCostMs.differenceMs?.toFixed(0) ?? '?'} ms a run (aim ${c.sshCostVerdict}), ${c.qemuFiguresMoved.length ? `QEMU figures beyond spread: ${c.qemuFiguresMoved.join(', ')}` : 'no QEMU figure beyond spread'}`);
        io.out(`hosts: ${cases.join('; ')} -> ${files.markdown}`);
        summary.hosts = { files, result };
      }
      if (which === 'containers') {
        const { runContainersBench } = await import('../bench/containers.js');
        const { files, cases } = await runContainersBench({ outDir, repetitions, progress });
        const cuts = cases.filter((c) => c.frozenCutVsStopAndCopy !== undefined).map((c) => `${c.strategy}/${c.transfer} ${c.frozenCutVsStopAndCopy!.toFixed(2)}x (${c.meetsAim ? 'aim met' : 'aim NOT met'})`);
        io.out(`containers: frozen time vs stop-and-copy: ${cuts.join(', ')} -> ${files.markdown}`);
        summary.containers = { files, cases };
      }
      if (which === 'qemu') {
        const { runQemuBench } = await import('../bench/qemu.js');
        const { files, result } = await runQemuBench({ outDir, repetitions, progress });
        const bound = result.bound.cases.map((c) => `${c.qemu} ${c.workload} ${c.ratioToBound.median?.toFixed(2) ?? '?'}x the bound (${c.meetsAim ? 'aim met' : 'aim NOT met'})`);
        const auto = result.policies.autoMissed.length === 0 ? 'auto converged wherever any policy did' : `auto missed ${result.policies.autoMissed.join('; ')}`;
        io.out(`qemu: ${bound.join('; ')}; ${auto} -> ${files.markdown}`);
        summary.qemu = { files, result };
      }
      if (which === 'runs') {
        const { runRunsBench } = await import('../bench/runs.js');
        const { files, result } = await runRunsBench({ outDir, repetitions, progress });
        const cases = result.cases.map(
          (c) => `${c.workload} ${c.start}: boot ${c.bootMs.median?.toFixed(0) ?? '?'} ms, overhead ${c.overheadMs.median?.toFixed(0) ?? '?'} ms, client beyond STOP->RESUME ${c.silenceExcessMs.median?.toFixed(0) ?? '?'} ms`,
        );
        const disagree = result.warmAgrees.filter((a) => !a.agrees).map((a) => `${a.workload} ${a.figure}`);
        io.out(`runs: ${cases.join('; ')}; warm and cold ${disagree.length ? `disagree on ${disagree.join(', ')}` : 'agree'} -> ${files.markdown}`);
        summary.runs = { files, result };
      }
      if (which === 'colo') {
        const { runColoBench } = await import('../bench/colo.js');
        const series = await runColoBench({ outDir, repetitions: Math.max(5, repetitions), progress, signal: io.signal });
        io.out(`colo: ${series.rows.map((r) => `${r.checkpointMs} ms: ${r.failedOver}/${r.runs} failed over, iperf3 ${r.iperfColoMbps ?? '?'} Mbit/s (without ${r.iperfWithoutMbps ?? '?'}), client silent ${r.clientSilenceMs ?? '?'} ms`).join('; ')} -> ${series.markdownPath}`);
        summary.colo = series.rows;
      }
      if (which === 'containers-batch') {
        const { runContainersBatchBench } = await import('../bench/containers-batch.js');
        const { files, cases } = await runContainersBatchBench({ outDir, progress });
        io.out(`container batch: ${cases.map((c) => `${c.mode} ${c.failure ? `failed: ${c.failure}` : `${c.verdict?.bestIntact ?? 0} intact, ${c.verdict?.haltedAt !== undefined ? `halted at N=${c.verdict.haltedAt}` : 'no halt'}`}`).join('; ')} -> ${files.markdown}`);
        summary.containersBatch = { files, cases };
      }
      io.json?.(summary);
      return 0;
    },
    json: 'each benchmark run: its figures and the file they went to',
  },
  {
    command: 'doctor',
    describe: 'check what a run needs on this machine (QEMU and its nfs driver, KVM, sch_netem, the lab tools, telnet/socat, ports, memory, other labs, CPU load) and say how to fix each',
    builder: (y) => y.option('prefix', { type: 'string', default: 'mlab', describe: 'the lab whose ports are checked (the one runs use by default)' }),
    run: async (a, io) => {
      const report = await runDoctor(localProbes({ prefix: String(a.prefix) }));
      io.out(formatDoctor(report, { ok: chalk.green, warn: chalk.yellow, fail: chalk.red }));
      return doctorExit(report);
    },
  },
  {
    command: 'hosts <action>',
    describe: "check the machines of a hosts file before a run on them, over SSH: login and root, QEMU (the same on both sides), KVM and CPU flags, the bridge and a tap, the shared disk's NFS export from both sides, the migration port, the clocks; and say how to fix each",
    builder: (y) =>
      y
        .positional('action', { choices: ['check'] as const, demandOption: true })
        .option('hosts', { type: 'string', demandOption: true, describe: 'the hosts file (YAML; an example: examples/hosts/two-vms.yaml)' })
        .option('port', { type: 'string', default: String(DEFAULT_MIGRATION_PORT), describe: 'the migration port: free on dst and reachable from src' })
        .option('timeout', { type: 'string', default: '15s', describe: 'how long each SSH login may take' }),
    run: async (a, io) => {
      const port = parsePort(String(a.port), '--port');
      const timeoutMs = parseDurationMs(String(a.timeout), '--timeout');
      const { parseHostsFile } = await import('../hosts/file.js');
      const { checkHosts } = await import('../hosts/check.js');
      const spec = await parseHostsFile(String(a.hosts));
      const report = await withTeardown((_td, signal) => checkHosts(spec, { port, timeoutMs, signal }));
      io.out(formatDoctor(report, { ok: chalk.green, warn: chalk.yellow, fail: chalk.red }));
      return doctorExit(report);
    },
  },
];

/** The last lines of a held `guests up`: what ended it, each side afterwards, what cleaning up found. */
function formatEnd(r: Awaited<ReturnType<typeof guestsUp>>['report'], dir: string, endedBy: string | undefined): string {
  const o = r.outputs;
  const lines = [`guests ended (${endedBy ?? 'the run ended'}): both QEMUs stopped`];
  if (o.after) lines.push(`  before that     ${describeSides(o.after)}`);
  if (o.qemuImgCheck) lines.push(`  shared disk     qemu-img check ${o.qemuImgCheck.ok ? 'clean' : `found problems: ${o.qemuImgCheck.meaning}`}`);
  if (o.teardownProblems?.length) lines.push(chalk.red(`  cleanup         ${o.teardownProblems.join('; ')}`));
  lines.push(o.leftovers?.length ? chalk.red(`  left behind     ${o.leftovers.join('; ')}`) : '  left behind     nothing');
  lines.push(chalk.dim(`  results         ${dir} (run.json completed)`));
  return lines.join('\n');
}

/** A command's name, as typed: its yargs command string less the positionals. */
export function commandName(c: MiglabCommand): string {
  return c.command.split(' ')[0]!;
}

/** The command names, for the message when none is given. */
export function commandNames(): string[] {
  return COMMANDS.map(commandName);
}
