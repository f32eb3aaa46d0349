// Chart builders: pure functions from plain rows to vega-lite specs, so every miglab figure looks the
// same (640 px wide, white, DejaVu Sans, axis titles that carry their unit). They read rows a
// report already holds; render.ts turns the spec into SVG and PNG.
import { MiglabError } from '../errors.js';
import { LABEL_DX_PX, LABEL_ROW_PX, placeLabels } from './labels.js';
import type { VegaLiteSpec } from './render.js';

/**
 * Font every chart names; resvg needs the file itself (render.ts), or text silently vanishes from
 * the PNG. Here, not in render.ts, so building a spec never loads vega and resvg.
 */
export const CHART_FONT = 'DejaVu Sans';

/** The string keys of a row type: a field a chart can plot. */
export type FieldOf<T> = Extract<keyof T, string>;

/** A quantitative axis. The unit is required so no figure leaves the reader guessing ('' if none). */
export interface QuantAxis<T> {
  readonly field: FieldOf<T>;
  readonly title: string;
  readonly unit: string;
}

/** A categorical channel (bar categories, groups, series). */
export interface CategoryChannel<T> {
  readonly field: FieldOf<T>;
  readonly title: string;
}

/** A vertical rule across the plot with a label at the top: a pass boundary, the switchover. */
export interface Marker {
  readonly x: number;
  readonly label: string;
  /** Drawn solid red instead of dashed grey: for the one event that matters (switchover). */
  readonly emphasis?: boolean;
}

/** A figure a report will draw: its spec, and what the report says about it. */
export interface PlannedChart {
  /** File name without extension, under plots/. */
  readonly name: string;
  readonly title: string;
  readonly spec: VegaLiteSpec;
  /** One sentence for the report: what the figure shows and how to read it. */
  readonly caption: string;
}

export interface ChartSize {
  readonly width?: number;
  readonly height?: number;
}

export const CHART_WIDTH_PX = 640;
export const CHART_HEIGHT_PX = 300;
const LEFT_COLOR = '#1f77b4';
const RIGHT_COLOR = '#e6550d';
const MARKER_COLOR = '#6b6b6b';
const EMPHASIS_COLOR = '#d62728';

type Rows<T> = readonly T[];
// vega-lite's own types for layers and encodings are deep unions that do not survive being built up
// piece by piece; the finished spec is checked where it matters: compiled in the tests.
type Layer = Record<string, unknown>;

export function axisTitle(a: { readonly title: string; readonly unit: string }): string {
  return a.unit ? `${a.title} (${a.unit})` : a.title;
}

function frame(title: string, size: ChartSize | undefined): Record<string, unknown> {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, anchor: 'start', fontSize: 15, offset: 12 },
    width: size?.width ?? CHART_WIDTH_PX,
    height: size?.height ?? CHART_HEIGHT_PX,
    background: 'white',
    padding: 10,
    config: {
      font: CHART_FONT,
      // No label is ever cut short with an ellipsis ("virtio (virtio-net-..."): vega's default
      // limits (180 px for axis labels, 160 for legend entries) are lifted, and the legend wraps
      // into two columns instead of running off the side.
      axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal', titlePadding: 8, gridColor: '#e6e6e6', labelLimit: 1000 },
      legend: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal', orient: 'bottom', direction: 'horizontal', columns: 2, labelLimit: 1000, columnPadding: 24 },
      view: { stroke: '#cccccc' },
      // Rows often hold only some fields (samples from different sources interleaved): drop the
      // missing points instead of breaking the line at each one.
      mark: { invalid: 'filter' },
    },
  };
}

function finish(spec: Record<string, unknown>): VegaLiteSpec {
  return spec as unknown as VegaLiteSpec;
}

function values<T>(rows: Rows<T>): object[] {
  return rows.map((r) => ({ ...(r as object) }));
}

function quant<T>(a: QuantAxis<T>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { field: a.field, type: 'quantitative', title: axisTitle(a), ...extra };
}

/** Every finite value of `field` in `rows`, and the markers' positions. */
function xValues<T>(rows: Rows<T>, field: string, markers: readonly Marker[] = []): number[] {
  return [...rows.map((r) => (r as Record<string, unknown>)[field]), ...markers.map((m) => m.x)].filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
}

/**
 * The x scale of a time chart: exactly the span of the data and the markers (no rounding out to
 * "nice" numbers), so the plot fits the data and marker labels can be placed in pixels.
 */
