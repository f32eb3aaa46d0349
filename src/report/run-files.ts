// A run's results as files a person can keep: run.json (everything), timeline.csv (one row per
// sample), passes.csv (one row per pre-copy pass) and the run's report (run-report.ts). Serial
// logs and QMP transcripts are written into the same directory by the VMs while they run.
import { describeError } from '../errors.js';
import { csvText } from './markdown.js';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunReport } from '../migrate/report.js';
import { PRIVATE } from '../util/private.js';
import { writeResult } from '../results/contract.js';
import { describeRunFile, RUN_CONTRACT } from '../results/run.js';
import { renderRunReport, type DrawnAhead } from './run-report.js';


export const TIMELINE_COLUMNS = [
  'tMs',
  'status',
  'transferredBytes',
  'remainingBytes',
  'totalBytes',
  'mbps',
  'dirtyPagesRate',
  'dirtySyncCount',
  'expectedDowntimeMs',
  'cpuThrottlePercent',
] as const;

export const PASS_COLUMNS = ['pass', 'tMs', 'source', 'transferredBytes', 'remainingBytes', 'dirtyPagesRate', 'mbps', 'expectedDowntimeMs'] as const;

export interface RunFilesOptions {
  /** Draw the report's figures too (see RunReportOptions); default false. */
  readonly figures?: boolean;
  /** With `figures`: figures drawn while the run cleaned up (see RunReportOptions). */
  readonly ahead?: DrawnAhead;
}

/**
 * Write timeline.csv, passes.csv, run.json and the run's report (report.md, report.html and, with
 * `figures`, plots/); returns the report as saved, its file list filled in. The report is drawn
 * from run.json as saved, as `miglab plot` draws it again.
 */
export async function writeRunFiles(report: RunReport, dir: string, opts: RunFilesOptions = {}): Promise<RunReport> {
  await writeFile(join(dir, 'timeline.csv'), csvText(report.timeline, TIMELINE_COLUMNS), PRIVATE);
  await writeFile(join(dir, 'passes.csv'), csvText(report.passes, PASS_COLUMNS), PRIVATE);
  const names = new Set([...(await readdir(dir)), 'run.json', 'report.md', 'report.html', ...(opts.figures ? ['plots/'] : [])]);
  names.delete('plots');
  const files = Object.fromEntries([...names].sort().map((f) => [f, describeRunFile(f)]));
  // The report as saved (figures rounded to their precision), so what is printed is what is kept.
  const saved = await writeResult(RUN_CONTRACT, join(dir, 'run.json'), { ...report, files });
  try {
    await renderRunReport(dir, saved, { figures: opts.figures === true, ahead: opts.ahead });
  } catch (err) {
    // A figure that cannot be drawn (a missing font) must not fail a run whose results are
    // written: the report says why its figures are missing instead.
    if (!opts.figures) throw err;
    await renderRunReport(dir, saved, { figures: false, figureProblem: describeError(err) });
  }
  return saved;
}
