// Sizes, rates and ports as the user types them ("256M", "1GiB", "200M/s", "4444"), parsed into
// numbers whose unit is in the name. Binary prefixes throughout, as QEMU uses them.
import { UsageError } from '../errors.js';

const SIZE_RE = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i;
const FACTOR: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** Parse "256M", "1G", "512MiB", "65536" (bytes) into bytes. */
export function parseSizeBytes(text: string, what = 'size'): number {
  const m = SIZE_RE.exec(text.trim());
  if (!m) throw new UsageError(`invalid ${what} "${text}"`, 'use a number with an optional unit, e.g. 256M or 1G');
  const bytes = Number(m[1]) * (FACTOR[(m[2] ?? '').toLowerCase()] ?? 1);
  if (!Number.isFinite(bytes) || bytes <= 0) throw new UsageError(`invalid ${what} "${text}"`, 'it must be greater than zero');
  return Math.round(bytes);
}

/** Parse a size where a bare number means MiB (as QEMU's -m does). */
export function parseSizeMiB(text: string | number, what = 'memory size'): number {
  if (typeof text === 'number') return text;
  const bare = /^\d+$/.test(text.trim());
  const mib = bare ? Number(text) : parseSizeBytes(text, what) / 1024 ** 2;
  if (!Number.isInteger(mib) || mib <= 0) throw new UsageError(`invalid ${what} "${text}"`, 'give a whole number of MiB, e.g. 256 or 1G');
  return mib;
}

/** Parse "200M/s", "1G/s", "100MiB/s" or a bare number of MiB/s into MiB/s. */
export function parseRateMiBps(text: string, what = 'rate'): number {
  const t = text.trim().replace(/\/s$/i, '').replace(/ps$/i, '');
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t);
  if (!SIZE_RE.test(t)) throw new UsageError(`invalid ${what} "${text}"`, 'use a rate in bytes per second, e.g. 128M/s or 1G/s');
  return parseSizeBytes(t, what) / 1024 ** 2;
}

/** Parse "100mbit", "1gbit", "10Mbit" (tc's style) into Mbit/s. */
export function parseBitRateMbps(text: string, what = 'bandwidth'): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg])bit$/i.exec(text.trim());
  if (!m) throw new UsageError(`invalid ${what} "${text}"`, 'use e.g. 100mbit or 1gbit');
  const f = { k: 1 / 1000, m: 1, g: 1000 }[(m[2] ?? 'm').toLowerCase() as 'k' | 'm' | 'g'];
  return Number(m[1]) * f;
}

export function parsePort(value: string | number, what = 'port'): number {
  const n = typeof value === 'number' ? value : /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UsageError(`invalid ${what} "${value}"`, 'use a number from 1 to 65535');
  return n;
}

export function parseDurationMs(text: string, what = 'duration'): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`invalid ${what} "${text}"`, 'use e.g. 500ms, 30s or 2m');
  const f = { ms: 1, s: 1000, m: 60000 }[(m[2] ?? 'ms').toLowerCase() as 'ms' | 's' | 'm'];
  return Math.round(Number(m[1]) * f);
}

export const MiB = 1024 * 1024;
