// The zod builders every result schema (src/results/*.ts) writes its fields with: a number with
// its meaning and unit (both go into results/README.md), a described string, a readonly array.
// One place, so a unit is spelled one way in every file and the README generator finds it.
import { z } from 'zod';

/** The unit of a schema field (fields whose name carries no unit, or that override it). */
export const unitRegistry = z.registry<{ unit: string }>();

/** A number field with its meaning and unit. */
export function measured(description: string, unit: string): z.ZodNumber {
  const s = z.number().describe(description);
  unitRegistry.add(s, { unit });
  return s;
}

export const ms = (d: string) => measured(d, 'ms');
export const us = (d: string) => measured(d, 'µs');
export const seconds = (d: string) => measured(d, 's');
/** Milliseconds since 1970-01-01 UTC (a wall-clock instant). */
export const epochMs = (d: string) => measured(d, 'epoch ms');
export const bytes = (d: string) => measured(d, 'bytes');
export const kib = (d: string) => measured(d, 'KiB');
export const mib = (d: string) => measured(d, 'MiB');
export const kibps = (d: string) => measured(d, 'KiB/s');
export const mibps = (d: string) => measured(d, 'MiB/s');
export const mbps = (d: string) => measured(d, 'Mbit/s');
export const bitsPerS = (d: string) => measured(d, 'bit/s');
export const bytesPerS = (d: string) => measured(d, 'bytes/s');
export const perS = (d: string) => measured(d, '/s');
export const pagesPerS = (d: string) => measured(d, 'pages/s');
export const pct = (d: string) => measured(d, '%');
/** One figure over another (x lower bound, CPUs utilised): rounded to 3 significant digits (units.ts). */
export const ratio = (d: string) => measured(d, 'x');
export const count = (d: string) => measured(d, 'count');
/** A count of guest pages. */
export const pages = (d: string) => count(`${d} (4 KiB pages)`);

export const text = (d: string) => z.string().describe(d);
export const arr = <T extends z.ZodType>(t: T) => z.array(t).readonly();
