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

/**
 * One piece of a live figure. `drop` ranks what a line too narrow for everything leaves out: the
 * fields ranked 1 go first, then 2...; a field without one (a deadline, a migration's status)
 * always stays.
 */
export interface LiveField {
  readonly text: string;
  readonly drop?: number;
}

/** One live figure as a label (what is going on) and its fields, at time `nowMs` (epoch ms). */
export function liveParts(s: LiveStatus, nowMs: number): { label: string; fields: LiveField[] } {
  switch (s.kind) {
    case 'migration':
      return {
        label: 'migrate',
        fields: [
          { text: s.status },
          { text: `pass ${s.pass ?? '-'}`, drop: 2 },
          { text: `${s.remainingBytes === undefined ? '-' : mib(s.remainingBytes)} MiB left`, drop: 4 },
          { text: `${s.sentBytesPerS === undefined ? '-' : mib(s.sentBytesPerS)} MiB/s`, drop: 3 },
          { text: `dirty ${dirtyRate(s.dirtyPagesPerS, s.pageSizeBytes)}`, drop: 1 },
          { text: `${formatDuration(s.deadlineAt - nowMs)} to the deadline` },
        ],
      };
    case 'boot':
      // Each stage has a deadline of its own: said so, or "0 s of 1m00s" reads as the whole boot's.
      return { label: 'boot', fields: [{ text: `${s.stage}: ${formatDuration(nowMs - s.startedAt)} (deadline ${formatDuration(s.deadlineAt - s.startedAt)} for this stage)` }] };
    case 'settle':
      return { label: 'settle', fields: [{ text: `waiting for ${s.waitingFor.join(', ') || 'the host'}: ${formatDuration(nowMs - s.startedAt)} (at most ${formatDuration(s.deadlineAt - s.startedAt)})` }] };
    case 'sweep': {
      // The run in progress counts as part done: what is left of it is the mean minus its time so far.
      const eta = s.meanRunMs === undefined ? undefined : Math.max(0, s.meanRunMs * (s.of - s.run + 1) - (nowMs - s.runStartedAt));
      return { label: 'sweep', fields: [{ text: `run ${s.run}/${s.of}` }, { text: s.name, drop: 1 }, { text: `eta ${eta === undefined ? '-' : formatDuration(eta)}` }] };
    }
  }
}

/** A figure's fields as text, without those ranked `dropped` or lower. */
export function fieldsText(fields: readonly LiveField[], dropped = 0): string {
  return fields
    .filter((f) => f.drop === undefined || f.drop > dropped)
    .map((f) => f.text)
    .join(' · ');
}

/**
 * Figures side by side on one line of at most `width` columns: while it is too wide, every
 * figure leaves out its least important fields (rank 1 in all of them, then rank 2...), never
 * one without a rank; only what is still too wide then is cut.
 */
export function fitFigures(figures: ReadonlyArray<{ readonly title: string; readonly fields: readonly LiveField[] }>, width: number): string {
  const ranks = [0, ...new Set(figures.flatMap((f) => f.fields.flatMap((x) => (x.drop === undefined ? [] : [x.drop]))))].sort((a, b) => a - b);
  let text = '';
  for (const dropped of ranks) {
    text = figures.map((f) => `${f.title} ${fieldsText(f.fields, dropped)}`).join(' | ');
    if ([...text].length <= width) return text;
  }
  return fitWidth(text, width);
}

/** A line cut to `width` columns (an ellipsis marks the cut), so a terminal never wraps it. */
export function fitWidth(text: string, width: number): string {
  if (width <= 0) return '';
  const chars = [...text];
  if (chars.length <= width) return text;
  return width === 1 ? '…' : `${chars.slice(0, width - 1).join('')}…`;
}