function timeScale<T>(rows: Rows<T>, field: string, markers?: readonly Marker[]): { domain: [number, number]; nice: false; zero: false } | undefined {
  const xs = xValues(rows, field, markers);
  if (xs.length === 0) return undefined;
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  return { domain: hi > lo ? [lo, hi] : [lo - 1, hi + 1], nice: false, zero: false };
}

const MARKER_FONT_PX = 10;

/**
 * Rules and labels for markers. The labels sit above the plot, clear of the data, in rows chosen
 * by placeLabels (labels.ts) so that none overlaps another or is crossed by another's rule.
 */
function markerLayers<T>(markers: readonly Marker[] | undefined, xAxis: QuantAxis<T>, scale: ReturnType<typeof timeScale>, widthPx: number): Layer[] {
  if (!markers || markers.length === 0 || !scale) return [];
  const [lo, hi] = scale.domain;
  // A marker without a label (one of many passes) is a rule inside the plot only: it crosses no
  // label above the plot, so it takes no part in placing them.
  const labelled = markers.filter((m) => m.label !== '');
  const placed = placeLabels(
    labelled.map((m) => ({ x: m.x, label: m.label, bold: m.emphasis === true })),
    { lo, hi, widthPx, fontPx: MARKER_FONT_PX },
  );
  const marks = markers.map((m) => {
    const p = placed[labelled.indexOf(m)];
    const labelY = p ? -4 - p.row * LABEL_ROW_PX : 0;
    // The rule reaches up beside its own label's text, and no higher.
    return { [xAxis.field]: m.x, label: m.label, labelY, ruleTop: p ? labelY - 9 : 0, emphasis: m.emphasis === true, flip: p?.align === 'right' };
  });
  const x = { field: xAxis.field, type: 'quantitative', title: axisTitle(xAxis), scale };
  const layers: Layer[] = [];
  for (const emphasis of [false, true]) {
    const color = emphasis ? EMPHASIS_COLOR : MARKER_COLOR;
    const subset = marks.filter((r) => r.emphasis === emphasis);
    if (subset.length === 0) continue;
    // An unlabelled rule is fainter: many of them (passes by the dozen) must not hide the data.
    for (const faint of [false, true]) {
      const rules = subset.filter((r) => (r.label === '') === faint);
      if (rules.length === 0) continue;
      layers.push({
        data: { values: rules },
        mark: { type: 'rule', color, strokeWidth: emphasis ? 1.5 : 1, strokeDash: emphasis ? [] : [4, 3], opacity: faint ? 0.35 : 1 },
        // From the label row down to the x axis, so each label visibly belongs to its rule.
        encoding: { x, y: { field: 'ruleTop', type: 'quantitative', scale: null }, y2: { value: { expr: 'height' } } },
      });
    }
    for (const flip of [false, true]) {
      const labels = subset.filter((r) => r.flip === flip && r.label !== '');
      if (labels.length === 0) continue;
      layers.push({
        data: { values: labels },
        mark: {
          type: 'text',
          color,
          align: flip ? 'right' : 'left',
          dx: flip ? -LABEL_DX_PX : LABEL_DX_PX,
          baseline: 'bottom',
          fontSize: MARKER_FONT_PX,
          fontWeight: emphasis ? 'bold' : 'normal',
        },
        encoding: { x, y: { field: 'labelY', type: 'quantitative', scale: null }, text: { field: 'label' } },
      });
    }
  }
  return layers;
}

function seriesColor<T>(series: CategoryChannel<T> | undefined): Record<string, unknown> {
  return series ? { color: { field: series.field, type: 'nominal', title: series.title } } : {};
}

export interface LineChartOptions<T> {
  readonly title: string;
  readonly data: Rows<T>;
  readonly x: QuantAxis<T>;
  readonly y: QuantAxis<T>;
  /** One line per distinct value of this field. */
  readonly series?: CategoryChannel<T>;
  readonly markers?: readonly Marker[];
  /** Draw a dot at each sample (default: when there are at most 60 rows). */
  readonly points?: boolean;
  readonly size?: ChartSize;
}

