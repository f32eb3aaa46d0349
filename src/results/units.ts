// Units of saved figures, in one place: what each unit suffix of a field name means (`downtimeMs`,
// `memoryMiB`, `throughputMbps`) and the precision a figure in that unit has, so CSV cells, the
// results/README.md generator and the schemas all agree. STYLE: units live in names; this table
// is where a name's unit is read back (the schemas' field builders are in fields.ts). Sits below
// every writer and reader of results.

export interface Unit {
  /** As a person writes it next to a number: `ms`, `MiB`, `Mbit/s`. */
  readonly symbol: string;
  /** Rounds a figure to the precision it was measured with (float noise goes). */
  readonly round: (v: number) => number;
}

/** Round to `step` (0.1, 1...), without leaving float noise behind (0.30000000000000004). */
export function roundTo(v: number, step: number): number {
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return Number((Math.round(v / step) * step).toFixed(decimals));
}

/** Keep `digits` significant digits (ratios, rates of unknown range). */
export function significant(v: number, digits: number): number {
  return v === 0 || !Number.isFinite(v) ? v : Number(v.toPrecision(digits));
}

/**
 * Drop float noise only: 12 significant digits keep every digit any instrument here gives, and
 * turn 1074.0348000000001 into 1074.0348. For figures whose unit is not known.
 */
export function denoise(v: number): number {
  return Number.isInteger(v) ? v : significant(v, 12);
}

const step = (s: number) => (v: number) => roundTo(v, s);

/**
 * Suffix of a field name -> its unit. Longest suffix first (`MiBps` before `MiB`, `Ms` last among
 * time units). Precision is what the figure was measured with: times come from Date.now(),
 * QEMU's ms counters, QEMU's µs event stamps and the 1 ms probe, so 0.1 ms is kept (µs below
 * 1 ms); sizes in MiB to 0.1 (100 KiB); rates to 0.1; shares in % to 0.1; seconds to ms; dirty
 * rates (QEMU's estimate) to 4 significant digits.
 */
const SUFFIX_UNITS: readonly (readonly [RegExp, Unit])[] = [
  [/MiBps$/, { symbol: 'MiB/s', round: step(0.1) }],
  [/KiBps$/, { symbol: 'KiB/s', round: step(0.1) }],
  [/Mbps$|^mbps$/, { symbol: 'Mbit/s', round: step(0.1) }],
  [/Mbit$/, { symbol: 'Mbit/s', round: step(0.1) }],
  [/MiB$/, { symbol: 'MiB', round: step(0.1) }],
  [/KiB$/, { symbol: 'KiB', round: step(0.1) }],
  [/Bytes$|^bytes$/, { symbol: 'bytes', round: Math.round }],
  [/Us$/, { symbol: 'µs', round: Math.round }],
  // Link rates from byte counters over a sampling interval: whole bits per second.
  [/BitsPerSecond$/, { symbol: 'bit/s', round: Math.round }],
  [/PerS$|Rate$/, { symbol: '/s', round: (v) => significant(v, 4) }],
  // Sub-millisecond figures (round trips, short waits) keep µs; longer ones 0.1 ms.
  [/Ms$|^ms$/, { symbol: 'ms', round: (v) => roundTo(v, Math.abs(v) < 1 ? 0.001 : 0.1) }],
  [/(?:^t|[a-z])S$|^s$/, { symbol: 's', round: step(0.001) }],
  [/Pct$|Percent$|Avg10$|Avg60$/, { symbol: '%', round: step(0.1) }],
  [/Pages$|^pages$/, { symbol: 'pages', round: Math.round }],
  // Ratios (x lower bound, CPUs utilised: the schemas' `ratio` fields): 3 significant digits.
  [/^vs[A-Z]|Utilized$/, { symbol: 'x', round: (v) => significant(v, 3) }],
];

/** The unit a field name says it is in, if it says one. */
export function unitOfName(name: string): Unit | undefined {
  // A statistic of a figure (summary.csv's `downtimeMs_median`) has the figure's unit.
  const figure = name.replace(/_(mean|median|stdev|min|max|p\d+)$/, '');
  return SUFFIX_UNITS.find(([re]) => re.test(figure))?.[1];
}

/** A figure rounded to the precision its name's unit has (noise dropped when there is no unit). */
export function roundByName(name: string, v: number): number {
  const unit = unitOfName(name);
  if (unit) return unit.round(v);
  // A statistic of a count (passes per run: mean 3.5, stdev 0.707): 3 significant digits.
  return /_(mean|median|stdev)$/.test(name) ? significant(v, 3) : denoise(v);
}
