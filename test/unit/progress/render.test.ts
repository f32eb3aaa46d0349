import { describe, expect, it } from '@jest/globals';
import { cliOutput, drawsInPlace } from '../../../src/cli/output.js';
import { fieldsText, fitWidth, formatDuration, liveParts } from '../../../src/progress/format.js';
import { scoped, type LiveStatus, type LiveUpdate } from '../../../src/progress/progress.js';
import { ProgressRenderer } from '../../../src/progress/render.js';

const CLEAR = '\r\x1b[K';
const MiB = 1024 * 1024;

/** A stream that keeps what was written, as a terminal of `columns` or a log file. */
function stream(columns?: number) {
  const chunks: string[] = [];
  return { chunks, columns, write: (t: string) => chunks.push(t), text: () => chunks.join('') };
}

const T0 = Date.UTC(2026, 11, 2, 9, 0, 0);

function migration(over: Partial<Extract<LiveStatus, { kind: 'migration' }>> = {}): LiveStatus {
  return { kind: 'migration', status: 'active', pass: 1, remainingBytes: 200 * MiB, sentBytesPerS: 95.5 * MiB, pageSizeBytes: 4096, deadlineAt: T0 + 104_000, ...over };
}

/** A figure's label and all its fields, as a plain line shows them. */
function plain(s: LiveStatus, now: number): { label: string; detail: string } {
  const p = liveParts(s, now);
  return { label: p.label, detail: fieldsText(p.fields) };
}

describe('live figures as text', () => {
  it('shows a migration with units, and "-" for a dirty rate QEMU has not measured (never 0)', () => {
    expect(plain(migration(), T0)).toEqual({ label: 'migrate', detail: 'active · pass 1 · 200 MiB left · 95.5 MiB/s · dirty - · 1m44s to the deadline' });
    expect(plain(migration({ pass: 3, dirtyPagesPerS: 2560, remainingBytes: 12.34 * MiB }), T0 + 100_000).detail).toBe('active · pass 3 · 12.3 MiB left · 95.5 MiB/s · dirty 10.0 MiB/s · 4 s to the deadline');
    // A dirty rate without the page size stays in QEMU's unit.
    expect(plain(migration({ dirtyPagesPerS: 300, pageSizeBytes: undefined }), T0).detail).toContain('dirty 300 pages/s');
    // Nothing measured yet: dashes, not zeros.
    expect(plain({ kind: 'migration', status: 'setup', deadlineAt: T0 + 5000 }, T0).detail).toBe('setup · pass - · - MiB left · - MiB/s · dirty - · 5 s to the deadline');
  });

  it('shows boots and settle waits against their deadline, and a sweep with an estimate once a run is done', () => {
    expect(plain({ kind: 'boot', stage: 'starting both QEMUs', startedAt: T0, deadlineAt: T0 + 60_000 }, T0 + 7_400)).toEqual({ label: 'boot', detail: 'starting both QEMUs: 7 s (deadline 1m00s for this stage)' });
    expect(plain({ kind: 'settle', waitingFor: ['psi-cpu'], startedAt: T0, deadlineAt: T0 + 60_000 }, T0 + 12_000).detail).toBe('waiting for psi-cpu: 12 s (at most 1m00s)');
    expect(plain({ kind: 'sweep', run: 1, of: 4, name: 'a/rep1', runStartedAt: T0 }, T0).detail).toBe('run 1/4 · a/rep1 · eta -');
    // Runs of 60 s on average, the third 20 s in: 40 s of it and 60 s for the fourth are left.
    expect(plain({ kind: 'sweep', run: 3, of: 4, name: 'b/rep1', runStartedAt: T0, meanRunMs: 60_000 }, T0 + 20_000).detail).toBe('run 3/4 · b/rep1 · eta 1m40s');
  });

  it('formats durations and cuts lines to a width', () => {
    expect([formatDuration(-5), formatDuration(42_400), formatDuration(185_000), formatDuration(3_720_000)]).toEqual(['0 s', '42 s', '3m05s', '1h02m']);
    expect(fitWidth('abcdef', 10)).toBe('abcdef');
    expect(fitWidth('abcdef', 4)).toBe('abc…');
    expect(fitWidth('abcdef', 0)).toBe('');
  });
});

/** The live line a terminal of `columns` shows for `updates`. */
function drawnAt(columns: number, ...updates: LiveUpdate[]): string {
  const s = stream(columns);
  let now = T0;
  const r = new ProgressRenderer({ stream: s, inPlace: true, now: () => now });
  for (const u of updates) {
    r.update(u);
    // Past the least time between two draws, so each update is drawn at once.
    now += 150;
  }
  const line = s.text().split(CLEAR).at(-1)!;
  r.stop();
  return line;
}

