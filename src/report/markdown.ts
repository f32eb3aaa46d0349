// A tiny typed Markdown builder, so every generated report (run, sweep, comparison) has the same
// shape: headings, paragraphs, tables with aligned numbers, images, code, lists. Tables can also be
// written as CSV next to the report, with raw (unformatted) values for anyone re-analysing them.
// html.ts turns the result into a self-contained HTML page.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { MiglabError } from '../errors.js';
import { PRIVATE } from '../util/private.js';
import { roundByName } from '../results/units.js';
import { shellCommand } from '../host/shell-quote.js';
import type { ExplainedCommand } from '../util/explained-command.js';

/**
 * A table column: `key` picks the value from each row, `format` turns it into text (and is typed
 * by that key's value type).
 */
export type Column<R> = {
  readonly [K in Extract<keyof R, string>]: {
    readonly key: K;
    readonly title: string;
    readonly format?: (value: R[K], row: R) => string;
    /** Default: right if every present value of the column is a number, else left. */
    readonly align?: 'left' | 'right';
    /** What the column means, for results/README.md, when the title does not say it all. */
    readonly about?: string;
    /**
     * How a CSV cell of this column is rounded; default: to the precision of the unit its key
     * names (src/results/units.ts: `downtimeMs` to 0.1 ms, `memoryMiB` to 0.1 MiB...).
     */
    readonly round?: (v: number) => number;
  };
}[Extract<keyof R, string>];

const MISSING = '–';

export class MarkdownDoc {
  private readonly blocks: string[] = [];

  heading(level: 1 | 2 | 3 | 4 | 5 | 6, text: string): this {
    this.blocks.push(`${'#'.repeat(level)} ${oneLine(text)}`);
    return this;
  }

  /** A paragraph. The text is Markdown: inline `code`, **bold** and links work. */
  paragraph(text: string): this {
    this.blocks.push(text.trim());
    return this;
  }

  table<R>(columns: readonly Column<R>[], rows: readonly R[]): this {
    if (columns.length === 0) throw new MiglabError('INTERNAL', 'a Markdown table needs at least one column');
    const cells = rows.map((row) => columns.map((c) => escapeCell(formatCell(c, row))));
    const header = columns.map((c) => escapeCell(c.title));
    const rule = columns.map((c) => (alignOf(c, rows) === 'right' ? '---:' : '---'));
    const line = (parts: readonly string[]) => `| ${parts.join(' | ')} |`;
    this.blocks.push([line(header), line(rule), ...cells.map(line)].join('\n'));
    return this;
  }

  /** An image; `relPath` must be relative to the report so the folder can be moved. */
  image(alt: string, relPath: string): this {
    this.blocks.push(`![${escapeAlt(alt)}](${linkTarget(relPath)})`);
    return this;
  }

