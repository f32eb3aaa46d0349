// Synthetic run reports for sweep tests: the figures tables and plots read, on top of the inputs
// of a real run (test/fixtures/results/run-idle.json), so every report passes run.json's schema
// and no QEMU is needed.
import { readFileSync } from 'node:fs';
import { RUN_SCHEMA, type RunReport, type Sample, type Verdict } from '../../../src/migrate/report.js';
import { parseResult } from '../../../src/results/contract.js';
import { RUN_CONTRACT } from '../../../src/results/run.js';
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

const REAL = parseResult(RUN_CONTRACT, JSON.parse(readFileSync(new URL('../../fixtures/results/run-idle.json', import.meta.url), 'utf8')), 'run-idle.json');

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
    inputs: { ...REAL.inputs, scenario },
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
