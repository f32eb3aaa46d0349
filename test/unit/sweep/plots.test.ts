// Figures and report from a folder of synthetic run.json files: what applies is drawn, the
// charts compile without warnings, and the files land in <dir>/plots/.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileChart } from '../../../src/plot/index.js';
import { planCharts, plotResults } from '../../../src/sweep/plots.js';
import { loadResults } from '../../../src/sweep/results.js';
import { runSweep } from '../../../src/sweep/run.js';
import { summarizePoints } from '../../../src/sweep/summary.js';
import { fakeReport, type FakeRun } from './fake-report.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'miglab-plots-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function writeRun(dir: string, run: FakeRun): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'run.json'), JSON.stringify(fakeReport(run)));
}

function allText(spec: unknown): string {
  return JSON.stringify(spec);
}

// The first figures of a process load vega and render under whatever else the machine runs.
const RENDER_MS = 30000;

describe('plotResults', () => {
  it('draws downtime vs memory (QEMU and client-seen) for a memory sweep, with the report', async () => {
    const r = await runSweep({
      spec: { name: 'm', repetitions: 2, grid: { memoryMiB: [128, 256, 512] } },
      resultsRoot: root,
      runner: async (scenario, _dir, _p, rep) => fakeReport({ scenario, downtimeMs: scenario.guest.memoryMiB / 8 + rep, clientDowntimeMs: scenario.guest.memoryMiB / 6 + rep }),
    });
    const out = await plotResults(r.dir);
    // Downtime, with total time and the bytes sent beside it.
    expect(out.charts.map((c) => c.name)).toEqual(['downtime-vs-memory', 'total-time-vs-memory', 'sent-vs-memory']);
    for (const f of ['plots/downtime-vs-memory.png', 'plots/downtime-vs-memory.svg', 'plots/sent-vs-memory.png', 'report.md', 'report.html', 'summary.csv']) expect(existsSync(join(r.dir, f))).toBe(true);
    // Sizes that double on a log2 axis with a tick at each size, and no empty stretch down to 0.
    const planned = planCharts(await loadResults(r.dir), out.summary);
    const x = JSON.stringify(planned[0]!.spec);
    expect(x).toContain('"type":"log","base":2');
    expect(x).toContain('"values":[128,256,512]');
    // The y axis reaches above the highest whisker (client 512/6 + 2 = 87.3 ms), so none is clipped.
    const yDomain = (planned[0]!.spec as unknown as { layer: { encoding: { y: { scale: { domain: number[] } } } }[] }).layer[0]!.encoding.y.scale.domain;
    expect(yDomain[0]).toBe(0);
    expect(yDomain[1]).toBeGreaterThan(512 / 6 + 2);
    const svg = readFileSync(join(r.dir, 'plots/downtime-vs-memory.svg'), 'utf8');
    expect(svg).toContain('downtime (QEMU)');
    expect(svg).toContain('downtime (client probe)');
    const md = readFileSync(out.report.markdownPath, 'utf8');
    expect(md).toMatch(/^# Sweep m/);
    expect(md).toContain('| mem256 | 256 | 2 | 2 | 34 ms | 0.71 ms | 44 ms |');
    expect(md).toContain('![Downtime vs guest memory](plots/downtime-vs-memory.png)');
  }, RENDER_MS);

  it('draws downtime vs dirty rate and marks rates where pre-copy did not converge', async () => {
    const dir = join(root, 'sweep-d');
    const rates = [0, 64, 128, 256];
    rates.forEach((rate, i) => {
      for (const rep of [1, 2]) {
        const notConverged = rate >= 256 || (rate === 128 && rep === 2);
        writeRun(join(dir, `dirty-rate${rate}`, `rep${rep}`), {
          scenario: { guest: { memoryMiB: 512 } },
          workload: { kind: 'dirty', wssMiB: 256, rateMiBps: rate, pattern: 'random' },
          verdict: notConverged ? 'did-not-converge' : 'completed',
          downtimeMs: 20 + 10 * i + rep,
        });
      }
    });
    const results = await loadResults(dir);
    expect(results.kind).toBe('runs');
    const summary = summarizePoints(results.entries);
    expect(summary.map((p) => [p.parameters.workload, p.converged])).toEqual([
      ['dirty-rate0', 2],
      ['dirty-rate64', 2],
      ['dirty-rate128', 1],
      ['dirty-rate256', 0],
    ]);
    const charts = planCharts(results, summary);
    expect(charts.map((c) => c.name)).toEqual(['downtime-vs-dirty-rate', 'total-time-vs-dirty-rate', 'sent-vs-dirty-rate']);
    const spec = charts[0]!.spec;
    expect(compileChart(spec).warnings).toEqual([]);
    expect(allText(spec)).toContain('did not converge');
    expect(allText(spec)).toContain('1/2 converged');
    // The rate where nothing converged has only its marker, and the axis still reaches it.
    for (const c of charts) {
      const domain = (c.spec as unknown as { layer: { encoding: { x: { scale: { domain: number[] } } } }[] }).layer[0]!.encoding.x.scale.domain;
      expect(domain[0]).toBeLessThan(0);
      expect(domain[1]).toBeGreaterThan(256);
    }
    const out = await plotResults(dir);
    expect(existsSync(out.charts[0]!.pngPath)).toBe(true);
  }, RENDER_MS);

  it('draws total time vs link bandwidth, unshaped included, from the sweep file', async () => {
    const r = await runSweep({
      spec: { name: 'l', repetitions: 1, grid: { linkBandwidthMbit: [100, 1000, null] } },
      resultsRoot: root,
      runner: async (scenario, _d, p) => fakeReport({ scenario, downtimeMs: 10, totalTimeMs: p.shaping?.bandwidthMbit ? 100000 / p.shaping.bandwidthMbit : 50 }),
    });
    const results = await loadResults(r.dir);
    expect(results.kind).toBe('sweep');
    const charts = planCharts(results, summarizePoints(results.entries));
    expect(charts.map((c) => c.name)).toEqual(['total-time-vs-link-bandwidth']);
    expect(compileChart(charts[0]!.spec).warnings).toEqual([]);
    const data = (charts[0]!.spec as unknown as { data: { values: { link: string; mean: number }[] } }).data.values;
    expect(data.map((d) => [d.link, d.mean])).toEqual([
      ['100 Mbit/s', 1000],
      ['1000 Mbit/s', 100],
      ['unshaped', 50],
    ]);
  });

  it('compares capabilities', async () => {
    const r = await runSweep({
      spec: { name: 'c', repetitions: 1, grid: { capabilities: [[], ['xbzrle'], ['multifd']] } },
      resultsRoot: root,
      runner: async (scenario) => fakeReport({ scenario, downtimeMs: 30 }),
    });
    const out = await plotResults(r.dir);
    expect(out.charts.map((c) => c.name)).toEqual(['downtime-by-capabilities', 'total-time-by-capabilities']);
  });

  it("refuses one run's folder: a run has a report of its own", async () => {
    const dir = join(root, 'one-run');
    writeRun(dir, { scenario: { guest: { memoryMiB: 256 } }, downtimeMs: 40, totalTimeMs: 900 });
    await expect(plotResults(dir)).rejects.toThrow(/one-run is one run's folder, not a sweep; draw its own report with: miglab plot RUN_DIR/);
    expect(existsSync(join(dir, 'plots'))).toBe(false);
  });

  it('says so when there is nothing to plot', async () => {
    await expect(plotResults(root)).rejects.toThrow(/no complete run/);
    await expect(plotResults(join(root, 'nope'))).rejects.toThrow(/no results at/);
  });
});
