// `miglab compare` on two real runs: an idle 128 MiB guest migrated unthrottled and with QEMU's
// max-bandwidth capped at 32 MiB/s, in their own lab (prefix mlcmp, brought up per run and taken
// down after). What a user would notice: the capped run is slower, and the comparison says so
// with the figures each run recorded.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrate } from '../../src/api.js';
import { compareResults } from '../../src/compare/compare.js';
import { sharedLabChoice, sharedLabLeftovers } from '../support/shared-lab.js';

const results = mkdtempSync(join(tmpdir(), 'miglab-it-compare-'));
afterAll(() => rmSync(results, { recursive: true, force: true }));

// The suite's shared lab: each run attaches to it by prefix and takes a guest slot, as users' runs do.
const LAB = sharedLabChoice();

it('compares a capped migration with an unthrottled one', async () => {
  const guest = { memoryMiB: 128, accel: 'tcg' as const, diskSizeMiB: 16 };
  const fast = await migrate({ scenario: { guest, timeoutMs: 60000 }, lab: LAB, resultsRoot: results });
  const slow = await migrate({ scenario: { guest, parameters: { maxBandwidthMiBps: 32 }, timeoutMs: 60000 }, lab: LAB, resultsRoot: results });
  expect([fast.report.verdict, slow.report.verdict]).toEqual(['completed', 'completed']);

  const r = await compareResults([fast.dir, slow.dir], results);
  const total = r.rows.find((x) => x.set === 'B' && x.figure === 'totalTimeMs')!;
  // The figures are the runs' own, and the delta their difference.
  expect(total.value).toBeCloseTo(slow.report.outputs.totalTimeMs!, 0);
  expect(total.delta).toBeCloseTo(slow.report.outputs.totalTimeMs! - fast.report.outputs.totalTimeMs!, 0);
  // Tens of MiB at 32 MiB/s take longer than unthrottled (about 130 MiB/s here).
  expect(total.delta!).toBeGreaterThan(0);
  expect(readFileSync(r.markdownPath, 'utf8')).toContain(`| Total migration time | ${Math.round(fast.report.outputs.totalTimeMs!).toLocaleString('en-US')} ms |`);
  for (const p of [r.csvPath, r.htmlPath, ...r.pngPaths]) expect(existsSync(p)).toBe(true);
  expect(await sharedLabLeftovers()).toEqual([]);
}, 180000);
