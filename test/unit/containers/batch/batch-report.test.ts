// The container batch's report.md, moves.csv and samples.csv (src/containers/batch/report.ts) from
// the synthetic ladder of batch-fixture.ts: every figure where the reader looks for it, taken
// from the record, and an empty cell (never "n/a") where the record has none.
import { diagnoseBatch } from '../../../../src/containers/batch/diagnose.js';
import { batchReportMarkdown, movesCsv, plotsOf, pressureRows, samplesCsv, stepBars, stepMarkers, stepRows } from '../../../../src/containers/batch/report.js';
import type { BatchStep, ContainerBatchRecord } from '../../../../src/containers/batch/types.js';
import { csvRecords, GUEST_SAMPLES, HOST_SAMPLES, record, REQUEST, STEPS } from './batch-fixture.js';

const r = record({ verdict: diagnoseBatch(STEPS, GUEST_SAMPLES, HOST_SAMPLES, REQUEST) });

/** The cells of the step table's row for N (between the pipes). */
function tableRow(md: string, n: number): string[] {
  const line = md.split('\n').find((l) => l.startsWith(`| ${n} |`));
  if (!line) throw new Error(`no table row for N=${n}`);
  return line.slice(2, -2).split(' | ');
}

describe('stepRows', () => {
  it("gives each step's counts, concurrency, CRIU times and the guests' low and peak", () => {
    const rows = stepRows(r);
    expect(rows.map((x) => x.count)).toEqual([1, 10, 100]);
    expect(rows[1]).toMatchObject({ migrated: 10, intact: 10, dumpsAtOnce: 10, dumpWallMedianMs: 4450, dumpWallMaxMs: 4900, frozenMedianMs: 3045, srcMemMinMiB: 1500, dstMemMinMiB: 1850, halted: 'no' });
    expect(rows[2]).toMatchObject({
      migrated: 12,
      intact: 12,
      dumpFailures: 85,
      restoreFailures: 3,
      oomKills: 37,
      dumpsAtOnce: 100,
      restoresAtOnce: 15,
      dumpWallMedianMs: 15000,
      dumpWallMaxMs: 21400,
      frozenMedianMs: 18000,
      srcMemMinMiB: 60,
      dstMemMinMiB: 1400,
      srcPsiMemMax: 78.4,
      dstPsiMemMax: 2.1,
      halted: 'chost-src: no-answer at 33.0 s',
    });
  });
});

