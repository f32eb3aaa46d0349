// The short coloured summary `miglab migrate` prints. It reads only the report. A figure the
// report does not have is printed as `?` (never 0), with where each headline figure came from
// when it was not QEMU's own query-migrate.
import { silenceLine } from '../migrate/client-silence.js';
import { postcopyLine } from './postcopy.js';
import { describeQemu } from '../qemu/pair.js';
import { join } from 'node:path';
import chalk from 'chalk';
import { dirtyRateText } from '../migrate/figures.js';
import { describeSides, type RunReport } from '../migrate/report.js';

const fmtMiB = (b: number | undefined) => (b === undefined ? '?' : `${(b / 1024 / 1024).toFixed(1)} MiB`);
const fmt = (v: number | undefined, unit: string, digits = 0) => (v === undefined ? '?' : `${v.toFixed(digits)} ${unit}`);

const HEADS: Record<RunReport['verdict'], (t: string) => string> = {
  completed: (t) => chalk.green.bold(t),
  'did-not-converge': (t) => chalk.yellow.bold(t),
  stalled: (t) => chalk.yellow.bold(t),
  failed: (t) => chalk.red.bold(t),
  interrupted: (t) => chalk.yellow.bold(t),
};

const TITLES: Record<RunReport['verdict'], string> = {
  completed: 'migration completed',
  'did-not-converge': 'migration did not converge',
  stalled: 'migration stalled',
  failed: 'migration failed',
  interrupted: 'migration interrupted',
};

function source(s: string | undefined): string {
  if (s === 'missing') return chalk.dim(' (QEMU gave none)');
  return s === undefined || s === 'qemu' ? '' : chalk.dim(` (from QEMU's ${s})`);
}

/** Who started the migration and how: miglab over its monitor, or a person (the recorded command says "by hand"; miglab only sampled it). */
function startedHow(r: RunReport): string {
  const command = chalk.cyan(r.inputs.migrateCommand || '(not sent)');
  if (r.inputs.startedBy === 'hand') return `${r.inputs.migrateCommand ? command : chalk.cyan('not started by hand')}, sampled by miglab over ${r.inputs.scenario.monitor.toUpperCase()}`;
  return `monitor ${r.inputs.scenario.monitor}: ${command}`;
}

/** On hosts with clocks of their own: the STOP->RESUME figure's bound and its uncorrected value. */
function clockNote(o: RunReport['outputs']): string {
  const c = o.clocks;
  if (!c || c.method === 'one-clock') return '';
  const raw = o.eventDowntimeUncorrectedMs === undefined ? '' : `, ${fmt(o.eventDowntimeUncorrectedMs, 'ms', 1)} on the hosts' own clocks`;
  return ` (± ${fmt(2 * c.before.uncertaintyMs, 'ms', 1)}: two clocks over SSH${raw})`;
}