  /** A fenced code block; the fence grows if the text itself contains backticks. */
  code(text: string, lang = ''): this {
    const longest = Math.max(2, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
    const fence = '`'.repeat(longest + 1);
    this.blocks.push(`${fence}${lang}\n${text.replace(/\n$/, '')}\n${fence}`);
    return this;
  }

  list(items: readonly string[], opts: { ordered?: boolean } = {}): this {
    if (items.length === 0) return this;
    this.blocks.push(items.map((it, i) => `${opts.ordered ? `${i + 1}.` : '-'} ${it.replace(/\n/g, '\n   ')}`).join('\n'));
    return this;
  }

  /**
   * A command a reader can retype, then each group of its arguments with why it is there. `perLine`
   * prints one argument a line as typed (monitor commands), else one line a shell takes.
   */
  explainedCommand(cmd: ExplainedCommand, opts: { perLine?: boolean } = {}): this {
    this.code(opts.perLine ? cmd.argv.join('\n') : shellCommand(cmd.argv), opts.perLine ? 'text' : 'sh');
    return this.table<{ args: string; why: string }>(
      [
        { key: 'args', title: 'argument' },
        { key: 'why', title: 'purpose' },
      ],
      cmd.explained.map((g) => ({ args: `\`${g.args.join(' ')}\``, why: g.why })),
    );
  }

  /** Markdown written elsewhere, added as one block. */
  raw(markdown: string): this {
    this.blocks.push(markdown.trim());
    return this;
  }

  render(): string {
    return `${this.blocks.join('\n\n')}\n`;
  }
}

/** Start a new document. */
export function markdown(): MarkdownDoc {
  return new MarkdownDoc();
}

function formatCell<R>(c: Column<R>, row: R): string {
  const v = row[c.key];
  // The mapped type ties each format to its key; TypeScript cannot follow that through `c.key`.
  if (c.format) return (c.format as (value: unknown, row: R) => string)(v, row);
  if (v === undefined || v === null) return MISSING;
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : MISSING;
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function alignOf<R>(c: Column<R>, rows: readonly R[]): 'left' | 'right' {
  if (c.align) return c.align;
  const present = rows.map((r) => r[c.key]).filter((v) => v !== undefined && v !== null);
  return present.length > 0 && present.every((v) => typeof v === 'number') ? 'right' : 'left';
}

function escapeCell(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, '<br>');
}

function escapeAlt(text: string): string {
  return oneLine(text).replace(/[[\]\\]/g, (c) => `\\${c}`);
}

function oneLine(text: string): string {
  return text.replace(/\s*\r?\n\s*/g, ' ').trim();
}

function linkTarget(relPath: string): string {
  if (path.isAbsolute(relPath) || /^[a-z][a-z0-9+.-]*:/i.test(relPath)) {
    throw new MiglabError('INTERNAL', `report image "${relPath}" must be a path relative to the report`);
  }
  const p = relPath.split(path.sep).join('/');
  // Angle brackets let CommonMark take spaces and parentheses in a link target.
  return /[\s()<>]/.test(p) ? `<${p.replace(/[<>]/g, encodeURIComponent)}>` : p;
}

// ---- number formatting: one place, so every report writes numbers the same way ----

type Num = number | undefined | null;
const ok = (v: Num): v is number => typeof v === 'number' && Number.isFinite(v);

/** Fixed digits with thousands separators: 12,345.6 */
function fixed(v: number, digits: number): string {
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Milliseconds: "0.42 ms", "7.5 ms", "123 ms", "12,345 ms". */
export function fmtMs(ms: Num): string {
  if (!ok(ms)) return MISSING;
  const a = Math.abs(ms);
  return `${fixed(ms, a < 1 ? 2 : a < 10 ? 1 : 0)} ms`;
}

/** Bytes shown in MiB (binary, as QEMU counts): "256.0 MiB". */
export function fmtMiB(bytes: Num, digits = 1): string {
  return ok(bytes) ? `${fixed(bytes / 1024 ** 2, digits)} MiB` : MISSING;
}

/** Bytes shown in KiB: "631 KiB" (digits 0), "632.6 KiB". */
export function fmtKiB(bytes: Num, digits = 1): string {
  return ok(bytes) ? `${fixed(bytes / 1024, digits)} KiB` : MISSING;
}

/** Megabits per second: "941 Mbit/s", "12.5 Mbit/s". */
export function fmtMbps(mbps: Num): string {
  if (!ok(mbps)) return MISSING;
  return `${fixed(mbps, Math.abs(mbps) < 100 ? 1 : 0)} Mbit/s`;
}

/** A ratio: "3.9x". */
export function fmtRatio(ratio: Num, digits = 1): string {
  return ok(ratio) ? `${fixed(ratio, digits)}x` : MISSING;
}

/** A value already in percent (0-100, or above for multi-core CPU%): "42.0%". */
export function fmtPct(percent: Num, digits = 1): string {
  return ok(percent) ? `${fixed(percent, digits)}%` : MISSING;
}

/**
 * CSV text of `rows` under the given keys, header first: the one CSV writer of the project. The
 * header is the keys, which carry their units (downtimeMs); values are raw, not formatted, so the
 * file can be re-analysed, but rounded to the precision they were measured with (`round`, else
 * the unit of the key: src/results/units.ts), so no float noise (1074.0348000000001) is written.
 * Missing and non-finite values are empty cells; objects are JSON.
 */
export function csvText<R>(rows: readonly R[], keys: readonly Extract<keyof R, string>[], round: Readonly<Partial<Record<string, (v: number) => number>>> = {}): string {
  const records = rows.map((row) =>
    Object.fromEntries(
      keys.map((k) => {
        const v: unknown = row[k];
        if (v === undefined || v === null || (typeof v === 'number' && !Number.isFinite(v))) return [k, ''];
        if (typeof v === 'number') return [k, (round[k] ?? ((x: number) => roundByName(k, x)))(v)];
        return [k, typeof v === 'object' ? JSON.stringify(v) : v];
      }),
    ),
  );
  return stringify(records, { header: true, columns: [...keys] });
}

export async function writeTableCsv<R>(filePath: string, columns: readonly Column<R>[], rows: readonly R[]): Promise<void> {
  await mkdir(path.dirname(filePath), { recursive: true, mode: 0o700 });
  const round = Object.fromEntries(columns.flatMap((c) => (c.round ? [[c.key, c.round]] : [])));
  await writeFile(filePath, csvText(rows, columns.map((c) => c.key), round), PRIVATE);
}