describe('batchReportMarkdown', () => {
  const md = batchReportMarkdown(r);

  it('heads with the batch and its outcome', () => {
    expect(md.startsWith('# Container batch cb-test-1: chost-src halted at N=100\n')).toBe(true);
    expect(md).toContain('on lab miglab-test, from 2026-01-02T03:04:05.000Z to 2026-01-02T03:05:40.000Z');
  });

  it('says what was done: the ladder, the mode, the guests, the containers, and each part of a step', () => {
    expect(md).toContain('N = 1, 10, 100, 400 containers, in mode all-at-once: every dump at once, then every restore at once');
    expect(md).toContain('each with 2,048 MiB of memory and 1 vCPU, CRIU 3.17.1');
    expect(md).toContain('every 100 ms and holds 8 MiB of resident memory');
    expect(md).toContain('dumped on chost-src with `criu dump`, its images written to the shared NFS export /ckpt');
    expect(md).toContain("its log and output in chost-src's own memory");
    expect(md).toContain('copied from /ckpt into chost-dst\'s memory at the paths it had them open');
    expect(md).toContain('shared NFS export /ckpt');
    expect(md).toContain('restored on chost-dst with `criu restore -d`');
    expect(md).toContain('running on chost-dst, its log whole (no number missing, none repeated across the move) and still growing');
  });

  it('has a table row per step with its figures, ms and MiB to 0 decimals', () => {
    expect(tableRow(md, 1)).toEqual(['1', 'all-at-once', '1', '1', '0', '0', '0', '0', '0', 'no', '5,000 ms', '1', '1', '820 ms', '820 ms', '500 ms', '1,800 MiB', '1,850 MiB', '0.0 %', '0.0 %']);
    expect(tableRow(md, 100)).toEqual([
      '100', 'all-at-once', '12', '12', '85', '3', '0', '0', '37', 'chost-src: no-answer at 33.0 s', '40,000 ms', '100', '15',
      '15,000 ms', '21,400 ms', '18,000 ms', '60 MiB', '1,400 MiB', '78.4 %', '2.1 %',
    ]);
    expect(md).toContain('N=100 stopped early: chost-src halted.');
  });

  it('gives the verdict in three paragraphs and the evidence as a list', () => {
    expect(md).toContain('## When, how and why it failed');
    expect(md).toContain(`**When.** ${r.verdict.when}`);
    expect(md).toContain(`**How.** ${r.verdict.how}`);
    expect(md).toContain(`**Why.** ${r.verdict.why}`);
    expect(md).toContain('Most containers migrated intact in one step without a halt: 10.');
    expect(md).toContain('- `chost-src at 50.0 s: no answer on the control port`');
    expect(md).toContain('- `criu dump (x37): killed by signal 9 before it wrote an error`');
  });

  it('names the files and shows the plots', () => {
    for (const f of ['batch.json', 'moves.csv', 'samples.csv', 'memory.png, pressure.png, migrated-per-step.png']) expect(md).toContain(f);
    expect(md).toContain('![MemAvailable of each guest over the batch](plots/memory.png)');
    expect(md).toContain('(plots/migrated-per-step.png)');
  });

  it("lists the scheduler's plan and its reasons for a step that has one", () => {
    const planned: BatchStep = {
      ...STEPS[1]!,
      mode: 'scheduled',
      plan: { atOnce: 2, admit: 9, reasons: ['one criu dump peaked at 49 MiB at N=1', 'chost-dst has room for 9 containers above its 256 MiB reserve'] },
    };
    const out = batchReportMarkdown({ ...r, steps: [STEPS[0]!, planned] });
    expect(out).toContain("## The scheduler's plan");
    expect(out).toContain('### N=10: 2 at once (dumps together, then restores), 9 of 10 admitted');
    expect(out).toContain('- chost-dst has room for 9 containers above its 256 MiB reserve');
    expect(md).not.toContain("The scheduler's plan");
  });

  it('says when the batch itself failed, and when no guest halted', () => {
    const steps = STEPS.slice(0, 2);
    const ok: ContainerBatchRecord = { ...r, steps, verdict: diagnoseBatch(steps, GUEST_SAMPLES, HOST_SAMPLES, REQUEST), failure: 'the lab went down' };
    const out = batchReportMarkdown(ok);
    expect(out.split('\n')[0]).toBe('# Container batch cb-test-1: no guest halted up to N=10');
    expect(out).toContain('**The batch itself failed** (not a guest halting): the lab went down');
  });

  it('writes no "n/a" and no NaN anywhere', () => {
    expect(md).not.toMatch(/n\/a|NaN|undefined/);
  });
});

