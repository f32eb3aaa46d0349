// The typed migration record both monitors produce. QMP `query-migrate` (fromQueryMigrate) and
// HMP `info migrate` (src/hmp/info-migrate.ts) map into this one shape, with units in the names,
// so the rest of miglab never cares which monitor a sample came from.
//
// Precision differs by monitor: QMP gives exact bytes; QEMU 7.2-9.x HMP prints bytes truncated to
// KiB, and QEMU 10.1+ HMP prints sizes with three significant digits ("1.41 GiB").
import { z } from 'zod';
import { MiglabError } from '../errors.js';

/** Every status QEMU's MigrationStatus enum has had (qapi/migration.json). */
export const MIGRATION_STATUSES = [
  'none',
  'setup',
  'cancelling',
  'cancelled',
  'active',
  'postcopy-device',
  'postcopy-active',
  'postcopy-paused',
  'postcopy-recover-setup',
  'postcopy-recover',
  'completed',
  'failed',
  'colo',
  'pre-switchover',
  'device',
  'wait-unplug',
] as const;
export type KnownMigrationStatus = (typeof MIGRATION_STATUSES)[number];
/** A newer QEMU may report a status this list lacks; it is kept as QEMU spelled it. */
export type MigrationStatus = KnownMigrationStatus | (string & {});

/** Statuses after which nothing more happens to this migration. */
export const FINAL_MIGRATION_STATUSES: readonly MigrationStatus[] = ['completed', 'failed', 'cancelled'];

export function isFinalMigrationStatus(status: MigrationStatus): boolean {
  return FINAL_MIGRATION_STATUSES.includes(status);
}

export interface RamStats {
  transferredBytes?: number;
  totalBytes?: number;
  remainingBytes?: number;
  /** Zero pages ("duplicate" in QMP, "zero" in newer HMP). */
  duplicatePages?: number;
  normalPages?: number;
  normalBytes?: number;
  /** Pages dirtied per second, as QEMU estimates it. */
  dirtyPagesRate?: number;
  /** Throughput in Mbit/s as QEMU computes it. */
  mbps?: number;
  dirtySyncCount?: number;
  postcopyRequests?: number;
  pageSizeBytes?: number;
  multifdBytes?: number;
  precopyBytes?: number;
  downtimeBytes?: number;
  postcopyBytes?: number;
  pagesPerSecond?: number;
}

export interface XbzrleCacheStats {
  cacheSizeBytes?: number;
  transferredBytes?: number;
  pages?: number;
  cacheMissPages?: number;
  cacheMissRate?: number;
  encodingRate?: number;
  overflow?: number;
}

export interface MigrationInfo {
  status: MigrationStatus;
  totalTimeMs?: number;
  downtimeMs?: number;
  expectedDowntimeMs?: number;
  setupTimeMs?: number;
  ram?: RamStats;
  xbzrle?: XbzrleCacheStats;
  cpuThrottlePercent?: number;
  /** Why an outgoing migration is blocked, when QEMU says so. */
  blockedReasons?: string[];
  /** QEMU's description of a failure. */
  errorDesc?: string;
  /** Destination, with postcopy-blocktime: time all vCPUs waited for pages at once, ms. */
  postcopyBlocktimeMs?: number;
  /** Destination, with postcopy-blocktime: each vCPU's time waiting for pages, ms. */
  postcopyVcpuBlocktimeMs?: number[];
}

const num = z.number().nonnegative().optional();

const ramSchema = z.looseObject({
  transferred: num,
  remaining: num,
  total: num,
  duplicate: num,
  normal: num,
  'normal-bytes': num,
  'dirty-pages-rate': num,
  mbps: num,
  'dirty-sync-count': num,
  'postcopy-requests': num,
  'page-size': num,
  'multifd-bytes': num,
  'pages-per-second': num,
  'precopy-bytes': num,
  'downtime-bytes': num,
  'postcopy-bytes': num,
});

const xbzrleSchema = z.looseObject({
  'cache-size': num,
  bytes: num,
  pages: num,
  'cache-miss': num,
  'cache-miss-rate': num,
  'encoding-rate': num,
  overflow: num,
});

/** The `return` of QMP `query-migrate`: known fields checked, unknown ones allowed. */
export const queryMigrateSchema = z.looseObject({
  status: z.string().optional(),
  'total-time': num,
  downtime: num,
  'expected-downtime': num,
  'setup-time': num,
  ram: ramSchema.optional(),
  'xbzrle-cache': xbzrleSchema.optional(),
  'cpu-throttle-percentage': num,
  'blocked-reasons': z.array(z.string()).optional(),
  'error-desc': z.string().optional(),
  'postcopy-blocktime': num,
  'postcopy-vcpu-blocktime': z.array(z.number()).optional(),
});

export class MigrationInfoError extends MiglabError {
  constructor(problem: string, context: Record<string, unknown>) {
    super('QMP_COMMAND', `unexpected query-migrate reply: ${problem}`, { context });
    this.name = 'MigrationInfoError';
  }
}

/** Drop keys whose value is undefined so records compare equal however they were built. */
export function compact<T extends object>(obj: T): T {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as T;
}

/** Map the `return` value of QMP `query-migrate` (not the whole reply) into a MigrationInfo. */
export function fromQueryMigrate(reply: unknown): MigrationInfo {
  const parsed = queryMigrateSchema.safeParse(reply);
  if (!parsed.success) throw new MigrationInfoError(z.prettifyError(parsed.error), { reply });
  const r = parsed.data;
  const info: MigrationInfo = compact({
    status: r.status ?? 'none',
    totalTimeMs: r['total-time'],
    downtimeMs: r.downtime,
    expectedDowntimeMs: r['expected-downtime'],
    setupTimeMs: r['setup-time'],
    cpuThrottlePercent: r['cpu-throttle-percentage'],
    blockedReasons: r['blocked-reasons'],
    errorDesc: r['error-desc'],
    postcopyBlocktimeMs: r['postcopy-blocktime'],
    postcopyVcpuBlocktimeMs: r['postcopy-vcpu-blocktime'],
  });
  if (r.ram) {
    const m = r.ram;
    info.ram = compact({
      transferredBytes: m.transferred,
      totalBytes: m.total,
      remainingBytes: m.remaining,
      duplicatePages: m.duplicate,
      normalPages: m.normal,
      normalBytes: m['normal-bytes'],
      dirtyPagesRate: m['dirty-pages-rate'],
      mbps: m.mbps,
      dirtySyncCount: m['dirty-sync-count'],
      postcopyRequests: m['postcopy-requests'],
      pageSizeBytes: m['page-size'],
      multifdBytes: m['multifd-bytes'],
      precopyBytes: m['precopy-bytes'],
      downtimeBytes: m['downtime-bytes'],
      postcopyBytes: m['postcopy-bytes'],
      pagesPerSecond: m['pages-per-second'],
    });
  }
  if (r['xbzrle-cache']) {
    const x = r['xbzrle-cache'];
    info.xbzrle = compact({
      cacheSizeBytes: x['cache-size'],
      transferredBytes: x.bytes,
      pages: x.pages,
      cacheMissPages: x['cache-miss'],
      cacheMissRate: x['cache-miss-rate'],
      encodingRate: x['encoding-rate'],
      overflow: x.overflow,
    });
  }
  return info;
}
