// Progress as a user sees it through the `miglab` command with stderr not a terminal (a log, a
// pipe): plain timestamped lines while the migration runs, a few rather than one per sample;
// `--json` puts the run report alone on stdout; `--quiet` prints no progress at all. The suite's
// shared lab, one guest pair per run.
import { describe, expect, it } from '@jest/globals';
import { execa } from 'execa';
import { mkdirSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { REPO_ROOT } from '../../src/api.js';
import type { RunReport } from '../../src/migrate/report.js';
import { sharedLabPrefix, useSharedLab } from '../support/shared-lab.js';

const fx = useSharedLab('progress');
const MIGLAB = resolve(REPO_ROOT, 'bin', 'miglab.js');
const GUEST = ['--prefix', sharedLabPrefix(), '--memory', '128M', '--accel', 'tcg', '--disk-size', '16M'];
/** A line of progress: a time stamp, a phase, what happened. */
const STAMPED = /^\d\d:\d\d:\d\d\.\d{3} /;

function results(name: string): string {
  const d = join(fx.runDir, name);
  mkdirSync(d, { recursive: true });
  return d;
}

describe('miglab migrate with stderr not a terminal', () => {
  it('prints plain progress lines during the migration, and --json prints the run report alone on stdout', async () => {
    // 4 MiB/s keeps the migration going for some seconds.
    const r = await execa('node', [MIGLAB, 'migrate', ...GUEST, '--max-bandwidth', '4M/s', '--json', '--results', results('json')], { reject: false, env: { FORCE_COLOR: '0' } });
    expect(r.exitCode).toBe(0);
    const report = JSON.parse(r.stdout) as RunReport;
    expect(report.verdict).toBe('completed');
    expect(report.outputs.totalTimeMs).toBeGreaterThan(0);

    const lines = r.stderr.split('\n');
    // No terminal: no escape codes, no carriage returns.
    expect(r.stderr).not.toContain('\r');
    expect(r.stderr).not.toContain('\u001b');
    const start = lines.findIndex((l) => /migrate\s+QMP: migrating/.test(l));
    const end = lines.findIndex((l) => /cleanup\s+stopping QEMU/.test(l));
    expect(start).toBeGreaterThan(-1);
    const during = lines.slice(start + 1, end).filter((l) => /^\S+ migrate {2}(setup|active)/.test(l));
    for (const l of during) expect(l).toMatch(STAMPED);
    // At least the migration's start and its next pass, with the figures named.
    expect(during.length).toBeGreaterThanOrEqual(2);
    expect(during.join('\n')).toMatch(/active · pass \d+ · [\d.]+ MiB left · [\d.]+ MiB\/s · dirty (-|[\d.]+ MiB\/s) · (\d+ s|\d+m\d\ds) to the deadline/);
    // A line per pass or every few seconds, not one per 100 ms sample.
    expect(during.length).toBeLessThan(report.timeline.length / 2);
    expect(during.length).toBeLessThanOrEqual((report.outputs.dirtySyncCount ?? 0) + report.timeline.length / 40 + 2);
    // The result lines for a person went to stderr, out of the JSON's way.
    expect(r.stderr).toMatch(/^migration completed/m);
    expect(r.stdout).not.toMatch(/migration completed/);
    // The figures, drawn by the command's drawing thread while the run cleaned up (the client's
    // silence among them: on failure, the run's incidents say why there is none).
    expect({ breakdown: report.outputs.clientSilence !== undefined, incidents: report.outputs.incidents }).toEqual({ breakdown: true, incidents: report.outputs.incidents });
    const [runDir] = readdirSync(results('json'));
    expect(readdirSync(join(results('json'), runDir!, 'plots')).sort()).toEqual(['client-silence.png', 'client-silence.svg', 'remaining-ram.png', 'remaining-ram.svg', 'throughput.png', 'throughput.svg']);
  }, 150_000);

  it('--quiet prints no progress, only the result lines', async () => {
    const r = await execa('node', [MIGLAB, 'migrate', ...GUEST, '--quiet', '--results', results('quiet')], { reject: false, env: { FORCE_COLOR: '0' } });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^migration completed/);
    expect(r.stderr).toBe('');
  }, 150_000);
});

describe('--json on a command without a JSON summary', () => {
  it('is refused in one line before anything starts', async () => {
    const r = await execa('node', [MIGLAB, 'plot', fx.runDir, '--json'], { reject: false, env: { FORCE_COLOR: '0' } });
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('miglab: miglab plot has no JSON summary; drop --json (it is for image, qemu, lab, migrate, containers, homework, colo, sweep, batch, bench)');
  });
});
