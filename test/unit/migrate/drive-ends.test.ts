// How the migration phase (driveMigration) ends, against a scripted QMP server on a real socket: how it
// ends a migration QEMU completes, one that never converges, one that stops moving bytes, and
// one whose monitor goes away after the completed event.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FaultRunner } from '../../../src/fault/runner.js';
import { driveMigration, type DriveOptions } from '../../../src/migrate/drive.js';
import { RunGuard, trippedError } from '../../../src/migrate/guard.js';
import { QmpMigrationDriver } from '../../../src/migrate/monitor.js';
import type { Sample } from '../../../src/migrate/report.js';
import { ScenarioSchema, type ScenarioInput } from '../../../src/migrate/scenario.js';
import { QmpClient } from '../../../src/qmp/client.js';
import { Teardown } from '../../../src/util/teardown.js';
import { FakeQmpServer } from '../../support/fake-qmp.js';

const MiB = 1024 * 1024;
let dir: string;
let fake: FakeQmpServer | undefined;
let client: QmpClient | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'miglab-drive-'));
});
afterEach(async () => {
  await client?.close();
  await fake?.close();
  client = undefined;
  fake = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** A query-migrate reply as QEMU 7.2 gives it. */
function migrating(status: string, transferredMiB: number, remainingMiB: number, passes: number) {
  return {
    return: {
      status,
      'total-time': 0,
      ram: { transferred: transferredMiB * MiB, remaining: remainingMiB * MiB, total: 128 * MiB, 'dirty-sync-count': passes, 'dirty-pages-rate': 0, mbps: 100, duplicate: 0, normal: 0, 'normal-bytes': 0, skipped: 0, 'page-size': 4096, 'multifd-bytes': 0, 'pages-per-second': 0, 'postcopy-requests': 0 },
    },
  };
}

async function drive(input: ScenarioInput, replies: (n: number, cancelled: boolean) => ReturnType<typeof migrating>, extra: Partial<DriveOptions> = {}) {
  let n = 0;
  let cancelled = false;
  fake = await FakeQmpServer.start(join(dir, 'qmp.sock'), {
    handlers: {
      'query-migrate': () => replies(n++, cancelled),
      migrate_cancel: () => {
        cancelled = true;
        return { return: {} };
      },
    },
  });
  client = await QmpClient.connect(join(dir, 'qmp.sock'), { timeoutMs: 2000 });
  const guard = new RunGuard();
  const td = new Teardown();
  const timeline: Sample[] = [];
  const lines: string[] = [];
  const faults = new FaultRunner([], { inject: () => Promise.reject(new Error('no faults here')), teardown: td, onError: () => undefined });
  const result = await driveMigration({
    driver: new QmpMigrationDriver(client),
    scenario: ScenarioSchema.parse({ sampleIntervalMs: 10, ...input }),
    guard,
    faults,
    timeline,
    progress: (phase, detail) => lines.push(`${phase} ${detail ?? ''}`),
    sentAt: Date.now(),
    completedByEvent: () => false,
    ...extra,
  });
  await td.run();
  return { result, timeline, guard, lines, sent: fake.received.map((r) => r.execute) };
}

describe('driveMigration', () => {
  it('samples until QEMU completes, keeping every sample on the timeline', async () => {
    const { result, timeline, sent } = await drive({}, (n) => (n < 3 ? migrating('active', 40 * (n + 1), 90 - 30 * n, n + 1) : migrating('completed', 130, 0, 4)));
    expect(result.end).toBe('final');
    expect(result.final.status).toBe('completed');
    expect(timeline.map((s) => s.status)).toEqual(['active', 'active', 'active', 'completed']);
    expect(sent).not.toContain('migrate_cancel');
  });

  it('cancels a migration that has not converged by the deadline, and waits for QEMU to say cancelled', async () => {
    const { result, guard, sent } = await drive({ timeoutMs: 1000 }, (n, cancelled) => (cancelled ? migrating('cancelled', n, 50, 9) : migrating('active', n, 50, Math.floor(n / 5) + 1)));
    expect(result.end).toBe('deadline');
    expect(result.final.status).toBe('cancelled');
    expect(sent.filter((c) => c === 'migrate_cancel')).toHaveLength(1);
    expect(guard.incidents.map((i) => i.source)).toContain('migration');
  });

  it('calls a migration whose transferred bytes stop growing stalled, with the evidence', async () => {
    const { result, sent } = await drive({ stallAfterMs: 1000 }, (n, cancelled) => (cancelled ? migrating('cancelled', 7, 60, 2) : migrating('active', Math.min(n, 7), 60, 2)));
    expect(result.end).toBe('stall');
    expect(result.stall?.forMs).toBeGreaterThanOrEqual(1000);
    expect(result.stall?.transferredBytes).toBe(7 * MiB);
    expect(sent).toContain('migrate_cancel');
  });

  it('a source monitor lost after its completed event is a completed migration', async () => {
    let n = 0;
    fake = await FakeQmpServer.start(join(dir, 'qmp.sock'), { handlers: { 'query-migrate': () => (n++ < 2 ? migrating('active', 10, 10, 1) : { drop: true }) } });
    client = await QmpClient.connect(join(dir, 'qmp.sock'), { timeoutMs: 2000 });
    const td = new Teardown();
    const result = await driveMigration({
      driver: new QmpMigrationDriver(client),
      scenario: ScenarioSchema.parse({ sampleIntervalMs: 10 }),
      guard: new RunGuard(),
      faults: new FaultRunner([], { inject: () => Promise.reject(new Error('none')), teardown: td, onError: () => undefined }),
      timeline: [],
      progress: () => undefined,
      sentAt: Date.now(),
      completedByEvent: () => true,
    });
    await td.run();
    expect(result).toMatchObject({ end: 'final', final: { status: 'completed' } });
  });

  it("ends at once when a watcher trips the run's guard", async () => {
    const guard = new RunGuard();
    setTimeout(() => guard.trip('qemu-exit', trippedError('qemu-exit', 'the destination QEMU exited')), 100);
    const err = await drive({}, () => migrating('active', 1, 100, 1), { guard }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(guard.tripped?.source).toBe('qemu-exit');
  });
});
