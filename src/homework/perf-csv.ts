// perf-src.csv and perf-dst.csv of the homework's migration: what `perf stat -x, -I` counted on
// each QEMU, parsed into clean columns (perf pads its time column and writes `<not supported>` in
// place of a number). One row per event and interval; a figure perf did not give is an empty
// cell, as in every CSV miglab writes. perf's own output stays beside it as perf-*.log.
import type { PerfSeries } from '../measure/perf.js';
import type { Column } from '../report/markdown.js';

export interface PerfCsvRow {
  intervalEndS: number;
  event: string;
  value?: number;
  unit: string;
  status: 'counted' | 'not counted' | 'not supported';
  runtimeNs?: number;
  runPct?: number;
  metricValue?: number;
  metricUnit?: string;
}

/** CSV only (no report table shows it): each column is titled by its key. */
const PERF_COLUMN_ABOUT: Readonly<Record<keyof PerfCsvRow, string>> = {
  intervalEndS: 'End of the interval, since perf started',
  event: 'The perf event (task-clock, context-switches, cpu-migrations, page-faults, cycles, instructions)',
  value: 'The count in the interval, in `unit` (empty when not counted)',
  unit: "perf's unit of the value (msec for task-clock, else empty)",
  status: 'counted, not counted, or not supported (the host has no such counter: never 0)',
  runtimeNs: 'How long the counter ran in the interval, ns',
  runPct: 'Share of the interval the counter was really counting (below 100 when multiplexed)',
  metricValue: "perf's derived figure (e.g. CPUs utilized), when it printed one",
  metricUnit: 'Its unit',
};

export const PERF_COLUMNS = Object.entries(PERF_COLUMN_ABOUT).map(([key, about]) => ({ key, title: key, about })) as Column<PerfCsvRow>[];

/** The rows of perf-*.csv from a sampler's series. Pure. */
export function perfCsvRows(series: PerfSeries | undefined): PerfCsvRow[] {
  return (series?.intervals ?? []).flatMap((iv) =>
    iv.rows.map((r) => ({
      intervalEndS: iv.tMs / 1000,
      event: r.event,
      value: r.value ?? undefined,
      unit: r.unit,
      status: !r.supported ? 'not supported' : r.counted ? 'counted' : 'not counted',
      runtimeNs: r.runtimeNs,
      runPct: r.runPct,
      metricValue: r.metricValue,
      metricUnit: r.metricUnit,
    })),
  );
}
