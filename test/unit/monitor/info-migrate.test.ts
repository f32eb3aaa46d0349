// The `info migrate` parser and fromQueryMigrate on real QEMU 7.2 output and on the QEMU 10.1
// layout, and the promise that both monitors give the same record.
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseHmpSize, parseInfoMigrate } from '../../../src/hmp/info-migrate.js';
import { fromQueryMigrate, MigrationInfoError, type MigrationInfo, type RamStats } from '../../../src/migration/info.js';

const FIX = join(process.cwd(), 'test/fixtures/monitor');
const text = (p: string) => readFileSync(join(FIX, p), 'utf8');
const qmpReturn = (p: string) => (JSON.parse(text(p)) as { return: unknown }).return;

/** HMP is as precise as its text: expect each HMP number within `relTol` (or 1 KiB) of QMP's. */
function expectSameRecord(hmp: MigrationInfo, qmp: MigrationInfo, relTol: number): void {
  expect(hmp.status).toBe(qmp.status);
  for (const k of ['totalTimeMs', 'downtimeMs', 'expectedDowntimeMs', 'setupTimeMs'] as const) {
    if (hmp[k] !== undefined) expect(hmp[k]).toBe(qmp[k]);
  }
  const ramKeys = Object.keys(hmp.ram ?? {}) as (keyof RamStats)[];
  expect(ramKeys.length).toBeGreaterThan(5);
  for (const k of ramKeys) {
    const h = hmp.ram![k]!;
    const q = qmp.ram![k];
    expect(q).toBeDefined();
    const tol = Math.max(1024, Math.abs(q!) * relTol, k === 'mbps' ? 0.01 : 0);
    if (Math.abs(h - q!) > tol) throw new Error(`ram.${k}: HMP ${h} vs QMP ${q!}`);
  }
  for (const [k, v] of Object.entries(hmp.xbzrle ?? {})) {
    const q = (qmp.xbzrle as Record<string, number>)[k]!;
    expect(Math.abs(v - q)).toBeLessThanOrEqual(Math.max(1024, q * relTol));
  }
}

describe('QEMU 7.2, captured', () => {
  it('parses `info migrate` while active, echo and escape codes included', () => {
    const info = parseInfoMigrate(text('qemu-7.2/info-migrate-active.txt'));
    expect(info).toEqual({
      status: 'active',
      totalTimeMs: 3002,
      expectedDowntimeMs: 300,
      setupTimeMs: 5,
      ram: {
        transferredBytes: 215 * 1024,
        mbps: 0.53,
        remainingBytes: 81064 * 1024,
        totalBytes: 131592 * 1024,
        duplicatePages: 12606,
        normalPages: 26,
        normalBytes: 104 * 1024,
        dirtySyncCount: 1,
        pageSizeBytes: 4096,
        multifdBytes: 0,
        pagesPerSecond: 7280,
        precopyBytes: 215 * 1024,
      },
      xbzrle: { cacheSizeBytes: 67108864, transferredBytes: 0, pages: 0, cacheMissPages: 0, cacheMissRate: 0, encodingRate: 0, overflow: 0 },
    });
  });

  it('parses `info migrate` when completed', () => {
    const info = parseInfoMigrate(text('qemu-7.2/info-migrate-completed.txt'));
    expect(info).toMatchObject({ status: 'completed', totalTimeMs: 3020, downtimeMs: 3, setupTimeMs: 5 });
    expect(info.ram).toMatchObject({ transferredBytes: 915 * 1024, downtimeBytes: 206 * 1024, dirtySyncCount: 3 });
    expect(info.xbzrle?.cacheMissPages).toBe(51);
    expect(info.expectedDowntimeMs).toBeUndefined();
  });

  it('gives status none before any migration, and the destination its own view', () => {
    expect(parseInfoMigrate(text('qemu-7.2/info-migrate-none.txt'))).toEqual({ status: 'none' });
    expect(fromQueryMigrate(qmpReturn('qemu-7.2/query-migrate-none.json'))).toEqual({ status: 'none' });
    expect(parseInfoMigrate(text('qemu-7.2/info-migrate-dest.txt'))).toEqual({ status: 'completed', totalTimeMs: 0 });
    expect(fromQueryMigrate(qmpReturn('qemu-7.2/query-migrate-dest.json'))).toEqual({ status: 'completed' });
  });

  it('maps query-migrate with units in the names', () => {
    const info = fromQueryMigrate(qmpReturn('qemu-7.2/query-migrate-completed.json'));
    expect(info).toMatchObject({ status: 'completed', totalTimeMs: 3020, downtimeMs: 3, setupTimeMs: 5 });
    expect(info.ram).toMatchObject({
      transferredBytes: 937886,
      totalBytes: 134750208,
      remainingBytes: 0,
      pageSizeBytes: 4096,
      downtimeBytes: 211497,
      precopyBytes: 726389,
      mbps: 2.786268656716418,
    });
    expect(info.xbzrle).toMatchObject({ cacheSizeBytes: 67108864, cacheMissPages: 51 });
  });

  it.each(['active', 'completed'])('HMP and QMP give the same record (%s)', (state) => {
    const hmp = parseInfoMigrate(text(`qemu-7.2/info-migrate-${state}.txt`));
    const qmp = fromQueryMigrate(qmpReturn(`qemu-7.2/query-migrate-${state}.json`));
    // The HMP capture came a few ms after the QMP one while active: allow that drift.
    expectSameRecord({ ...hmp, totalTimeMs: undefined }, qmp, state === 'active' ? 0.05 : 0);
    if (state === 'completed') expect(hmp.totalTimeMs).toBe(qmp.totalTimeMs);
  });
});

