// A container batch's folder: batch.json (schema miglab.container-batch/1, the whole record),
// moves.csv, samples.csv, report.md, and plots/ (the guests' memory and pressure over time, and
// what became of the containers at each step). Everything but batch.json is drawn from it alone.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { VegaLiteSpec } from '../../plot/render.js';
import { batchReportMarkdown, type BatchPlot, memoryRows, movesCsv, plotsOf, pressureRows, samplesCsv, stepBars, stepMarkers } from './report.js';
import type { ContainerBatchRecord } from './types.js';

export const CONTAINER_BATCH_SCHEMA = 'miglab.container-batch/1';

const TIME_AXIS = { field: 'tS', title: 'time since the batch began', unit: 's' } as const;

/** The batch folder: the record, its CSV files, its report and its plots. */
export async function writeBatchRecord(dir: string, r: ContainerBatchRecord): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'batch.json'), `${JSON.stringify(r, null, 2)}\n`);
  await writeFile(join(dir, 'moves.csv'), movesCsv(r));
  await writeFile(join(dir, 'samples.csv'), samplesCsv(r));
  await writeFile(join(dir, 'report.md'), batchReportMarkdown(r));
  await drawBatchPlots(dir, r);
}

/** plots/: the ones report.md names (plotsOf), each from the record's rows. */
async function drawBatchPlots(dir: string, r: ContainerBatchRecord): Promise<void> {
  const wanted = plotsOf(r);
  if (wanted.length === 0) return;
  // The plotting stack loads in about 0.4 s: only when a batch has something to draw.
  const { barChart, lineChart, renderChart } = await import('../../plot/index.js');
  const markers = stepMarkers(r);
  const specs: Record<BatchPlot, () => VegaLiteSpec> = {
    memory: () =>
      lineChart({
        title: 'MemAvailable of each guest',
        data: memoryRows(r),
        x: TIME_AXIS,
        y: { field: 'memAvailableMiB', title: 'MemAvailable', unit: 'MiB' },
        series: { field: 'guest', title: 'guest' },
        markers,
      }),
    pressure: () =>
      lineChart({
        title: 'PSI memory, cpu and io some of each guest (avg10)',
        data: pressureRows(r),
        x: TIME_AXIS,
        y: { field: 'psiPct', title: 'share of time some task waited', unit: '%' },
        series: { field: 'series', title: 'guest and resource' },
        markers,
      }),
    'migrated-per-step': () =>
      barChart({
        title: 'What became of the containers at each step',
        data: stepBars(r),
        category: { field: 'step', title: 'step' },
        group: { field: 'what', title: '' },
        value: { field: 'containers', title: 'containers', unit: '' },
      }),
  };
  for (const p of wanted) await renderChart(specs[p.name](), join(dir, 'plots', p.name));
}
