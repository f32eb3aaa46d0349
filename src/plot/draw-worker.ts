// The drawing thread's own code (drawing-thread.ts starts it): it loads vega, vega-lite and resvg,
// draws one chart like a run's and throws it away, then draws each chart it is sent with
// renderChart, answering with the files written or the error.
import { parentPort } from 'node:worker_threads';
import { describeError } from '../errors.js';
import { lineChart } from './charts.js';
import { renderChart, renderSvg, svgToPng } from './render.js';
import type { DrawAnswer, DrawRequest } from './drawing-thread.js';

const port = parentPort;
if (!port) throw new Error('draw-worker.js is a worker thread: start it with DrawingThread.start()');

// In a new thread vega's layout code runs about 1.5x slower the first time (compiled lazily, not
// yet optimised): a run's three figures took 410-580 ms, 308-326 ms after this one chart (275-295
// after drawing those very figures once). The thread starts while the run checks its guest, and
// has time for it.
async function warmUp(): Promise<void> {
  const data = Array.from({ length: 40 }, (_, i) => ({ tS: i / 10, series: i % 2 ? 'a' : 'b', v: (i * 37) % 11 }));
  const markers = [{ x: 1, label: 'pass 2' }, { x: 3, label: 'STOP', emphasis: true }];
  const spec = lineChart({ title: 'warm-up', data, x: { field: 'tS', title: 'time', unit: 's' }, y: { field: 'v', title: 'v', unit: 'MiB' }, series: { field: 'series', title: '' }, markers });
  await svgToPng(await renderSvg(spec));
}
// A warm-up that fails costs nothing: the charts sent are drawn (and fail, if they do) as ever.
const warm = warmUp().catch(() => undefined);

port.on('message', (m: DrawRequest) => {
  warm
    .then(() => renderChart(m.spec, m.outBase))
    .then(
      (chart): void => port.postMessage({ id: m.id, chart } satisfies DrawAnswer),
      (err: unknown): void => port.postMessage({ id: m.id, error: describeError(err) } satisfies DrawAnswer),
    );
});
