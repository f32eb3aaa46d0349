// `miglab sweep` end to end on a tiny grid: on the suite's shared lab, two real migrations
// (128 and 256 MiB, idle), summary.csv with their downtimes; then the same sweep again, which must
// resume: both runs are complete, so nothing is started (no lab, no QEMU) and it returns at once.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { replot } from '../../src/replot.js';
import { plotResults } from '../../src/sweep/plots.js';
import { runSweep } from '../../src/sweep/run.js';
import type { SweepSpecInput } from '../../src/sweep/spec.js';
import { sharedLabChoice, sharedLabLeftovers } from '../support/shared-lab.js';

const results = mkdtempSync(join(tmpdir(), 'miglab-it-sweep-'));
afterAll(() => rmSync(results, { recursive: true, force: true }));

// The suite's shared lab: each run attaches to it by prefix and takes a guest slot, as users' runs do.
const LAB = sharedLabChoice();
const SPEC: SweepSpecInput = {
  name: 'tiny',
  repetitions: 1,
  base: { guest: { accel: 'tcg', diskSizeMiB: 64 } },
  grid: { memoryMiB: [128, 256] },
  timeoutMs: 30000,
};

describe('a tiny real sweep', () => {
  it('runs every point on one lab, writes the summary, and resumes without starting anything', async () => {
    const first = await runSweep({ spec: SPEC, resultsRoot: results, lab: LAB });
    expect(first).toMatchObject({ ran: 2, skipped: 0, errors: 0 });
    // Say why a run failed before comparing verdicts: a bare 'failed' explains nothing.
    for (const r of first.runs) if (r.verdict !== 'completed') console.log(`${r.dir}: ${JSON.stringify(r)}`);
    expect(first.runs.map((r) => [r.dir, r.verdict])).toEqual([
      ['mem128/rep1', 'completed'],
      ['mem256/rep1', 'completed'],
    ]);

    const [head, ...rows] = readFileSync(first.files.summaryCsv, 'utf8').trim().split('\n');
    const cols = head!.split(',');
    expect(rows).toHaveLength(2);
    const downtime = rows.map((r) => Number(r.split(',')[cols.indexOf('downtimeMs_mean')]));
    for (const d of downtime) expect(d).toBeGreaterThanOrEqual(0);
    expect(rows.map((r) => r.split(',')[cols.indexOf('memoryMiB')])).toEqual(['128', '256']);
    expect(rows.map((r) => r.split(',')[cols.indexOf('converged')])).toEqual(['1', '1']);
    // The sweep left the lab as it found it.
    expect(await sharedLabLeftovers()).toEqual([]);

    const started = Date.now();
    const second = await runSweep({ spec: SPEC, resultsRoot: results, lab: LAB });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(second).toMatchObject({ ran: 0, skipped: 2, errors: 0 });
    expect(second.summary.map((p) => p.metrics.downtimeMs.mean)).toEqual(downtime);

    const plots = await plotResults(first.dir);
    expect(plots.charts.map((c) => c.name)).toEqual(['downtime-vs-memory', 'total-time-vs-memory', 'sent-vs-memory']);
    // `miglab plot` on the sweep folder draws the same sweep report again.
    const again = await replot(first.dir);
    expect(again.kind).toBe('sweep');
    expect(readFileSync(again.markdownPath, 'utf8')).toMatch(/^# Sweep /);
  }, 120000);
});
