import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { barChart, compileChart, lineChart, renderChart, renderSvg, scatterWithSpread, svgToPng } from '../../../src/plot/index.js';
import { sampleCharts } from './sample-charts.js';

/** Every mark type in a compiled vega spec (marks nest inside group marks). */
function markTypes(node: unknown, found = new Set<string>()): Set<string> {
  if (Array.isArray(node)) node.forEach((n) => markTypes(n, found));
  else if (node && typeof node === 'object') {
    const o = node as Record<string, unknown>;
    if (typeof o.type === 'string' && o.type !== 'group' && 'encode' in o) found.add(o.type);
    if (o.marks) markTypes(o.marks, found);
  }
  return found;
}

describe('chart builders', () => {
  it.each(Object.entries(sampleCharts))('%s compiles with vega-lite without warnings', (_name, spec) => {
    const { vega, warnings } = compileChart(spec);
    expect(warnings).toEqual([]);
    expect(vega.marks?.length).toBeGreaterThan(0);
    expect(spec).toMatchObject({ width: 640, background: 'white' });
  });

  it('draws markers as rules with labels', () => {
    const types = markTypes(compileChart(sampleCharts.line!).vega.marks);
    expect(types).toEqual(new Set(['line', 'symbol', 'rule', 'text']));
  });

  it('leaves marker layers out when there are none', () => {
    const spec = lineChart({ title: 't', data: [{ t: 0, v: 1 }], x: { field: 't', title: 'Time', unit: 's' }, y: { field: 'v', title: 'V', unit: '' } });
    expect(markTypes(compileChart(spec).vega.marks).has('rule')).toBe(false);
  });

  it('draws error bars only when both ends are given', () => {
    const data = [{ k: 'a', g: 'x', v: 2, lo: 1, hi: 3 }];
    const base = { title: 't', data, category: { field: 'k', title: 'K' }, value: { field: 'v', title: 'V', unit: 'ms' } } as const;
    expect(markTypes(compileChart(barChart(base)).vega.marks)).toEqual(new Set(['rect']));
    expect(markTypes(compileChart(barChart({ ...base, errorLow: 'lo', errorHigh: 'hi' })).vega.marks)).toEqual(new Set(['rect', 'rule']));
    expect(() => barChart({ ...base, errorLow: 'lo' })).toThrow(/both errorLow and errorHigh/);
    expect(() =>
      scatterWithSpread({ title: 't', data, x: { field: 'v', title: 'V', unit: '' }, y: { field: 'v', title: 'V', unit: '' }, series: { field: 'g', title: 'G' }, yHigh: 'hi' }),
    ).toThrow(/both yLow and yHigh/);
  });
});

describe('rendering', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'miglab-plot-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes an SVG with the title, axis titles with units and marker labels', async () => {
    const svg = await renderSvg(sampleCharts.dualAxis!);
    for (const text of ['Guest throughput and QEMU CPU during migration', 'Time since migrate (s)', 'iperf3 throughput (Mbit/s)', 'QEMU CPU (%)', 'pass 2', 'switchover']) {
      expect(svg).toContain(`>${text}<`);
    }
    expect(svg).toContain('font-family="DejaVu Sans"');
  });

  it.each(Object.keys(sampleCharts))('renders %s to SVG and PNG files', async (name) => {
    const out = await renderChart(sampleCharts[name]!, path.join(dir, 'sub', name));
    expect(out.svgPath).toBe(path.join(dir, 'sub', `${name}.svg`));
    const svg = await readFile(out.svgPath, 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    const title = (sampleCharts[name] as { title: { text: string } }).title.text;
    expect(svg).toContain(title);

    const png = await readFile(out.pngPath);
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    // IHDR: width and height, big-endian, right after the signature and chunk header.
    const widthPx = png.readUInt32BE(16);
    const heightPx = png.readUInt32BE(20);
    const svgWidth = Number(/width="(\d+(?:\.\d+)?)"/.exec(svg)?.[1]);
    expect(widthPx).toBe(Math.round(svgWidth * 2)); // default scale 2
    expect({ widthPx, heightPx }).toEqual({ widthPx: out.widthPx, heightPx: out.heightPx });
    expect(widthPx).toBeGreaterThanOrEqual(2 * 640);
    expect(widthPx).toBeLessThan(2 * 900);
    expect(heightPx).toBeGreaterThan(2 * 300);
    expect(heightPx).toBeLessThan(2 * 600);
    // Text and lines make a PNG of this size far larger than a blank one (about 10 KB).
    expect((await stat(out.pngPath)).size).toBeGreaterThan(30_000);
  });

  it('draws text into the PNG (a chart without the font would be blank where labels are)', async () => {
    const svg =
      '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40"><text x="4" y="30" font-family="DejaVu Sans" font-size="24">miglab</text></svg>';
    const withText = (await svgToPng(svg, { scale: 1 })).png.length;
    const blank = (await svgToPng(svg.replace('miglab', ''), { scale: 1 })).png.length;
    expect(withText).toBeGreaterThan(blank + 200);
  });
});
