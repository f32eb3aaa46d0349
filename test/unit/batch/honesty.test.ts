// A batch tells the truth about what it saw, on samples recorded by real batches on the shared
// 2-core machine: a step that began on a host already under pressure says so instead of blaming
// its N; link rates never show more than the link carried; the report lists only files it wrote.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { batchFile, diagnoseBatch, linkRatesMbps, linkRates, migrationLinkMbps, renderBatchReport, stallStopDetail, stepRows, writeBatchReport, type BatchFile, type BatchRecord, type BatchSample, type LinkRead } from '../../../src/batch/index.js';
import type { LinkCounters } from '../../../src/measure/host-sampler.js';

/** The cells of one CSV line (a quoted cell may hold commas). */
const csvCells = (line: string) => [...line.matchAll(/(?:^|,)("(?:[^"]|"")*"|[^,]*)/g)].map((m) => m[1]!);
const load = (name: string) => JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8')) as BatchRecord;

describe('a step that began on a busy host (recorded: another lab kept PSI cpu above 90 %)', () => {
  const rec = load('busy-host-n1.json');

  it('measures the host before the step and does not blame N for a stall the host already showed', () => {
    const [d] = diagnoseBatch(rec);
    expect(d!.stall?.symptom).toBe('psi-cpu');
    expect(d!.before!.psiCpuSomeAvg10).toBeGreaterThan(80);
    expect(d!.before!.symptoms).toContain('psi-cpu');
    // None of the batch's own QEMUs ran yet: the pressure came from elsewhere.
    expect(d!.before!.batchQemus).toBe(0);
    expect(d!.stallPredatesStep).toBe(true);
    const row = stepRows([d!])[0]!;
    expect(row.stall).toBe('psi-cpu (host busy before the step)');
    expect(row.hostBefore).toMatch(/^PSI cpu [\d.]+ %, CPU busy [\d.]+ %, load1 [\d.]+ \(already: psi-cpu/);
    expect(stallStopDetail(1, d!.stall!, d!.before)).toMatch(/the host already showed psi-cpu before N=1 started .* with none of this batch's guests running\): the pressure was there before this step, so it does not show that N=1 is too many$/);
  });

  it('blames the step when the host was calm before it', () => {
    const calm: BatchRecord = {
      ...rec,
      samples: rec.samples.map((s) => (s.atMs <= rec.steps[0]!.startedAtMs ? { ...s, pressure: { ...s.pressure, cpu: { some: { avg10: 3, avg60: 3, avg300: 3, totalUs: 0 } } }, loadavg: { ...s.loadavg, load1: 1 } } : s)),
    };
    const [d] = diagnoseBatch(calm);
    expect(d!.before!.symptoms).toEqual([]);
    expect(d!.stallPredatesStep).toBe(false);
    expect(stallStopDetail(1, d!.stall!, d!.before)).toBe(`N=1: psi-cpu: ${d!.stall!.detail}`);
  });

  it('writes a report whose list of files names only files that exist (no comparison.csv without a comparison)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'miglab-batch-report-'));
    try {
      const { markdownPath } = await renderBatchReport(dir, batchFile(rec));
      const md = readFileSync(markdownPath, 'utf8');
      const files = md.slice(md.indexOf('## Files')).match(/^- `([^`]+)`/gm)!.map((l) => l.slice(3, -1));
      expect(files).toEqual(expect.arrayContaining(['steps.csv', 'migrations.csv', 'samples.csv', 'events.csv', 'plots/cpu.png']));
      expect(files).not.toContain('comparison.csv');
      for (const f of files) expect(existsSync(join(dir, f))).toBe(true);
      // The recorded stop reason predates `before`; the report tells it from the diagnosis, once.
      expect(md).toMatch(/\*\*stall\*\*: N=1: psi-cpu: .*; but the host already showed psi-cpu before N=1 started/);
      expect(md.match(/before N=1 started/g)).toHaveLength(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // Rendering three figures takes seconds, more on a machine busy with other work.
  }, 30000);

  it('saves batch.json and draws its report from the same figures: those of the record as saved', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'miglab-batch-saved-'));
    try {
      // Three attempts that each sent 0.04 MiB: saved to their 0.1 MiB precision each is 0, while
      // the sum of the unrounded figures (0.12) would be saved as 0.1.
      const step = rec.steps[0]!;
      const attempts = [0, 1, 2].map((guestIndex) => ({ ...step.attempts[0]!, guestIndex, transferredMiB: 0.04 }));
      const written = await writeBatchReport(dir, { ...rec, steps: [{ ...step, attempts }] });
      const saved = JSON.parse(readFileSync(join(dir, 'batch.json'), 'utf8')) as BatchFile;
      const sent = saved.steps[0]!.attempts.reduce((a, x) => a + x.transferredMiB!, 0);
      expect(saved.diagnoses[0]!.transferredMiB).toBe(sent);
      // What the caller is handed, and what \`miglab plot\` diagnoses again, is what the file holds.
      expect(written.diagnoses).toEqual(saved.diagnoses);
      const { diagnoses: _saved, ...record } = saved;
      expect(batchFile(record)).toEqual(saved);
      const [header, row] = readFileSync(join(dir, 'steps.csv'), 'utf8').trim().split('\n').map(csvCells);
      expect(row![header!.indexOf('transferredMiB')]).toBe(String(sent));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30000);
});

const counters = (dev: string, rxBytes: number, txBytes: number): LinkCounters => ({ dev, operstate: 'UP', rxBytes, txBytes, rxPackets: 0, txPackets: 0, rxDropped: 0, txDropped: 0, rxErrors: 0, txErrors: 0 });

describe('migration link rates', () => {
  it('divides by the longest interval a read allows, so a slow `ip` never shows more than was carried', () => {
    // 12.5 MB in one second is 100 Mbit/s; the second read took 400 ms (a busy host).
    const read = (dev: string, startMono: number, endMono: number, rx: number, tx: number): LinkRead => ({ netns: 'mlab-sw', dev, startMono, endMono, counters: counters(dev, rx, tx) });
    const prev = [read('sw-src', 0, 5, 0, 0), read('sw-dst', 0, 5, 0, 0)];
    const now = [read('sw-src', 1000, 1400, 12_500_000, 0), read('sw-dst', 1000, 1400, 0, 12_500_000)];
    const [src, dst] = linkRates(prev, now);
    expect(src!.rxBitsPerSecond! / 1e6).toBeCloseTo(100 / 1.4, 3);
    expect(dst!.txBitsPerSecond! / 1e6).toBeCloseTo(100 / 1.4, 3);
    expect(src!.rxBitsPerSecond!).toBeLessThanOrEqual(100e6);
  });

  it('on hosts, rates each end by its own read and takes the smaller: what src sent and dst received', () => {
    // src's read took 100 ms, dst's 600 ms (a slower SSH round trip): each divided by its own span.
    const prev: LinkRead[] = [
      { dev: 'eth0', role: 'src', startMono: 0, endMono: 100, counters: counters('eth0', 0, 0) },
      { dev: 'eth1', role: 'dst', startMono: 0, endMono: 100, counters: counters('eth1', 0, 0) },
    ];
    const now: LinkRead[] = [
      { dev: 'eth0', role: 'src', startMono: 1000, endMono: 1100, counters: counters('eth0', 0, 12_500_000) },
      { dev: 'eth1', role: 'dst', startMono: 1000, endMono: 1600, counters: counters('eth1', 12_500_000, 0) },
    ];
    const links = linkRates(prev, now);
    expect(links.map((l) => l.role)).toEqual(['src', 'dst']);
    const s = { links } as unknown as BatchSample;
    expect(linkRatesMbps(s).srcTxMbps).toBeCloseTo(100 / 1.1, 3);
    expect(linkRatesMbps(s).dstRxMbps).toBeCloseTo(100 / 1.6, 3);
    expect(migrationLinkMbps(s)).toBeCloseTo(100 / 1.6, 3);
  });

  it('says why an end could not be read, with no figure', () => {
    const [l] = linkRates([], [{ dev: 'eth0', role: 'src', startMono: 0, endMono: 1, error: 'eth0 on root@h: Device does not exist' }]);
    expect(l).toEqual({ dev: 'eth0', role: 'src', error: 'eth0 on root@h: Device does not exist' });
  });

  it('reads an older record (uplinks read apart) by the smaller figure, not the 190 % one', () => {
    const s = { links: [{ netns: 'mlab-src', dev: 'up0', txBitsPerSecond: 95e6 }, { netns: 'mlab-dst', dev: 'up0', rxBitsPerSecond: 190e6 }] } as unknown as BatchSample;
    expect(linkRatesMbps(s)).toEqual({ srcTxMbps: 95, dstRxMbps: 190 });
    expect(migrationLinkMbps(s)).toBe(95);
  });
});

describe('on link samples recorded by a batch on a link shaped to 100 Mbit/s (N=1, 128 MiB guest, CPU saturated)', () => {
  const rec = JSON.parse(readFileSync(new URL('./fixtures/shaped-100mbit-links.json', import.meta.url), 'utf8')) as { host: { linkBandwidthMbit: number }; samples: BatchSample[] };

  it('reads src and dst from the switch in one read, and never above the shaped rate', () => {
    expect(rec.host.linkBandwidthMbit).toBe(100);
    const rates = rec.samples.map(migrationLinkMbps).filter((v): v is number => v !== undefined);
    expect(rates.length).toBeGreaterThan(10);
    // The migration used the link (about 80 MiB went over it)...
    expect(Math.max(...rates)).toBeGreaterThan(60);
    // ...and no sample shows more than it can carry.
    for (const r of rates) expect(r).toBeLessThanOrEqual(100);
    for (const s of rec.samples) expect(s.links.map((l) => `${l.netns}/${l.dev}`)).toEqual(['mlfg-sw/sw-src', 'mlfg-sw/sw-dst']);
  });
});
