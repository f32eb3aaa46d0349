// The runs benchmark's arithmetic: when warm and cold starts agree, and the report it writes.
import { agreement, runsMarkdown, type RunsBenchResult, type RunsCase } from '../../../src/bench/runs.js';
import { spreadCase } from '../../../src/bench/spread.js';
import { summarize } from '../../../src/stats/index.js';

describe('warm against cold', () => {
  it('agrees when the medians differ by no more than twice the larger standard deviation', () => {
    expect(agreement(summarize([100, 110, 120]), summarize([105, 115, 125]))).toMatchObject({ cold: 110, warm: 115, allowed: 20, agrees: true });
    expect(agreement(summarize([100, 101, 102]), summarize([150, 151, 152]))).toMatchObject({ agrees: false });
    expect(agreement(summarize([]), summarize([1, 2]))).toEqual({ agrees: false });
  });
});

describe('runs.md', () => {
  const c = (workload: string, start: string, boot: number[], overhead: number[]): RunsCase => ({
    workload,
    start,
    runs: boot.length,
    bootMs: summarize(boot),
    wallMs: summarize([6000]),
    overheadMs: summarize(overhead),
    totalTimeMs: summarize([2000, 2100]),
    downtimeMs: summarize([50, 60]),
    clientDowntimeMs: summarize([90]),
    silenceExcessMs: summarize([60, 70]),
    silenceMedians: { beforeStop: 1, paused: 30, announce: 0.1, guestFirst: 35, reply: 25 },
    transferredMiB: summarize([84]),
    processMsAtStart: summarize([870]),
    afterRunMs: summarize([650]),
    stepMedians: { bootToHeartbeat: boot[0]!, verify: 500 },
    spread: spreadCase(`${workload} ${start}`, [
      { ok: true, totalTimeMs: 2000, downtimeMs: 50 },
      { ok: true, totalTimeMs: 2100, downtimeMs: 60 },
    ]),
  });
  const result: RunsBenchResult = {
    benchmark: 'per-run cost',
    measuredAt: '2026-12-03T23:00:00.000Z',
    link: '1000 Mbit/s',
    memoryMiB: 512,
    repetitions: 2,
    aims: { coldBootMs: 2000, overheadMs: 3000, spreadCv: 0.1, silenceExcessMs: 10 },
    cases: [c('idle', 'cold', [2100, 2200], [4700, 4800]), c('idle', 'warm', [1300, 1350], [3900, 4000])],
    warmAgrees: [{ workload: 'idle', figure: 'totalTimeMs', cold: 2050, warm: 2060, allowed: 141, agrees: true }],
    samplingCost: {
      windowMs: 5000,
      aimPct: 2,
      totalPct: 3.5,
      samplers: [
        { sampler: 'query-migrate (QMP)', intervalMs: 10, samples: 450, cpuMs: { miglab: 50, commands: 0, qemu: 25 }, pctOfCpu: 1.5 },
        { sampler: 'client probe (miglab-probe ping)', intervalMs: 1, samples: 5000, cpuMs: { probe: 100 }, pctOfCpu: 2 },
      ],
    },
    rows: [],
    previous: { measuredAt: '2026-12-01T00:00:00.000Z', cases: [c('idle', 'cold', [3700], [6800])] },
  };

  it('shows each case beside the previous file\'s figures, where the overhead went, and warm against cold', () => {
    const md = runsMarkdown(result);
    expect(md).toMatch(/^\| idle \| cold \| 2 \| 2,150 ms \(2,100 ms-2,200 ms\) \| 3,700 ms \| 4,750 ms \(4,700 ms-4,800 ms\) \| 6,800 ms \|/m);
    // No previous figures for a case the last file did not have.
    expect(md).toMatch(/^\| idle \| warm \| 2 \| 1,325 ms \(1,300 ms-1,350 ms\) \| - \| 3,950 ms \(3,900 ms-4,000 ms\) \| - \|/m);
    expect(md).toMatch(/^\| before the run \| 870 ms \| 870 ms \|$/m);
    expect(md).toMatch(/^\| bootToHeartbeat \| 2,100 ms \| 1,300 ms \|$/m);
    // Where the client's silence went, a stretch a row, a case a column.
    expect(md).toMatch(/^\| RESUME to QEMU's first announce at the switch \| 0\.10 ms \| 0\.10 ms \|$/m);
    expect(md).toMatch(/^\| to the guest's first frame from the destination \| 35 ms \| 35 ms \|$/m);
    // What sampling costs: each sampler, who spent the CPU, and the aim judged on the total.
    expect(md).toContain('as miglab samples now: 3.50 % (aim: under 2 %, NOT met)');
    expect(md).toMatch(/^\| query-migrate \(QMP\) \| 10 ms \| 450 \| miglab 50 ms, commands 0.00 ms, qemu 25 ms \| 1.50 % \| - \|$/m);
    expect(md).toMatch(/^\| idle \| totalTimeMs \| 2050.0 \| 2060.0 \| 141.0 \| yes \|$/m);
    // The spread of each case, judged on both figures: downtimes of 50 and 60 ms vary by 12.9 %.
    expect(md).toContain('| idle cold | 2 | 2,050 ms (CV 3.4%, sd 71 ms) | 55 ms (CV 12.9%, sd 7.1 ms) | NOT met |');
  });
});
