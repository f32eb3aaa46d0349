// The drawing thread as `miglab migrate` runs it: the bundle's draw-worker.js (built by `make
// build`, which the integration tests follow), started from here. It draws what it is sent,
// says why it could not, and leaves nothing running once closed. No lab needed.
import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../../src/api.js';
import { lineChart } from '../../src/plot/charts.js';
import { DrawingThread } from '../../src/plot/drawing-thread.js';

const BUNDLED_WORKER = join(REPO_ROOT, 'dist', 'bundle', 'draw-worker.js');

describe('the drawing thread', () => {
  it('draws the charts it is sent side by side, names what it cannot draw, and is gone once closed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'miglab-drawing-thread-'));
    const thread = DrawingThread.start(BUNDLED_WORKER);
    expect(thread?.alive).toBe(true);
    try {
      const data = [0, 1, 2, 3].map((t) => ({ tS: t, mib: 100 - 30 * t }));
      const spec = lineChart({ title: 'RAM still to send', data, x: { field: 'tS', title: 'time', unit: 's' }, y: { field: 'mib', title: 'Remaining RAM', unit: 'MiB' }, markers: [{ x: 2, label: 'switchover (source stops)', emphasis: true }] });
      const [a, b] = await Promise.all([thread!.draw(spec, join(dir, 'plots', 'a')), thread!.draw(spec, join(dir, 'plots', 'b'))]);
      expect(a.pngPath).toBe(join(dir, 'plots', 'a.png'));
      expect(readFileSync(a.pngPath).subarray(1, 4).toString()).toBe('PNG');
      expect(readFileSync(b.svgPath, 'utf8')).toContain('switchover (source stops)');
      expect(a.widthPx).toBeGreaterThan(100);

      // vega-lite's own complaint comes back as the error, and the thread goes on drawing.
      await expect(thread!.draw({ mark: 'nonsense' } as never, join(dir, 'bad'))).rejects.toThrow(/vega-lite could not compile chart/);
      await expect(thread!.draw(spec, join(dir, 'c'))).resolves.toMatchObject({ pngPath: join(dir, 'c.png') });
    } finally {
      await thread!.close();
      rmSync(dir, { recursive: true, force: true });
    }
    expect(thread!.alive).toBe(false);
    await expect(thread!.draw({} as never, join(dir, 'd'))).rejects.toThrow(/drawing thread ended/);
    expect(process.getActiveResourcesInfo()).not.toContain('Worker');
  }, 60_000);
});
