// Post-copy in a run's summary and report: when it began, how many pages the destination's vCPUs
// faulted on and had to fetch from the source, how long they waited (QEMU's postcopy-blocktime),
// and each recovery of a broken post-copy with its times. Pure: reads run.json's outputs.
import type { RunReport } from '../migrate/report.js';
import { fmtMiB, fmtMs, type Column, type MarkdownDoc } from './markdown.js';

type Postcopy = NonNullable<RunReport['outputs']['postcopy']>;
type Recovery = Postcopy['recoveries'][number];

/** One line for the summary: "started at 1075 ms; 42 page requests, 116.0 MiB; vCPUs blocked 7524 ms; 1 recovery (ok in 4354 ms)". */
export function postcopyLine(pc: Postcopy | undefined): string | undefined {
  if (!pc) return undefined;
  const parts = [pc.startedAtMs === undefined ? 'started by hand' : `started at ${pc.startedAtMs} ms${pc.preempt ? ' (preempt)' : ''}`];
  if (pc.requests !== undefined || pc.bytes !== undefined) parts.push(`${pc.requests ?? '?'} page request${pc.requests === 1 ? '' : 's'} from the destination, ${fmtMiB(pc.bytes)} sent in post-copy`);
  if (pc.blocktimeMs !== undefined) parts.push(`vCPUs blocked ${pc.blocktimeMs} ms`);
  for (const r of pc.recoveries) parts.push(recoveryText(r));
  return `  post-copy       ${parts.join('; ')}`;
}

function recoveryText(r: Recovery): string {
  if (!r.ok) return `not recovered after "${r.trigger}": ${r.detail}`;
  const took = r.recoveredAtMs !== undefined ? `, running again ${r.recoveredAtMs - r.atMs} ms after it stalled` : '';
  return `recovered from "${r.trigger}" at ${r.atMs} ms (paused, ${r.attempts.length} resume${r.attempts.length === 1 ? '' : 's'}${took})`;
}

const RECOVERY_COLUMNS: Column<Recovery>[] = [
  { key: 'atMs', title: 'stalled at', format: (v) => fmtMs(v as number), align: 'right' },
  { key: 'trigger', title: 'trigger' },
  { key: 'pausedAtMs', title: 'both paused', format: (v) => fmtMs(v as number | undefined), align: 'right' },
  { key: 'attempts', title: 'resumes', format: (v) => (v as Recovery['attempts']).map((a) => `${fmtMs(a.atMs)}: ${a.outcome}`).join('; ') || '–' },
  { key: 'recoveredAtMs', title: 'running again', format: (v) => fmtMs(v as number | undefined), align: 'right' },
  { key: 'detail', title: 'how it went' },
];

/** The report's post-copy section (nothing for a run that never entered post-copy). */
export function postcopySection(doc: MarkdownDoc, r: RunReport): void {
  const pc = r.outputs.postcopy;
  if (!pc) return;
  if (pc.startedAtMs !== undefined && pc.enteredAtMs === undefined && !pc.bytes) {
    doc.heading(2, 'Post-copy').paragraph(`miglab asked for post-copy ${fmtMs(pc.startedAtMs)} after the migrate command, but QEMU never entered it: the migration ended first.`);
    return;
  }
  const vcpus = pc.vcpuBlocktimeMs?.length ? ` (per vCPU: ${pc.vcpuBlocktimeMs.map((v) => `${v} ms`).join(', ')})` : '';
  doc.heading(2, 'Post-copy').paragraph(
    [
      pc.startedAtMs === undefined ? 'Post-copy was started at the monitor.' : `miglab switched to post-copy ${fmtMs(pc.startedAtMs)} after the migrate command${pc.preempt ? ', with postcopy-preempt (faulted pages on a channel of their own)' : ''}.`,
      `The destination's vCPUs faulted on ${pc.requests ?? '?'} page${pc.requests === 1 ? '' : 's'} it did not have yet, each fetched from the source (QEMU's postcopy-requests); ${fmtMiB(pc.bytes)} went over in post-copy.`,
      pc.blocktimeMs === undefined ? 'How long they waited was not measured (postcopy-blocktime off).' : `All vCPUs waited for pages at once for ${fmtMs(pc.blocktimeMs)} in all (postcopy-blocktime)${vcpus}.`,
    ].join(' '),
  );
  if (pc.recoveries.length === 0) return;
  doc
    .paragraph('A post-copy cannot be cancelled (neither host holds the whole guest), so a broken one is paused (migrate-pause), the destination listens again (migrate-recover) and the source resumes (migrate with resume): each time below.')
    .table(RECOVERY_COLUMNS, pc.recoveries);
}
