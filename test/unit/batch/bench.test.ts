// The batch bench's table: each step's time on the link against its bound, and where the
// scheduler itself stopped.
import { BENCH_STEPS, batchBenchMarkdown } from '../../../src/batch/bench.js';

describe('batchBenchMarkdown', () => {
  it('says how far each way kept up and tabulates the scheduler against its bound', () => {
    const md = batchBenchMarkdown([
      {
        name: 'idle',
        largestNaiveN: 3,
        largestScheduledN: 16,
        schedulerLimit: 'no stall up to N=16, the bench\'s last step',
        steps: [
          { n: 4, how: 'naive parallel', migrated: 2, wallMs: 61000, stalled: 'migration-failed', saturated: 'cpu', concurrency: 4 },
          { n: 4, how: 'scheduled', migrated: 4, wallMs: 21600, migratingMs: 17447, lowerBoundMs: 14600, vsLowerBound: 1.195, saturated: 'link', concurrency: 1 },
        ],
      },
      { name: 'busy', skipped: 'not run: the image is missing' },
    ]);
    expect(md).toContain(`N = ${BENCH_STEPS.join(', ')} until the scheduler itself stalls`);
    expect(md).toContain("Naive parallel kept up to N=3, the scheduler to N=16; the scheduler: no stall up to N=16, the bench's last step.");
    expect(md).toMatch(/^\| 4 \| scheduled \| 1 \| 4 \| 21,600 ms \| 17,447 ms \| 14,600 ms \| 1\.20 \| – \| no \| link \|$/m);
    expect(md).toMatch(/^\| 4 \| naive parallel \| 4 \| 2 \| 61,000 ms \| – \| – \| – \| – \| migration-failed \| cpu \|$/m);
    expect(md).toContain('not run: the image is missing');
  });
});
