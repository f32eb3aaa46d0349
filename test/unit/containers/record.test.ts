// A container run's files (src/containers/record.ts) from a synthetic run (test/support/container-run.ts:
// a Fibonacci container moved by one pre-dump round and a final dump, its states, log, checks and
// commands computed by the code a real run uses). What is asserted here is the writing: every
// figure where the reader looks for it, bigints as exact decimal strings, and a failed run that
// still says why.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CriuStep } from '../../../src/containers/migrate.js';
import { CONTAINER_RUN_SCHEMA, downtimeParts, reportMarkdown, roundsCsv, runJson, verdictOf, writeContainerRun } from '../../../src/containers/record.js';
import { memRoundDecision, PHAUL_RULES } from '../../../src/containers/stop-rules.js';
import { chainHash } from '../../../src/containers/verify.js';
import { after, before, BEFORE_N, figures, header, intact, logOf, MODE, preDecision, result, stateAt, steps } from '../../support/container-run.js';
import { csvCells as cells } from '../../support/csv.js';


describe('roundsCsv', () => {
  const lines = roundsCsv(steps).trim().split('\n');
  const head = cells(lines[0]!);
  const row = (k: number) => Object.fromEntries(cells(lines[k + 1]!).map((v, i) => [head[i], v]));

  it('has a header and one row per CRIU command, in order', () => {
    expect(lines).toHaveLength(4);
    expect(head).toEqual([
      'kind', 'index', 'at_ms', 'wall_ms', 'criu_maxrss_kib', 'freezing_ms', 'frozen_ms', 'memdump_ms', 'memwrite_ms',
      'pages_scanned', 'pages_skipped_parent', 'pages_written', 'restore_ms', 'pages_restored', 'image_bytes',
      'soft_dirty_after', 'decision',
    ]);
    expect([0, 1, 2].map((k) => `${row(k).kind} ${row(k).index}`)).toEqual(['pre-dump 1', 'dump 2', 'restore 2']);
  });

  it('gives CRIU\'s times in ms to 0.1 and its pages whole, from the stats', () => {
    expect(row(0)).toMatchObject({ frozen_ms: '120.4', freezing_ms: '1.5', pages_written: '29', pages_skipped_parent: '400', wall_ms: '812.3', image_bytes: '200000' });
    expect(row(1)).toMatchObject({ frozen_ms: '412.8', pages_written: '11', at_ms: '900' });
    expect(row(2)).toMatchObject({ restore_ms: '283.0', pages_restored: '40', criu_maxrss_kib: '8000' });
  });

  it('leaves a figure a step does not have empty or n/a, never 0', () => {
    expect(row(2)).toMatchObject({ pages_written: '', frozen_ms: '', image_bytes: '' });
    expect(row(0)).toMatchObject({ restore_ms: '', pages_restored: '', soft_dirty_after: '' });
  });

  it('keeps the rules\' decision whole, commas and all, and a mem-rounds step\'s soft-dirty count', () => {
    expect(row(0).decision).toBe(preDecision.reason);
    expect(row(1).decision).toBe('');
    const decision = memRoundDecision(1500, 3000, { plateauPct: 5, budgetPages: 1024, maxRounds: 8, round: 8 });
    expect(decision.reason).toContain(', but 8 pre-dumps >= 8');
    const memStep: CriuStep = { ...steps[0]!, index: 8, decision: decision.reason, dirtyPolls: [{ atMs: 1050, dirtyPages: 1500 }] };
    const memLines = roundsCsv([memStep]).trim().split('\n');
    const mem = Object.fromEntries(cells(memLines[1]!).map((v, i) => [head[i], v]));
    expect(mem).toMatchObject({ index: '8', soft_dirty_after: '1500', decision: decision.reason });
  });
});

