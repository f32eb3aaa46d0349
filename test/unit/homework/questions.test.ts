// The homework's questions E and F, answered from a run's own figures: section 3's migration (the
// recorded quick homework in test/fixtures/results/homework.json) and a COLO run's summary (the
// figures of a real quick run here, 11.1.3 under TCG). Nothing is said that the run did not measure.
import { describe, expect, it } from '@jest/globals';
import { faultToleranceAnswer, faultToleranceRows, liveMigrationAnswer } from '../../../src/homework/questions.js';
import { readResult } from '../../../src/results/contract.js';
import { HOMEWORK_CONTRACT, type FaultTolerance, type HomeworkResults } from '../../../src/results/homework.js';

const fixture = (rel: string) => new URL(rel, import.meta.url).pathname;
let r: HomeworkResults;
beforeAll(async () => {
  r = await readResult(HOMEWORK_CONTRACT, fixture('../../fixtures/results/homework.json'));
});

const COLO: FaultTolerance = {
  ran: true,
  verdict: 'failed-over',
  qemuVersion: '11.1.3',
  checkpointMs: 1000,
  lockStepS: 4,
  lockStepMs: 4012,
  firstCopyMs: 689,
  checkpoints: 39,
  forcedCheckpoints: 38,
  miscompares: 38,
  pauseMedianMs: 46.4,
  pauseP90Ms: 49.6,
  pausedShare: 0.347,
  checkpointMeanBytes: 646_289,
  checkpointStreamMbps: 48.9,
  rttLockStepMs: 122.7,
  rttWithoutColoMs: 1.1,
  iperfLockStepMbps: 10.3,
  iperfWithoutColoMbps: 645.1,
  clientSilenceMs: 110,
  serviceBackAfterKillMs: 93,
  failoverPauseMs: 9.9,
  sameBoot: true,
  diskRecords: 93,
  diskBad: 0,
  diskGaps: 0,
};

describe('question E', () => {
  it("tells what section 3's migration did, in its own figures", () => {
    const o = r.during.report.outputs;
    const text = liveMigrationAnswer(r).join('\n');
    expect(text).toContain(`in ${o.dirtySyncCount} pre-copy passes over ${Math.round(o.totalTimeMs!)} ms`);
    expect(text).toContain(`${Math.round(o.downtimeMs!)} ms by QEMU's count`);
    expect(text).toMatch(/needs the source host alive until the switchover/);
  });
});

describe('question F', () => {
  it('says what COLO cost and bought in this run, against the migration', () => {
    const text = faultToleranceAnswer(COLO, r).join('\n');
    expect(text).toContain('the first full copy of the guest took 689 ms');
    expect(text).toContain('39 checkpoints in 4.0 s of lock-step, 38 of them forced by 38 miscompares');
    expect(text).toContain('paused the primary\'s guest 46 ms (median; 50 ms at the 90th percentile), 35 % of the time, and carried 631 KiB on average over the migration connection (48.9 Mbit/s of them in lock-step before iperf3');
    expect(text).toContain('took 123 ms through the comparator, against 1 ms for the same guest without COLO; iperf3 pushed 10.3 Mbit/s into it, against 645.1 Mbit/s without COLO');
    expect(text).toContain('the client was silent 110 ms and answered 93 ms after the kill, the guest was the same boot');
    expect(text).toContain(`paying ${Math.round(r.during.report.outputs.downtimeMs!)} ms of downtime in this run`);
  });

  it('says why when COLO could not run or did not fail over, and that an older file has no COLO run', () => {
    expect(faultToleranceAnswer({ ran: false, why: 'QEMU 11.1 cannot be fetched' }, r).at(-1)).toBe('COLO was not run here: QEMU 11.1 cannot be fetched.');
    expect(faultToleranceAnswer({ ...COLO, verdict: 'failed', why: 'the primary QEMU stopped answering' }, r).join('\n')).toContain('**The failover did not succeed:** the primary QEMU stopped answering.');
    expect(faultToleranceAnswer(undefined, r).at(-1)).toMatch(/predates section 5/);
    // Figures the run lacks are said to be missing, not filled in.
    expect(faultToleranceAnswer({ ran: true, verdict: 'failed-over', checkpointMs: 1000 }, r).join('\n')).toContain('n/a checkpoints in n/a s of lock-step');
  });
});

describe("section 5's table", () => {
  it('puts COLO beside the same guest without it, n/a where the run has no figure', () => {
    const rows = faultToleranceRows(COLO);
    expect(rows.find((r) => r.figure.startsWith('iperf3'))).toEqual({ figure: 'iperf3 TCP into the guest', withColo: '10.3 Mbit/s', withoutColo: '645.1 Mbit/s' });
    expect(rows.find((r) => r.figure.startsWith("client's round trip"))!.withoutColo).toBe('1.1 ms');
    expect(faultToleranceRows({ ran: true }).find((r) => r.figure.startsWith('checkpoints'))!.withColo).toBe('n/a');
  });
});