describe('on a terminal: one line rewritten in place', () => {
  it('leaves out the least useful fields when the terminal is narrow, never the time to the deadline', () => {
    const busy = { topic: 'run', status: migration({ pass: 3, dirtyPagesPerS: 2560, remainingBytes: 12.34 * MiB }) } as const;
    expect(drawnAt(120, busy)).toBe('migrate active · pass 3 · 12.3 MiB left · 95.5 MiB/s · dirty 10.0 MiB/s · 1m44s to the deadline');
    // 80 columns: the dirty rate goes first.
    expect(drawnAt(80, busy)).toBe('migrate active · pass 3 · 12.3 MiB left · 95.5 MiB/s · 1m44s to the deadline');
    // 60: then the pass and the rate; what is left and the deadline stay.
    expect(drawnAt(60, busy)).toBe('migrate active · 12.3 MiB left · 1m44s to the deadline');
    // 40: only what is never left out.
    expect(drawnAt(40, busy)).toBe('migrate active · 1m44s to the deadline');
    // Guests migrating side by side each keep their deadline.
    const g = (scope: string) => ({ ...busy, scope });
    const two = drawnAt(120, g('g0'), g('g1'));
    expect(two).toBe('g0 migrate active · 12.3 MiB left · 1m44s to the deadline | g1 migrate active · 12.3 MiB left · 1m44s to the deadline');
    for (const width of [60, 80, 120]) {
      const line = drawnAt(width, busy);
      // One column is left free so the terminal never wraps.
      expect([...line].length).toBeLessThanOrEqual(width - 1);
      expect(line).toMatch(/1m44s to the deadline$/);
    }
  });

  it('cuts what still does not fit, and clears the line for a note and at the end', () => {
    const s = stream(30);
    let now = T0;
    const r = new ProgressRenderer({ stream: s, inPlace: true, now: () => now });
    r.update({ topic: 'run', status: migration() });
    const drawn = s.text();
    expect(drawn.startsWith(CLEAR)).toBe(true);
    const line = drawn.slice(CLEAR.length);
    // 29 columns: one is left free so the terminal never wraps.
    expect([...line]).toHaveLength(29);
    expect(line).toBe(fitWidth('migrate active · 1m44s to the deadline', 29));
    expect(line.endsWith('…')).toBe(true);
    expect(line).not.toContain('\n');

    s.chunks.length = 0;
    now += 200;
    r.note('fault', 'kill-dst fired');
    // Cleared, the note as a line of its own, the live line drawn again.
    expect(s.text()).toBe(`${CLEAR}09:00:00.200 fault    kill-dst fired\n${CLEAR}${line}`);

    s.chunks.length = 0;
    r.stop();
    expect(s.text()).toBe(CLEAR);
    // Nothing is drawn after the end.
    r.update({ topic: 'run', status: migration({ pass: 2 }) });
    expect(s.text()).toBe(CLEAR);
  });

  it('removes the line at once when the last figure ends', () => {
    const s = stream(120);
    const r = new ProgressRenderer({ stream: s, inPlace: true, now: () => T0 });
    r.update({ topic: 'run', status: migration() });
    s.chunks.length = 0;
    // Right after a draw (no 100 ms wait): the line is gone before whatever comes next.
    r.update({ topic: 'run' });
    expect(s.text()).toBe(CLEAR);
    r.note('cleanup', 'stopping QEMU');
    expect(s.text()).toBe(`${CLEAR}09:00:00.000 cleanup  stopping QEMU\n`);
    r.stop();
  });

  it('lets result lines on another stream past without tearing the line', () => {
    const s = stream(200);
    const r = new ProgressRenderer({ stream: s, inPlace: true, now: () => T0 });
    r.update({ topic: 'run', status: { kind: 'boot', stage: 'starting both QEMUs', startedAt: T0, deadlineAt: T0 + 60_000 } });
    const other: string[] = [];
    r.around(() => other.push('result\n'));
    expect(other).toEqual(['result\n']);
    const boot = 'boot starting both QEMUs: 0 s (deadline 1m00s for this stage)';
    expect(s.text()).toBe(`${CLEAR}${boot}${CLEAR}${CLEAR}${boot}`);
    r.stop();
  });

  it("puts the figures of things running at once on the one line, outermost first, and drops one when it ends", () => {
    const s = stream(300);
    let now = T0;
    const r = new ProgressRenderer({ stream: s, inPlace: true, now: () => now });
    const p = r.progress;
    scoped(p, 'g1').live!({ topic: 'run', status: { kind: 'boot', stage: 'x', startedAt: T0, deadlineAt: T0 + 1000 } });
    now += 150;
    scoped(p, 'g0').live!({ topic: 'run', status: { kind: 'boot', stage: 'y', startedAt: T0, deadlineAt: T0 + 1000 } });
    now += 150;
    p.live!({ topic: 'sweep', status: { kind: 'sweep', run: 2, of: 3, name: 'p/rep2', runStartedAt: T0 } });
    const last = () => s.text().split(CLEAR).pop();
    expect(last()).toBe('sweep run 2/3 · p/rep2 · eta - | g0 boot y: 0 s (deadline 1 s for this stage) | g1 boot x: 0 s (deadline 1 s for this stage)');
    now += 150;
    scoped(p, 'g1').live!({ topic: 'run' });
    expect(last()).toBe('sweep run 2/3 · p/rep2 · eta - | g0 boot y: 0 s (deadline 1 s for this stage)');
    // Scoped notes name their guest.
    scoped(p, 'g0')('boot', 'guest up');
    expect(s.text()).toContain('g0 boot  guest up\n');
    r.stop();
  });

  it('draws at most every 100 ms however often figures come', async () => {
    const s = stream(200);
    const r = new ProgressRenderer({ stream: s, inPlace: true });
    for (let i = 0; i < 20; i++) r.update({ topic: 'run', status: migration({ pass: i }) });
    expect(s.chunks).toHaveLength(1);
    await new Promise((res) => setTimeout(res, 150));
    // The newest figure is drawn once the wait is over.
    expect(s.chunks).toHaveLength(2);
    expect(s.chunks[1]).toContain('pass 19');
    r.stop();
  });
});

