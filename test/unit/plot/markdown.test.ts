import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fmtMbps, fmtMiB, fmtMs, fmtPct, fmtRatio, markdown, writeTableCsv, type Column } from '../../../src/report/markdown.js';

interface Row {
  scenario: string;
  downtimeMs: number | undefined;
  transferredBytes: number;
  note?: string;
}
const rows: Row[] = [
  { scenario: 'idle', downtimeMs: 12.34, transferredBytes: 256 * 1024 ** 2 },
  { scenario: 'busy | 300M/s', downtimeMs: undefined, transferredBytes: 1.5 * 1024 ** 3, note: 'did not\nconverge' },
];
const columns: Column<Row>[] = [
  { key: 'scenario', title: 'Scenario' },
  { key: 'downtimeMs', title: 'Downtime', format: (v) => fmtMs(v) },
  { key: 'transferredBytes', title: 'Transferred', format: (v) => fmtMiB(v) },
  { key: 'note', title: 'Note' },
];

describe('markdown builder', () => {
  it('builds a document of blocks separated by blank lines', () => {
    const text = markdown()
      .heading(1, 'Migration report')
      .paragraph('QEMU **7.2**, TCG.')
      .list(['one', 'two'])
      .list(['first'], { ordered: true })
      .image('Remaining RAM', 'plots/remaining ram.png')
      .code('migrate -d tcp:10.0.0.2:4444', 'text')
      .render();
    expect(text).toBe(
      [
        '# Migration report',
        'QEMU **7.2**, TCG.',
        '- one\n- two',
        '1. first',
        '![Remaining RAM](<plots/remaining ram.png>)',
        '```text\nmigrate -d tcp:10.0.0.2:4444\n```',
      ].join('\n\n') + '\n',
    );
  });

  it('makes tables with escaped cells, right-aligned numbers and a mark for missing values', () => {
    const text = markdown().table(columns, rows).render();
    expect(text.trimEnd().split('\n')).toEqual([
      '| Scenario | Downtime | Transferred | Note |',
      '| --- | ---: | ---: | --- |',
      '| idle | 12 ms | 256.0 MiB | – |',
      '| busy \\| 300M/s | – | 1,536.0 MiB | did not<br>converge |',
    ]);
  });

  it('grows the code fence past backticks in the text', () => {
    expect(markdown().code('a ``` b').render()).toBe('````\na ``` b\n````\n');
  });

  it('refuses absolute image paths, which would break when the folder moves', () => {
    expect(() => markdown().image('x', '/tmp/x.png')).toThrow(/relative/);
    expect(() => markdown().image('x', 'file:///tmp/x.png')).toThrow(/relative/);
  });
});

describe('number formatting', () => {
  it('formats with units and sensible precision', () => {
    expect([fmtMs(0.421), fmtMs(7.46), fmtMs(123.4), fmtMs(12345)]).toEqual(['0.42 ms', '7.5 ms', '123 ms', '12,345 ms']);
    expect(fmtMiB(1024 ** 3)).toBe('1,024.0 MiB');
    expect([fmtMbps(941.4), fmtMbps(12.54)]).toEqual(['941 Mbit/s', '12.5 Mbit/s']);
    expect(fmtRatio(3.94)).toBe('3.9x');
    expect(fmtPct(42)).toBe('42.0%');
  });
  it('shows a dash for missing or non-finite values', () => {
    expect([fmtMs(undefined), fmtMiB(null), fmtMbps(NaN), fmtRatio(Infinity), fmtPct(undefined)]).toEqual(['–', '–', '–', '–', '–']);
  });
});

describe('CSV tables', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'miglab-md-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  it('writes unformatted values under the column keys, rounded to their unit, quoting where needed', async () => {
    const file = path.join(dir, 'tables', 'runs.csv');
    await writeTableCsv(file, columns, rows);
    // downtimeMs: 0.1 ms is the precision a downtime has (src/results/units.ts).
    expect(await readFile(file, 'utf8')).toBe(
      'scenario,downtimeMs,transferredBytes,note\nidle,12.3,268435456,\nbusy | 300M/s,,1610612736,"did not\nconverge"\n',
    );
  });
});
