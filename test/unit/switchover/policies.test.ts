// Each switchover policy's decisions on a series of query-migrate samples: when it keeps going,
// when it sets downtime-limit and to what, when it starts post-copy, and the words it records.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import type { Sample } from '../../../src/migrate/report.js';
import { novaSteps, startPolicy, type SwitchoverDecision } from '../../../src/switchover/policies.js';
import { initialDowntimeLimitMs, parsePolicy } from '../../../src/switchover/spec.js';

const MiB = 1024 * 1024;
/** A sample every 250 ms; pass k's remaining bytes given per sample. */
function series(rows: readonly [pass: number, remainingMiB: number, mbps?: number][]): Sample[] {
  return rows.map(([pass, left, mbps], i) => ({ tMs: i * 250, status: 'active', dirtySyncCount: pass, remainingBytes: left * MiB, mbps: mbps ?? 1000, dirtyPagesRate: 20000 }));
}
const run = (policy: string, samples: readonly Sample[], memoryMiB = 512, downtimeLimitMs = 300): SwitchoverDecision[] => {
  const p = startPolicy(parsePolicy(policy), { memoryMiB, downtimeLimitMs });
  return samples.map((s) => p.observe(s)).filter((d): d is SwitchoverDecision => d !== undefined);
};

describe('qemu-default', () => {
  it('decides nothing, once per pass, with the figures of the pass', () => {
    const d = run('qemu-default', series([[1, 500], [1, 300], [2, 200], [2, 150], [3, 190]]));
    expect(d.map((x) => [x.pass, x.action])).toEqual([[1, 'keep'], [2, 'keep'], [3, 'keep']]);
    expect(d[1]!.remainingBytes).toBe(200 * MiB);
    expect(d[1]!.sendBytesPerS).toBe(125_000_000);
    expect(d[1]!.dirtyBytesPerS).toBe(20000 * 4096);
  });
});

describe('local-minimum', () => {
  it('lets QEMU switch once the bytes left stop falling, with the downtime they need at the send rate', () => {
    const d = run('local-minimum:max=2s', series([[1, 512], [2, 200], [3, 150], [4, 148]]));
    expect(d.map((x) => x.action)).toEqual(['keep', 'keep', 'keep', 'set-downtime-limit']);
    expect(d[2]!.why).toMatch(/150\.0 MiB left, 25 % less than the pass before: still falling/);
    // 148 MiB at 125 MB/s is 1.24 s; with the 20 % margin, rounded up to 10 ms.
    expect(d[3]!.downtimeLimitMs).toBe(1490);
    expect(d[3]!.why).toMatch(/^stopped falling \(150\.0 MiB -> 148\.0 MiB, 1 %\): switch now, allowing 1490 ms to send it at 119 MiB\/s \(within max 2000 ms\)$/);
  });

  it('keeps going when what is left needs more than its max, and says so', () => {
    const d = run('local-minimum:max=1s', series([[1, 512], [2, 256], [3, 256], [4, 255]]));
    expect(d.map((x) => x.action)).toEqual(['keep', 'keep', 'keep', 'keep']);
    expect(d[3]!.why).toMatch(/needs about 2\d{3} ms, more than max 1000 ms/);
  });

  it('does not raise a limit that already covers what is left', () => {
    const d = run('local-minimum:max=2s', series([[1, 512], [2, 20], [3, 20]]), 512, 300);
    expect(d[2]!.action).toBe('keep');
    expect(d[2]!.why).toMatch(/already covers/);
  });
});

describe('downtime-steps', () => {
  it("follows Nova's ramp: max/steps first, then evenly up to max, a step every delay x GiB", () => {
    expect(novaSteps(parsePolicy('downtime-steps') as never, 512).map((s) => [s.atMs, s.downtimeLimitMs])).toEqual([
      [0, 50], [37500, 95], [75000, 140], [112500, 185], [150000, 230], [187500, 275], [225000, 320], [262500, 365], [300000, 410], [337500, 455], [375000, 500],
    ]);
    expect(initialDowntimeLimitMs(parsePolicy('downtime-steps:max=1s,steps=4,delay-per-gib=1s'))).toBe(250);
  });

  it('sets each step as its time comes, and keeps the per-pass record', () => {
    // 1 GiB: a step every 1000 ms; samples every 250 ms.
    const samples = series([[1, 900], [1, 800], [1, 700], [1, 600], [2, 500], [2, 400], [2, 300], [2, 250], [3, 240]]);
    const d = run('downtime-steps:max=1s,steps=4,delay-per-gib=1s', samples, 1024);
    expect(d.filter((x) => x.action === 'set-downtime-limit').map((x) => [x.tMs, x.downtimeLimitMs])).toEqual([[1000, 438], [2000, 625]]);
    // Passes 2 and 3 began on a step's sample: the step's decision carries their figures.
    expect(d.filter((x) => x.action === 'keep').map((x) => x.pass)).toEqual([1]);
    expect(d.map((x) => x.pass)).toEqual([1, 2, 3]);
  });
});

