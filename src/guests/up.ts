// `miglab guests up`: the homework by hand. The engine boots the source (its HMP on telnet inside
// the source host, a QMP socket for the person) and the destination waiting with -incoming, sets
// the capabilities, starts the guest's probe, then, instead of sending `migrate` itself, prints
// what to type and waits for the person's migration (engine hook `byHand`). From there it is any
// run: sampled over miglab's own QMP, deadlines, the three downtimes, heartbeat, integrity. When
// the migration has ended, the record is written and summarised, and the guests are kept
// (hook `afterConclude`) so `info migrate` shows QEMU's final figures, until `guests down`,
// Ctrl-C or the hold limit; then everything is stopped and the record completed. On hosts from a
// hosts file the guests run there and the lines printed log in to the source host over SSH.
import { UsageError } from '../errors.js';
import { checkHandTools } from '../lab/deps.js';
import { migrateOnLab, preflightFor, REPO_ROOT, useLab, type LabChoice, type MigrateResult } from '../api.js';
import { THIS_MACHINE } from '../lab/machine.js';
import { shellCommand } from '../host/shell-quote.js';
import type { LabSpecInput, ShapingInput } from '../lab/index.js';
import type { MigrationHooks } from '../migrate/engine.js';
import { formatDuration } from '../progress/format.js';
import type { Progress } from '../progress/progress.js';
import { DEFAULT_HMP_PORT, parseScenario, scenarioName, type ScenarioInput } from '../migrate/scenario.js';
import { checkResultsDir } from '../report/results-dir.js';
import { writeRunFiles } from '../report/run-files.js';
import { formatSummary } from '../report/summary.js';
import { withDeadline } from '../util/deadline.js';
import { Teardown } from '../util/teardown.js';
import { awaitMigrationStart } from './await-start.js';
import { formatByHand } from './instructions.js';
import { recordHolder } from './record.js';
import { join } from 'node:path';

export const DEFAULT_HOLD_MS = 10 * 60_000;
/** Less leaves no time to read the instructions and type. */
export const MIN_HOLD_MS = 10_000;

export interface GuestsUpRequest {
  /** The guests and the migration's settings; the monitor is miglab's QMP, the HMP port defaults to 4445. */
  readonly scenario: ScenarioInput;
  readonly shaping?: ShapingInput;
  readonly lab?: LabSpecInput;
  /** A hosts file: the guests run on those machines over SSH instead of the embedded lab. */
  readonly hosts?: string;
  readonly resultsRoot?: string;
  /** How long to wait for the person's migration, and to keep the guests after it ended. */
  readonly holdMs?: number;
  /** Text for the person (stdout): the instructions, the summary. */
  readonly out: (text: string) => void;
  readonly progress?: Progress;
  /** An outer abort (tests); Ctrl-C and SIGTERM are always handled. */
  readonly signal?: AbortSignal;
}

export interface GuestsUpResult extends MigrateResult {
  /** The guests were kept after the migration ended (its summary was printed then). */
  readonly held: boolean;
  /** What ended the hold: guests down or Ctrl-C (a signal), the hold limit, or the run's own alarm. */
  readonly endedBy?: string;
}

