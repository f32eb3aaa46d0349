// Synthetic run reports for sweep tests: just the fields tables and plots read, shaped like the
// engine's, so no QEMU is needed.
import { RUN_SCHEMA, type RunReport, type Sample, type Verdict } from '../../../src/migrate/report.js';
import { parseScenario, scenarioName, type Scenario } from '../../../src/migrate/scenario.js';

export interface FakeRun {
  readonly scenario: Scenario | Parameters<typeof parseScenario>[0];
  readonly verdict?: Verdict;
  readonly downtimeMs?: number;
  readonly clientDowntimeMs?: number;
  readonly totalTimeMs?: number;
  readonly workload?: unknown;
}

const MiB = 1024 * 1024;

export function fakeReport(f: FakeRun): RunReport {
  const parsed = parseScenario(f.scenario as Parameters<typeof parseScenario>[0]);
  const scenario = (f.workload === undefined ? parsed : { ...parsed, workload: f.workload }) as Scenario;
  const verdict = f.verdict ?? 'completed';
  const completed = verdict === 'completed';
  const total = f.totalTimeMs ?? 1000;
  const timeline: Sample[] = [0, 1, 2, 3].map((i) => ({
    tMs: (i * total) / 3,
    status: i === 3 && completed ? 'completed' : 'active',
    remainingBytes: (3 - i) * 40 * MiB,
    transferredBytes: i * 40 * MiB,
    dirtySyncCount: i + 1,
  }));
  return {
    schema: RUN_SCHEMA,
    runId: `fake-${scenarioName(parsed)}`,
    name: scenarioName(parsed),
    startedAt: '2025-01-01T00:00:00.000Z',
    finishedAt: '2025-01-01T00:00:02.000Z',
    wallMs: 2000,
    ok: completed,
    verdict,
    failure: completed ? undefined : verdict === 'did-not-converge' ? 'did not converge within the deadline' : 'boom',
    inputs: { scenario } as unknown as RunReport['inputs'],
    outputs: {
      status: completed ? 'completed' : 'cancelled',
      totalTimeMs: total,
      downtimeMs: completed ? f.downtimeMs : undefined,
      setupTimeMs: 5,
      transferredBytes: 120 * MiB,
      averageThroughputMiBps: 120 / (total / 1000),
      dirtySyncCount: 4,
      ...(f.clientDowntimeMs !== undefined ? { clientDowntimeMs: f.clientDowntimeMs } : {}),
    },
    phases: {},
    timeline,
    passes: [1, 2, 3].map((pass) => ({ pass, tMs: ((pass - 1) * total) / 3, source: 'dirty-sync-count' as const })),
    events: [{ tMs: total - (f.downtimeMs ?? 0), side: 'source', event: 'STOP' }],
    files: {},
  };
}
