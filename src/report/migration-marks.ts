// The moments of a migration worth marking on a figure over time: each pre-copy pass, the
// switchover (the source's STOP) and the resume on the destination (its RESUME), read from a run
// report alone. The run's own report and the homework's during-migration figures both draw them,
// so both read them, and turn them into chart markers, from here. Pure.
import { CHART_WIDTH_PX, type Marker } from '../plot/charts.js';
import type { RunReport } from '../results/run.js';

export type MarkKind = 'pass' | 'switchover' | 'resume';

export interface MigrationMark {
  /** Since the migrate command (QEMU's own event timestamps). */
  readonly tMs: number;
  readonly label: string;
  readonly kind: MarkKind;
}

/** Every pass, then the switchover and the resume of a run. */
export function migrationMarks(report: Pick<RunReport, 'passes' | 'events'>): MigrationMark[] {
  const marks: MigrationMark[] = report.passes.map((p) => ({ tMs: p.tMs, label: `pass ${p.pass}`, kind: 'pass' }));
  const stop = report.events.find((e) => e.side === 'source' && e.event === 'STOP');
  const resume = report.events.find((e) => e.side === 'destination' && e.event === 'RESUME');
  if (stop) marks.push({ tMs: stop.tMs, label: 'switchover (source stops)', kind: 'switchover' });
  if (resume) marks.push({ tMs: resume.tMs, label: 'resumed on destination', kind: 'resume' });
  return marks;
}

/** Rules closer than this on a figure look like one: their passes share a label. */
const ONE_RULE_PX = 4;
/** Groups of passes with a label of their own on a figure; past that, every k-th group keeps its label. */
const LABELLED_GROUPS = 8;

/**
 * Chart markers for marks placed on a time axis (`x` in the chart's unit) that spans `xs` (the
 * figure's data). Every pass keeps its rule. Passes whose rules fall on one spot (the last passes,
 * at the switchover) share one label at the first of them ("passes 4,5"); a run of many passes
 * labels only the first, every k-th and the last group, so the labels stay a row or two high
 * instead of a staircase over the figure. The switchover and the resume stand out (solid red).
 */
export function markersOf(marks: readonly { readonly x: number; readonly label: string; readonly kind: MarkKind }[], xs: readonly number[] = []): Marker[] {
  const all = [...xs, ...marks.map((m) => m.x)];
  const near = all.length > 0 ? ((Math.max(...all) - Math.min(...all)) * ONE_RULE_PX) / CHART_WIDTH_PX : 0;
  const passes = marks.filter((m) => m.kind === 'pass').sort((a, b) => a.x - b.x);
  const groups: (typeof passes)[] = [];
  for (const p of passes) {
    const g = groups.at(-1);
    if (g && p.x - g.at(-1)!.x < near) g.push(p);
    else groups.push([p]);
  }
  const every = Math.ceil(groups.length / LABELLED_GROUPS);
  const numbers = (g: typeof passes) => g.map((m) => m.label.replace(/^pass /, ''));
  const groupLabel = (g: typeof passes) => (g.length === 1 ? g[0]!.label : `passes ${g.length > 3 ? `${numbers(g)[0]}–${numbers(g).at(-1)}` : numbers(g).join(',')}`);
  const passMarkers = groups.flatMap((g, gi) => {
    const labelled = gi === 0 || gi === groups.length - 1 || gi % every === 0;
    return g.map((m, i) => ({ x: m.x, label: labelled && i === 0 ? groupLabel(g) : '' }));
  });
  return [...passMarkers, ...marks.filter((m) => m.kind !== 'pass').map((m) => ({ x: m.x, label: m.label, emphasis: true }))];
}
