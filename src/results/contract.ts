// Reading and writing saved results through their schemas. Every JSON result file carries a
// `schema` version; a reader accepts the current one, migrates an older one it knows how to
// read, and refuses anything else with one line naming the file, its version and what to do.
// Writers go through `resultJson`, which drops float noise so a file holds what was measured.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { MiglabError, UsageError } from '../errors.js';
import { PRIVATE } from '../util/private.js';
import { roundByName } from './units.js';

/** One kind of result file and how each of its versions is read. */
export interface ResultContract<S extends z.ZodType> {
  /** The file's name in its folder (run.json). */
  readonly file: string;
  readonly current: string;
  readonly schema: S;
  /** Older versions this miglab can read: raw object -> the current version's raw object. */
  readonly migrate?: Readonly<Record<string, (raw: Record<string, unknown>) => Record<string, unknown>>>;
  /** Older versions it cannot read, with why and what to do. */
  readonly refuse?: Readonly<Record<string, string>>;
  /** The version of a file written before the format had a `schema` field, if there was one. */
  readonly unversioned?: string;
}

/** A results file this miglab cannot read (wrong version, damaged, not a miglab file). */
export class ResultsFormatError extends UsageError {
  constructor(
    readonly path: string,
    problem: string,
    hint: string,
  ) {
    super(`${path}: ${problem}`, hint);
    this.name = 'ResultsFormatError';
  }
}

/** A results file that is not complete JSON: its writer was killed while writing it. */
export class ResultCutShortError extends ResultsFormatError {
  constructor(path: string, why: string) {
    super(path, `is not complete JSON (${why})`, 'it was cut short while being written; run it again');
    this.name = 'ResultCutShortError';
  }
}

/** The version a raw result object says it is, or the contract's name for unversioned files. */
export function versionOf(raw: unknown, c: ResultContract<z.ZodType>): string | undefined {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const v = (raw as { schema?: unknown }).schema;
  if (typeof v === 'string') return v;
  return v === undefined ? c.unversioned : undefined;
}

/** Validate (and, for an older version, migrate) a parsed result; `path` names it in errors. */
export function parseResult<S extends z.ZodType>(c: ResultContract<S>, raw: unknown, path: string): z.output<S> {
  const version = versionOf(raw, c);
  const kind = c.current.replace(/\/\d+$/, '');
  if (version === undefined) throw new ResultsFormatError(path, `not a miglab ${c.file} (no "schema" field)`, `give a folder miglab wrote (its ${c.file} starts with "schema": "${c.current}")`);
  let current = raw as Record<string, unknown>;
  if (version !== c.current) {
    const refused = c.refuse?.[version];
    if (refused) throw new ResultsFormatError(path, `schema ${version} cannot be read by this miglab (it reads ${c.current})`, refused);
    const step = c.migrate?.[version];
    if (!step) {
      const newer = version.startsWith(`${kind}/`) && Number(version.split('/')[1]) > Number(c.current.split('/')[1]);
      throw new ResultsFormatError(
        path,
        `schema ${version} is not one this miglab reads (it reads ${c.current})`,
        newer ? 'it was written by a newer miglab: update miglab to read it' : `it is not a miglab ${c.file}`,
      );
    }
    current = step(current);
  }
  const parsed = c.schema.safeParse(current);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length > 0 ? issue.path.join('.') : 'the top level';
    throw new ResultsFormatError(path, `does not match ${c.current} at ${where}: ${issue.message}`, 'the file was edited or damaged; run it again, or restore it from a copy');
  }
  return parsed.data;
}

/** Read and validate a result file; a file cut short (a killed writer) is reported as such. */
export async function readResult<S extends z.ZodType>(c: ResultContract<S>, path: string): Promise<z.output<S>> {
  const text = await readFile(path, 'utf8');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ResultCutShortError(path, (err as Error).message);
  }
  return parseResult(c, raw, path);
}

/**
 * The result file of `dir` (its run.json, sweep.json, batch.json or homework.json), read through
 * its schema: how every reader (sweep resume, plot, compare, re-rendering a report) gets one.
 */
export function readResultIn<S extends z.ZodType>(c: ResultContract<S>, dir: string): Promise<z.output<S>> {
  return readResult(c, join(dir, c.file));
}

/**
 * JSON text of a result: bigints as strings, each number rounded to the precision of the unit its
 * key names (src/results/units.ts; float noise dropped where the key names none), a number that
 * is not finite left out (a figure not measured is absent, never 0 or null), two-space indent.
 */
export function resultJson(value: unknown): string {
  const replacer = (k: string, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (typeof v !== 'number') return v;
    return Number.isFinite(v) ? roundByName(k, v) : undefined;
  };
  return `${JSON.stringify(value, replacer, 2)}\n`;
}

/**
 * `value` as a result file holds it: each number rounded as resultJson writes it, read back
 * through `schema`. Undefined when it does not match the schema (a bug in miglab: writeResult
 * saves such a value all the same and reports it).
 */
export function asSaved<S extends z.ZodType>(schema: S, value: z.output<S>): z.output<S> | undefined {
  const parsed = schema.safeParse(JSON.parse(resultJson(value)));
  return parsed.success ? parsed.data : undefined;
}

/**
 * Write a result object, typed by its schema, as its file (owner-only), and return it as saved:
 * read back through the schema, so what the caller goes on with (the summary it prints) is what
 * the file holds. A result that does not match its own schema is written all the same (nothing
 * measured is lost) and then reported as the bug it is.
 */
export async function writeResult<S extends z.ZodType>(c: ResultContract<S>, path: string, value: z.output<S>): Promise<z.output<S>> {
  const text = resultJson(value);
  await writeFile(path, text, PRIVATE);
  try {
    return parseResult(c, JSON.parse(text), path);
  } catch (err) {
    throw new MiglabError('INTERNAL', `miglab wrote a ${c.file} it cannot read back (${(err as Error).message}); this is a bug in miglab`, { cause: err });
  }
}
