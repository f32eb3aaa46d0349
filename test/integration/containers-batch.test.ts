// `miglab containers batch` on the shared lab, through the function the CLI calls: two ladders of
// counters between the two container hosts. The scheduled one (files in the guests' memory) moves
// every container and checks it (running on chost-dst, its log whole and growing); the one in
// waves (files on the shared export) has chost-dst's QEMU killed mid-step, and must say a guest halted, how, and when, keep what it measured, and leave
// nothing behind. What a user would notice if it broke: a container left behind or lost unsaid,
// a halt not seen, a record missing after the fault.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { containersBatch } from '../../src/containers/batch/run.js';
import type { ContainerBatchRecord } from '../../src/containers/batch/types.js';
import { useSharedLab } from '../support/shared-lab.js';

const fx = useSharedLab('containers-batch');
let results: string;

beforeAll(() => {
  results = mkdtempSync(join(tmpdir(), 'miglab-it-ctr-batch-'));
});
afterAll(() => rmSync(results, { recursive: true, force: true }));

/** The pid of the QEMU in the lab's dst namespace (the batch's chost-dst; tests run one at a time): the one process the test kills. */
function dstQemu(prefix: string): number | undefined {
  for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      if (!readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0')[0]!.includes('qemu-system')) continue;
      if (execFileSync('ip', ['netns', 'identify', d], { encoding: 'utf8' }).trim() === `${prefix}-dst`) return Number(d);
    } catch {
      // gone, or not ours to read
    }
  }
  return undefined;
}

describe('containers batch', () => {
  it('moves a ladder of counters by the scheduler: each migrated, checked intact, the guests sampled, the plan and its reasons recorded', async () => {
    const r = await containersBatch({ counts: '1,3', mode: 'scheduled', memoryMiB: 512, periodMs: 200, lab: { prefix: fx.lab.spec.prefix }, resultsRoot: results });
    const steps = r.record.steps;
    expect(steps.map((s) => [s.count, s.migrated, s.intact, s.dumpFailures, s.restoreFailures])).toEqual([
      [1, 1, 1, 0, 0],
      [3, 3, 3, 0, 0],
    ]);
    // Every move has CRIU's own figures: wall time, peak RSS, frozen time from stats-dump.
    for (const m of steps.flatMap((s) => s.moves)) {
      expect(m.dump!.wallMs).toBeGreaterThan(0);
      expect(m.dump!.maxRssKiB).toBeGreaterThan(1000);
      expect(m.frozenMs).toBeGreaterThan(0);
      expect(m.restore!.exitCode).toBe(0);
      expect(m.check!.detail).toMatch(/runs on chost-dst as pid \d+/);
    }
    // N=3: c0 moved alone measured what the plan rests on; one vCPU -> one at a time.
    const plan = steps[1]!.plan!;
    expect(plan).toMatchObject({ atOnce: 1, admit: 3 });
    expect(plan.reasons[0]).toMatch(/criu dump \d+\.\d MiB/);
    expect(r.record.verdict.haltedAt).toBeUndefined();
    expect(r.record.verdict.bestIntact).toBe(3);
    // Their logs lived in the guests' memory: intact means each was carried by the move and read back.
    expect(r.record.request.files).toBe('guest');
    // Both guests answered their samples, with their memory and pressure.
    for (const g of ['chost-src', 'chost-dst']) {
      const answered = r.record.guestSamples.filter((s) => s.guest === g && s.rttMs !== null);
      expect(answered.length).toBeGreaterThanOrEqual(3);
      expect(answered[0]!.memAvailableMiB).toBeGreaterThan(100);
      expect(answered[0]!.psiMemSome10).toBeGreaterThanOrEqual(0);
    }
    const onDisk = JSON.parse(readFileSync(join(r.dir, 'batch.json'), 'utf8')) as ContainerBatchRecord;
    expect(onDisk.schema).toBe('miglab.container-batch/1');
    expect(readFileSync(join(r.dir, 'moves.csv'), 'utf8').trim().split('\n')).toHaveLength(1 + 4);
    expect(readFileSync(join(r.dir, 'report.md'), 'utf8')).toContain('When, how and why');
    expect(existsSync(join(r.dir, 'plots', 'memory.png'))).toBe(true);
    // The checkpoint directory went with the batch.
    expect(readdirSync(fx.lab.paths.ckptDir).filter((d) => d.includes(r.batchId))).toEqual([]);
  }, 300_000);

  it('sees chost-dst halt when its QEMU is killed during a wave of 12 dumps, stops the ladder there, and says how and when', async () => {
    let killed: number | undefined;
    const r = await containersBatch({
      counts: '2,12,40',
      // Waves of 12: N=2 is one wave of two, N=12 one of twelve (all at once, by the waves' loop).
      mode: 'waves',
      waveSize: 12,
      // The other place for the containers' files: on the shared export, written over NFS.
      files: 'export',
      memoryMiB: 512,
      periodMs: 200,
      lab: { prefix: fx.lab.spec.prefix },
      resultsRoot: results,
      progress: (_phase, line) => {
        // N=12 is moving: 12 dumps at once on chost-src; chost-dst dies under them.
        if (killed === undefined && line?.startsWith('N=12: all writing')) {
          killed = dstQemu(fx.lab.spec.prefix);
          if (killed !== undefined) process.kill(killed, 'SIGKILL');
        }
      },
    });
    expect(killed).toBeDefined();
    const steps = r.record.steps;
    // The ladder stopped at the step where the guest halted: N=40 never started.
    expect(steps.map((s) => s.count)).toEqual([2, 12]);
    // Each container's check, so that a failure says which and why.
    expect(steps[0]!.moves.map((m) => (m.check?.ok ? 'intact' : `${m.outcome}: ${m.check?.detail ?? 'no check'}`))).toEqual(['intact', 'intact']);
    expect(steps[0]!.intact).toBe(2);
    expect(r.record.request.files).toBe('export');
    expect(steps[1]!.halt).toMatchObject({ guest: 'chost-dst', how: 'qemu-exited' });
    expect(steps[1]!.migrated).toBe(0);
    expect(steps[1]!.moves).toHaveLength(12);
    expect(r.record.verdict.haltedAt).toBe(12);
    expect(r.record.verdict.how).toMatch(/QEMU/);
    expect(r.record.verdict.bestIntact).toBe(2);
    expect(readFileSync(join(r.dir, 'report.md'), 'utf8')).toMatch(/chost-dst/);
    expect(readdirSync(fx.lab.paths.ckptDir).filter((d) => d.includes(r.batchId))).toEqual([]);
  }, 300_000);
});
