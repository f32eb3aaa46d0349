// The short coloured summary `miglab migrate` prints. It reads only the report.
import chalk from 'chalk';
import type { RunReport } from '../migrate/report.js';

const fmtMiB = (b: number | undefined) => (b === undefined ? '?' : `${(b / 1024 / 1024).toFixed(1)} MiB`);
const fmt = (v: number | undefined, unit: string, digits = 0) => (v === undefined ? '?' : `${v.toFixed(digits)} ${unit}`);

export function formatSummary(r: RunReport, dir: string): string {
  const o = r.outputs;
  const head =
    r.verdict === 'completed' && r.ok
      ? chalk.green.bold('migration completed')
      : r.verdict === 'did-not-converge'
        ? chalk.yellow.bold('migration did not converge')
        : chalk.red.bold('migration failed');
  const lines = [
    `${head}  ${chalk.dim(r.name)}`,
    `  accelerator     ${r.inputs.accel.used}${r.inputs.accel.used !== r.inputs.accel.requested ? chalk.dim(` (${r.inputs.accel.reason})`) : ''}`,
    `  QEMU            ${r.inputs.qemu.version}, monitor ${r.inputs.scenario.monitor}: ${chalk.cyan(r.inputs.migrateCommand)}`,
    `  total time      ${fmt(o.totalTimeMs, 'ms')}   setup ${fmt(o.setupTimeMs, 'ms')}`,
    `  downtime        ${chalk.bold(fmt(o.downtimeMs, 'ms'))} (QEMU)` +
      (o.eventDowntimeMs !== undefined ? `   ${fmt(o.eventDowntimeMs, 'ms', 1)} STOP->RESUME events` : '') +
      (o.clientProbe ? `   ${chalk.bold(fmt(o.clientDowntimeMs, 'ms', 1))} as a client saw it (UDP probe every ${o.clientProbe.resolutionMs} ms, ${o.clientProbe.lostAroundGap} lost)` : ''),
    `  transferred     ${fmtMiB(o.transferredBytes)} of ${fmtMiB(o.totalBytes)} RAM, ${fmt(o.averageThroughputMiBps, 'MiB/s', 1)} average, ${fmt(o.throughputMbps, 'Mbit/s', 0)} last`,
    `  passes          ${o.dirtySyncCount ?? '?'} dirty syncs, ${r.timeline.length} samples`,
  ];
  if (o.heartbeat) lines.push(`  guest           ${o.heartbeat.continuous ? chalk.green('heartbeat continued on the destination, same boot') : chalk.red('heartbeat broken')} (seq ${o.heartbeat.sourceLastSeq} -> ${o.heartbeat.destinationFirstSeq})`);
  for (const why of o.relaunched ?? []) lines.push(chalk.yellow(`  relaunched      ${why.split(':')[0]} QEMU hung while starting and was launched again (see run.json)`));
  if (r.failure) lines.push(chalk.red(`  ${r.failure}`));
  lines.push(chalk.dim(`  results         ${dir}`));
  return lines.join('\n');
}
