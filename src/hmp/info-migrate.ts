// Parser for HMP `info migrate`, text -> the same MigrationInfo record QMP gives. Pure.
// Two layouts exist:
//  - QEMU up to 10.0: one "name: value unit" per line ("transferred ram: 749 kbytes");
//  - QEMU 10.1 and later: grouped lines of key=value ("Time (ms): total=47317, setup=5",
//    "RAM info:", "  Sizes: pagesize=4 KiB, total=4.02 GiB", ...), with an interim variant
//    ("Sizes (KiB): pagesize=4, total=...,") in between.
// Unknown lines are ignored, so new QEMU lines do not break it. Byte counts are as precise as
// the text: KiB-truncated in the old layout, three significant digits in the new one.
import { compact, type MigrationInfo, type RamStats, type XbzrleCacheStats } from '../migration/info.js';
import { stripTerminalCodes } from './clean.js';

const SIZE_FACTOR: Record<string, number> = {
  b: 1,
  byte: 1,
  bytes: 1,
  kbytes: 1024,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
  pib: 1024 ** 5,
  eib: 1024 ** 6,
};

/** "749 kbytes", "4.02 GiB", "0 B", "67108864 bytes" -> bytes; a bare number uses `bareFactor`. */
export function parseHmpSize(text: string, bareFactor = 1): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  if (!m) return undefined;
  const unit = (m[2] ?? '').toLowerCase();
  const factor = unit === '' ? bareFactor : SIZE_FACTOR[unit];
  if (factor === undefined) return undefined;
  return Math.round(Number(m[1]) * factor);
}

/** "106 ms", "66.34 mbps", "32787 pages", "3", "0.00" -> the number. */
export function parseHmpNumber(text: string): number | undefined {
  const m = /^\s*(-?\d+(?:\.\d+)?)(?:\s*[a-z%/]+)?\s*$/i.exec(text);
  return m ? Number(m[1]) : undefined;
}

type Setter = (value: string, acc: Acc) => void;
type Acc = { info: Partial<MigrationInfo>; ram: RamStats; xbzrle: XbzrleCacheStats; blocked: string[] };

const size =
  (field: keyof RamStats, bare = 1): Setter =>
  (v, a) => {
    const n = parseHmpSize(v, bare);
    if (n !== undefined) a.ram[field] = n;
  };
const count =
  (field: keyof RamStats): Setter =>
  (v, a) => {
    const n = parseHmpNumber(v);
    if (n !== undefined) a.ram[field] = n;
  };
const xsize =
  (field: keyof XbzrleCacheStats): Setter =>
  (v, a) => {
    const n = parseHmpSize(v);
    if (n !== undefined) a.xbzrle[field] = n;
  };
const xcount =
  (field: keyof XbzrleCacheStats): Setter =>
  (v, a) => {
    const n = parseHmpNumber(v);
    if (n !== undefined) a.xbzrle[field] = n;
  };
const top =
  (field: 'totalTimeMs' | 'downtimeMs' | 'expectedDowntimeMs' | 'setupTimeMs' | 'cpuThrottlePercent'): Setter =>
  (v, a) => {
    const n = parseHmpNumber(v);
    if (n !== undefined) a.info[field] = n;
  };
const status: Setter = (v, a) => {
  const m = /^(\S+)(?:\s+\((.*)\))?\s*$/.exec(v.trim());
  if (!m) return;
  a.info.status = m[1]!;
  if (m[2] !== undefined) a.info.errorDesc = m[2];
};

/** Old layout: "name: value" lines. */
const LINE_FIELDS: Record<string, Setter> = {
  'migration status': status,
  'total time': top('totalTimeMs'),
  'expected downtime': top('expectedDowntimeMs'),
  downtime: top('downtimeMs'),
  setup: top('setupTimeMs'),
  'transferred ram': size('transferredBytes'),
  throughput: count('mbps'),
  'remaining ram': size('remainingBytes'),
  'total ram': size('totalBytes'),
  duplicate: count('duplicatePages'),
  normal: count('normalPages'),
  'normal bytes': size('normalBytes'),
  'dirty sync count': count('dirtySyncCount'),
  'page size': size('pageSizeBytes'),
  'multifd bytes': size('multifdBytes'),
  'pages-per-second': count('pagesPerSecond'),
  'dirty pages rate': count('dirtyPagesRate'),
  'postcopy request count': count('postcopyRequests'),
  'precopy ram': size('precopyBytes'),
  'downtime ram': size('downtimeBytes'),
  'postcopy ram': size('postcopyBytes'),
  'cache size': xsize('cacheSizeBytes'),
  'xbzrle transferred': xsize('transferredBytes'),
  'xbzrle pages': xcount('pages'),
  'xbzrle cache miss': xcount('cacheMissPages'),
  'xbzrle cache miss rate': xcount('cacheMissRate'),
  'xbzrle encoding rate': xcount('encodingRate'),
  'xbzrle overflow': xcount('overflow'),
  'cpu throttle percentage': top('cpuThrottlePercent'),
  // New layout, single values.
  status,
  'throughput (mbps)': count('mbps'),
  'cpu throttle (%)': top('cpuThrottlePercent'),
};

