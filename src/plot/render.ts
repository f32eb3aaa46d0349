// Turns a vega-lite spec into files: vega-lite -> vega -> SVG (vega's headless renderer, no canvas)
// and SVG -> PNG with resvg (Rust, prebuilt, no native build). Chart builders (charts.ts) produce
// the specs; reports embed the PNG and link the SVG.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { renderAsync } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { MiglabError, MissingDependencyError } from '../errors.js';
import { CHART_FONT } from './charts.js';
import { PRIVATE } from '../util/private.js';

export type VegaLiteSpec = TopLevelSpec;

const FONT_FILES = [
  '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf',
  '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf',
];

export interface CompiledChart {
  readonly vega: vega.Spec;
  /** vega-lite's warnings (e.g. a field missing from the data); a correct chart has none. */
  readonly warnings: readonly string[];
}

function collectingLogger(warnings: string[], errors: string[]): vega.LoggerInterface {
  return vega.logger(vega.Warn, undefined, (method, _level, args) => {
    const text = args.map((a) => (a instanceof Error ? a.message : String(a))).join(' ');
    (method === 'error' ? errors : warnings).push(text);
  });
}

/** Compile vega-lite to vega. Throws on errors; warnings are returned for the caller to judge. */
export function compileChart(spec: VegaLiteSpec): CompiledChart {
  const warnings: string[] = [];
  const errors: string[] = [];
  let out: vega.Spec;
  try {
    out = compile(spec, { logger: collectingLogger(warnings, errors) }).spec;
  } catch (err) {
    throw new MiglabError('INTERNAL', `vega-lite could not compile chart "${chartTitle(spec)}"`, { cause: err });
  }
  if (errors.length > 0) throw new MiglabError('INTERNAL', `vega-lite could not compile chart "${chartTitle(spec)}": ${errors.join('; ')}`);
  return { vega: out, warnings };
}

/** Render a vega-lite spec to an SVG string. */
export async function renderSvg(spec: VegaLiteSpec): Promise<string> {
  const { vega: vgSpec } = compileChart(spec);
  const warnings: string[] = [];
  const errors: string[] = [];
  const view = new vega.View(vega.parse(vgSpec), { renderer: 'none', logger: collectingLogger(warnings, errors) });
  try {
    const svg = await view.toSVG();
    if (errors.length > 0) throw new MiglabError('INTERNAL', `vega could not render chart "${chartTitle(spec)}": ${errors.join('; ')}`);
    return svg;
  } finally {
    view.finalize();
  }
}

export interface PngOptions {
  /** Pixels per SVG unit: 2 gives sharp images on high-density screens. Default 2. */
  readonly scale?: number;
}

/**
 * Rasterise an SVG with the chart font loaded explicitly. In libuv's thread pool (resvg's
 * renderAsync), not on the event loop: a run's figures took about 0.2 s of it one after another,
 * and several now rasterise side by side while the next chart is laid out.
 */
export async function svgToPng(svg: string, opts: PngOptions = {}): Promise<{ png: Buffer; widthPx: number; heightPx: number }> {
  const fontFiles = FONT_FILES.filter((f) => existsSync(f));
  if (fontFiles.length === 0) throw new MissingDependencyError(`the ${CHART_FONT} font (${FONT_FILES[0]})`, 'apt-get install -y fonts-dejavu-core');
  const image = await renderAsync(svg, {
    background: 'white',
    fitTo: { mode: 'zoom', value: opts.scale ?? 2 },
    font: { fontFiles, loadSystemFonts: false, defaultFontFamily: CHART_FONT, sansSerifFamily: CHART_FONT },
  });
  return { png: image.asPng(), widthPx: image.width, heightPx: image.height };
}

export interface RenderedChart {
  readonly svgPath: string;
  readonly pngPath: string;
  readonly widthPx: number;
  readonly heightPx: number;
}

/** Write `<outBase>.svg` and `<outBase>.png` (creating the folder). */
export async function renderChart(spec: VegaLiteSpec, outBase: string, opts: PngOptions = {}): Promise<RenderedChart> {
  const base = outBase.replace(/\.(svg|png)$/i, '');
  const svg = await renderSvg(spec);
  const { png, widthPx, heightPx } = await svgToPng(svg, opts);
  await mkdir(path.dirname(base), { recursive: true, mode: 0o700 });
  const svgPath = `${base}.svg`;
  const pngPath = `${base}.png`;
  await Promise.all([writeFile(svgPath, svg, PRIVATE), writeFile(pngPath, png, PRIVATE)]);
  return { svgPath, pngPath, widthPx, heightPx };
}

function chartTitle(spec: VegaLiteSpec): string {
  const t = (spec as { title?: unknown }).title;
  if (typeof t === 'string') return t;
  if (t && typeof t === 'object' && 'text' in t) return String((t as { text: unknown }).text);
  return '(untitled)';
}