describe('QEMU 10.1 layout (from QEMU source)', () => {
  it('parses the grouped layout while active', () => {
    const info = parseInfoMigrate(text('qemu-10.1/info-migrate-active.txt'));
    expect(info).toMatchObject({ status: 'active', totalTimeMs: 2214, setupTimeMs: 4, expectedDowntimeMs: 412 });
    expect(info.ram).toMatchObject({
      mbps: 1262.41,
      pageSizeBytes: 4096,
      normalPages: 84920,
      duplicatePages: 14233,
      pagesPerSecond: 38532,
      dirtyPagesRate: 23811,
      dirtySyncCount: 2,
      transferredBytes: 333 * 1024 * 1024,
    });
  });

  it.each(['active', 'completed', 'completed-all'])('HMP and QMP give the same record (%s)', (name) => {
    const hmp = parseInfoMigrate(text(`qemu-10.1/info-migrate-${name}.txt`));
    const qmp = fromQueryMigrate(qmpReturn(`qemu-10.1/query-migrate-${name.replace('-all', '')}.json`));
    expectSameRecord(hmp, qmp, 0.005); // size_to_str keeps three significant digits
  });

  it('reads XBZRLE and globals from `info migrate -a`', () => {
    const info = parseInfoMigrate(text('qemu-10.1/info-migrate-completed-all.txt'));
    expect(info.xbzrle).toEqual({
      cacheSizeBytes: 67108864,
      transferredBytes: 1204431,
      pages: 5112,
      cacheMissPages: 40711,
      cacheMissRate: 0.11,
      encodingRate: 14.62,
      overflow: 3,
    });
    expect(info.ram?.downtimeBytes).toBe(15499332);
  });

  it('parses the interim layout with KiB sizes and continuation lines', () => {
    const interim = [
      'Status: completed',
      'Time (ms): total=47317, setup=5, down=8',
      'RAM info:',
      '  Throughput (Mbps): 1342.83',
      '  Sizes (KiB): pagesize=4, total=4194304,',
      '    transferred=1478656, remain=0,',
      '    precopy=15564, multifd=0, postcopy=1457520',
      '  Pages: normal=367713, zero=41195, rate_per_sec=40900',
      '  Others: dirty_syncs=2, dirty_pages_rate=4, postcopy_req=57503, downtime_ram=123',
    ].join('\n');
    expect(parseInfoMigrate(interim)).toEqual({
      status: 'completed',
      totalTimeMs: 47317,
      setupTimeMs: 5,
      downtimeMs: 8,
      ram: {
        mbps: 1342.83,
        pageSizeBytes: 4096,
        totalBytes: 4194304 * 1024,
        transferredBytes: 1478656 * 1024,
        remainingBytes: 0,
        precopyBytes: 15564 * 1024,
        multifdBytes: 0,
        postcopyBytes: 1457520 * 1024,
        normalPages: 367713,
        duplicatePages: 41195,
        pagesPerSecond: 40900,
        dirtySyncCount: 2,
        dirtyPagesRate: 4,
        postcopyRequests: 57503,
        downtimeBytes: 123,
      },
    });
  });
});

describe('details', () => {
  it('keeps the error of a failed migration in both layouts', () => {
    expect(parseInfoMigrate("Migration status: failed (Unable to write to socket: Broken pipe)\ntotal time: 0 ms\n")).toMatchObject({
      status: 'failed',
      errorDesc: 'Unable to write to socket: Broken pipe',
    });
    expect(parseInfoMigrate('Status: \t\tfailed (Connection refused)\n')).toMatchObject({ status: 'failed', errorDesc: 'Connection refused' });
  });

  it('reads blocked reasons and ignores lines it does not know', () => {
    const info = parseInfoMigrate('Outgoing migration blocked:\n  a device is not migratable\nsome future line: 12 widgets\nMigration status: setup\n');
    expect(info).toEqual({ status: 'setup', blockedReasons: ['a device is not migratable'] });
  });

  it('converts HMP sizes', () => {
    expect(parseHmpSize('749 kbytes')).toBe(749 * 1024);
    expect(parseHmpSize('67108864 bytes')).toBe(67108864);
    expect(parseHmpSize('4.02 GiB')).toBe(Math.round(4.02 * 1024 ** 3));
    expect(parseHmpSize('0 B')).toBe(0);
    expect(parseHmpSize('4', 1024)).toBe(4096);
    expect(parseHmpSize('12 widgets')).toBeUndefined();
  });

  it('fromQueryMigrate tolerates unknown fields, keeps unknown statuses, rejects wrong types', () => {
    const info = fromQueryMigrate({ status: 'postcopy-recover-setup', 'some-new-field': { x: 1 }, ram: { transferred: 5, 'new-counter': 3 } });
    expect(info).toEqual({ status: 'postcopy-recover-setup', ram: { transferredBytes: 5 } });
    expect(() => fromQueryMigrate({ status: 'active', 'total-time': 'soon' })).toThrow(MigrationInfoError);
  });
});
