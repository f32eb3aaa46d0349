// `guests down` against stand-in holders: real processes recorded as the lab records a `guests up`
// (pid and start time) in a scratch state root. One that ends on SIGTERM is ended; one that ignores
// it is killed after the limit, and so is what it had recorded in the lab; a record whose process
// is gone is removed; nothing else is signalled.
import { afterEach, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guestsDown } from '../../../src/guests/down.js';
import { holdersDir } from '../../../src/guests/record.js';
import { isOwnedAlive, procStartTime } from '../../../src/lab/proc.js';
import { ProcessRegistry } from '../../../src/lab/procs.js';

const children: ChildProcess[] = [];
let root: string;

afterEach(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.length = 0;
  rmSync(root, { recursive: true, force: true });
});

/** A node process; `ignoreTerm` makes it ignore SIGTERM, as a hung guests up would. */
async function holder(ignoreTerm: boolean, opts: { detached?: boolean } = {}): Promise<{ pid: number; startTime: number }> {
  const code = `${ignoreTerm ? "process.on('SIGTERM', () => {});" : ''} setInterval(() => {}, 1000); console.log('up');`;
  const c = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'ignore'], detached: opts.detached });
  children.push(c);
  await new Promise((r) => c.stdout!.once('data', r));
  return { pid: c.pid!, startTime: procStartTime(c.pid!)! };
}

function record(p: { pid: number; startTime: number }): string {
  const dir = holdersDir(join(root, 'mltest'));
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${p.pid}.json`);
  writeFileSync(file, JSON.stringify({ ...p, prefix: 'mltest', since: new Date().toISOString() }));
  return file;
}

describe('guests down', () => {
  it('ends the holder with SIGTERM and says so', async () => {
    root = mkdtempSync(join(tmpdir(), 'miglab-guests-'));
    const h = await holder(false);
    const file = record(h);
    const r = await guestsDown({ prefix: 'mltest', stateRoot: root, timeoutMs: 5000 });
    expect(r.killed).toBe(0);
    expect(r.lines).toEqual([expect.stringMatching(new RegExp(`^ended miglab guests up \\(pid ${h.pid}\\)`))]);
    expect(isOwnedAlive(h)).toBe(false);
    // The holder removes its own record when it ends; this stand-in did not.
    expect(existsSync(file)).toBe(true);
  });

  it('kills a holder that does not end in time, and stops what it had recorded in the lab', async () => {
    root = mkdtempSync(join(tmpdir(), 'miglab-guests-'));
    const h = await holder(true);
    const file = record(h);
    // Something it started in the lab (a QEMU, say, which quits on SIGTERM): leads its own group,
    // recorded with its owner.
    const child = await holder(false, { detached: true });
    new ProcessRegistry(join(root, 'mltest', 'procs')).record({ ...child, what: 'stand-in QEMU', argv: ['node'], netns: 'mltest-src', owner: h, startedAt: new Date().toISOString() });
    const bystander = await holder(true);
    const r = await guestsDown({ prefix: 'mltest', stateRoot: root, timeoutMs: 500 });
    expect(r.killed).toBe(1);
    expect(r.lines[0]).toMatch(/did not end within 1 s and was killed; stopped what it had started: stand-in QEMU/);
    expect(isOwnedAlive(h)).toBe(false);
    expect(isOwnedAlive(child)).toBe(false);
    expect(isOwnedAlive(bystander)).toBe(true);
    expect(existsSync(file)).toBe(false);
  }, 20_000);

  it('removes the record of a holder that is gone, and says when there is nothing to end', async () => {
    root = mkdtempSync(join(tmpdir(), 'miglab-guests-'));
    expect((await guestsDown({ prefix: 'mltest', stateRoot: root })).lines).toEqual(['no miglab guests up holds guests on lab "mltest": nothing to end']);
    const file = record({ pid: 999999, startTime: 1 });
    const r = await guestsDown({ prefix: 'mltest', stateRoot: root });
    expect(r.lines[0]).toMatch(/removed the record of a guests up \(pid 999999\) that is gone/);
    expect(existsSync(file)).toBe(false);
  });
});
