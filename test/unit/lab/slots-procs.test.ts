import { afterAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { procStartTime } from '../../../src/lab/proc.js';
import { ProcessRegistry, describeRecorded, type RecordedProcess } from '../../../src/lab/procs.js';
import { SlotTable } from '../../../src/lab/slots.js';

const root = mkdtempSync(join(tmpdir(), 'miglab-slots-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A process that has ended: its pid and start time name nobody alive. */
async function deadProcess(): Promise<{ pid: number; startTime: number }> {
  const c = spawn('sleep', ['0']);
  const pid = c.pid!;
  const startTime = procStartTime(pid) ?? 1;
  await new Promise((r) => c.once('exit', r));
  return { pid, startTime };
}

describe('guest slots', () => {
  it('gives each run its own slot, the preferred one when free', async () => {
    const t = new SlotTable(join(root, 'a'), 3);
    const a = await t.acquire({ preferred: 0, runId: 'run-a' }, async () => []);
    const b = await t.acquire({ preferred: 0, runId: 'run-b' }, async () => []);
    const c = await t.acquire({ preferred: 3, runId: 'run-c' }, async () => []);
    expect([a.index, b.index, c.index]).toEqual([0, 1, 3]);
    expect(t.held().map((h) => [h.index, h.holder.runId, h.alive])).toEqual([
      [0, 'run-a', true],
      [1, 'run-b', true],
      [3, 'run-c', true],
    ]);
    a.release();
    a.release();
    expect((await t.acquire({ preferred: 0, runId: 'run-d' }, async () => [])).index).toBe(0);
    // Slots wrap around from the preferred one.
    expect((await t.acquire({ preferred: 3, runId: 'run-e' }, async () => [])).index).toBe(2);
    await expect(t.acquire({ preferred: 0, runId: 'run-f' }, async () => [])).rejects.toThrow(/all 4 guest slots of the lab are held by running miglab runs/);
    await expect(t.acquire({ preferred: 9, runId: 'run-g' }, async () => [])).rejects.toThrow(/out of range/);
  });

  it('reclaims a slot whose run is gone, after cleaning what it left', async () => {
    const dir = join(root, 'b');
    const t = new SlotTable(dir, 1);
    const dead = await deadProcess();
    await t.acquire({ preferred: 0, runId: 'mine' }, async () => []);
    writeFileSync(join(dir, 'g0.json'), JSON.stringify({ ...dead, runId: 'killed-run', since: '2026-12-02T00:00:00Z' }));
    expect(t.held()[0]).toMatchObject({ index: 0, alive: false });
    const cleaned: string[] = [];
    const lease = await t.acquire({ preferred: 0, runId: 'next' }, async (index, holder) => {
      cleaned.push(`g${index} of ${holder?.runId}`);
      return ['stopped a QEMU'];
    });
    expect(lease.index).toBe(0);
    expect(cleaned).toEqual(['g0 of killed-run']);
    expect(lease.reclaimed).toEqual([`slot g0 of run killed-run, whose miglab (pid ${dead.pid}) is gone`, 'stopped a QEMU']);
    expect(JSON.parse(readFileSync(join(dir, 'g0.json'), 'utf8')).runId).toBe('next');
  });
});

describe('the process registry', () => {
  it('records processes, tells orphans (their miglab is gone) from runs in progress, and forgets ended ones', async () => {
    const reg = new ProcessRegistry(join(root, 'procs'));
    const child = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
    const other = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
    try {
      const me = { pid: process.pid, startTime: procStartTime(process.pid)! };
      const base = { argv: ['sleep', '30'], netns: 'mlab-src', startedAt: new Date().toISOString() };
      const mine: RecordedProcess = { pid: child.pid!, startTime: procStartTime(child.pid!)!, what: 'sleep in mlab-src', owner: me, runId: 'r1', slot: 0, ...base };
      const orphan: RecordedProcess = { pid: other.pid!, startTime: procStartTime(other.pid!)!, what: 'sleep in mlab-dst', owner: await deadProcess(), ...base };
      const ended: RecordedProcess = { ...(await deadProcess()), what: 'gone in mlab-cli', owner: me, ...base };
      for (const p of [mine, orphan, ended]) reg.record(p);
      expect(reg.list()).toHaveLength(3);
      expect(reg.live().map((p) => p.what).sort()).toEqual(['sleep in mlab-dst', 'sleep in mlab-src']);
      // The ended process's record is dropped on the way.
      expect(reg.list()).toHaveLength(2);
      expect(reg.live({ runId: 'r1' }).map((p) => p.pid)).toEqual([child.pid]);
      expect(reg.orphans().map((p) => p.pid)).toEqual([other.pid]);
      expect(reg.inUse().map((p) => p.pid)).toEqual([child.pid]);
      expect(describeRecorded(orphan)).toMatch(new RegExp(`^sleep in mlab-dst \\(pid ${other.pid}, miglab pid \\d+, gone\\)$`));
      reg.forget(mine);
      expect(existsSync(join(root, 'procs', `${mine.pid}-${mine.startTime}.json`))).toBe(false);
    } finally {
      child.kill('SIGKILL');
      other.kill('SIGKILL');
    }
  });
});
