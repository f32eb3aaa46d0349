import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { renderHtml, writeReport } from '../../../src/report/html.js';
import { markdown } from '../../../src/report/markdown.js';

const doc = markdown()
  .heading(1, 'Run <1>')
  .table(
    [
      { key: 'nic', title: 'NIC' },
      { key: 'mbps', title: 'Mbit/s' },
    ],
    [{ nic: 'virtio-net-pci', mbps: 5300 }],
  )
  .image('Throughput', 'plots/throughput.png')
  .render();

describe('HTML report', () => {
  it('is one self-contained page: embedded style, escaped title, relative images, real tables', () => {
    const html = renderHtml(doc, { title: 'Run <1> & more' });
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toContain('<title>Run &#60;1&#62; &#38; more</title>');
    expect(html).toMatch(/<style>[^]*img \{ max-width: 100%;[^]*<\/style>/);
    expect(html).toContain('<img src="plots/throughput.png" alt="Throughput">');
    expect(html).toMatch(/<th>NIC<\/th>/);
    expect(html).toMatch(/<td align="right">5300<\/td>|<td style="text-align: ?right;?">5300<\/td>/);
    expect(html).not.toMatch(/<link|<script|https?:\/\//);
  });

  it('writes report.md and report.html into the folder', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'miglab-html-'));
    try {
      const out = await writeReport(path.join(dir, 'r'), doc, 'Run 1');
      expect(out).toEqual({ markdownPath: path.join(dir, 'r', 'report.md'), htmlPath: path.join(dir, 'r', 'report.html') });
      expect(await readFile(out.markdownPath, 'utf8')).toBe(doc);
      expect(await readFile(out.htmlPath, 'utf8')).toContain('<h1>Run &lt;1&gt;</h1>');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
