// The container batch's folder (src/containers/batch/record.ts): batch.json as the record, the
// CSV files, report.md and the three plots, written from the synthetic ladder of batch-fixture.ts.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diagnoseBatch } from '../../../../src/containers/batch/diagnose.js';
import { CONTAINER_BATCH_SCHEMA, writeBatchRecord } from '../../../../src/containers/batch/record.js';
import { batchReportMarkdown, movesCsv, samplesCsv } from '../../../../src/containers/batch/report.js';
import { GUEST_SAMPLES, HOST_SAMPLES, record, REQUEST, STEPS } from './batch-fixture.js';

const r = record({ verdict: diagnoseBatch(STEPS, GUEST_SAMPLES, HOST_SAMPLES, REQUEST) });

describe('writeBatchRecord', () => {
  let dir: string;
  beforeAll(async () => {
    dir = join(mkdtempSync(join(tmpdir(), 'miglab-cbatch-')), 'batch-cb-test-1');
    await writeBatchRecord(dir, r);
  }, 60_000);
  afterAll(() => rmSync(join(dir, '..'), { recursive: true, force: true }));

  it('names its schema as the record type does', () => {
    expect(CONTAINER_BATCH_SCHEMA).toBe('miglab.container-batch/1');
  });

  it('writes batch.json as the record, 2-space JSON', () => {
    const text = readFileSync(join(dir, 'batch.json'), 'utf8');
    expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(r)));
    expect(text).toContain('\n  "schema": "miglab.container-batch/1",');
    expect(JSON.parse(text).verdict.haltedAt).toBe(100);
  });

  it('writes moves.csv, samples.csv and report.md from the record', () => {
    expect(readFileSync(join(dir, 'moves.csv'), 'utf8')).toBe(movesCsv(r));
    expect(readFileSync(join(dir, 'samples.csv'), 'utf8')).toBe(samplesCsv(r));
    expect(readFileSync(join(dir, 'report.md'), 'utf8')).toBe(batchReportMarkdown(r));
  });

  it('draws the three plots as PNG and SVG', () => {
    for (const name of ['memory', 'pressure', 'migrated-per-step']) {
      const png = join(dir, 'plots', `${name}.png`);
      expect(existsSync(png)).toBe(true);
      expect(statSync(png).size).toBeGreaterThan(1000);
      expect(readFileSync(png).subarray(1, 4).toString()).toBe('PNG');
      expect(existsSync(join(dir, 'plots', `${name}.svg`))).toBe(true);
    }
  });
});
