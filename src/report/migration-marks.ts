// The moments of a migration worth marking on a figure over time: each pre-copy pass, the
// switchover (the source's STOP) and the resume on the destination (its RESUME), read from a run
// report alone. The run's own report and the homework's during-migration figures both draw them,
// so both read them from here. Pure.
import type { Marker } from '../plot/charts.js';
import type { RunReport } from '../results/run.js';

export type MarkKind = 'pass' | 'switchover' | 'resume';

export interface MigrationMark {
  /** Since the migrate command (QEMU's own event timestamps). */
  readonly tMs: number;
  readonly label: string;
  readonly kind: MarkKind;
}

/** A pass this close to the switchover or the resume is left out: its rule would only clutter theirs. */
const NEAR_SWITCHOVER_MS = 50;

/** The passes, the switchover and the resume of a run, in that order. */
export function migrationMarks(report: Pick<RunReport, 'passes' | 'events'>): MigrationMark[] {
  const marks: MigrationMark[] = report.passes.map((p) => ({ tMs: p.tMs, label: `pass ${p.pass}`, kind: 'pass' }));
  const stop = report.events.find((e) => e.side === 'source' && e.event === 'STOP');
  const resume = report.events.find((e) => e.side === 'destination' && e.event === 'RESUME');
  if (stop) marks.push({ tMs: stop.tMs, label: 'switchover (source stops)', kind: 'switchover' });
  if (resume) marks.push({ tMs: resume.tMs, label: 'resumed on destination', kind: 'resume' });
  return marks.filter((m, i) => m.kind !== 'pass' || !marks.some((o, j) => j !== i && o.kind !== 'pass' && Math.abs(o.tMs - m.tMs) < NEAR_SWITCHOVER_MS));
}

/** Passes with a label of their own on a figure; past that, every k-th pass keeps its label. */
const LABELLED_PASSES = 8;

/**
 * Chart markers for marks already placed on the chart's x axis (`x` in its unit). The switchover
 * and the resume stand out (solid red). A run of many passes keeps a rule for every pass but
 * labels only the first, every k-th and the last, so the labels stay a row or two high instead of
 * a staircase over the figure.
 */
export function markersOf(marks: readonly { readonly x: number; readonly label: string; readonly kind: MarkKind }[]): Marker[] {
  const passes = marks.filter((m) => m.kind === 'pass');
  const every = Math.ceil(passes.length / LABELLED_PASSES);
  return marks.map((m) => {
    const i = passes.indexOf(m);
    const labelled = m.kind !== 'pass' || i === 0 || i === passes.length - 1 || i % every === 0;
    return { x: m.x, label: labelled ? m.label : '', emphasis: m.kind !== 'pass' };
  });
}
