// `miglab plot DIR` draws a folder's own report again, from results recorded by real runs (a quick
// homework, a batch): never a different kind of report over it, and anything else is refused in
// one line before a file is written.

// Rendering a report's figures takes a few seconds, more on a machine busy with other work.
const RENDER_MS = 30000;
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diagnoseBatch } from '../../../src/batch/diagnose.js';
import type { BatchRecord } from '../../../src/batch/record.js';
import { MiglabError } from '../../../src/errors.js';
import { folderKind } from '../../../src/plot/folder.js';
import { replot } from '../../../src/replot.js';
import { fakeReport } from '../sweep/fake-report.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'miglab-replot-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const fixture = (rel: string) => new URL(rel, import.meta.url).pathname;

function refusal(dir: string): string {
  try {
    folderKind(dir);
  } catch (err) {
    expect(err).toBeInstanceOf(MiglabError);
    expect((err as MiglabError).code).toBe('BAD_INPUT');
    return (err as Error).message;
  }
  throw new Error(`${dir} was not refused`);
}

describe('folderKind', () => {
  it('refuses, in one line that says what to give, anything that is not one kind of results folder', () => {
    writeFileSync(join(root, 'file.txt'), 'x');
    mkdirSync(join(root, 'both'));
    writeFileSync(join(root, 'both', 'run.json'), '{}');
    writeFileSync(join(root, 'both', 'batch.json'), '{}');
    const messages = [refusal(join(root, 'absent')), refusal(join(root, 'file.txt')), refusal(root), refusal(join(root, 'both'))];
    for (const m of messages) expect(m).not.toContain('\n');
    expect(messages[2]).toBe(`${root} is not a miglab results folder: it holds no run.json, sweep.json, homework.json or batch.json; give the folder of one run, sweep, homework or batch (e.g. results/sweep-NAME/)`);
    expect(messages[3]).toMatch(/holds run\.json and batch\.json: it is not clear which report to draw/);
    // Nothing was written into the refused folder.
    expect(readdirSync(root).sort()).toEqual(['both', 'file.txt']);
  });

  it('names a COLO run or series for what it is', () => {
    mkdirSync(join(root, 'colo'));
    writeFileSync(join(root, 'colo', 'colo.json'), '{}');
    mkdirSync(join(root, 'series'));
    writeFileSync(join(root, 'series', 'series.json'), '{}');
    expect(refusal(join(root, 'colo'))).toBe(`${join(root, 'colo')} is a COLO run (colo.json): its report.md was written with it; plot and compare take the folder of a migration run, sweep, homework or batch`);
    expect(refusal(join(root, 'series'))).toMatch(/is a COLO series \(series\.json\)/);
  });
});

describe('replot', () => {
  it('draws a homework folder again as the homework report, the same report each time', async () => {
    const dir = join(root, 'homework');
    mkdirSync(dir);
    copyFileSync(fixture('../../fixtures/results/homework.json'), join(dir, 'homework.json'));
    // The homework's own migration run sits below it: it must not turn the folder into a run summary.
    mkdirSync(join(dir, 'migration'));
    const out = await replot(dir);
    expect(out.kind).toBe('homework');
    const md = readFileSync(out.markdownPath, 'utf8');
    expect(md).toMatch(/^# Live migration homework/);
    expect(md).toContain('## 1. Performance with and without KVM (perf)');
    expect(md.length).toBeGreaterThan(8000);
    expect(readdirSync(join(dir, 'plots')).filter((f) => f.endsWith('.png')).sort()).toEqual(['accel.png', 'cpu-during-migration.png', 'disk.png', 'during-migration.png', 'nic-throughput.png']);
    // The KVM bar's absence is explained on the figure itself.
    expect(readFileSync(join(dir, 'plots', 'accel.svg'), 'utf8')).toContain('KVM is not usable on this machine');
    const again = await replot(dir);
    expect(readFileSync(again.markdownPath, 'utf8')).toBe(md);
  }, RENDER_MS);

  it('draws a batch folder again as the batch report', async () => {
    const dir = join(root, 'batch');
    mkdirSync(dir);
    // batch.json is the record as recorded plus its diagnosis, as the batch writes it.
    const record = JSON.parse(readFileSync(fixture('../batch/fixtures/busy-host-n1.json'), 'utf8')) as BatchRecord;
    writeFileSync(join(dir, 'batch.json'), JSON.stringify({ ...record, diagnoses: diagnoseBatch(record) }));
    const out = await replot(dir);
    expect(out.kind).toBe('batch');
    const md = readFileSync(out.markdownPath, 'utf8');
    expect(md).toMatch(/^# Batch 20261202-075436-parallel-2uf0/);
    expect(md).toContain('## Why the batch stopped');
    expect(out.figures.map((f) => f.slice(dir.length + 1))).toEqual(['plots/cpu.png', 'plots/memory.png', 'plots/link.png']);
  }, RENDER_MS);

  it('draws a run folder as a run, and refuses a batch record of another schema', async () => {
    const run = join(root, 'run');
    mkdirSync(run);
    writeFileSync(join(run, 'run.json'), JSON.stringify(fakeReport({ scenario: { guest: { memoryMiB: 256 } }, downtimeMs: 20 })));
    const out = await replot(run);
    expect(out.kind).toBe('run');
    // The run's own report (report/run-report.ts), with the figures it drew.
    expect(readFileSync(out.markdownPath, 'utf8')).toMatch(/^# Run [^\n]+\n[\s\S]*## Downtime, three ways/);
    // The synthetic run has remaining RAM in its samples but no throughput: only what it has is drawn.
    expect(out.figures.map((f) => f.slice(run.length + 1))).toEqual(['plots/remaining-ram.png']);

    const old = join(root, 'old-batch');
    mkdirSync(old);
    writeFileSync(join(old, 'batch.json'), JSON.stringify({ schema: 'miglab.batch/0' }));
    await expect(replot(old)).rejects.toThrow(/schema miglab\.batch\/0 is not one this miglab reads \(it reads miglab\.batch\/1\)/);
    expect(readdirSync(old)).toEqual(['batch.json']);
  }, RENDER_MS);
});
