// Containers with CRIU between two container-host guests (chost image) on the shared lab, through
// the same function `miglab containers migrate` calls: the pair boots, CRIU says "Looks good.", a
// counter moves by stop-and-copy and a Fibonacci generator by pre-dump rounds, and each goes on in
// the other guest with no gap and no repeat. What a user would notice if it broke: a container that
// does not come back, a sequence that skips or repeats, a downtime figure that is not CRIU's or the
// client's, images left in the lab's checkpoint export.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { containersMigrate } from '../../src/containers/run.js';
import { useSharedLab } from '../support/shared-lab.js';

const fx = useSharedLab('containers');
let results: string;

beforeAll(() => {
  results = mkdtempSync(join(tmpdir(), 'miglab-it-containers-'));
});
afterAll(() => rmSync(results, { recursive: true, force: true }));

describe('containers migrate (CRIU between two guests)', () => {
  it('moves a counter by stop-and-copy: the sequence goes on, CRIU\'s frozen time and the client\'s downtime recorded, no images left', async () => {
    const r = await containersMigrate({ workload: 'counter', strategy: 'stop-and-copy', periodMs: 200, lab: { prefix: fx.lab.spec.prefix }, resultsRoot: results });
    const failed = r.result.verify.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
    expect(failed).toEqual([]);
    expect(r.verdict).toBe('intact');
    // Both guests passed CRIU's own check, in its words.
    expect(r.result.hosts.src.criuCheck.words).toBe('Looks good.');
    expect(r.result.hosts.dst.criuCheck.words).toBe('Looks good.');
    const f = r.result.figures;
    expect(f.preDumpRounds).toBe(0);
    expect(f.criuFrozenMs).toBeGreaterThan(0);
    // The client cannot hear a frozen container: its silence covers CRIU's frozen time (to the probe's 1 ms resolution).
    expect(f.clientDowntimeMs).not.toBeNull();
    expect(f.clientDowntimeMs!).toBeGreaterThanOrEqual(f.criuFrozenMs! - 1);
    expect(f.totalMs).toBeGreaterThanOrEqual(f.dumpWallMs + f.restoreWallMs);
    expect(r.result.after.n).toBeGreaterThanOrEqual(r.result.before.n);

    // The run folder: run.json, one row per CRIU command, CRIU's own logs and stats.
    const run = JSON.parse(readFileSync(join(r.dir, 'run.json'), 'utf8')) as { schema: string; verdict: string; steps: { kind: string }[] };
    expect(run.schema).toBe('miglab.container-run/1');
    expect(run.steps.map((s) => s.kind)).toEqual(['dump', 'restore']);
    expect(readFileSync(join(r.dir, 'rounds.csv'), 'utf8').trim().split('\n')).toHaveLength(3);
    expect(existsSync(join(r.dir, 'criu', 'final', 'dump.log'))).toBe(true);
    expect(existsSync(join(r.dir, 'criu', 'final', 'stats-restore'))).toBe(true);
    expect(readFileSync(join(r.dir, 'report.md'), 'utf8')).toContain('| client downtime |');
    // The images were removed from the lab's checkpoint export.
    expect(readdirSync(fx.lab.paths.ckptDir).filter((d) => d.includes(r.runId))).toEqual([]);
  }, 240_000);

  it('moves a Fibonacci generator by pre-dump rounds: pages per round from CRIU\'s stats, the rules\' reason recorded, the sequence intact', async () => {
    const r = await containersMigrate({ workload: 'fibonacci', strategy: 'iterative', periodMs: 5, lab: { prefix: fx.lab.spec.prefix }, resultsRoot: results });
    const failed = r.result.verify.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
    expect(failed).toEqual([]);
    const rounds = r.result.steps.filter((s) => s.kind === 'pre-dump');
    expect(rounds.length).toBeGreaterThanOrEqual(1);
    for (const s of rounds) {
      expect(s.dump?.pagesWritten).toBeGreaterThan(0);
      expect(s.decision).toMatch(/\w/);
    }
    // The final dump writes only what changed since the last round: fewer pages than the first round.
    const final = r.result.steps.find((s) => s.kind === 'dump')!;
    expect(final.dump!.pagesWritten).toBeLessThan(rounds[0]!.dump!.pagesWritten);
    expect(r.result.stopReason).toMatch(/\w/);
  }, 240_000);

  it('moves the natural numbers by mem-rounds with a page server: the soft-dirty count after each pre-dump decides the rounds, the pages go to chost-dst\'s memory, the sequence intact', async () => {
    const r = await containersMigrate({ workload: 'natural', strategy: 'mem-rounds', transfer: 'page-server', periodMs: 5, lab: { prefix: fx.lab.spec.prefix }, resultsRoot: results });
    const failed = r.result.verify.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
    expect(failed).toEqual([]);
    const rounds = r.result.steps.filter((s) => s.kind === 'pre-dump');
    expect(rounds.length).toBeGreaterThanOrEqual(1);
    // Each round was decided by the soft-dirty count read right after its pre-dump, and says so.
    for (const s of rounds) {
      expect(s.dirtyPolls).toHaveLength(1);
      expect(s.decision).toContain(`${s.dirtyPolls![0]!.dirtyPages} pages changed since pre-dump ${s.index}`);
    }
    expect(rounds.at(-1)!.decision).toMatch(/: final dump$/);
    expect(r.result.figures.transfer).toBe('page-server');
    // The page server's own log is kept with the run.
    expect(existsSync(join(r.dir, 'criu', 'final', 'page-server.log'))).toBe(true);
  }, 240_000);

  it('moves a prime generator lazily: restored without its memory, the pages fetched from chost-src, the sequence intact', async () => {
    const r = await containersMigrate({ workload: 'prime', strategy: 'lazy', periodMs: 5, lab: { prefix: fx.lab.spec.prefix }, resultsRoot: results });
    const failed = r.result.verify.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
    expect(failed).toEqual([]);
    // The source's dump ran on after the restore, until its last page had gone.
    expect(r.result.figures.lazyTransferMs).toBeGreaterThan(0);
    expect(r.result.steps.map((s) => s.kind)).toEqual(['dump', 'restore']);
    expect(existsSync(join(r.dir, 'criu', 'final', 'lazy-pages.log'))).toBe(true);
    // The pages moved come from the lazy-pages daemon's log; CRIU's stats of a lazy dump are not taken (zeros, and a frozen time longer than the run).
    expect(r.result.figures.lazyPages).toBeGreaterThan(0);
    expect(r.result.figures.criuFrozenMs).toBeNull();
  }, 240_000);
});
