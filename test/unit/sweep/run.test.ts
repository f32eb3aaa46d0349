// The sweep runner without QEMU: a fake runner stands in for the migration, so resuming,
// recording failures and the summary can be checked on real files in a temp folder.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Scenario } from '../../../src/migrate/scenario.js';
import { runSweep, type SweepRunner } from '../../../src/sweep/run.js';
import type { SweepSpecInput } from '../../../src/sweep/spec.js';
import { fakeReport } from './fake-report.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'miglab-sweep-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const SPEC: SweepSpecInput = { name: 't', repetitions: 2, base: { guest: { accel: 'tcg' } }, grid: { memoryMiB: [128, 256] } };

/** Downtime = memoryMiB / 10 + 10 * rep: mem128 -> 22.8, 32.8; mem256 -> 35.6, 45.6. */
function fakeRunner(calls: string[], opts: { fail?: string; notConverged?: string } = {}): SweepRunner {
  return async (scenario: Scenario, dir: string, point, rep) => {
    const id = `${point.name}/rep${rep}`;
    calls.push(id);
    if (id === opts.fail) throw new Error('the lab fell over');
    expect(existsSync(dir)).toBe(true);
    return fakeReport({
      scenario,
      verdict: id === opts.notConverged ? 'did-not-converge' : 'completed',
      downtimeMs: scenario.guest.memoryMiB / 10 + 10 * rep,
      totalTimeMs: 1000 * rep,
    });
  };
}

function csv(file: string): Record<string, string>[] {
  const [head, ...lines] = readFileSync(file, 'utf8').trim().split('\n');
  const keys = head!.split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [keys[i], v])));
}