export async function guestsUp(req: GuestsUpRequest): Promise<GuestsUpResult> {
  const scenario = parseScenario({ ...req.scenario, monitor: 'qmp', hmpTelnetPort: req.scenario.hmpTelnetPort ?? DEFAULT_HMP_PORT });
  if (scenario.faults.length > 0 || scenario.postcopyAfterMs !== undefined) {
    throw new UsageError('guests up does not inject faults nor switch to post-copy: you drive the migration', 'type migrate_start_postcopy at the monitor yourself, or use miglab migrate');
  }
  const holdMs = req.holdMs ?? DEFAULT_HOLD_MS;
  if (!Number.isInteger(holdMs) || holdMs < MIN_HOLD_MS) throw new UsageError(`invalid hold time ${holdMs} ms`, 'give 10 s or more');
  const dir = await checkResultsDir(req.resultsRoot ?? join(REPO_ROOT, 'results'));
  const where: LabChoice = { lab: req.lab, hosts: req.hosts, shaping: req.shaping, cpuModels: [scenario.guest.cpuModel] };
  const image = await preflightFor(where, scenario.faults);
  // The person's telnet and socat run where the monitors are: here, or on the source host (checked once connected).
  if (req.hosts === undefined) await checkHandTools();
  else if (!(await THIS_MACHINE.host.which('ssh'))) throw new UsageError('ssh is not installed here (the lines printed log in to the source host with it)', 'install it: apt-get install openssh-client');

  // Ctrl-C and SIGTERM (which `guests down` sends) interrupt the run while the person has not
  // finished migrating; once the migration has ended and the guests are only kept, they end
  // the hold, and the run finishes as it is (completed stays completed).
  const runAc = new AbortController();
  const holdAc = new AbortController();
  let holding = false;
  const onSignal = (sig: NodeJS.Signals) => (holding ? holdAc.abort(new Error(`received ${sig}`)) : runAc.abort(new Error(`received ${sig}`)));
  const onOuter = () => runAc.abort(req.signal?.reason);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  req.signal?.addEventListener('abort', onOuter, { once: true });
  const td = new Teardown();
  try {
    const lab = await useLab(td, where, runAc.signal);
    // The person's tools on the source host (on the embedded lab they were checked here, above).
    if (req.hosts !== undefined) await checkHandTools(lab.hosts.src.host);
    const place = lab.byHandPlace();
    const holder = recordHolder(lab.paths.labDir, lab.spec.prefix);
    td.defer('forget the guests up record', () => holder.remove());
    let held = false;
    let endedBy: string | undefined;
    const hooks: MigrationHooks = {
      byHand: {
        waitMs: holdMs,
        awaitMigrate: async ({ src, uri, signal, began }) => {
          req.out(formatByHand({ ...place, hmpPort: src.plan.hmpTelnetPort!, uri, personQmpSocket: src.plan.personQmpSocket }, holdMs));
          const status = await awaitMigrationStart(src.qmp, { timeoutMs: holdMs, signal, began });
          req.progress?.('migrate', `a migration was started by hand (QEMU: ${status}); miglab samples it over its own QMP`);
          // miglab cannot see what was typed (HMP or QMP), only that a migration to the waiting destination began.
          return `by hand at the source's monitor (a migration to ${uri})`;
        },
      },
      afterConclude: async ({ report, runDir, signal }) => {
        // Drawn as `migrate` draws them: a by-hand run is one run, nothing else waits on its CPU.
        const r = await writeRunFiles(await report(), runDir, { figures: true });
        req.out(formatSummary(r, runDir));
        held = true;
        holding = true;
        req.out(
          `\nThe guests are kept so that \`info migrate\` shows QEMU's final figures. End with \`${shellCommand(['miglab', 'guests', 'down', ...place.lab])}\` or Ctrl-C (at most ${formatDuration(holdMs)}).`,
        );
        endedBy = await holdUntilEnded(holdMs, [holdAc.signal, signal]);
        holding = false;
        req.progress?.('guests', `ending (${endedBy}): stopping both QEMUs and completing the record`);
      },
    };
    const result = await migrateOnLab({ lab, image, scenario, dir, runName: `byhand-${scenarioName(scenario)}`, signal: runAc.signal, progress: req.progress, hooks });
    return { ...result, held, endedBy };
  } finally {
    await td.run();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    req.signal?.removeEventListener('abort', onOuter);
  }
}

/** Wait until one of the signals fires or the limit passes; say which. Never throws. */
async function holdUntilEnded(limitMs: number, signals: AbortSignal[]): Promise<string> {
  const any = AbortSignal.any(signals);
  try {
    await withDeadline('holding the guests', new Promise<never>(() => undefined), { timeoutMs: limitMs, signal: any });
  } catch {
    // The point of the wait: how it ended is read below.
  }
  const reason: unknown = any.reason;
  if (!any.aborted) return `the hold limit of ${Math.round(limitMs / 1000)} s passed`;
  return reason instanceof Error ? reason.message : String(reason);
}
