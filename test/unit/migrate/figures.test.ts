import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clientDowntimeWindow, switchoverMs } from '../../../src/migrate/downtimes.js';
import { detectStall, figuresPending, headlineFigures, lastActiveSample, settleCompleted } from '../../../src/migrate/figures.js';
import { QmpMigrationDriver } from '../../../src/migrate/monitor.js';
import type { EventRecord, Sample } from '../../../src/migrate/report.js';
import { QmpClient } from '../../../src/qmp/client.js';
import { FakeQmpServer } from '../../support/fake-qmp.js';

const dir = mkdtempSync(join(tmpdir(), 'miglab-figures-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const events: EventRecord[] = [
  { tMs: 5, side: 'source', event: 'MIGRATION', data: { status: 'setup' } },
  { tMs: 600, side: 'source', event: 'STOP' },
  { tMs: 631.5, side: 'destination', event: 'RESUME' },
  { tMs: 640, side: 'source', event: 'MIGRATION', data: { status: 'completed' } },
];

describe('honest headline figures', () => {
  it('treats a completed record without its time figures as not yet final', () => {
    expect(figuresPending({ status: 'completed', totalTimeMs: 0, downtimeMs: 0 })).toBe(true);
    expect(figuresPending({ status: 'completed' })).toBe(true);
    expect(figuresPending({ status: 'completed', totalTimeMs: 612, downtimeMs: 0 })).toBe(false);
    expect(figuresPending({ status: 'active', totalTimeMs: 0 })).toBe(false);
  });

  it("takes QEMU's figures when it gave them", () => {
    const h = headlineFigures({ status: 'completed', totalTimeMs: 612, downtimeMs: 11, setupTimeMs: 3 }, events, 2);
    expect(h).toEqual({ totalTimeMs: 612, downtimeMs: 11, setupTimeMs: 3, sources: { totalTimeMs: 'qemu', downtimeMs: 'qemu' }, requeries: 2 });
  });

  it("falls back to QEMU's event stamps, and says so, when the figures never came", () => {
    const h = headlineFigures({ status: 'completed', totalTimeMs: 0, downtimeMs: 0, setupTimeMs: 0 }, events);
    expect(h.totalTimeMs).toBe(640);
    expect(h.downtimeMs).toBe(Math.round(631.5 - 600));
    expect(h.setupTimeMs).toBeUndefined();
    expect(h.sources).toEqual({ totalTimeMs: 'events', downtimeMs: 'events' });
  });

  it('leaves a figure out (never 0) when there is nothing to fall back on', () => {
    const h = headlineFigures({ status: 'completed', totalTimeMs: 0, downtimeMs: 0 }, []);
    expect(h.totalTimeMs).toBeUndefined();
    expect(h.downtimeMs).toBeUndefined();
    expect(h.sources).toEqual({ totalTimeMs: 'missing', downtimeMs: 'missing' });
    // A migration that never switched over has no downtime at all.
    const cancelled = headlineFigures({ status: 'cancelled' }, events);
    expect(cancelled.downtimeMs).toBeUndefined();
    expect(cancelled.sources).toEqual({ downtimeMs: 'missing', totalTimeMs: 'missing' });
    expect(headlineFigures(undefined, events).sources).toEqual({ totalTimeMs: 'missing', downtimeMs: 'missing' });
  });

  it('measures STOP to RESUME only in that order', () => {
    expect(switchoverMs(events)).toBeCloseTo(31.5);
    expect(switchoverMs([{ tMs: 10, side: 'destination', event: 'RESUME' }, { tMs: 20, side: 'source', event: 'STOP' }])).toBeUndefined();
  });

  it("takes QEMU's total with the events' downtime when the completed record has no downtime, and says so", () => {
    const h = headlineFigures({ status: 'completed', totalTimeMs: 612, setupTimeMs: 3 }, events);
    expect(h.totalTimeMs).toBe(612);
    expect(h.downtimeMs).toBe(Math.round(switchoverMs(events)!));
    expect(h.sources).toEqual({ totalTimeMs: 'qemu', downtimeMs: 'events' });
  });

  it("judges the client's silence from just before STOP to 2 s after RESUME, on the migrate command's clock", () => {
    const w = clientDowntimeWindow([{ tMs: 500, side: 'source', event: 'STOP' }, { tMs: 530, side: 'destination', event: 'RESUME' }], 1_000_000);
    expect(w).toEqual({ fromMs: 1_000_450, toMs: 1_002_530 });
    expect(clientDowntimeWindow([{ tMs: 500, side: 'source', event: 'STOP' }], 0)).toBeUndefined();
  });

  it('asks QEMU again (over a real socket) until the completed record has its figures', async () => {
    let calls = 0;
    const fake = await FakeQmpServer.start(join(dir, 'qmp.sock'), {
      handlers: {
        'query-migrate': () => {
          calls++;
          // What QEMU 7.2 answers between the state change and migration_calculate_complete.
          return calls < 3 ? { return: { status: 'completed', 'total-time': 0, downtime: 0, ram: { transferred: 100 } } } : { return: { status: 'completed', 'total-time': 733, downtime: 9, ram: { transferred: 100 } } };
        },
      },
    });
    const qmp = await QmpClient.connect(fake.path, { timeoutMs: 2000 });
    try {
      const driver = new QmpMigrationDriver(qmp);
      const first = await driver.info();
      const settled = await settleCompleted(first, () => driver.info(), { timeoutMs: 2000, intervalMs: 5 });
      expect(settled.requeries).toBe(2);
      expect(settled.info).toMatchObject({ totalTimeMs: 733, downtimeMs: 9 });
      expect(headlineFigures(settled.info, [], settled.requeries).sources.totalTimeMs).toBe('qemu');

      // QEMU never fills them in: the wait ends at its deadline with the zeros, which are then not kept.
      fake.on('query-migrate', () => ({ return: { status: 'completed', 'total-time': 0, downtime: 0 } }));
      const stuck = await settleCompleted(await driver.info(), () => driver.info(), { timeoutMs: 100, intervalMs: 10 });
      expect(figuresPending(stuck.info)).toBe(true);
      expect(headlineFigures(stuck.info, events).sources).toEqual({ totalTimeMs: 'events', downtimeMs: 'events' });
    } finally {
      await qmp.close();
      await fake.close();
    }
  });
});

const s = (tMs: number, status: string, transferredBytes?: number, remainingBytes?: number): Sample => ({ tMs, status, transferredBytes, remainingBytes, dirtyPagesRate: 7 });

describe('stalled against not converging', () => {
  it('calls a migration stalled only when no byte has moved for the limit', () => {
    const moving = [s(0, 'active', 0), s(1000, 'active', 10), s(2000, 'active', 20), s(3000, 'active', 30)];
    expect(detectStall(moving, 1000)).toBeUndefined();
    const stuck = [s(0, 'active', 0), s(1000, 'active', 10), s(2000, 'active', 10), s(9000, 'active', 10), s(12000, 'active', 10)];
    expect(detectStall(stuck, 11001)).toBeUndefined();
    expect(detectStall(stuck, 11000)).toEqual({ sinceMs: 1000, forMs: 11000, transferredBytes: 10, status: 'active', samples: 4 });
    // Never connected (still in setup, nothing sent): counted from the migrate command.
    expect(detectStall([s(100, 'setup'), s(5000, 'setup')], 5000)).toMatchObject({ sinceMs: 0, forMs: 5000, status: 'setup' });
    // A finished migration is not stalled.
    expect(detectStall([s(0, 'active', 5), s(20000, 'completed', 5)], 1000)).toBeUndefined();
  });

  it("keeps the last active sample's remaining bytes and dirty rate for a cancelled run", () => {
    const t = [s(0, 'setup'), s(100, 'active', 10, 500), s(200, 'active', 20, 400), s(300, 'cancelling'), s(350, 'cancelled')];
    expect(lastActiveSample(t)).toEqual(s(200, 'active', 20, 400));
    expect(lastActiveSample([s(0, 'setup')])).toBeUndefined();
  });
});