type Group = 'time' | 'sizes' | 'sizes-kib' | 'pages' | 'rates' | 'others' | 'xbzrle';

/** New layout: which group a label opens. */
function groupOf(label: string): Group | undefined {
  const l = label.toLowerCase();
  if (l.startsWith('time')) return 'time';
  if (l.startsWith('sizes') || l.startsWith('transfers') || l.startsWith('channels')) return l.includes('(kib)') ? 'sizes-kib' : 'sizes';
  if (l.startsWith('page rates')) return 'rates';
  if (l.startsWith('page')) return 'pages';
  if (l.startsWith('others')) return 'others';
  if (l.startsWith('xbzrle')) return 'xbzrle';
  return undefined;
}

const sizeKeys: Record<string, keyof RamStats> = {
  pagesize: 'pageSizeBytes',
  total: 'totalBytes',
  transferred: 'transferredBytes',
  remain: 'remainingBytes',
  precopy: 'precopyBytes',
  multifd: 'multifdBytes',
  postcopy: 'postcopyBytes',
};

/** New layout: key=value pairs by group. */
function setPair(group: Group, key: string, value: string, a: Acc): void {
  switch (group) {
    case 'time': {
      const f = { total: 'totalTimeMs', setup: 'setupTimeMs', exp_down: 'expectedDowntimeMs', down: 'downtimeMs' } as const;
      const field = f[key as keyof typeof f];
      if (field) top(field)(value, a);
      return;
    }
    case 'sizes':
    case 'sizes-kib': {
      const field = sizeKeys[key];
      if (field) size(field, group === 'sizes-kib' ? 1024 : 1)(value, a);
      return;
    }
    case 'pages':
    case 'rates':
    case 'others': {
      const f: Record<string, keyof RamStats> = {
        normal: 'normalPages',
        zero: 'duplicatePages',
        rate_per_sec: 'pagesPerSecond',
        transfer: 'pagesPerSecond',
        dirty: 'dirtyPagesRate',
        dirty_pages_rate: 'dirtyPagesRate',
        dirty_syncs: 'dirtySyncCount',
        postcopy_req: 'postcopyRequests',
        downtime_bytes: 'downtimeBytes',
        downtime_ram: 'downtimeBytes',
      };
      const field = f[key];
      if (field) count(field)(value, a);
      return;
    }
    case 'xbzrle': {
      const f: Record<string, keyof XbzrleCacheStats> = {
        size: 'cacheSizeBytes',
        transferred: 'transferredBytes',
        pages: 'pages',
        miss: 'cacheMissPages',
        miss_rate: 'cacheMissRate',
        encode_rate: 'encodingRate',
        overflow: 'overflow',
      };
      const field = f[key];
      if (field) (field === 'cacheSizeBytes' || field === 'transferredBytes' ? xsize(field) : xcount(field))(value, a);
      return;
    }
  }
}

const PAIR = /([a-z_]+)=([^,]*)/gi;

/** Parse the text of `info migrate` (escape codes, echo and prompt are tolerated). */
export function parseInfoMigrate(text: string): MigrationInfo {
  const a: Acc = { info: {}, ram: {}, xbzrle: {}, blocked: [] };
  let group: Group | undefined;
  let inBlocked = false;
  for (const rawLine of stripTerminalCodes(text).split('\n')) {
    const line = rawLine.replace(/\t/g, ' ');
    if (line.trim() === '') continue;
    if (inBlocked) {
      if (/^\s+/.test(line)) {
        a.blocked.push(line.trim());
        continue;
      }
      inBlocked = false;
    }
    const labelled = /^\s*([^=:]+?)\s*:\s*(.*)$/.exec(line);
    if (labelled) {
      const label = labelled[1]!.trim();
      const value = labelled[2]!.trim();
      if (label === 'Outgoing migration blocked') {
        inBlocked = true;
        continue;
      }
      const setter = LINE_FIELDS[label.toLowerCase()];
      if (setter && !value.includes('=')) {
        setter(value, a);
        group = undefined;
        continue;
      }
      group = groupOf(label);
      if (!group) continue;
      for (const m of value.matchAll(PAIR)) setPair(group, m[1]!.toLowerCase(), m[2]!.trim(), a);
      continue;
    }
    // A continuation line of key=value pairs belongs to the last group.
    if (group && line.includes('=')) for (const m of line.matchAll(PAIR)) setPair(group, m[1]!.toLowerCase(), m[2]!.trim(), a);
  }
  const info: MigrationInfo = compact({
    ...a.info,
    status: a.info.status ?? 'none',
    blockedReasons: a.blocked.length > 0 ? a.blocked : undefined,
  });
  if (Object.keys(a.ram).length > 0) info.ram = compact(a.ram);
  if (Object.keys(a.xbzrle).length > 0) info.xbzrle = compact(a.xbzrle);
  return info;
}
