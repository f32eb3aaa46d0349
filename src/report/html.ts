// Markdown report -> one self-contained HTML page (stylesheet embedded, images referenced by
// relative path), so a results folder can be moved or zipped and still opens in any browser.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Marked } from 'marked';
import { PRIVATE } from '../util/private.js';

const STYLE = `
:root { color-scheme: light; }
body { font-family: "DejaVu Sans", system-ui, -apple-system, "Segoe UI", sans-serif; line-height: 1.5;
  color: #1a1a1a; background: #fff; max-width: 60rem; margin: 2rem auto; padding: 0 1.25rem; }
h1, h2, h3 { line-height: 1.25; margin-top: 1.8em; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .3em; }
h2 { border-bottom: 1px solid #eee; padding-bottom: .2em; }
table { border-collapse: collapse; margin: 1rem 0; font-size: .92rem; display: block; overflow-x: auto; }
th, td { border: 1px solid #d0d7de; padding: .35rem .7rem; }
th { background: #f3f5f7; }
td { font-variant-numeric: tabular-nums; }
td[align="right"] { white-space: nowrap; }
tr:nth-child(even) td { background: #fafbfc; }
img { max-width: 100%; height: auto; }
code { font-family: "DejaVu Sans Mono", ui-monospace, monospace; font-size: .9em; background: #f3f5f7; padding: .1em .3em; border-radius: 3px; }
pre { background: #f6f8fa; padding: .8rem 1rem; overflow-x: auto; border-radius: 4px; }
pre code { background: none; padding: 0; }
`;

export interface HtmlOptions {
  /** The page title (browser tab). */
  readonly title: string;
}

// A private instance: options set here do not leak into (or from) other users of marked.
const marked = new Marked({ gfm: true });

/** A complete HTML document for `markdown`. */
export function renderHtml(markdown: string, opts: HtmlOptions): string {
  const body = marked.parse(markdown, { async: false });
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="generator" content="miglab">',
    `<title>${escapeHtml(opts.title)}</title>`,
    `<style>${STYLE}</style>`,
    '</head>',
    '<body>',
    body.trimEnd(),
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

export interface WrittenReport {
  readonly markdownPath: string;
  readonly htmlPath: string;
}

/** A report and the figures its renderer drew for it (PNG paths; an SVG sits beside each). */
export interface RenderedReport extends WrittenReport {
  readonly figures: readonly string[];
}

/** Write `report.md` and `report.html` into `dir` (created if needed). */
export async function writeReport(dir: string, markdown: string, title: string): Promise<WrittenReport> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const markdownPath = path.join(dir, 'report.md');
  const htmlPath = path.join(dir, 'report.html');
  await Promise.all([writeFile(markdownPath, markdown, PRIVATE), writeFile(htmlPath, renderHtml(markdown, { title }), PRIVATE)]);
  return { markdownPath, htmlPath };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