export function formatSummary(r: RunReport, dir: string): string {
  const o = r.outputs;
  // "migration failed" is QEMU's word; a run miglab ended (a watcher, a check) while QEMU had not
  // failed the migration is a failed run.
  const title = r.verdict === 'failed' && o.status !== 'failed' ? 'run failed' : r.verdict === 'completed' && !r.ok ? 'migration failed' : TITLES[r.verdict];
  const head = HEADS[r.verdict === 'completed' && !r.ok ? 'failed' : r.verdict](title);
  const lines = [
    `${head}  ${chalk.dim(r.name)}`,
    `  accelerator     ${r.inputs.accel.used}${r.inputs.accel.used !== r.inputs.accel.requested ? chalk.dim(` (${r.inputs.accel.reason})`) : ''}`,
    `  QEMU            ${describeQemu(r.inputs.qemu)}, ${startedHow(r)}`,
    o.final
      ? `  total time      ${fmt(o.totalTimeMs, 'ms')}${source(o.figureSources?.totalTimeMs)}${o.setupTimeMs !== undefined ? `   setup ${fmt(o.setupTimeMs, 'ms')}` : ''}`
      : `  total time      ${chalk.dim('none: the run ended before the migration did')}`,
  ];
  if (r.inputs.scenario.tls) lines.push(`  stream          TLS (tls-creds-x509, certificates of the lab, both sides verified)`);
  if (o.status === 'completed') {
    lines.push(
      `  downtime        ${chalk.bold(fmt(o.downtimeMs, 'ms'))} (QEMU)${source(o.figureSources?.downtimeMs)}` +
        (o.eventDowntimeMs !== undefined ? `   ${fmt(o.eventDowntimeMs, 'ms', 1)} STOP->RESUME events${clockNote(o)}` : '') +
        (o.clientProbe ? `   ${clientLost(o.clientProbe, o.clientDowntimeMs) ?? `${chalk.bold(fmt(o.clientDowntimeMs, 'ms', 1))} as a client saw it (UDP probe every ${o.clientProbe.resolutionMs} ms, ${o.clientProbe.lostAroundGap} lost)`}` : ''),
    );
    const trace = downtimeTraceLine(o.downtimeTrace);
    if (trace) lines.push(trace);
    if (o.clientSilence) lines.push(`  client silence  ${silenceLine(o.clientSilence)}`);
  }
  // QEMU's last record of a migration that failed or was cancelled has no RAM figures: the last
  // active sample below says what there was.
  if (o.transferredBytes !== undefined) {
    lines.push(`  transferred     ${fmtMiB(o.transferredBytes)} of ${fmtMiB(o.totalBytes)} RAM, ${fmt(o.averageThroughputMiBps, 'MiB/s', 1)} average, ${fmt(o.throughputMbps, 'Mbit/s', 0)} last`);
  }
  const syncs = o.dirtySyncCount ?? o.lastActive?.dirtySyncCount;
  lines.push(`  passes          ${syncs ?? '?'} dirty sync${syncs === 1 ? '' : 's'}, ${r.timeline.length} sample${r.timeline.length === 1 ? '' : 's'}`);
  const sw = switchoverLine(o.switchover);
  if (sw) lines.push(sw);
  const pc = postcopyLine(o.postcopy);
  if (pc) lines.push(pc);
  if (o.lastActive && o.status !== 'completed') {
    lines.push(
      `  last active     at ${o.lastActive.tMs} ms: ${fmtMiB(o.lastActive.transferredBytes)} sent, ${fmtMiB(o.lastActive.remainingBytes)} remaining, ${dirtyRateText(o.lastActive.dirtyPagesRate)}`,
    );
  }
  if (o.heartbeat) lines.push(`  guest           ${o.heartbeat.continuous ? chalk.green('heartbeat continued on the destination, same boot') : chalk.red('heartbeat broken')} (seq ${o.heartbeat.sourceLastSeq} -> ${o.heartbeat.destinationFirstSeq})`);
  if (o.integrity) lines.push(`  integrity       ${o.integrity.ok ? chalk.green(o.integrity.detail) : chalk.red(o.integrity.detail)} (checked on the ${o.integrityCheckedOn ?? 'destination'})`);
  for (const f of o.faults ?? []) {
    const when = f.fired ? `fired ${f.trigger ?? ''}: ${f.detail ?? ''}${f.undo ? `; undone at ${f.undoneAtMs} ms: ${f.undo}` : ''}` : `never fired: ${f.notFired ?? '?'}`;
    lines.push(chalk.magenta(`  fault           ${f.fault} ${when}${f.error ? `; ${f.error}` : ''}`));
  }
  // Looked at before cleanup stopped anything (observeAfter).
  if (o.after) lines.push(`  at the end      ${describeSides(o.after)} (before cleanup)`);
  for (const x of o.relaunched ?? []) lines.push(chalk.yellow(`  relaunched      ${x.side} QEMU hung while starting and was launched again (see run.json)`));
  if (o.guestTrouble) lines.push(chalk.red(`  guest console   ${o.guestTrouble.lines.slice(-3).join(' | ')}`));
  if (r.failure) lines.push((r.ok ? chalk.dim : r.verdict === 'failed' ? chalk.red : chalk.yellow)(`  ${r.failure}`));
  if (o.teardownProblems?.length) lines.push(chalk.red(`  cleanup         ${o.teardownProblems.join('; ')}`));
  if (o.leftovers?.length) lines.push(chalk.red(`  left behind     ${o.leftovers.join('; ')}`));
  lines.push(chalk.dim(`  results         ${dir}`));
  // The report is what a person opens next: say where it is (scripts read the results line above).
  if (r.files['report.html']) lines.push(chalk.dim(`  report          ${join(dir, 'report.html')}`));
  return lines.join('\n');
}

/** The trace points' downtime and where most of it went: the longest phase and the slowest section on each side. */
export function downtimeTraceLine(t: RunReport['outputs']['downtimeTrace']): string | undefined {
  if (!t || t.totalMs === undefined) return undefined;
  const longest = [...t.phases].sort((a, b) => b.ms - a.ms)[0];
  const slow = (side: string, d: (typeof t.sourceDevices)[number] | undefined) => (d ? `${side} ${d.device} ${d.ms.toFixed(1)} ms` : undefined);
  const parts = [longest ? `longest: ${longest.what} ${longest.ms.toFixed(1)} ms` : undefined, slow('slowest save', t.sourceDevices[0]), slow('load', t.destinationDevices[0])].filter(Boolean);
  return `  downtime trace  ${fmt(t.totalMs, 'ms', 1)} from the source's stop to the destination's start (QEMU's trace points): ${parts.join('; ')}`;
}

/** The policy and what it did (how many actions and the last, or that it never acted), unless QEMU decided alone. */
export function switchoverLine(sw: RunReport['outputs']['switchover']): string | undefined {
  if (!sw || sw.policy === 'qemu-default') return undefined;
  const acted = sw.decisions.filter((d) => d.action !== 'keep');
  const last = acted[acted.length - 1];
  const what = last
    ? `${acted.length} action${acted.length === 1 ? '' : 's'}; last at ${last.tMs} ms, pass ${last.pass ?? '?'}: ${last.action === 'set-downtime-limit' ? `downtime-limit ${last.downtimeLimitMs} ms` : 'post-copy'} (${last.why})`
    : `no action over ${sw.decisions.length} decision${sw.decisions.length === 1 ? '' : 's'}${sw.decisions.length ? `; last: ${sw.decisions[sw.decisions.length - 1]!.why}` : ''}`;
  return `  switchover      ${sw.policy}: ${what}`;
}

/** What to say when the client had not heard the guest again when probing stopped (no downtime figure). */
export function clientLost(probe: { silentAtEndMs?: number | null; unansweredAtEnd?: number }, clientDowntimeMs: number | undefined): string | undefined {
  if (clientDowntimeMs !== undefined || probe.silentAtEndMs === null || probe.silentAtEndMs === undefined) return undefined;
  return `${chalk.bold('no client downtime')}: the client never heard the guest again (its last ${probe.unansweredAtEnd ?? 0} probes, ${fmt(probe.silentAtEndMs, 'ms', 0)}, unanswered until probing stopped)`;
}
