// README's "The homework by hand", done exactly as it says: `miglab guests up` (which brings a lab
// up for itself here), then the telnet line it prints, fed the monitor commands it prints; the
// migration the "person" drives is recorded like any run; the socat line it prints reaches the
// person's QMP; `miglab guests down` ends it all and nothing of the lab is left.
import { execa, type ResultPromise } from 'execa';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { labDown } from '../../src/lab/index.js';
import type { RunReport } from '../../src/migrate/report.js';
import { endIfRunning, waitPrinted } from '../support/printed.js';

// Its own prefix: `guests up` brings up a lab for itself and must leave nothing of it; then on a
// lab brought up with `lab up`, Ctrl-C must leave that lab up.
const PREFIX = 'mlbh';
const MIGLAB = resolve('bin/miglab.js');
const results = mkdtempSync(join(tmpdir(), 'miglab-it-byhand-'));
let up: ResultPromise<{ reject: false; all: true; buffer: true }> | undefined;
let out = '';

afterAll(async () => {
  // Only if a step failed before `guests down`: end the session this test started.
  await endIfRunning(up);
  await labDown(PREFIX, { timeoutMs: 20_000 });
  rmSync(results, { recursive: true, force: true });
}, 120_000);

/** Wait until the guests up output matches `re` (it prints as it goes). */
const waitOutput = (re: RegExp, timeoutMs: number) => waitPrinted('guests up', () => out, () => up, re, timeoutMs);

/** The printed text as blocks separated by blank lines: prose and commands alternate. */
function blocks(text: string): string[][] {
  return text.split(/\n\s*\n/).map((b) => b.split('\n').filter((l) => l.trim() !== ''));
}

/** The commands printed after the line matching `re`: the next block that is not prose ending in ':'. */
function commandsAfter(all: string[][], re: RegExp): string[] {
  const i = all.findIndex((b) => b.some((l) => re.test(l)));
  const next = all.slice(i + 1).find((b) => !b[b.length - 1]!.endsWith(':'));
  if (i < 0 || !next) throw new Error(`no commands after ${re}`);
  return next;
}

