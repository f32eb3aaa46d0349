// The hosts benchmark's arithmetic: what a run's overhead is, how two modes' figures are compared
// (difference of means and its standard error), when SSH meets its 1 s aim and when a QEMU figure
// moved beyond run-to-run spread, and what the CSV and the summary say about it.
import { aimVerdict, benchRun, caseFigures, controlCost, hostsBenchMarkdown, hostsSpread, JUDGED_BY, modeDifference, runsCsv, SSH_COST_AIM_MS, type BenchMode, type HostsBenchResult, type HostsBenchRun } from '../../../src/bench/hosts-figures.js';
import type { RunReport } from '../../../src/results/run.js';

type Report = Pick<RunReport, 'ok' | 'verdict' | 'failure' | 'phases' | 'outputs'>;

function report(o: Partial<Report['outputs']>, phases: Record<string, number> = {}, ok = true): Report {
  return { ok, verdict: ok ? 'completed' : 'failed', failure: ok ? undefined : 'the destination never resumed', phases, outputs: o as Report['outputs'] };
}

/** A run whose harness overhead is `overheadMs` around a migration of `totalTimeMs`. */
function run(mode: BenchMode, repetition: number, f: { overheadMs: number; totalTimeMs: number; downtimeMs?: number; clientDowntimeMs?: number; ok?: boolean; phases?: Record<string, number> }): HostsBenchRun {
  return benchRun({
    case: 'idle',
    mode,
    repetition,
    wallMs: f.totalTimeMs + f.overheadMs,
    runDir: `/r/${mode}${repetition}`,
    report: report({ totalTimeMs: f.totalTimeMs, downtimeMs: f.downtimeMs ?? 50, eventDowntimeMs: 70, clientDowntimeMs: f.clientDowntimeMs }, f.phases ?? { bootToHeartbeatMs: 4000 }, f.ok ?? true),
  });
}

describe('a run of the hosts bench', () => {
  it('has as overhead its wall time minus the migration, and names the time outside every phase', () => {
    const r = benchRun({ case: 'busy', mode: 'hosts', repetition: 2, wallMs: 9000, runDir: '/r', report: report({ totalTimeMs: 2500, downtimeMs: 40 }, { qemuStartMs: 500, bootToHeartbeatMs: 4000, migrationMs: 2600, cleanupMs: 900 }) });
    expect(r.overheadMs).toBe(6500);
    // QEMU's start is the first part of boot to heartbeat: counted once.
    expect(r.unphasedMs).toBe(1500);
    expect(r).toMatchObject({ case: 'busy', mode: 'hosts', ok: true, downtimeMs: 40 });
  });

  it('has no overhead when QEMU reported no total time (a run that never completed)', () => {
    expect(benchRun({ case: 'idle', mode: 'embedded', repetition: 1, wallMs: 5000, runDir: '/r', report: report({}, {}, false) }).overheadMs).toBeUndefined();
  });
});

describe('two modes compared', () => {
  it('gives the difference of means and its standard error (Welch), beyond spread when the runs do not overlap', () => {
    const d = modeDifference([100, 110, 120], [300, 310, 320]);
    expect(d.differenceMs).toBe(200);
    // Each side's standard deviation is 10 over 3 runs: sqrt(100/3 + 100/3).
    expect(d.standardErrorMs).toBeCloseTo(Math.sqrt(200 / 3), 9);
    expect(d.withinSpread).toBe(false);
    expect(d.embedded).toMatchObject({ count: 3, mean: 110, stdev: 10 });
  });

  it('is within spread when the difference is what the runs\' own scatter gives', () => {
    expect(modeDifference([100, 140, 120], [110, 130, 125]).withinSpread).toBe(true);
  });

  it('leaves spread unjudged with one run a side, and the difference undefined with none', () => {
    expect(modeDifference([100], [130])).toMatchObject({ differenceMs: 30, standardErrorMs: undefined, withinSpread: undefined });
    expect(modeDifference([], [130, 140]).differenceMs).toBeUndefined();
  });
});

describe("the SSH cost against the 1 s aim", () => {
  const cost = (differenceMs: number | undefined, standardErrorMs?: number) => ({ embedded: { count: 0 }, hosts: { count: 0 }, differenceMs, standardErrorMs });

  it('is met when even its high end is under the aim and missed when even its low end is not', () => {
    expect(aimVerdict(cost(200, 8), SSH_COST_AIM_MS)).toBe('met');
    expect(aimVerdict(cost(1500, 10), SSH_COST_AIM_MS)).toBe('missed');
  });

  it('is unclear when the aim lies within two standard errors of the cost', () => {
    expect(aimVerdict(cost(950, 50), SSH_COST_AIM_MS)).toBe('unclear');
    expect(aimVerdict(cost(1040, 50), SSH_COST_AIM_MS)).toBe('unclear');
  });

  it('takes the difference alone with one run a side, and is unknown without one', () => {
    expect(aimVerdict(cost(500), SSH_COST_AIM_MS)).toBe('met');
    expect(aimVerdict(cost(undefined), SSH_COST_AIM_MS)).toBe('unknown');
  });
});