describe('runJson', () => {
  const run = JSON.parse(runJson(header, intact)) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

  it('says its schema, the verdict and the request with the workload in its compact form', () => {
    expect(run.schema).toBe(CONTAINER_RUN_SCHEMA);
    expect(CONTAINER_RUN_SCHEMA).toBe('miglab.container-run/1');
    expect(run.verdict).toBe('intact');
    expect(verdictOf(intact)).toBe('intact');
    expect(run.request).toMatchObject({ workload: 'fibonacci', strategy: 'iterative', transfer: 'nfs', memoryMiB: 512, vcpus: 2, rules: PHAUL_RULES });
    expect(run.failure).toBeUndefined();
  });

  it('writes bigint values as exact decimal strings', () => {
    // fibonacci(119) mod 2^64 is past 2^53: a JSON number would round it.
    expect(before.v > BigInt(Number.MAX_SAFE_INTEGER)).toBe(true);
    expect(run.before.v).toBe(before.v.toString());
    expect(run.after.v).toBe(after.v.toString());
    expect(run.before.h).toBe(chainHash(MODE, BEFORE_N));
  });

  it('keeps every figure, each step\'s argv instead of its explained command, and the probe without its rows', () => {
    expect(run.figures).toEqual(figures);
    expect(run.steps.map((s: { kind: string }) => s.kind)).toEqual(['pre-dump', 'dump', 'restore']);
    expect(run.steps[1].argv).toEqual([...steps[1]!.command.argv]);
    expect(run.steps[1].command).toBeUndefined();
    expect(run.steps[1].dump.frozenUs).toBe(412_800);
    expect(run.steps[2].restore.restoreUs).toBe(283_000);
    expect(run.probe.longestGapMs).toBe(1127.4);
    expect(run.probe.rows).toBeUndefined();
    expect(run.stopReason).toBe(preDecision.reason);
    expect(run.verify.checks.map((c: { name: string }) => c.name)).toEqual(intact.verify.checks.map((c) => c.name));
    expect(run.workloadArgv).toEqual([...intact.workloadCommand.argv]);
  });

  it('says what CRIU said on each host and where the hosts were', () => {
    expect(run.criu).toEqual({ version: '3.17.1', check: { 'chost-src': 'Looks good.', 'chost-dst': 'Looks good.' } });
    expect(run.hosts['chost-dst']).toEqual({ side: 'dst', ip: '10.77.0.101', bootMs: 9001, slot: 1 });
    expect(run.serviceIp).toBe('10.77.0.102');
  });

  it('writes a failed run as failed, with the failure and nothing it did not measure', () => {
    const failed = JSON.parse(runJson(header, undefined, { failure: 'CRIU cannot run in chost-dst: Does not look good.', steps: [] })) as Record<string, unknown>;
    expect(failed.verdict).toBe('failed');
    expect(failed.failure).toBe('CRIU cannot run in chost-dst: Does not look good.');
    expect(failed.schema).toBe(CONTAINER_RUN_SCHEMA);
    expect(failed.runId).toBe(header.runId);
    for (const key of ['figures', 'verify', 'before', 'after', 'criu', 'hosts']) expect(failed).not.toHaveProperty(key);
    // The CRIU steps it had done before it failed (none here) are kept, with their figures.
    expect(failed.steps).toEqual([]);
  });
});

