// Sizes, rates, link rates, durations and ports as the user types them ("256M", "1GiB", "200M/s",
// "100mbit", "90s", "4444"), parsed into numbers whose unit is in the name. Binary prefixes for
// sizes and byte rates, as QEMU uses them (so "256M", "256MB" and "256MiB" are all 256 MiB, and
// "100MB/s" is 100 MiB/s); decimal for link rates in bits, as tc and iperf3 do.
// Each kind has its own hint, and a value of the wrong kind (a link rate given where a byte rate
// is wanted) is named as such, with the conversion, instead of a generic "use e.g. 256M".
import { UsageError } from '../errors.js';

/** The kinds of value with a unit that options take. */
export type UnitKind = 'size' | 'rate' | 'bitrate' | 'duration';

/** How to write each kind: the end of every message about one. */
export const UNIT_HINT: Readonly<Record<UnitKind, string>> = {
  size: 'a size like 256M or 1G',
  rate: 'a rate in bytes per second like 128M/s or 1G/s',
  bitrate: 'a link rate in bits per second like 100mbit or 1gbit',
  duration: 'a duration like 500ms, 90s or 2m',
};

const KIND_NAME: Readonly<Record<UnitKind, string>> = {
  size: 'a size',
  rate: 'a rate in bytes per second',
  bitrate: 'a link rate in bits per second',
  duration: 'a duration',
};

const NUM = String.raw`(\d+(?:\.\d+)?)`;
const SIZE_RE = new RegExp(`^${NUM}\\s*([kmgt]?)(?:i?b)?$`, 'i');
// A byte rate: a size per second ("200M/s", "200MiB/s", "200Mps").
const RATE_RE = new RegExp(`^${NUM}\\s*([kmgt]?)(?:i?b)?(?:/s|ps)$`, 'i');
// A link rate in bits: "100mbit", "100mbit/s", "100mbps", "1gbit" (decimal, as tc and iperf3 count).
const BITRATE_RE = new RegExp(`^${NUM}\\s*([kmgt]?)(?:bit(?:/s)?|bps)$`, 'i');
const DURATION_RE = new RegExp(`^${NUM}\\s*(ms|s|sec|m|min|h)?$`, 'i');
const VALUE_RE: Readonly<Record<UnitKind, RegExp>> = { size: SIZE_RE, rate: RATE_RE, bitrate: BITRATE_RE, duration: DURATION_RE };
const FACTOR: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
const DECIMAL: Readonly<Record<string, number>> = { '': 1e-6, k: 1e-3, m: 1, g: 1e3, t: 1e6 };
const DURATION_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, sec: 1000, m: 60000, min: 60000, h: 3600000 };

/**
 * The value as a message names it: an option with the value as typed (`--timeout 5`), anything
 * else with the value quoted (`working set "lots"`).
 */
export function subject(what: string, text: string | number): string {
  const t = String(text);
  if (!what.startsWith('-')) return `${what} "${t}"`;
  return t === '' || /\s/.test(t) ? `${what} ${JSON.stringify(t)}` : `${what} ${t}`;
}

function unitError(what: string, text: string, problem: string, fix: string): UsageError {
  return new UsageError(`${subject(what, text)}: ${problem}`, fix);
}

/** What kind of value `text` looks like, to say so when it is given where another kind is wanted. */
export function kindOf(text: string): UnitKind | undefined {
  const t = text.trim().replace(/^-/, '');
  if (BITRATE_RE.test(t)) return 'bitrate';
  if (RATE_RE.test(t)) return 'rate';
  if (/^\d+(?:\.\d+)?\s*(ms|sec|min|h)$/i.test(t) || /^\d+(?:\.\d+)?\s*s$/i.test(t)) return 'duration';
  if (SIZE_RE.test(t)) return 'size';
  return undefined;
}

/** The problem with a value that does not parse as `want`: the wrong kind, negative, or not a value at all. */
function notA(want: UnitKind, text: string, what: string, fix = `give ${UNIT_HINT[want]}`): UsageError {
  const t = text.trim();
  const got = kindOf(t);
  // "-1m" reads as a size once its sign is off; as the duration it was meant to be, it is negative.
  if (t.startsWith('-') && (VALUE_RE[want].test(t.slice(1).trim()) || /^-\d+(\.\d+)?$/.test(t))) return unitError(what, text, 'cannot be negative', fix);
  if (got && got !== want) {
    let conversion = '';
    const m = BITRATE_RE.exec(t);
    if (got === 'bitrate' && want === 'rate' && m) conversion = ` (${t} is ${formatRate(mbitToMiBps(Number(m[1]) * DECIMAL[(m[2] ?? '').toLowerCase()]!))})`;
    if (got === 'rate' && want === 'bitrate') conversion = ` (${t} is ${formatBitRate(parseRateMiBps(t) * 1024 ** 2 * 8 * 1e-6)})`;
    // The conversion says more than the bare-number note, which it replaces.
    return unitError(what, text, `that is ${KIND_NAME[got]}`, conversion ? `give ${UNIT_HINT[want]}${conversion}` : fix);
  }
  return unitError(what, text, t === '' ? 'no value' : `not ${KIND_NAME[want]}`, fix);
}