describe('runSweep with a fake runner', () => {
  it('skips complete runs, redoes incomplete ones, and a rerun skips everything', async () => {
    const dir = join(root, 'sweep-t');
    // One complete repetition and one cut short while writing run.json.
    mkdirSync(join(dir, 'mem128', 'rep1'), { recursive: true });
    writeFileSync(join(dir, 'mem128', 'rep1', 'run.json'), JSON.stringify(fakeReport({ scenario: { guest: { memoryMiB: 128, accel: 'tcg' } }, downtimeMs: 22.8 })));
    mkdirSync(join(dir, 'mem128', 'rep2'), { recursive: true });
    writeFileSync(join(dir, 'mem128', 'rep2', 'run.json'), '{"schema":"miglab.run/1","ok":');
    writeFileSync(join(dir, 'mem128', 'rep2', 'src.serial.log'), 'stale');

    const calls: string[] = [];
    const first = await runSweep({ spec: SPEC, resultsRoot: root, runner: fakeRunner(calls) });
    expect(first.dir).toBe(dir);
    expect(calls).toEqual(['mem128/rep2', 'mem256/rep1', 'mem256/rep2']);
    expect(first).toMatchObject({ ran: 3, skipped: 1, errors: 0 });
    expect(existsSync(join(dir, 'mem128', 'rep2', 'src.serial.log'))).toBe(false);
    for (const d of ['mem128/rep2', 'mem256/rep1', 'mem256/rep2']) expect(JSON.parse(readFileSync(join(dir, d, 'run.json'), 'utf8')).schema).toBe('miglab.run/2');

    const sweepJson = JSON.parse(readFileSync(first.files.sweepJson, 'utf8'));
    expect(sweepJson).toMatchObject({ schema: 'miglab.sweep/1', name: 't', counts: { total: 4, ran: 3, skipped: 1, errors: 0, pending: 0 } });
    expect(sweepJson.points.map((p: { name: string }) => p.name)).toEqual(['mem128', 'mem256']);
    expect(sweepJson.runs[0]).toMatchObject({ point: 'mem128', rep: 1, dir: 'mem128/rep1', outcome: 'skipped', verdict: 'completed', downtimeMs: 22.8 });

    const again: string[] = [];
    const second = await runSweep({ spec: SPEC, resultsRoot: root, runner: fakeRunner(again) });
    expect(again).toEqual([]);
    expect(second).toMatchObject({ ran: 0, skipped: 4 });

    // More repetitions add runs and keep the old ones.
    const more: string[] = [];
    await runSweep({ spec: SPEC, resultsRoot: root, repetitions: 3, runner: fakeRunner(more) });
    expect(more).toEqual(['mem128/rep3', 'mem256/rep3']);
  });

  it('writes summary.csv: one row per point, varying parameters, statistics per metric', async () => {
    const r = await runSweep({ spec: SPEC, resultsRoot: root, runner: fakeRunner([]) });
    const rows = csv(r.files.summaryCsv);
    expect(rows).toHaveLength(2);
    const header = readFileSync(r.files.summaryCsv, 'utf8').split('\n')[0]!.split(',');
    expect(header.slice(0, 5)).toEqual(['point', 'memoryMiB', 'runs', 'converged', 'failures']);
    for (const m of ['downtimeMs', 'clientDowntimeMs', 'totalTimeMs', 'setupTimeMs', 'transferredMiB', 'averageThroughputMiBps', 'dirtySyncCount']) {
      for (const f of ['count', 'mean', 'median', 'stdev', 'min', 'max']) expect(header).toContain(`${m}_${f}`);
    }
    // mem128: downtimes 22.8 and 32.8 -> mean 27.8, stdev sqrt(50) = 7.071, written to 0.1 ms.
    expect(rows[0]).toMatchObject({ point: 'mem128', memoryMiB: '128', runs: '2', converged: '2', failures: '0' });
    expect(rows[0]).toMatchObject({ downtimeMs_count: '2', downtimeMs_mean: '27.8', downtimeMs_median: '27.8', downtimeMs_stdev: '7.1', downtimeMs_min: '22.8', downtimeMs_max: '32.8' });
    expect(rows[1]).toMatchObject({ point: 'mem256', downtimeMs_mean: '40.6', totalTimeMs_mean: '1500', transferredMiB_mean: '120' });
    // No client probe in these runs: the cells are empty, not zero.
    expect(rows[0]).toMatchObject({ clientDowntimeMs_count: '0', clientDowntimeMs_mean: '', clientDowntimeMs_stdev: '' });
  });

  it('records failed and non-converged runs and carries on; a rerun retries only what left no report', async () => {
    const calls: string[] = [];
    const r = await runSweep({ spec: SPEC, resultsRoot: root, runner: fakeRunner(calls, { fail: 'mem128/rep2', notConverged: 'mem256/rep1' }) });
    expect(calls).toEqual(['mem128/rep1', 'mem128/rep2', 'mem256/rep1', 'mem256/rep2']);
    expect(r).toMatchObject({ ran: 3, errors: 1 });
    expect(r.runs[1]).toMatchObject({ outcome: 'error', error: 'the lab fell over' });
    expect(r.runs[2]).toMatchObject({ outcome: 'ran', verdict: 'did-not-converge', ok: false });
    const rows = csv(r.files.summaryCsv);
    expect(rows[0]).toMatchObject({ runs: '2', converged: '1', failures: '1', downtimeMs_count: '1' });
    expect(rows[1]).toMatchObject({ runs: '2', converged: '1', failures: '0', downtimeMs_mean: '45.6' });

    const retry: string[] = [];
    const second = await runSweep({ spec: SPEC, resultsRoot: root, runner: fakeRunner(retry) });
    expect(retry).toEqual(['mem128/rep2']);
    expect(second).toMatchObject({ ran: 1, skipped: 3, errors: 0 });
  });

  it('validates every point before running any', async () => {
    const calls: string[] = [];
    await expect(runSweep({ spec: { name: 't', grid: { memoryMiB: [128, 8] } }, resultsRoot: root, runner: fakeRunner(calls) })).rejects.toThrow(/point mem8: .*memoryMiB/);
    expect(calls).toEqual([]);
    expect(existsSync(join(root, 'sweep-t'))).toBe(false);
  });

  it('refuses to mix results of a different spec into a sweep folder', async () => {
    await runSweep({ spec: SPEC, resultsRoot: root, runner: fakeRunner([]) });
    await expect(runSweep({ spec: { ...SPEC, base: { guest: { accel: 'kvm' } } }, resultsRoot: root, runner: fakeRunner([]) })).rejects.toThrow(/different spec/);
  });

  it('stops at an interrupt instead of recording it as a failed run', async () => {
    const ac = new AbortController();
    const runner: SweepRunner = async () => {
      ac.abort(new Error('Ctrl-C'));
      throw new Error('interrupted');
    };
    await expect(runSweep({ spec: SPEC, resultsRoot: root, runner, signal: ac.signal })).rejects.toThrow('interrupted');
  });

  it('reads the spec from a YAML file', async () => {
    const file = join(root, 's.yaml');
    writeFileSync(file, 'name: y\nrepetitions: 1\ngrid:\n  memoryMiB: [128]\n');
    const r = await runSweep({ specPath: file, resultsRoot: root, runner: fakeRunner([]) });
    expect(r.runs.map((x) => x.dir)).toEqual(['base/rep1']);
  });
});