/** Lines over a quantitative x (usually time), with optional vertical markers. */
export function lineChart<T>(o: LineChartOptions<T>): VegaLiteSpec {
  const points = o.points ?? o.data.length <= 60;
  const scale = timeScale(o.data, o.x.field, o.markers);
  return finish({
    ...frame(o.title, o.size),
    data: { values: values(o.data) },
    layer: [
      {
        mark: { type: 'line', strokeWidth: 2, point: points ? { size: 25 } : false },
        encoding: { x: quant(o.x, scale ? { scale } : {}), y: quant(o.y), ...seriesColor(o.series) },
      },
      ...markerLayers(o.markers, o.x, scale, o.size?.width ?? CHART_WIDTH_PX),
    ],
  });
}

export interface DualAxisTimeChartOptions<T> {
  readonly title: string;
  readonly data: Rows<T>;
  readonly x: QuantAxis<T>;
  /** Plotted in blue against the left axis. */
  readonly left: QuantAxis<T>;
  /** Plotted in orange against the right axis. */
  readonly right: QuantAxis<T>;
  readonly markers?: readonly Marker[];
  readonly size?: ChartSize;
}

/**
 * Two series on one time axis with independent y scales (e.g. guest throughput and QEMU CPU%
 * during a migration). Each axis title is coloured like its line, so no legend is needed.
 */
export function dualAxisTimeChart<T>(o: DualAxisTimeChartOptions<T>): VegaLiteSpec {
  const scale = timeScale(o.data, o.x.field, o.markers);
  const x = quant(o.x, scale ? { scale } : {});
  const side = (a: QuantAxis<T>, color: string, orient: 'left' | 'right'): Layer => ({
    mark: { type: 'line', color, strokeWidth: 2, interpolate: 'linear' },
    encoding: { x, y: quant(a, { axis: { orient, titleColor: color, labelColor: color, grid: orient === 'left' } }) },
  });
  return finish({
    ...frame(o.title, o.size),
    data: { values: values(o.data) },
    layer: [side(o.left, LEFT_COLOR, 'left'), side(o.right, RIGHT_COLOR, 'right'), ...markerLayers(o.markers, o.x, scale, o.size?.width ?? CHART_WIDTH_PX)],
    resolve: { scale: { y: 'independent' } },
  });
}

export interface BarChartOptions<T> {
  readonly title: string;
  readonly data: Rows<T>;
  /** One cluster of bars per category (x axis). */
  readonly category: CategoryChannel<T>;
  readonly value: QuantAxis<T>;
  /** One bar per group inside each cluster, coloured, with a legend. */
  readonly group?: CategoryChannel<T>;
  /** Error bar ends (e.g. min and max over repetitions); both or neither. */
  readonly errorLow?: FieldOf<T>;
  readonly errorHigh?: FieldOf<T>;
  /**
   * A text field shown in place of a category's bar when it has no value: why it was not measured
   * (lines split by "\n"), so an absent bar is explained on the figure itself.
   */
  readonly note?: FieldOf<T>;
  /** d3 format of the value axis, e.g. "~s" for 300M instead of 300,000,000. */
  readonly valueFormat?: string;
  readonly size?: ChartSize;
}

/** Split `text` into lines of at most `maxChars` at spaces, for labels drawn on a figure. */
export function wrapText(text: string, maxChars: number): string {
  const lines: string[] = [];
  let cur = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (cur && cur.length + 1 + word.length > maxChars) {
      lines.push(cur);
      cur = word;
    } else cur = cur ? `${cur} ${word}` : word;
  }
  if (cur) lines.push(cur);
  return lines.join('\n');
}