describe('postcopy-after', () => {
  it('starts post-copy once N passes are done, once', () => {
    const d = run('postcopy-after:2', series([[1, 512], [2, 300], [2, 200], [3, 290], [4, 280]]));
    expect(d.map((x) => [x.pass, x.action])).toEqual([[1, 'keep'], [2, 'keep'], [3, 'start-postcopy']]);
    expect(d[2]!.why).toBe('2 pre-copy passes done, 290.0 MiB left: the rest moves by post-copy');
  });
});

describe('auto-converge', () => {
  it("records QEMU's throttle at each pass", () => {
    const samples = series([[1, 512], [2, 300]]).map((s, i) => ({ ...s, cpuThrottlePercent: i * 20 }));
    expect(run('auto-converge', samples)[1]!.why).toMatch(/^QEMU throttles the vCPUs \(20 % now\)/);
  });
});

describe('auto', () => {
  it('switches like local-minimum when what is left fits in its max', () => {
    const d = run('auto:max=2s', series([[1, 512], [2, 200], [3, 150], [4, 148]]));
    expect(d[3]!.action).toBe('set-downtime-limit');
  });

  it('goes to post-copy when what is left would need more than its max, and decides nothing after', () => {
    const d = run('auto:max=1s', series([[1, 512], [2, 256], [3, 256], [4, 255], [5, 250]]));
    expect(d.map((x) => x.action)).toEqual(['keep', 'keep', 'start-postcopy']);
    expect(d[2]!.why).toMatch(/needs about 2\d{3} ms, more than max 1000 ms: post-copy instead/);
    expect(startPolicy(parsePolicy('auto'), { memoryMiB: 512, downtimeLimitMs: 300 }).capabilities).toEqual(['postcopy-ram']);
  });
});

describe('on a recorded series: a guest dirtying at twice the link, which QEMU alone never switched over', () => {
  const recorded = JSON.parse(readFileSync(new URL('../../fixtures/switchover/qemu-default-2x-link.json', import.meta.url), 'utf8')) as { samples: Sample[] };
  const on = (policy: string) => run(policy, recorded.samples);

  it('qemu-default keeps going at every pass (11 passes in 20 s)', () => {
    const d = on('qemu-default');
    expect(d.map((x) => x.pass)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(d.every((x) => x.action === 'keep')).toBe(true);
  });

  it('local-minimum sees the bytes left stop falling at pass 5 (207.9 -> 203.5 MiB), and switches there when max allows the 2.2 s they need', () => {
    const tight = on('local-minimum:max=2s');
    expect(tight.every((x) => x.action === 'keep')).toBe(true);
    expect(tight[4]!.why).toMatch(/^stopped falling \(207\.9 MiB -> 203\.5 MiB, 2 %\), but sending it at 113 MiB\/s needs about 2170 ms, more than max 2000 ms$/);
    const roomy = on('local-minimum:max=3s');
    expect(roomy.filter((x) => x.action !== 'keep').map((x) => [x.pass, x.downtimeLimitMs])).toEqual([[5, 2170]]);
  });

  it('auto goes to post-copy at that pass, where local-minimum:max=2s would keep going', () => {
    expect(on('auto:max=2s').filter((x) => x.action !== 'keep').map((x) => [x.pass, x.action])).toEqual([[5, 'start-postcopy']]);
  });

  it('postcopy-after:2 starts post-copy as pass 3 begins', () => {
    expect(on('postcopy-after:2').filter((x) => x.action !== 'keep').map((x) => [x.pass, x.action, x.remainingBytes! > 200 * MiB])).toEqual([[3, 'start-postcopy', true]]);
  });
});
