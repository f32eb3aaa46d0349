// `miglab compare` on real saved results (test/fixtures/results): two runs, two sweeps. What a
// user would notice: the deltas are the differences of the figures the runs recorded, the files
// and figures are written, and mixed or unknown folders are refused before anything is written.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtureRunDir, RESULT_FIXTURES } from '../../support/result-fixtures.js';
import { compareResults, compareRows, formatFigure, loadSets } from '../../../src/compare/compare.js';
import { SUMMARY_METRICS } from '../../../src/sweep/summary.js';

const FIX = RESULT_FIXTURES;
const tmp = mkdtempSync(join(tmpdir(), 'miglab-compare-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A run folder holding one fixture run.json. */
const runDir = (name: string) => fixtureRunDir(tmp, name);

describe('compare runs', () => {
  it('sets two runs side by side with deltas against the first, as Markdown, CSV and a figure', async () => {
    const a = runDir('run-idle.json');
    const b = runDir('run-dirty.json');
    const out = join(tmp, 'out');
    const r = await compareResults([a, b], out);
    expect(r.sets.map((s) => [s.label, s.kind, s.outcome])).toEqual([
      ['A', 'run', 'completed'],
      ['B', 'run', 'completed'],
    ]);
    // QEMU's downtime was 17 ms idle and 25 ms with 32 MiB dirtied (the runs' own figures).
    const down = r.rows.find((x) => x.set === 'B' && x.figure === 'downtimeMs')!;
    expect(down).toMatchObject({ value: 25, delta: 8, unit: 'ms' });
    expect(down.deltaPct).toBeCloseTo(47.06, 1);
    const a0 = r.rows.find((x) => x.set === 'A' && x.figure === 'totalTimeMs')!;
    expect(a0.delta).toBeUndefined();

    const md = readFileSync(r.markdownPath, 'utf8');
    expect(md).toContain("| QEMU's downtime | 17 ms | 25 ms | +8 ms (+47.1 %) |");
    // The three downtimes side by side: QEMU's, STOP->RESUME (its event stamps), the client's.
    expect(md).toContain("| Downtime from the source's STOP to the destination's RESUME event (QEMU's timestamps) | 41.8 ms | 46.6 ms | +4.7 ms (+11.3 %) |");
    expect(md).toContain('![each figure against A');
    const csv = readFileSync(r.csvPath, 'utf8').split('\n');
    expect(csv[0]).toBe('set,folder,point,figure,unit,value,delta,deltaPct');
    expect(csv).toContain(`B,${b},,transferredMiB,MiB,110.9,28.2,34.1`);
    // No float noise anywhere in the table.
    expect(csv.join('\n')).not.toMatch(/\d\.\d{5,}/);
    expect(r.pngPaths).toHaveLength(1);
    expect(statSync(r.pngPaths[0]!).size).toBeGreaterThan(5000);
    // results/compare-ID/, as README and results/README.md say.
    expect(r.dir).toMatch(new RegExp(`^${out}/compare-\\d{8}-\\d{6}-runs-`));
  });
});

describe('compare sweeps', () => {
  it('compares medians point by point, with a figure per headline figure', async () => {
    const r = await compareResults([join(FIX, 'sweep-cmp-a'), join(FIX, 'sweep-cmp-b')], join(tmp, 'out-sweeps'));
    expect(r.sets.map((s) => [s.name, s.outcome])).toEqual([
      ['cmp-a', '4/4 completed'],
      ['cmp-b', '4/4 completed'],
    ]);
    expect([...r.sets[0]!.points.keys()]).toEqual(['mem128', 'mem256']);
    for (const point of ['mem128', 'mem256']) {
      const a = r.rows.find((x) => x.point === point && x.set === 'A' && x.figure === 'totalTimeMs')!;
      const b = r.rows.find((x) => x.point === point && x.set === 'B' && x.figure === 'totalTimeMs')!;
      expect(b.delta).toBeCloseTo(b.value! - a.value!, 6);
    }
    expect(r.pngPaths.map((p) => p.split('/').pop())).toEqual(['downtimeMs.png', 'totalTimeMs.png', 'transferredMiB.png']);
    expect(readFileSync(r.markdownPath, 'utf8')).toContain('## Point mem256');
  });
});

describe('compare refuses', () => {
  const before = () => (existsSync(join(tmp, 'refused')) ? readdirSync(join(tmp, 'refused')).length : 0);

  it('a run with a sweep, naming both', async () => {
    await expect(loadSets([runDir('run-idle.json'), join(FIX, 'sweep-cmp-a')])).rejects.toThrow(
      /cannot compare a run with a sweep: A \(.*run-idle\) is a run folder, B \(.*sweep-cmp-a\) is a sweep folder; give only run folders or only sweep folders/,
    );
  });

  it('a folder that is neither, a missing one, and fewer than two, writing nothing', async () => {
    // Told apart by their marker files as `miglab plot` tells them (plot/folder.ts).
    const neither = join(tmp, 'neither');
    mkdirSync(neither, { recursive: true });
    await expect(compareResults([neither, runDir('run-idle.json')], join(tmp, 'refused'))).rejects.toThrow(/is not a miglab results folder: it holds no run\.json, sweep\.json, homework\.json or batch\.json/);
    await expect(compareResults([join(tmp, 'nope'), runDir('run-idle.json')], join(tmp, 'refused'))).rejects.toThrow(/no results folder at .*nope/);
    await expect(compareResults([runDir('run-idle.json')], join(tmp, 'refused'))).rejects.toThrow(/at least two folders \(got 1\)/);
    expect(before()).toBe(0);
  });
});

describe('compare refuses the same folder twice', () => {
  it('however it is spelled, in one line, before anything is written', async () => {
    const a = runDir('run-idle.json');
    mkdirSync(join(tmp, 'links'), { recursive: true });
    const link = join(tmp, 'links', 'idle-link');
    if (!existsSync(link)) symlinkSync(a, link);
    for (const again of [a, `${a}/`, join(a, '..', 'run-idle'), link]) {
      const err = await loadSets([a, again]).catch((e: Error) => e);
      expect((err as Error).message).toBe(`A and B are the same folder (${a}): a folder compared with itself shows nothing; give each folder once`);
    }
    await expect(loadSets([a, runDir('run-dirty.json'), `${a}/.`])).rejects.toThrow(/^A and C are the same folder/);
  });

  it('a homework or batch folder, naming its kind', async () => {
    const hw = join(tmp, 'hw');
    mkdirSync(hw, { recursive: true });
    cpSync(join(FIX, 'homework.json'), join(hw, 'homework.json'));
    await expect(loadSets([runDir('run-idle.json'), hw])).rejects.toThrow(/hw is a homework folder: compare sets runs or sweeps side by side; give run folders/);
  });
});

describe('points a sweep lacks', () => {
  it('have no figure and no delta there, never 0', async () => {
    const [a, b] = await loadSets([join(FIX, 'sweep-cmp-a'), join(FIX, 'sweep-cmp-b')]);
    const points = new Map(b!.points);
    points.delete('mem256');
    const rows = compareRows([a!, { ...b!, points }]);
    const missing = rows.filter((x) => x.set === 'B' && x.point === 'mem256');
    // One row per figure, each empty.
    expect(missing).toHaveLength(SUMMARY_METRICS.length);
    for (const m of missing) expect([m.value, m.delta, m.deltaPct]).toEqual([undefined, undefined, undefined]);
  });
});

describe('figures with units', () => {
  it('prints each figure with its unit and sign', () => {
    expect(formatFigure('downtimeMs', 41.83)).toBe('41.8 ms');
    expect(formatFigure('transferredMiB', 28.19, true)).toBe('+28.2 MiB');
    expect(formatFigure('dirtySyncCount', 3)).toBe('3');
    expect(formatFigure('downtimeMs', undefined)).toBe('–');
  });
});
