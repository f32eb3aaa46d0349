// The homework report drawn from a recorded quick homework (test/fixtures/results/homework.json:
// TCG only, KVM unusable, five pre-copy passes of which the last two came at the switchover):
// every pass is marked, every missing figure is an empty CSV cell, a long reason stays out of
// the table, and what the report says about iperf3 is read from the figures.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { perfCsvRows, PERF_COLUMNS } from '../../../src/homework/perf-csv.js';
import { markersOf } from '../../../src/report/migration-marks.js';
import { renderHomeworkReport, shortReason, type HomeworkResults } from '../../../src/homework/report.js';
import { groupPerfIntervals, parsePerfStatCsv, type PerfSeries } from '../../../src/measure/perf.js';
import { csvText } from '../../../src/report/markdown.js';
import { readResult } from '../../../src/results/contract.js';
import { HOMEWORK_CONTRACT } from '../../../src/results/homework.js';

const fixture = (rel: string) => new URL(rel, import.meta.url).pathname;

let r: HomeworkResults;
let dir: string;
let md: string;
beforeAll(async () => {
  r = await readResult(HOMEWORK_CONTRACT, fixture('../../fixtures/results/homework.json'));
  dir = mkdtempSync(join(tmpdir(), 'miglab-homework-report-'));
  md = readFileSync((await renderHomeworkReport(dir, r)).markdownPath, 'utf8');
  // Rendering five figures takes seconds, more on a machine busy with other work.
}, 30000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The header cells of the first Markdown table after `heading` in the report. */
function headerAfter(heading: string): string[] {
  const line = md.slice(md.indexOf(heading)).split('\n').find((l) => l.startsWith('|'))!;
  return line.slice(2, -2).split(' | ');
}

describe('the during-migration figures', () => {
  it('mark every pass; passes that fall on one spot share a label', () => {
    const passes = r.during.report.passes.map((p) => p.pass);
    const xs = r.during.rows.map((x) => x.tS);
    const markers = markersOf(r.during.marks.map((m) => ({ ...m, x: m.tS })), xs);
    // One rule per pass, plus the switchover and the resume.
    expect(markers.filter((m) => m.emphasis !== true)).toHaveLength(passes.length);
    const labelled = markers.filter((m) => m.emphasis !== true && m.label !== '').flatMap((m) => m.label.replace(/^pass(es)? /, '').split(','));
    expect(labelled.map(Number)).toEqual(passes);
    // The last two passes are 4 ms apart, at the switchover: one label for both.
    expect(markers.map((m) => m.label)).toContain(`passes ${passes.at(-2)},${passes.at(-1)}`);
    expect(markers.filter((m) => m.emphasis).map((m) => m.label)).toEqual(['switchover (source stops)', 'resumed on destination']);
  });
});

describe('the report', () => {
  it('keeps the KVM reason short in the table and whole in the note below it', () => {
    const kvm = r.accel.find((a) => a.accel === 'kvm')!;
    const row = md.split('\n').find((l) => l.startsWith('| KVM |'))!;
    expect(row).toContain(`| not usable: ${shortReason(kvm.reason)} (see below) |`);
    expect(row).not.toContain('ENOENT');
    expect(md).toContain(`there is no KVM measurement: ${kvm.reason.replace(/\.$/, '')}.`);
    expect(shortReason('/dev/kvm exists but a guest booted with -accel kvm -cpu host printed no heartbeat within 20000 ms (it hangs)')).toBe('/dev/kvm exists but a guest booted with…');
  });

  it('has no empty header in its tables', () => {
    const headers = md.split('\n').filter((l, i, all) => l.startsWith('| ') && all[i + 1]?.startsWith('| ---'));
    expect(headers.length).toBeGreaterThan(5);
    for (const h of headers) for (const cell of h.slice(2, -2).split(' | ')) expect(cell.trim()).not.toBe('');
    expect(headerAfter('## Environment')).toEqual(['component', 'in this run']);
  });

  it('shows each disk figure to the 0.1 MiB/s the guest reports', () => {
    const rows = md.split('\n').filter((l) => /^\| (virtio|ide) \|/.test(l));
    expect(rows).toHaveLength(r.devices.length);
    for (const l of rows) for (const cell of l.split(' | ').slice(3)) expect(cell.replace(/ \|$/, '')).toMatch(/^[\d,]+\.\d$/);
  });

  it('says where the lowest iperf3 interval fell, computed from the figures, and no cause it did not measure', () => {
    const line = md.split('\n').find((l) => l.startsWith("- iperf3 through the guest's NIC"))!;
    const low = r.during.rows.find((x) => x.series === 'iperf' && x.tS > 0 && x.throughputMbps === r.during.iperf.minDuringMbps)!;
    const stop = r.during.marks.find((m) => m.kind === 'switchover')!.tS;
    expect(line).toContain(`${(stop - low.tS).toFixed(1)} s before the switchover, during pre-copy`);
    expect(line).toContain(`${Math.round((100 * r.during.iperf.minDuringMbps!) / r.during.iperf.meanBeforeMbps!)}% of the rate before`);
    expect(line).not.toMatch(/competes|stalls the TCP stream/);
  });

  it('writes an empty cell, as every CSV, where accel.csv has no figure', () => {
    const csv = readFileSync(join(dir, 'accel.csv'), 'utf8');
    expect(csv).not.toContain('–');
    const kvm = csv.split('\n').find((l) => l.startsWith('KVM,'))!;
    expect(kvm).toMatch(/^KVM,not usable,,,,,,,,/);
    // The whole reason, in its own column.
    expect(kvm).toContain('ENOENT');
  });
});

describe('perf-src.csv', () => {
  it("is perf's interval output in clean columns: numbers unpadded, not supported as a status with an empty value", () => {
    const text = readFileSync(fixture('../../fixtures/measure/perf-interval-yes.csv'), 'utf8');
    const rows = parsePerfStatCsv(text);
    const series = { intervals: groupPerfIntervals(rows) } as unknown as PerfSeries;
    const csv = csvText(perfCsvRows(series), PERF_COLUMNS.map((c) => c.key)).trim().split('\n');
    expect(csv[0]).toBe('intervalEndS,event,value,unit,status,runtimeNs,runPct,metricValue,metricUnit');
    expect(csv).toHaveLength(rows.length + 1);
    for (const l of csv) expect(l).not.toMatch(/^\s|,\s|\s,|<not/);
    expect(csv[1]).toMatch(/^0\.25,task-clock,212\.59,msec,counted,/);
    expect(csv).toContain('0.25,cycles,,,not supported,0,100,,');
  });
});
