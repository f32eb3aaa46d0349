import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FaultRunner } from '../../../src/fault/runner.js';
import { driveMigration, migrationLive } from '../../../src/migrate/drive.js';
import { RunGuard } from '../../../src/migrate/guard.js';
import { QmpMigrationDriver } from '../../../src/migrate/monitor.js';
import type { Sample } from '../../../src/migrate/report.js';
import { parseScenario } from '../../../src/migrate/scenario.js';
import type { LiveUpdate, Progress } from '../../../src/progress/progress.js';
import { QmpClient } from '../../../src/qmp/client.js';
import { Teardown } from '../../../src/util/teardown.js';
import { FakeQmpServer } from '../../support/fake-qmp.js';

const dir = mkdtempSync(join(tmpdir(), 'miglab-drive-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MiB = 1024 * 1024;

/** What QEMU 7.2 answers over one migration: setup, pass 1 (dirty rate not measured: 0), pass 2 (measured), completed. */
const REPLIES = [
  { status: 'setup' },
  { status: 'active', ram: { transferred: 10 * MiB, remaining: 200 * MiB, total: 256 * MiB, 'dirty-sync-count': 1, 'dirty-pages-rate': 0, 'page-size': 4096, mbps: 800 } },
  { status: 'active', ram: { transferred: 30 * MiB, remaining: 150 * MiB, total: 256 * MiB, 'dirty-sync-count': 1, 'dirty-pages-rate': 0, 'page-size': 4096, mbps: 800 } },
  { status: 'active', ram: { transferred: 60 * MiB, remaining: 40 * MiB, total: 256 * MiB, 'dirty-sync-count': 2, 'dirty-pages-rate': 2560, 'page-size': 4096, mbps: 800 } },
  { status: 'completed', 'total-time': 400, downtime: 12, ram: { transferred: 100 * MiB, remaining: 0, total: 256 * MiB, 'dirty-sync-count': 3, 'page-size': 4096 } },
];

describe("the drive loop's live figures", () => {
  it('shows every sample it takes, with the dirty rate only once QEMU measured it, and ends the figure when it ends', async () => {
    let i = 0;
    const fake = await FakeQmpServer.start(join(dir, 'qmp.sock'), { handlers: { 'query-migrate': () => ({ return: REPLIES[Math.min(i++, REPLIES.length - 1)] }) } });
    const qmp = await QmpClient.connect(fake.path, { timeoutMs: 2000 });
    const updates: LiveUpdate[] = [];
    const notes: string[] = [];
    const progress: Progress = Object.assign((phase: string, detail?: string) => notes.push(`${phase} ${detail ?? ''}`), { live: (u: LiveUpdate) => updates.push(u) });
    const td = new Teardown();
    try {
      const scenario = parseScenario({ sampleIntervalMs: 20, timeoutMs: 30_000 });
      const timeline: Sample[] = [];
      const sentAt = Date.now();
      const faults = new FaultRunner([], { inject: () => Promise.reject(new Error('no faults here')), teardown: td, onError: () => undefined });
      const r = await driveMigration({ driver: new QmpMigrationDriver(qmp), scenario, guard: new RunGuard(), faults, timeline, progress, sentAt, completedByEvent: () => false });
      expect(r.end).toBe('final');
      expect(r.final.status).toBe('completed');

      // One figure per sample, then the end of the figure; no monitor call beyond the samples.
      expect(timeline).toHaveLength(REPLIES.length);
      expect(fake.received.filter((q) => q.execute !== 'qmp_capabilities').map((q) => q.execute)).toEqual(REPLIES.map(() => 'query-migrate'));
      expect(updates).toHaveLength(REPLIES.length + 1);
      expect(updates.every((u) => u.topic === 'run')).toBe(true);
      expect(updates[REPLIES.length]).toEqual({ topic: 'run' });
      const figures = updates.slice(0, -1).map((u) => u.status!);
      expect(figures.map((f) => f.kind === 'migration' && f.status)).toEqual(['setup', 'active', 'active', 'active', 'completed']);
      for (const f of figures) expect(f).toMatchObject({ kind: 'migration', deadlineAt: sentAt + 30_000 });
      const m = figures.map((f) => (f.kind === 'migration' ? f : undefined)!);
      // QEMU's 0 before its second dirty sync is not a rate: left out, never shown as 0.
      expect(m[1]).toMatchObject({ pass: 1, remainingBytes: 200 * MiB, pageSizeBytes: 4096 });
      expect(m[1]!.dirtyPagesPerS).toBeUndefined();
      expect(m[2]!.dirtyPagesPerS).toBeUndefined();
      expect(m[3]).toMatchObject({ pass: 2, dirtyPagesPerS: 2560, remainingBytes: 40 * MiB });
      // The send rate comes from the samples' bytes and times: 20 MiB more between samples 1 and 2.
      expect(m[0]!.sentBytesPerS).toBeUndefined();
      expect(m[1]!.sentBytesPerS).toBeUndefined();
      const expected = (20 * MiB * 1000) / (timeline[2]!.tMs - timeline[1]!.tMs);
      expect(m[2]!.sentBytesPerS).toBeCloseTo(expected, 0);
      // A run that just completes leaves no notes of its own.
      expect(notes).toEqual([]);
    } finally {
      await td.run();
      await qmp.close();
      await fake.close();
    }
  });

  it('takes the send rate over the last second of samples', () => {
    const s = (tMs: number, transferredBytes?: number): Sample => ({ tMs, status: 'active', transferredBytes });
    const timeline = [s(0), s(100, 0), s(1100, 50 * MiB), s(2000, 100 * MiB), s(2100, 110 * MiB)];
    const live = migrationLive(timeline, { status: 'active' }, 9999);
    // From the sample at 1100 ms (the newest at least 1 s older than 2100 ms): 60 MiB in 1 s.
    expect(live.sentBytesPerS).toBeCloseTo(60 * MiB, 0);
    expect(live.deadlineAt).toBe(9999);
  });
});
