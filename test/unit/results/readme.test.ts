// results/README.md is generated from the result schemas and the CSV writers' column lists; it
// must match what the generator writes now (regenerate it with `make results-readme`), and every
// field of every result file must say what it means.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BatchFileSchema } from '../../../src/results/batch.js';
import { HomeworkResultsSchema } from '../../../src/results/homework.js';
import { fieldDocs, renderResultsReadme, undocumentedFields } from '../../../src/results/readme.js';
import { RunReportSchema } from '../../../src/results/run.js';
import { SweepFileSchema } from '../../../src/results/sweep.js';

describe('results/README.md', () => {
  it('is what src/results/readme.ts generates (run `make results-readme` after changing a schema or a CSV column)', () => {
    const committed = readFileSync(join(process.cwd(), 'results', 'README.md'), 'utf8');
    expect(committed).toBe(renderResultsReadme());
  });

  it.each([
    ['run.json', RunReportSchema],
    ['sweep.json', SweepFileSchema],
    ['batch.json', BatchFileSchema],
    ['homework.json', HomeworkResultsSchema],
  ])('documents every field of %s', (_file, schema) => {
    expect(undocumentedFields(schema)).toEqual([]);
  });

  it('gives each figure its unit, and documents every CSV file and folder', () => {
    const byPath = new Map(fieldDocs(RunReportSchema).map((f) => [f.path, f]));
    expect(byPath.get('outputs.downtimeMs')).toMatchObject({ type: 'number', unit: 'ms' });
    expect(byPath.get('outputs.transferredBytes')?.unit).toBe('bytes');
    expect(byPath.get('timeline[].mbps')?.unit).toBe('Mbit/s');
    expect(byPath.get('outputs.clientProbe.longestGapStartMs')).toMatchObject({ type: 'number or null', unit: 'epoch ms' });
    const doc = renderResultsReadme();
    for (const heading of ['### probe.csv', '### perf-src.csv, perf-dst.csv', '### summary.csv', '### faults.csv', '### steps.csv', '### samples.csv', '### homework.json', '### accel.csv', '### compare.csv']) {
      expect(doc).toContain(heading);
    }
    for (const folder of ['results/sweep-NAME/', 'results/batch-ID/', 'results/<UTC date>-<time>-homework-<suffix>/', 'results/compare-ID/']) expect(doc).toContain(folder);
  });
});