describe('a scenario\'s figures', () => {
  const runs = [
    run('embedded', 1, { overheadMs: 5000, totalTimeMs: 2000, downtimeMs: 40, clientDowntimeMs: 150 }),
    run('hosts', 1, { overheadMs: 5300, totalTimeMs: 2100, downtimeMs: 90, clientDowntimeMs: 160 }),
    run('embedded', 2, { overheadMs: 5100, totalTimeMs: 2200, downtimeMs: 42, clientDowntimeMs: 170 }),
    run('hosts', 2, { overheadMs: 5350, totalTimeMs: 1900, downtimeMs: 92 }),
    run('embedded', 3, { overheadMs: 4900, totalTimeMs: 2100, downtimeMs: 41, clientDowntimeMs: 160 }),
    run('hosts', 3, { overheadMs: 5250, totalTimeMs: 2000, downtimeMs: 91 }),
    // A failed run is counted, and left out of every mean.
    run('hosts', 4, { overheadMs: 60_000, totalTimeMs: 1, ok: false }),
  ];
  const c = caseFigures(runs);

  it('gives the SSH cost as the overhead\'s difference and judges it', () => {
    expect(c.runs).toEqual({ embedded: 3, hosts: 3, failed: 1 });
    expect(c.sshCostMs.differenceMs).toBeCloseTo(300, 9);
    expect(c.sshCostVerdict).toBe('met');
  });

  it('names the QEMU figures that moved beyond spread, and those it could not judge', () => {
    expect(c.qemuFiguresMoved).toEqual(['downtimeMs']);
    // One hosts run reported a client downtime: too few to judge its spread.
    expect(c.qemuFiguresUnjudged).toEqual(['clientDowntimeMs']);
    expect(c.figures.totalTimeMs.withinSpread).toBe(true);
  });

  it('compares each phase of the runs', () => {
    expect(Object.keys(c.phases)).toEqual(['bootToHeartbeatMs']);
    expect(c.phases.bootToHeartbeatMs!.differenceMs).toBe(0);
  });

  it('are written one run a row, each phase a column, warm-ups marked', () => {
    const warm = run('hosts', 0, { overheadMs: 9000, totalTimeMs: 2000, phases: { qemuStartMs: 3000 } });
    const lines = runsCsv(runs, [warm]).trim().split('\n');
    expect(lines[0]).toBe('case,mode,repetition,warmup,ok,verdict,wallMs,overheadMs,unphasedMs,totalTimeMs,downtimeMs,eventDowntimeMs,clientDowntimeMs,qemuStartMs,bootToHeartbeatMs,failure,runDir');
    expect(lines).toHaveLength(1 + runs.length + 1);
    expect(lines[1]).toMatch(/^idle,hosts,0,1,1,completed,11000,9000,11000,2000,/);
  });

  it('are summed up in Markdown: the verdicts first, a figure beyond spread in bold', () => {
    const result: HostsBenchResult = {
      benchmark: 'the same migrations on both',
      measuredAt: '2026-12-02T00:00:00.000Z',
      aims: { sshCostPerRunMs: SSH_COST_AIM_MS, qemuFigures: 'no change beyond run-to-run spread' },
      judgedBy: JUDGED_BY,
      repetitions: 3,
      scenarios: { idle: { guest: { memoryMiB: 128 } } },
      setupMs: { 'embedded lab up': 1500 },
      control: { runTrue: controlCost([2, 3, 4], [20, 30, 40]), qmpQueryStatus: controlCost([0.2, 0.3], [1.5, 1.7]) },
      warmup: [],
      cases: { idle: c },
      spread: hostsSpread(runs),
      runs,
    };
    const md = hostsBenchMarkdown(result);
    expect(md).toMatch(/\*\*idle\*\*: SSH adds \+300 ms ± \d+(\.\d)? ms a run \(aim met\); QEMU figures beyond spread: downtime \(QEMU\) \(not judged: client downtime\); 1 run\(s\) failed/);
    expect(md).toMatch(/\| downtime \(QEMU\) \|.*\| \*\*beyond spread\*\* \|/);
    expect(md).toMatch(/\| total time \(QEMU\) \|.*\| within spread \|/);
    expect(md).toContain('| `true` run on the source host (Host.run) | 3.0 ms (3.8 ms), n=3 | 30 ms (38 ms), n=3 | 27 ms |');
    // Each side's spread: the embedded runs all completed and vary by about 5 %; the hosts side had a failed run.
    expect(result.spread.map((s) => [s.case, s.verdict])).toEqual([
      ['idle embedded', 'met'],
      ['idle hosts', 'not judged'],
    ]);
    expect(md).toMatch(/\| idle embedded \| 3 \| 2,100 ms \(CV 4\.8%, sd 100 ms\) \| 41 ms \(CV 2\.4%, sd 1\.0 ms\) \| met \|/);
    expect(md).toContain('| idle hosts | 3 of 4 |');
  });
});

describe('the raw cost of control', () => {
  it('compares the medians of the round trips, with their 90th percentiles', () => {
    const c = controlCost([1, 2, 3, 4, 100], [10, 11, 12, 13, 14]);
    expect(c.embedded.medianMs).toBe(3);
    expect(c.hosts.p90Ms).toBeCloseTo(13.6, 9);
    expect(c.medianDifferenceMs).toBe(9);
  });
});
