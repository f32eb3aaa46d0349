// A run folder's own report, from run.json files real runs wrote (test/fixtures/results): what a
// reader of a run would notice: the three downtimes with their sources, the passes, the figures
// with the passes and the switchover marked, a run that did not converge told as such with what
// was measured, and `miglab plot` drawing the very same report again.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseResult } from '../../../src/results/contract.js';
import { RUN_CONTRACT, type RunReport } from '../../../src/results/run.js';
import { markersOf, migrationMarks } from '../../../src/report/migration-marks.js';
import { writeRunFiles } from '../../../src/report/run-files.js';
import { planRunFigures, renderRunReport } from '../../../src/report/run-report.js';
import { replot } from '../../../src/replot.js';
import { formatSummary } from '../../../src/report/summary.js';
import { fmtMs } from '../../../src/report/markdown.js';
import { fixtureRunDir, RESULT_FIXTURES } from '../../support/result-fixtures.js';

// Rendering a report's figures takes a second or two, more on a machine busy with other work.
const RENDER_MS = 30000;
const fixture = (name: string): RunReport => parseResult(RUN_CONTRACT, JSON.parse(readFileSync(join(RESULT_FIXTURES, name), 'utf8')), name);

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'miglab-run-report-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** The fixture `name` in a run folder of its own, and its report drawn there. */
async function rendered(name: string, figures: boolean) {
  const dir = fixtureRunDir(root, name);
  const r = fixture(name);
  const out = await renderRunReport(dir, r, { figures });
  return { dir, r, out, md: readFileSync(out.markdownPath, 'utf8') };
}

