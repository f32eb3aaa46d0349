// A series of COLO runs summed up per checkpoint interval: medians over the runs that gave a
// figure, failures counted and named once, nothing made up for a run that lacks a figure.
import { describe, expect, it } from '@jest/globals';
import { seriesRow } from '../../../src/colo/series.js';
import { spread, type ColoRecord } from '../../../src/colo/record.js';

function run(o: Partial<ColoRecord['outputs']>, verdict: ColoRecord['verdict'] = 'failed-over', failure?: string): ColoRecord {
  return {
    schema: 'miglab.colo/1',
    kind: 'colo',
    runId: 'r',
    verdict,
    failure,
    startedAt: '2026-12-04T00:00:00Z',
    inputs: { qemu: { choice: '11.1', version: '11.1.3', origin: 'o' }, memoryMiB: 128, checkpointMs: 1000, lockStepS: 10, diskRateKiBps: 64, probeIntervalMs: 100, iperfS: 3, failure: 'kill', commands: {} },
    steps: [],
    outputs: o,
    phasesMs: {},
  };
}

const cp = (count: number, lockStepMs: number, pauses: number[], share: number) => ({ count, lockStepMs, intervalMs: spread([]), pauseMs: spread(pauses), pausedShare: share, dirtyPages: spread([]), miscompares: 0, forced: 0 });

describe('seriesRow', () => {
  it('takes the medians of the runs that gave each figure', () => {
    const row = seriesRow(1000, [
      run({ checkpoints: cp(20, 10000, [40, 50], 0.1), iperfInLockStep: { mbps: 10, seconds: 3 }, iperfWithoutColo: { mbps: 600, seconds: 3 }, clientSilenceMs: 120, serviceBackAfterKillMs: 100, streams: { fromMs: 0, toMs: 1, checkpoints: 10, checkpointMeanBytes: 512 * 1024, migration: { bytesToSecondary: 1, bytesFromSecondary: 0, mbpsToSecondary: 40 } } }),
      run({ checkpoints: cp(40, 10000, [60], 0.3), iperfInLockStep: { mbps: 14, seconds: 3 }, iperfWithoutColo: { mbps: 640, seconds: 3 }, clientSilenceMs: 140, serviceBackAfterKillMs: 110, streams: { fromMs: 0, toMs: 1, checkpoints: 10, checkpointMeanBytes: 1024 * 1024, migration: { bytesToSecondary: 1, bytesFromSecondary: 0, mbpsToSecondary: 60 } } }),
      run({}, 'failed', 'the primary QEMU stopped answering'),
      run({}, 'failed', 'the primary QEMU stopped answering'),
    ]);
    expect(row).toMatchObject({ checkpointMs: 1000, runs: 4, failedOver: 2, checkpointsPerS: 3, pauseMedianMs: 52.5, pausedSharePct: 20, iperfColoMbps: 12, iperfWithoutMbps: 620, clientSilenceMs: 130, serviceBackMs: 105, checkpointKiB: 768, checkpointStreamMbps: 50 });
    expect(row.failures).toEqual(['the primary QEMU stopped answering']);
    expect(row.rttColoMs).toBeUndefined();
  });
});