describe('movesCsv', () => {
  const { head, rows } = csvRecords(movesCsv(r));

  it('has one row per move with the columns the brief names', () => {
    expect(rows).toHaveLength(1 + 10 + 100);
    expect(head).toEqual([
      'step_count', 'index', 'attempt', 'outcome',
      'dump_start_ms', 'dump_wall_ms', 'dump_exit', 'dump_signal', 'dump_maxrss_kib', 'frozen_ms',
      'restore_start_ms', 'restore_wall_ms', 'restore_exit', 'restore_signal', 'restore_maxrss_kib',
      'check_ok', 'check_detail', 'error',
    ]);
  });

  it("gives a migrated move's figures and its check", () => {
    expect(rows[0]).toMatchObject({ step_count: '1', index: '0', attempt: '1', outcome: 'migrated', dump_start_ms: '400.0', dump_wall_ms: '820.0', dump_exit: '0', dump_signal: '', dump_maxrss_kib: '40960', frozen_ms: '500.0', restore_wall_ms: '600.0', restore_maxrss_kib: '30720', check_ok: 'true', error: '' });
  });

  it("leaves a figure a move does not have empty, and keeps CRIU's error whole", () => {
    const killed = rows.find((x) => x.step_count === '100' && x.index === '20')!;
    expect(killed).toMatchObject({ outcome: 'dump-failed', dump_wall_ms: '15000.0', dump_exit: '', dump_signal: '9', dump_maxrss_kib: '', frozen_ms: '', restore_start_ms: '', restore_wall_ms: '', check_ok: '', error: 'dump: killed by signal 9 before it wrote an error' });
    const silent = rows.find((x) => x.step_count === '100' && x.index === '99')!;
    expect(silent).toMatchObject({ dump_start_ms: '2000.0', dump_wall_ms: '', dump_exit: '' });
    const restoreFailed = rows.find((x) => x.step_count === '100' && x.index === '13')!;
    expect(restoreFailed.outcome).toBe('restore-failed');
    expect(restoreFailed.restore_exit).toBe('1');
    expect(restoreFailed.error).toContain("restore: (00.123456) Error (criu/cr-restore.c:1234): Can't fork for 345: Cannot allocate memory");
    expect(movesCsv(r)).not.toMatch(/n\/a|NaN/);
  });
});

describe('samplesCsv', () => {
  const { head, rows } = csvRecords(samplesCsv(r));

  it('has one row per guest sample and per host sample, by time, with its source', () => {
    expect(head.slice(0, 3)).toEqual(['source', 'at_ms', 'rtt_ms']);
    expect(rows).toHaveLength(GUEST_SAMPLES.length + HOST_SAMPLES.length);
    expect(rows.filter((x) => x.source === 'host')).toHaveLength(9);
    expect(rows.filter((x) => x.source === 'chost-dst')).toHaveLength(18);
    const times = rows.map((x) => Number(x.at_ms));
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });

  it("gives each sample's figures, and empty cells where there are none", () => {
    expect(rows.find((x) => x.source === 'chost-src' && x.at_ms === '45000')).toMatchObject({ rtt_ms: '2300.0', mem_available_mib: '60', psi_mem_some10: '78.4', psi_mem_full10: '61', load1: '120.25', tasks: '433', cpu_busy_pct: '' });
    expect(rows.find((x) => x.source === 'chost-src' && x.at_ms === '50000')).toMatchObject({ rtt_ms: '', mem_available_mib: '', psi_mem_some10: '' });
    expect(rows.find((x) => x.source === 'host' && x.at_ms === '40000')).toMatchObject({ cpu_busy_pct: '96.5', mem_available_mib: '9000', rtt_ms: '', tasks: '' });
  });
});

describe('the rows of the plots', () => {
  it('draws the three plots from the record, with the steps and the halt marked', () => {
    expect(plotsOf(r).map((p) => p.name)).toEqual(['memory', 'pressure', 'migrated-per-step']);
    expect(plotsOf({ ...r, guestSamples: [] }).map((p) => p.name)).toEqual(['migrated-per-step']);
    expect(stepMarkers(r)).toEqual([
      { x: 0, label: 'N=1' },
      { x: 6, label: 'N=10' },
      { x: 27, label: 'N=100' },
      { x: 60, label: 'chost-src halted', emphasis: true },
    ]);
    expect(stepBars(r).filter((b) => b.step === 'N=100')).toEqual([
      { step: 'N=100', what: 'migrated', containers: 12 },
      { step: 'N=100', what: 'intact', containers: 12 },
      { step: 'N=100', what: 'dump failed', containers: 85 },
      { step: 'N=100', what: 'restore failed', containers: 3 },
      { step: 'N=100', what: 'cut short', containers: 0 },
      { step: 'N=100', what: 'not attempted', containers: 0 },
    ]);
    expect(pressureRows(r).find((p) => p.series === 'chost-src memory some' && p.tS === 45)?.psiPct).toBe(78.4);
    expect(pressureRows(r).find((p) => p.series === 'chost-src io some' && p.tS === 45)?.psiPct).toBe(0);
  });
});
