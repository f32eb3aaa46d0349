// The container batch bench's summary: every step of each mode, and the aim judged on the
// scheduler's own figures (at least 400 intact, no halt).
import { batchBenchMarkdown, BATCH_AIM, type BatchBenchCase } from '../../../src/bench/containers-batch.js';

const verdict = (bestIntact: number, haltedAt?: number) => ({ bestIntact, when: 'w.', how: 'h.', why: 'y.', evidence: [], ...(haltedAt !== undefined && { haltedAt }) });

const naive: BatchBenchCase = {
  mode: 'all-at-once',
  files: 'guest',
  steps: [
    { n: 100, migrated: 52, intact: 52, dumpFailures: 48, restoreFailures: 0, seconds: 123.6 },
    { n: 400, migrated: 0, intact: 0, dumpFailures: 296, restoreFailures: 104, seconds: 1205 },
  ],
  verdict: verdict(0),
};

describe('container batch bench summary', () => {
  it('lists every step of each mode and says the aim is met when the scheduler moved 400 intact with no halt', () => {
    const sched: BatchBenchCase = { mode: 'scheduled', files: 'guest', steps: [{ n: 400, migrated: 400, intact: 400, dumpFailures: 0, restoreFailures: 0, seconds: 500 }], verdict: verdict(400) };
    const onExport: BatchBenchCase = { mode: 'scheduled', files: 'export', steps: [{ n: 100, migrated: 20, intact: 20, dumpFailures: 0, restoreFailures: 1, seconds: 450 }], verdict: verdict(0) };
    const md = batchBenchMarkdown([naive, sched, onExport], 'now');
    expect(md).toContain('| all-at-once | guest | 400 | 0 | 0 | 296 | 104 | 1205.0 |  |');
    expect(md).toContain('| scheduled | guest | 400 | 400 | 400 | 0 | 0 | 500.0 |  |');
    expect(md).toContain('| scheduled | export | 100 | 20 | 20 | 0 | 1 | 450.0 |  |');
    // The aim is judged on the scheduler with the files in the guest, not on the export case.
    expect(md).toContain(`Aim (>= ${BATCH_AIM} by the scheduler, no halt): met (400 intact).`);
    expect(md).toContain('Scheduler against the naive batch (most intact in one step without a halt): 400 against 0: the scheduler moved more.');
  });

  it('says it is not met when the scheduler halted a guest or moved fewer, and when its batch failed', () => {
    const halted: BatchBenchCase = { mode: 'scheduled', files: 'guest', steps: [{ n: 400, migrated: 120, intact: 120, dumpFailures: 0, restoreFailures: 0, seconds: 90, halted: 'chost-dst: no-answer' }], verdict: verdict(100, 400) };
    expect(batchBenchMarkdown([naive, halted], 'now')).toContain('NOT met (100 intact, halted at N=400)');
    const failed: BatchBenchCase = { mode: 'scheduled', files: 'guest', steps: [], failure: 'boot failed' };
    const md = batchBenchMarkdown([naive, failed], 'now');
    expect(md).toContain('NOT met (0 intact)');
    expect(md).toContain('the batch failed: boot failed');
    expect(md).toContain('the scheduler did NOT move more');
  });
});