describe('the homework by hand (README)', () => {
  it('a person migrates the held guests over telnet; the run is recorded; guests down ends everything', async () => {
    up = execa('node', [MIGLAB, 'guests', 'up', '--prefix', PREFIX, '--memory', '128M', '--accel', 'tcg', '--disk-size', '16M', '--results', results, '--hold', '3m'], {
      reject: false,
      all: true,
      buffer: true,
    });
    up.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));

    // What it prints: the telnet line, then the HMP commands, then the socat line and its JSON.
    await waitOutput(/^miglab guests down --prefix mlbh$/m, 150_000);
    const printed = blocks(out);
    const telnetLine = printed.flat().find((l) => /^ip netns exec \S+ telnet 127\.0\.0\.1 \d+$/.test(l));
    expect(telnetLine).toBe('ip netns exec mlbh-src telnet 127.0.0.1 4445');
    const hmpLines = commandsAfter(printed, /^ip netns exec .* telnet /);
    expect(hmpLines).toEqual([expect.stringMatching(/^migrate -d tcp:10\.77\.0\.2:\d+$/), 'info migrate']);
    const socatLine = printed.flat().find((l) => l.startsWith('socat - UNIX-CONNECT:'))!;
    expect(socatLine).toMatch(/^socat - UNIX-CONNECT:\/\S+\.qmp$/);
    const qmpLines = commandsAfter(printed, /^socat /);
    expect(qmpLines.map((l) => (JSON.parse(l) as { execute: string }).execute)).toEqual(['qmp_capabilities', 'migrate', 'query-migrate']);

    // The person: the printed telnet command, fed the printed lines one at a time, then
    // `info migrate` again until the monitor says completed.
    const [cmd, ...args] = telnetLine!.split(' ');
    const telnet = execa(cmd!, args, { reject: false, all: true, buffer: true });
    let seen = '';
    telnet.all!.on('data', (c: Buffer) => (seen += c.toString('utf8')));
    const type = (line: string) => telnet.stdin!.write(`${line}\n`);
    const until = Date.now() + 120_000;
    while (!/\(qemu\)/.test(seen) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    for (const line of hmpLines) {
      type(line);
      await new Promise((r) => setTimeout(r, 500));
    }
    while (!/Migration status: completed/.test(seen) && Date.now() < until) {
      type('info migrate');
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect(seen).toMatch(/Migration status: active|Migration status: completed/);

    // miglab saw it, recorded it, printed the summary, and keeps the guests for info migrate.
    await waitOutput(/The guests are kept/, 120_000);
    // The monitor still answers after the record was written: QEMU's final figures, by hand.
    type('info migrate');
    await new Promise((r) => setTimeout(r, 1000));
    telnet.stdin!.end();
    await telnet;
    expect(seen).toMatch(/Migration status: completed/);
    expect(seen).toMatch(/downtime: \d+ ms/);

    // The person's QMP, as printed: capabilities, then query-migrate (migrate was done over HMP).
    const socat = await execa(socatLine.split(' ')[0]!, socatLine.split(' ').slice(1), { input: `${qmpLines[0]}\n${qmpLines[2]}\n`, reject: false });
    expect(socat.stdout).toMatch(/"status":\s*"completed"/);

    const dir = (await waitOutput(/^ {2}results\s+(\S+)$/m, 5_000))[1]!;
    const first = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as RunReport;
    expect(first.verdict).toBe('completed');
    expect(first.runId).toContain('byhand');
    // miglab cannot tell which of the person's monitors started it: the record says by hand, not "qmp".
    expect(first.inputs.startedBy).toBe('hand');
    expect(out).toMatch(/by hand at the source.s monitor \(a migration to tcp:[^)]+\), sampled by miglab over QMP/);

    // From another terminal: guests down ends it.
    const down = await execa('node', [MIGLAB, 'guests', 'down', '--prefix', PREFIX], { reject: false });
    expect(down.stdout).toMatch(/ended miglab guests up \(pid \d+\)/);
    expect(down.exitCode).toBe(0);
    const done = await up;
    expect(done.exitCode).toBe(0);
    expect(out).toMatch(/guests ended \(received SIGTERM\)/);
    expect(out).toMatch(/left behind\s+nothing/);

    // The record, completed after the guests were stopped: the figures of any run.
    const r = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as RunReport;
    expect(r.ok).toBe(true);
    expect(r.inputs.migrateCommand).toMatch(/^by hand at the source's monitor/);
    expect(r.outputs.downtimeMs).toBeGreaterThan(0);
    expect(r.outputs.eventDowntimeMs).toBeGreaterThan(0);
    expect(r.outputs.clientDowntimeMs).toBeGreaterThan(0);
    // A client cannot have seen less silence than QEMU's own pause, within the probe's resolution.
    expect(r.outputs.clientDowntimeMs!).toBeGreaterThanOrEqual(r.outputs.downtimeMs! - r.outputs.clientProbe!.resolutionMs);
    expect(r.passes.length).toBeGreaterThan(0);
    expect(r.timeline.length).toBeGreaterThan(0);
    // t = 0 is the person's migrate (QEMU's setup event), not when the guests were ready.
    expect(r.events.find((e) => e.side === 'source' && e.event === 'MIGRATION')).toMatchObject({ tMs: 0, data: { status: 'setup' } });
    expect(r.outputs.heartbeat).toMatchObject({ continuous: true, sameBoot: true });
    expect(r.outputs.after?.destination).toMatchObject({ process: 'running', heartbeat: 'continuing' });
    expect(r.outputs.qemuImgCheck?.ok).toBe(true);
    expect(r.outputs.leftovers).toEqual([]);

    // Nothing of the session is left: its lab, its processes, its state.
    const netns = (await execa('ip', ['netns', 'list'])).stdout;
    expect(netns).not.toMatch(/^mlbh-/m);
    const ps = (await execa('ps', ['-eo', 'args='])).stdout.split('\n');
    expect(ps.filter((l) => l.includes('/run/miglab/mlbh/') || l.includes('mlbh-'))).toEqual([]);
    expect(existsSync('/run/miglab/mlbh')).toBe(false);
    const again = await execa('node', [MIGLAB, 'guests', 'down', '--prefix', PREFIX], { reject: false });
    expect(again.stdout).toMatch(/nothing to end/);
  }, 300_000);

  it('on a lab that is up, Ctrl-C before any migration stops what guests up started and leaves the lab up', async () => {
    const labUp = await execa('node', [MIGLAB, 'lab', 'up', '--prefix', PREFIX], { reject: false });
    expect(labUp.exitCode).toBe(0);
    out = '';
    up = execa('node', [MIGLAB, 'guests', 'up', '--prefix', PREFIX, '--memory', '128M', '--accel', 'tcg', '--disk-size', '16M', '--results', results, '--hold', '3m'], {
      reject: false,
      all: true,
      buffer: true,
    });
    up.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
    await waitOutput(/^miglab guests down --prefix mlbh$/m, 150_000);
    process.kill(up.pid!, 'SIGINT');
    const done = await up;
    expect(done.exitCode).toBe(130);
    expect(done.all).toMatch(/migration interrupted/);
    const dir = /^ {2}results\s+(\S+)$/m.exec(out)![1]!;
    const r = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as RunReport;
    expect(r.verdict).toBe('interrupted');
    expect(r.outputs.interruptedBy).toBe('SIGINT');
    expect(r.outputs.leftovers).toEqual([]);
    // Its QEMUs and probe are gone; the lab it found is still up, with nothing of the run in it.
    const status = await execa('node', [MIGLAB, 'lab', 'status', '--prefix', PREFIX], { reject: false });
    expect(status.exitCode).toBe(0);
    const ps = (await execa('ps', ['-eo', 'args='])).stdout.split('\n');
    expect(ps.filter((l) => l.startsWith('qemu-system') && l.includes('/run/miglab/mlbh/'))).toEqual([]);
    expect((await execa('node', [MIGLAB, 'guests', 'down', '--prefix', PREFIX], { reject: false })).stdout).toMatch(/nothing to end/);
  }, 240_000);
});