/** Grouped bars with optional error bars (spread across repetitions). */
export function barChart<T>(o: BarChartOptions<T>): VegaLiteSpec {
  // Categories in the order of the data, those without a bar (only a note) included.
  const categories = [...new Set(o.data.map((r) => String((r as Record<string, unknown>)[o.category.field])))];
  // Room between clusters and between the bars of a cluster, so no bar runs into another.
  const x = { field: o.category.field, type: 'nominal', title: o.category.title, axis: { labelAngle: 0 }, sort: null, scale: { domain: categories, paddingInner: 0.3, paddingOuter: 0.15 } };
  const grouping = o.group
    ? {
        xOffset: { field: o.group.field, type: 'nominal', sort: null, scale: { paddingInner: 0.08 } },
        color: { field: o.group.field, type: 'nominal', title: o.group.title, sort: null },
      }
    : {};
  const valueAxis = o.valueFormat ? { axis: { format: o.valueFormat } } : {};
  const layers: Layer[] = [{ mark: { type: 'bar', color: LEFT_COLOR }, encoding: { x, y: quant(o.value, valueAxis), ...grouping } }];
  // Bars below zero hang from a visible zero line, not from the bottom of the plot.
  if (o.data.some((r) => Number((r as Record<string, unknown>)[o.value.field]) < 0)) layers.push({ mark: { type: 'rule', color: '#444444', strokeWidth: 1 }, encoding: { y: { datum: 0 } } });
  if (o.note !== undefined) {
    layers.push({
      transform: [{ filter: `isValid(datum[${JSON.stringify(o.note)}]) && datum[${JSON.stringify(o.note)}] !== ''` }],
      mark: { type: 'text', color: '#444444', fontSize: 11, align: 'center', baseline: 'middle', lineBreak: '\n' },
      encoding: { x, y: { value: { expr: 'height / 2' } }, text: { field: o.note } },
    });
  }
  if ((o.errorLow === undefined) !== (o.errorHigh === undefined)) {
    throw new MiglabError('INTERNAL', 'barChart: give both errorLow and errorHigh, or neither');
  }
  if (o.errorLow !== undefined && o.errorHigh !== undefined) {
    layers.push({
      mark: { type: 'errorbar', ticks: { size: 8 }, color: '#222222', thickness: 1.2 },
      encoding: {
        x,
        y: quant({ ...o.value, field: o.errorLow }),
        y2: { field: o.errorHigh },
        ...(o.group ? { xOffset: grouping.xOffset } : {}),
      },
    });
  }
  return finish({ ...frame(o.title, o.size), data: { values: values(o.data) }, layer: layers });
}

export interface ScatterWithSpreadOptions<T> {
  readonly title: string;
  readonly data: Rows<T>;
  readonly x: QuantAxis<T>;
  /** The central value (mean or median). */
  readonly y: QuantAxis<T>;
  readonly series: CategoryChannel<T>;
  /** Whisker ends (e.g. min and max); both or neither. */
  readonly yLow?: FieldOf<T>;
  readonly yHigh?: FieldOf<T>;
  /** Join the points of a series with a thin line (default true). */
  readonly connect?: boolean;
  /**
   * A log2 x axis with a tick at each value, for sizes that double (256, 512, 1024 MiB): equal
   * steps apart, and no empty stretch down to 0.
   */
  readonly xLog2?: boolean;
  /** x values the axis must reach though no point sits there (e.g. a rate where nothing converged, marked by a rule). */
  readonly xInclude?: readonly number[];
  readonly size?: ChartSize;
}

function fieldValues<T>(rows: Rows<T>, field: string | undefined): number[] {
  return field === undefined ? [] : xValues(rows, field);
}

/** An x scale that fits the points with a margin either side (linear or log2), never reaching to 0 for nothing. */
function spreadXScale<T>(o: ScatterWithSpreadOptions<T>): { scale: Record<string, unknown>; axis: Record<string, unknown> } {
  const xs = [...new Set([...fieldValues(o.data, o.x.field), ...(o.xInclude ?? [])])].sort((a, b) => a - b);
  const lo = xs[0] ?? 0;
  const hi = xs[xs.length - 1] ?? 1;
  if (o.xLog2 && lo > 0) {
    const pad = hi > lo ? Math.pow(hi / lo, 0.08) : 1.5;
    return { scale: { type: 'log', base: 2, domain: [lo / pad, hi * pad], nice: false }, axis: { values: xs, format: '~g' } };
  }
  const pad = hi > lo ? (hi - lo) * 0.06 : Math.max(1, Math.abs(lo) * 0.1);
  return { scale: { zero: false, domain: [lo - pad, hi + pad], nice: false }, axis: {} };
}

/** A y scale from 0 (or the lowest whisker, if below) to above the highest whisker, so none is clipped. */
function spreadYScale<T>(o: ScatterWithSpreadOptions<T>): Record<string, unknown> {
  const ys = [...fieldValues(o.data, o.y.field), ...fieldValues(o.data, o.yLow), ...fieldValues(o.data, o.yHigh)];
  if (ys.length === 0) return {};
  const lo = Math.min(0, ...ys);
  const hi = Math.max(...ys);
  return { domain: [lo, hi > lo ? hi + (hi - lo) * 0.08 : lo + 1], nice: true };
}