describe('the report of a completed run', () => {
  it('gives the three downtimes with their sources, the passes and two marked figures; plot draws the same report again', async () => {
    const { dir, r, out, md } = await rendered('run-dirty.json', true);
    expect(md).toMatch(/^# Run 20261202-075005-256m-dirty32m/);
    expect(md).toContain('**Verdict: completed**');
    // The run's own figures: QEMU 25 ms, STOP->RESUME 46.6 ms, the client's longest gap 221 ms.
    expect(md).toContain("| QEMU's downtime | 25 ms | QEMU's query-migrate (downtime) |");
    expect(md).toContain("| STOP→RESUME | 47 ms | the source's STOP event to the destination's RESUME event (QEMU's timestamps) |");
    expect(md).toMatch(/\| client probe's longest gap \| 221 ms \| UDP probe from the client host every 1\.0 ms/);
    expect(md).toContain(`| RAM transferred / guest RAM | ${(r.outputs.transferredBytes! / 2 ** 20).toFixed(1)} MiB / ${(r.outputs.totalBytes! / 2 ** 20).toFixed(1)} MiB |`);
    // One row per pass, then what was in force and the exact command lines.
    const passRows = md.split('## Pre-copy passes')[1]!.split('## Figures')[0]!.split('\n').filter((l) => /^\| \d+ \|/.test(l));
    expect(passRows).toHaveLength(r.passes.length);
    expect(md).toContain('| max-bandwidth |');
    expect(md).toContain(r.inputs.migrateCommand);
    expect(md).toContain('-incoming tcp:');

    expect(out.figures.map((f) => f.slice(dir.length + 1))).toEqual(['plots/remaining-ram.png', 'plots/throughput.png']);
    for (const f of ['remaining-ram', 'throughput']) {
      const svg = readFileSync(join(dir, 'plots', `${f}.svg`), 'utf8');
      expect(svg).toContain('switchover (source stops)');
      expect(svg).toContain('resumed on destination');
      expect(svg).toContain('pass 1');
    }
    expect(readFileSync(out.htmlPath, 'utf8')).toContain('<img src="plots/remaining-ram.png"');

    const again = await replot(dir);
    expect(again.kind).toBe('run');
    expect(again.figures).toEqual(out.figures);
    expect(readFileSync(again.markdownPath, 'utf8')).toBe(md);
  }, RENDER_MS);
});

describe('the report of a run that did not converge', () => {
  it('says how it ended and where, why there is no downtime, and what the last active sample had sent', async () => {
    const { dir, r, out, md } = await rendered('run-not-converged.json', false);
    expect(md).toContain('**Verdict: did not converge** (QEMU\'s migration status: cancelled)');
    expect(md).toContain('Failed in the conclude phase, code `NOT_CONVERGED`.');
    expect(md).toContain("| QEMU's downtime | – | none: the guest never stopped for a switchover |");
    expect(md).toContain(`| RAM transferred / guest RAM | ${(r.outputs.lastActive!.transferredBytes! / 2 ** 20).toFixed(1)} MiB / `);
    expect(md).toContain("the last active sample, at 20,063 ms (QEMU's record of a cancelled migration keeps none)");
    // The destination's own words when it gave up.
    expect(md).toContain('load of migration failed');
    // Figures left for `miglab plot`, and said so.
    expect(out.figures).toEqual([]);
    expect(existsSync(join(dir, 'plots'))).toBe(false);
    expect(md).toContain('`miglab plot` on this folder draws them');
    // Its throughput figure says the dirty rate was never measured instead of drawing none.
    expect(planRunFigures(r).map((c) => [c.name, c.title])).toEqual([
      ['remaining-ram', 'RAM still to send'],
      ['throughput', 'Migration throughput'],
    ]);
  });
});

describe('the report of a post-copy run on QEMU 10.0 that was cut off and recovered (a real run.json)', () => {
  it("gives a fourth downtime from the trace points, where it went, and post-copy's figures and recovery", async () => {
    const { r, md } = await rendered('run-postcopy.json', false);
    const t = r.outputs.downtimeTrace!;
    expect(md).toContain(`| trace points | ${fmtMs(t.totalMs)} |`);
    const where = md.split('### Where the downtime went')[1]!.split('## ')[0]!;
    // Every phase, in order, from the source stopping to the destination starting the vCPUs.
    for (const p of t.phases) expect(where).toContain(`\`${p.from}\` → \`${p.to}\``);
    expect(where).toMatch(/slowest to load \(.* ms in all, \d+ sections\): /);
    const pc = md.split('## Post-copy')[1]!.split('## Figures')[0]!;
    expect(pc).toContain(`faulted on ${r.outputs.postcopy!.requests} pages`);
    expect(pc).toContain(`waited for pages at once for ${fmtMs(r.outputs.postcopy!.blocktimeMs)} in all`);
    expect(pc).toContain('with postcopy-preempt');
    const rec = r.outputs.postcopy!.recoveries[0]!;
    expect(pc).toContain(`| ${rec.trigger} |`);
    expect(pc).toContain('resumed (postcopy-active)');
    const summary = formatSummary(r, '/r');
    expect(summary).toMatch(/^ {2}downtime trace {2}\d+(\.\d)? ms from the source's stop to the destination's start \(QEMU's trace points\): longest: /m);
    expect(summary).toMatch(new RegExp(`^  post-copy       started at ${r.outputs.postcopy!.startedAtMs} ms \\(preempt\\); ${r.outputs.postcopy!.requests} page requests .*; recovered from "${rec.trigger}"`, 'm'));
  });
});

describe('the report of a run whose QEMU never started', () => {
  it('renders, and says QEMU was not started where a command line would be', async () => {
    const dir = join(root, 'no-qemu');
    mkdirSync(dir);
    const r = fixture('run-not-converged.json');
    const empty = { argv: [], explained: [] };
    // As run.json records a run that failed before the boot (an unknown --cpu, a lab that would not come up).
    const saved = await writeRunFiles({ ...r, inputs: { ...r.inputs, commands: { source: empty, destination: empty } } }, dir);
    expect(saved.inputs.commands.source.argv).toEqual([]);
    const md = readFileSync(join(dir, 'report.md'), 'utf8');
    const qemus = md.split('### Source QEMU')[1]!;
    expect(qemus.match(/QEMU was not started/g)).toHaveLength(2);
    expect(qemus).not.toContain('```sh');
  });
});

describe('the report of a run started by hand', () => {
  it('says what miglab sent (the set-up) apart from the migration the person started, and times it from the migration', async () => {
    const dir = join(root, 'by-hand');
    mkdirSync(dir);
    const r = fixture('run-idle.json');
    const migrateCommand = `by hand at the source's monitor (a migration to ${r.inputs.migrationUri})`;
    const byHand: RunReport = { ...r, inputs: { ...r.inputs, startedBy: 'hand', migrateCommand, monitorCommands: r.inputs.monitorCommands.slice(0, -1) } };
    await writeRunFiles(byHand, dir);
    const md = readFileSync(join(dir, 'report.md'), 'utf8');
    expect(md).not.toContain('the last one started the migration');
    expect(md).toContain("Sent by miglab to the source's QMP monitor to set the migration up");
    expect(md).toContain(`Then the person started the migration to \`${r.inputs.migrationUri}\` at the source's monitor`);
    expect(md).toContain('times since the migration began');
    for (const c of planRunFigures(byHand)) {
      expect(JSON.stringify(c.spec)).toContain('"Time since the migration began (s)"');
      expect(JSON.stringify(c.spec)).not.toContain('migrate command');
    }
  });
});

describe('writeRunFiles', () => {
  it('lists the report and its figures in run.json and writes them, as migrate does', async () => {
    const dir = join(root, 'run');
    mkdirSync(dir);
    const saved = await writeRunFiles(fixture('run-dirty.json'), dir, { figures: true });
    expect(Object.keys(saved.files)).toEqual(['passes.csv', 'plots/', 'report.html', 'report.md', 'run.json', 'timeline.csv']);
    expect(saved.files['report.md']).toMatch(/the three downtimes/);
    expect(readdirSync(join(dir, 'plots')).sort()).toEqual(['remaining-ram.png', 'remaining-ram.svg', 'throughput.png', 'throughput.svg']);
    expect(readFileSync(join(dir, 'report.md'), 'utf8')).toContain('| `plots/` |');
  }, RENDER_MS);
});

describe('marks of a run with many passes', () => {
  it('keeps a rule for every pass but labels only a few, passes at the switchover sharing a label', () => {
    const passes = Array.from({ length: 40 }, (_, i) => ({ pass: i + 1, tMs: i * 100, source: 'event' as const }));
    const events = [
      { tMs: 3905, side: 'source' as const, event: 'STOP' },
      { tMs: 3950, side: 'destination' as const, event: 'RESUME' },
    ];
    const marks = migrationMarks({ passes, events });
    expect(marks.filter((m) => m.kind === 'pass')).toHaveLength(40);
    const markers = markersOf(marks.map((m) => ({ ...m, x: m.tMs })));
    expect(markers).toHaveLength(42);
    const labelled = markers.filter((m) => m.label !== '');
    expect(labelled.length).toBeLessThanOrEqual(8 + 1 + 2);
    // 4 s over 640 px: passes 100 ms apart (16 px) keep their own rule and label; the last one too.
    expect(labelled.map((m) => m.label)).toEqual(expect.arrayContaining(['pass 1', 'pass 40', 'switchover (source stops)', 'resumed on destination']));
    expect(markers.filter((m) => m.emphasis).map((m) => m.label)).toEqual(['switchover (source stops)', 'resumed on destination']);
  });
});

describe('figures drawn early (while the run cleaned up)', () => {
  // The early figures here are a promise of file names that were never drawn: kept, the report
  // lists them and draws nothing; not kept, it draws its own into plots/.
  const early = (r: RunReport) => Promise.resolve({ planned: planRunFigures(r), pngPaths: ['/early/remaining-ram.png', '/early/throughput.png'] });

  it('are kept when the final record plans the very same charts', async () => {
    const dir = fixtureRunDir(root, 'run-dirty.json');
    const r = fixture('run-dirty.json');
    const out = await renderRunReport(dir, r, { figures: true, ahead: { early: early(r) } });
    expect(out.figures).toEqual(['/early/remaining-ram.png', '/early/throughput.png']);
    expect(existsSync(join(dir, 'plots'))).toBe(false);
  }, RENDER_MS);

  it('are drawn again when the record changed since (another pass), or when drawing them failed', async () => {
    const r = fixture('run-dirty.json');
    const before = { ...r, passes: r.passes.slice(0, -1) };
    const changed = fixtureRunDir(root, 'run-dirty.json');
    // One of the charts drawn early is not among the final record's: it does not stay behind.
    mkdirSync(join(changed, 'plots'));
    for (const f of ['gone.png', 'gone.svg']) writeFileSync(join(changed, 'plots', f), 'drawn early');
    const drawnEarly = Promise.resolve({ planned: planRunFigures(before), pngPaths: [join(changed, 'plots', 'gone.png')] });
    const out = await renderRunReport(changed, r, { figures: true, ahead: { early: drawnEarly } });
    expect(out.figures.map((f) => f.slice(changed.length + 1))).toEqual(['plots/remaining-ram.png', 'plots/throughput.png']);
    expect(readdirSync(join(changed, 'plots')).sort()).toEqual(['remaining-ram.png', 'remaining-ram.svg', 'throughput.png', 'throughput.svg']);
    expect(readFileSync(join(changed, 'plots', 'remaining-ram.svg'), 'utf8')).toContain(`pass ${r.passes.at(-1)!.pass}`);

    const failedDir = join(root, 'failed');
    mkdirSync(failedDir);
    const failed = await renderRunReport(failedDir, r, { figures: true, ahead: { early: Promise.reject(new Error('the drawing thread ended')) } });
    expect(readdirSync(join(failedDir, 'plots')).sort()).toEqual(['remaining-ram.png', 'remaining-ram.svg', 'throughput.png', 'throughput.svg']);
    expect(failed.figures).toHaveLength(2);
  }, RENDER_MS);
});