describe('reportMarkdown', () => {
  const md = reportMarkdown(header, intact);

  it('has a row for each CRIU step with its figures', () => {
    expect(md).toContain('# Container migration 20261203-030000-ctr-fibonacci-iterative-ab12: intact');
    const rows = md.split('\n').filter((l) => /^\| (pre-dump \d|dump \d|restore \|)/.test(l));
    expect(rows).toEqual([
      `| pre-dump 1 | 0 | 812 | 120.4 | 29 | 0.19 | n/a | ${preDecision.reason} |`,
      '| dump 2 | 900 | 1204 | 412.8 | 11 | 0.33 | n/a |  |',
      '| restore | 2300 | 554 | n/a |  |  | 283.0 |  |',
    ]);
  });

  it('separates CRIU\'s frozen time from the client\'s downtime and says transfer and restore come on top', () => {
    expect(md).toMatch(/\| frozen time of the final dump \| 412\.8 ms \| CRIU's stats-dump .*transfer and restore come on top/);
    expect(md).toContain('| frozen time, all rounds | 533.2 ms |');
    expect(md).toContain('| client downtime | 1127.4 ms | longest silence of the 1 kHz UDP probe at the service address |');
    expect(md).toContain('| restore command | 554.2 ms | the agent\'s timing of `criu restore` (CRIU\'s own: 283.0 ms) |');
  });

  it('has a row for each continuity check, with its result and detail', () => {
    expect(intact.verify.checks.map((c) => c.name)).toEqual(['sequence', 'log', 'process tree', 'log offset']);
    for (const c of intact.verify.checks) expect(md).toContain(`| ${c.name} | pass | ${c.detail} |`);
    expect(md).toContain(`n=${BEFORE_N}, v=${before.v}`);
  });

  it('explains each command, argument by argument, under its step', () => {
    expect(md).toContain('### pre-dump 1 (on chost-src)');
    expect(md).toContain('### restore 2 (on chost-dst)');
    for (const g of steps[1]!.command.explained) expect(md).toContain(`- \`${g.args.join(' ')}\`: ${g.why}`);
  });

  it('says broken and FAIL when the destination repeats what the source had emitted', () => {
    // Restored from an older image: the destination is back at n=100.
    const older = stateAt(100, Buffer.byteLength(logOf(100)));
    const broken = result(before, older, logOf(BEFORE_N));
    expect(verdictOf(broken)).toBe('broken');
    const text = reportMarkdown(header, broken);
    expect(text).toContain(': broken');
    const seq = broken.verify.checks.find((c) => c.name === 'sequence')!;
    expect(seq.ok).toBe(false);
    expect(text).toContain(`| sequence | FAIL | ${seq.detail} |`);
    expect(JSON.parse(runJson(header, broken)).verdict).toBe('broken');
  });

  it('says the client never heard the container again rather than print a number', () => {
    const silent = { ...intact, figures: { ...figures, clientDowntimeMs: null } };
    expect(reportMarkdown(header, silent)).toContain('| client downtime | not measured: the client never heard the container again |');
  });
});

describe('writeContainerRun', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'miglab-ctr-record-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A run's directory on the checkpoint export: CRIU's logs and stats next to its images. */
  async function exportDir(): Promise<string> {
    const images = join(dir, 'export', 'run');
    for (const [step, files] of [
      ['r1', ['criu.log', 'stats-dump', 'pages-1.img', 'pagemap-311.img']],
      ['final', ['dump.log', 'restore.log', 'stats-dump', 'stats-restore', 'core-311.img']],
    ] as const) {
      await mkdir(join(images, step), { recursive: true });
      for (const f of files) await writeFile(join(images, step, f), `${step}/${f}\n`);
    }
    await writeFile(join(images, 'seq.log'), logOf(3));
    return images;
  }

  it('writes run.json, rounds.csv and report.md, and copies CRIU\'s logs and stats but no image', async () => {
    const runDir = join(dir, 'results', header.runId);
    await writeContainerRun(runDir, header, await exportDir(), intact);
    expect(JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8')).verdict).toBe('intact');
    expect(readFileSync(join(runDir, 'rounds.csv'), 'utf8')).toBe(roundsCsv(steps));
    expect(readFileSync(join(runDir, 'report.md'), 'utf8')).toBe(reportMarkdown(header, intact));
    expect(readFileSync(join(runDir, 'criu', 'final', 'restore.log'), 'utf8')).toBe('final/restore.log\n');
    for (const f of ['r1/criu.log', 'r1/stats-dump', 'final/dump.log', 'final/stats-dump', 'final/stats-restore']) expect(existsSync(join(runDir, 'criu', f))).toBe(true);
    for (const f of ['r1/pages-1.img', 'r1/pagemap-311.img', 'final/core-311.img', 'seq.log']) expect(existsSync(join(runDir, 'criu', f))).toBe(false);
    // The two figures, as PNG and SVG.
    for (const f of ['downtime-parts', 'pages-per-step']) {
      expect(readFileSync(join(runDir, 'plots', `${f}.png`)).subarray(1, 4).toString()).toBe('PNG');
      expect(readFileSync(join(runDir, 'plots', `${f}.svg`), 'utf8')).toContain('<svg');
    }
  }, 30_000);

  it('draws the downtime beside each of its parts, leaving out a figure the run does not have', () => {
    expect(downtimeParts(intact).map((p) => p.part)).toEqual(["CRIU's frozen time", 'dump command', 'hand-over', 'restore command', 'client downtime']);
    const silent = { ...intact, figures: { ...intact.figures, clientDowntimeMs: null } };
    expect(downtimeParts(silent).map((p) => p.part)).not.toContain('client downtime');
  });

  it('writes a failed run\'s run.json and CRIU\'s logs, which say why, and nothing else', async () => {
    const runDir = join(dir, 'results', 'failed-run');
    await writeContainerRun(runDir, header, await exportDir(), undefined, { failure: 'criu dump on chost-src exited 1: Error (criu/cr-dump.c:1): x', steps: [] });
    expect(JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8'))).toMatchObject({ verdict: 'failed', failure: 'criu dump on chost-src exited 1: Error (criu/cr-dump.c:1): x' });
    expect(existsSync(join(runDir, 'criu', 'final', 'dump.log'))).toBe(true);
    expect(existsSync(join(runDir, 'rounds.csv'))).toBe(false);
    expect(existsSync(join(runDir, 'report.md'))).toBe(false);
  });

  it('writes run.json even when the export has no directory for the run (it failed before the first dump)', async () => {
    const runDir = join(dir, 'results', 'early');
    await writeContainerRun(runDir, header, join(dir, 'no-such-export'), undefined, { failure: 'the control port of chost-src closed', steps: [] });
    expect(JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8')).failure).toBe('the control port of chost-src closed');
    expect(existsSync(join(runDir, 'criu'))).toBe(false);
  });
});