/** Points with whiskers per series: downtime vs memory size or dirty rate, QEMU vs client-seen. */
export function scatterWithSpread<T>(o: ScatterWithSpreadOptions<T>): VegaLiteSpec {
  if ((o.yLow === undefined) !== (o.yHigh === undefined)) {
    throw new MiglabError('INTERNAL', 'scatterWithSpread: give both yLow and yHigh, or neither');
  }
  const xs = spreadXScale(o);
  const x = quant(o.x, { scale: xs.scale, axis: xs.axis });
  const yScale = spreadYScale(o);
  const y = (a: QuantAxis<T>) => quant(a, { scale: yScale });
  const color = { field: o.series.field, type: 'nominal', title: o.series.title };
  const layers: Layer[] = [];
  if (o.yLow !== undefined && o.yHigh !== undefined) {
    layers.push({
      mark: { type: 'errorbar', ticks: { size: 8 }, thickness: 1.2 },
      encoding: { x, y: y({ ...o.y, field: o.yLow }), y2: { field: o.yHigh }, color },
    });
  }
  if (o.connect ?? true) {
    layers.push({ mark: { type: 'line', strokeWidth: 1, opacity: 0.6 }, encoding: { x, y: y(o.y), color } });
  }
  layers.push({
    mark: { type: 'point', filled: true, size: 60, opacity: 1 },
    encoding: { x, y: y(o.y), color, shape: { field: o.series.field, type: 'nominal', title: o.series.title } },
  });
  return finish({ ...frame(o.title, o.size), data: { values: values(o.data) }, layer: layers });
}

/** A line chart's options without dots; `series` gives one coloured area per value (e.g. the pass). */
export type StepAreaChartOptions<T> = Omit<LineChartOptions<T>, 'points'>;

/** A stepped area over time (remaining RAM per pass): the value holds until the next sample. */
export function stepAreaChart<T>(o: StepAreaChartOptions<T>): VegaLiteSpec {
  const color = o.series ? { color: { field: o.series.field, type: 'ordinal', title: o.series.title, scale: { scheme: 'viridis' } } } : {};
  const scale = timeScale(o.data, o.x.field, o.markers);
  return finish({
    ...frame(o.title, o.size),
    data: { values: values(o.data) },
    layer: [
      {
        mark: { type: 'area', interpolate: 'step-after', opacity: 0.55, line: { strokeWidth: 1.5 }, ...(o.series ? {} : { color: LEFT_COLOR }) },
        encoding: { x: quant(o.x, scale ? { scale } : {}), y: quant(o.y, { stack: null }), ...color },
      },
      ...markerLayers(o.markers, o.x, scale, o.size?.width ?? CHART_WIDTH_PX),
    ],
  });
}

export interface StackedBarChartOptions<T> {
  readonly title: string;
  readonly data: Rows<T>;
  /** One horizontal bar per category (a run), in the order of the data. */
  readonly category: CategoryChannel<T>;
  /** The stretches each bar is made of, stacked left to right in the order of `order`. */
  readonly segment: CategoryChannel<T>;
  /** The segments' names in stacking (and legend) order: every bar uses the same colours. */
  readonly order: readonly string[];
  readonly value: QuantAxis<T>;
  readonly size?: ChartSize;
}

/** Horizontal stacked bars: what a whole (a silence, a run's time) is made of, one bar per category. */
export function stackedBarChart<T>(o: StackedBarChartOptions<T>): VegaLiteSpec {
  const categories = [...new Set(o.data.map((r) => String((r as Record<string, unknown>)[o.category.field])))];
  const rank = new Map(o.order.map((k, i) => [k, i]));
  // vega-lite stacks by the `order` channel: a field holding each segment's place.
  const rows = o.data.map((r) => ({ ...(r as object), stackOrder: rank.get(String((r as Record<string, unknown>)[o.segment.field])) ?? o.order.length }));
  const height = o.size?.height ?? Math.max(80, 34 * categories.length);
  return finish({
    ...frame(o.title, { width: o.size?.width, height }),
    data: { values: rows },
    mark: { type: 'bar', stroke: 'white', strokeWidth: 0.5 },
    encoding: {
      y: { field: o.category.field, type: 'nominal', title: o.category.title, sort: null, scale: { domain: categories, paddingInner: 0.25 } },
      x: quant(o.value, { stack: 'zero' }),
      color: { field: o.segment.field, type: 'nominal', title: o.segment.title, sort: [...o.order], scale: { domain: [...o.order], scheme: 'tableau10' } },
      order: { field: 'stackOrder', type: 'quantitative' },
      tooltip: [{ field: o.segment.field }, quant(o.value)],
    },
  });
}
