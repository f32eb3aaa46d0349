// The text of live figures (src/progress/progress.ts), shared by the live line on a terminal and
// the plain lines elsewhere. Pure: the clock is passed in, so time left and estimates are
// computed when the line is drawn, not when the figure arrived.
import type { LiveStatus } from './progress.js';

const MiB = 1024 * 1024;

/** "42 s", "3m05s", "1h02m": short enough for a live line, exact enough to plan by. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function mib(bytes: number): string {
  const v = bytes / MiB;
  return v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

/** The dirty rate as MiB/s when the page size is known, else as QEMU gives it; "-" before QEMU measured it. */
function dirtyRate(pagesPerS: number | undefined, pageSizeBytes: number | undefined): string {
  if (pagesPerS === undefined) return '-';
  return pageSizeBytes === undefined ? `${pagesPerS} pages/s` : `${mib(pagesPerS * pageSizeBytes)} MiB/s`;
}

/** One live figure as a label (what is going on) and its detail, at time `nowMs` (epoch ms). */
export function liveParts(s: LiveStatus, nowMs: number): { label: string; detail: string } {
  switch (s.kind) {
    case 'migration':
      return {
        label: 'migrate',
        detail: [
          s.status,
          `pass ${s.pass ?? '-'}`,
          `${s.remainingBytes === undefined ? '-' : mib(s.remainingBytes)} MiB left`,
          `${s.sentBytesPerS === undefined ? '-' : mib(s.sentBytesPerS)} MiB/s`,
          `dirty ${dirtyRate(s.dirtyPagesPerS, s.pageSizeBytes)}`,
          `${formatDuration(s.deadlineAt - nowMs)} to the deadline`,
        ].join(' · '),
      };
    case 'boot':
      return { label: 'boot', detail: `${s.stage} ${formatDuration(nowMs - s.startedAt)} of ${formatDuration(s.deadlineAt - s.startedAt)}` };
    case 'settle':
      return { label: 'settle', detail: `waiting for ${s.waitingFor.join(', ') || 'the host'} ${formatDuration(nowMs - s.startedAt)} of ${formatDuration(s.deadlineAt - s.startedAt)}` };
    case 'sweep': {
      // The run in progress counts as part done: what is left of it is the mean minus its time so far.
      const eta = s.meanRunMs === undefined ? undefined : Math.max(0, s.meanRunMs * (s.of - s.run + 1) - (nowMs - s.runStartedAt));
      return { label: 'sweep', detail: `run ${s.run}/${s.of} ${s.name} · eta ${eta === undefined ? '-' : formatDuration(eta)}` };
    }
  }
}

/** A line cut to `width` columns (an ellipsis marks the cut), so a terminal never wraps it. */
export function fitWidth(text: string, width: number): string {
  if (width <= 0) return '';
  const chars = [...text];
  if (chars.length <= width) return text;
  return width === 1 ? '…' : `${chars.slice(0, width - 1).join('')}…`;
}