describe('not on a terminal: plain timestamped lines', () => {
  it('prints a line when a figure changes notably, not on every sample, and again after a while', async () => {
    const s = stream();
    let now = T0;
    const r = new ProgressRenderer({ stream: s, inPlace: false, now: () => now, plainEveryMs: 5000, tickMs: 20 });
    const live = (u: LiveUpdate) => r.update(u);
    live({ topic: 'run', status: migration() });
    for (let i = 1; i <= 10; i++) {
      now += 100;
      live({ topic: 'run', status: migration({ remainingBytes: (200 - i) * MiB }) });
    }
    // Ten samples of the same pass: still the one line.
    expect(s.chunks).toEqual(['09:00:00.000 migrate  active · pass 1 · 200 MiB left · 95.5 MiB/s · dirty - · 1m44s to the deadline\n']);
    now += 100;
    live({ topic: 'run', status: migration({ pass: 2, dirtyPagesPerS: 256, remainingBytes: 50 * MiB }) });
    expect(s.chunks).toHaveLength(2);
    expect(s.chunks[1]).toBe('09:00:01.100 migrate  active · pass 2 · 50.0 MiB left · 95.5 MiB/s · dirty 1.0 MiB/s · 1m43s to the deadline\n');
    // Nothing new for 5 s: the ticker prints the figure again, with the time left then.
    now += 5000;
    await new Promise((res) => setTimeout(res, 60));
    expect(s.chunks).toHaveLength(3);
    expect(s.chunks[2]).toMatch(/^09:00:06\.100 migrate {2}active · pass 2 .* 1m38s to the deadline\n$/);
    // No escape codes in a log.
    expect(s.text()).not.toContain('\x1b');
    r.stop();
  });
});

describe('the CLI output modes', () => {
  const streams = (tty: boolean) => ({ stdout: { ...stream(), isTTY: tty }, stderr: { ...stream(80), isTTY: tty } });

  it('--json: the summary alone on stdout, parseable, result lines on stderr', () => {
    const s = streams(false);
    const o = cliOutput({ quiet: false, json: true }, s, false);
    o.io.out('migration completed');
    o.io.json!({ verdict: 'completed', counter: 12n });
    o.io.progress!('boot', 'guest up');
    o.stop();
    expect(JSON.parse(s.stdout.text())).toEqual({ verdict: 'completed', counter: '12' });
    expect(s.stderr.text()).toMatch(/^migration completed\n\d\d:\d\d:\d\d\.\d{3} boot {5}guest up\n$/);
  });

  it('--quiet: no progress at all, the result lines still on stdout; no --json: no json', () => {
    const s = streams(true);
    const o = cliOutput({ quiet: true, json: false }, s, false);
    expect(o.io.progress).toBeUndefined();
    expect(o.io.json).toBeUndefined();
    o.io.out('migration completed');
    o.stop();
    expect(s.stdout.text()).toBe('migration completed\n');
    expect(s.stderr.text()).toBe('');
  });

  it('draws in place only on a terminal that can', () => {
    expect(drawsInPlace({ write: () => true, isTTY: true }, { TERM: 'xterm-256color' })).toBe(true);
    expect(drawsInPlace({ write: () => true, isTTY: true }, { TERM: 'dumb' })).toBe(false);
    expect(drawsInPlace({ write: () => true }, {})).toBe(false);
  });
});