const round3 = (x: number) => Number(x.toPrecision(3));
/** A byte rate the way a user would type it back. */
/** Mbit/s (10^6 bit, as links are shaped) as MiB/s (as QEMU's max-bandwidth and figures count). */
export function mbitToMiBps(mbit: number): number {
  return (mbit * 1e6) / 8 / 1024 ** 2;
}

export function formatRate(mibps: number): string {
  return mibps >= 1024 ? `${round3(mibps / 1024)}G/s` : `${round3(mibps)}M/s`;
}
/** A link rate the way a user would type it back. */
export function formatBitRate(mbps: number): string {
  return mbps >= 1000 ? `${round3(mbps / 1000)}gbit` : `${round3(mbps)}mbit`;
}

/** Parse "256M", "1G", "512MiB", "65536" (bytes) into bytes. */
export function parseSizeBytes(text: string, what = 'size'): number {
  const m = SIZE_RE.exec(text.trim());
  if (!m) throw notA('size', text, what);
  const bytes = Number(m[1]) * (FACTOR[(m[2] ?? '').toLowerCase()] ?? 1);
  if (!Number.isFinite(bytes) || bytes <= 0) throw unitError(what, text, 'must be more than zero', `give ${UNIT_HINT.size}`);
  return Math.round(bytes);
}

/** Parse a size where a bare number means MiB (as QEMU's -m does). */
export function parseSizeMiB(text: string | number, what = 'memory size'): number {
  if (typeof text === 'number') return text;
  const fix = `give ${UNIT_HINT.size} (a bare number is MiB)`;
  if (/^\s*0+\s*$/.test(text)) throw unitError(what, text, 'must be more than zero', fix);
  const bare = /^\d+$/.test(text.trim());
  let mib: number;
  try {
    mib = bare ? Number(text) : parseSizeBytes(text, what) / 1024 ** 2;
  } catch {
    throw notA('size', text, what, fix);
  }
  if (!Number.isInteger(mib) || mib <= 0) throw unitError(what, text, 'not a whole number of MiB', fix);
  return mib;
}

/** Parse "200M/s", "1G/s", "100MiB/s" or a bare number of MiB/s into MiB/s. */
export function parseRateMiBps(text: string, what = 'rate'): number {
  const t = text.trim();
  const fix = `give ${UNIT_HINT.rate} (a bare number is MiB/s)`;
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t);
  const m = RATE_RE.exec(t);
  // "100mbps" is how people write a link speed in bits: never read it as 100 MiB/s.
  if (!m || BITRATE_RE.test(t)) throw notA('rate', text, what, fix);
  return (Number(m[1]) * (FACTOR[(m[2] ?? '').toLowerCase()] ?? 1)) / 1024 ** 2;
}

/** Parse "100mbit", "1gbit", "10Mbit/s", "100mbps" (bits per second, decimal) into Mbit/s. */
export function parseBitRateMbps(text: string, what = 'bandwidth'): number {
  const m = BITRATE_RE.exec(text.trim());
  if (!m) throw notA('bitrate', text, what);
  return Number(m[1]) * DECIMAL[(m[2] ?? '').toLowerCase()]!;
}

export function parsePort(value: string | number, what = 'port'): number {
  const n = typeof value === 'number' ? value : /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw unitError(what, String(value), 'not a port', 'give a number from 1 to 65535');
  return n;
}

/** Parse "500ms", "90s", "2m", "1.5h" into ms; a bare number is milliseconds. */
export function parseDurationMs(text: string, what = 'duration'): number {
  const m = DURATION_RE.exec(text.trim());
  if (!m) throw notA('duration', text, what, `give ${UNIT_HINT.duration} (a bare number is milliseconds)`);
  return Math.round(Number(m[1]) * DURATION_MS[(m[2] ?? 'ms').toLowerCase()]!);
}

export const MiB = 1024 * 1024;
