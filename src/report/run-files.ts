// A run's report as files a person can keep: run.json (everything), timeline.csv (one row per
// sample), passes.csv (one row per pre-copy pass). Serial logs and QMP transcripts are written
// into the same directory by the VMs while they run.
import { csvText } from './markdown.js';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunReport } from '../migrate/report.js';
import { PRIVATE } from '../util/private.js';
import { writeResult } from '../results/contract.js';
import { RUN_CONTRACT } from '../results/run.js';


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

/** Write run.json, timeline.csv and passes.csv; returns the report as saved, its file list filled in. */
export async function writeRunFiles(report: RunReport, dir: string): Promise<RunReport> {
  await writeFile(join(dir, 'timeline.csv'), csvText(report.timeline, TIMELINE_COLUMNS), PRIVATE);
  await writeFile(join(dir, 'passes.csv'), csvText(report.passes, PASS_COLUMNS), PRIVATE);
  const files: Record<string, string> = {};
  for (const f of [...(await readdir(dir)), 'run.json'].sort()) files[f] = describeFile(f);
  // The report as saved (figures rounded to their precision), so what is printed is what is kept.
  return writeResult(RUN_CONTRACT, join(dir, 'run.json'), { ...report, files });
}

function describeFile(f: string): string {
  if (f === 'run.json') return 'every input and output of the run';
  if (f === 'timeline.csv') return 'query-migrate samples over time';
  if (f === 'passes.csv') return 'one row per pre-copy pass';
  if (f.endsWith('.serial.log')) return 'the guest serial console (agent heartbeat) and QEMU messages';
  if (f.endsWith('.qmp.jsonl')) return 'QMP transcript, both directions, timestamped';
  if (f === 'probe.csv') return 'the client-side UDP probe: one row per probe (seq, sent, received, guest clock)';
  return '';
}
