import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { glueNegativeValues } from '../../../src/cli.js';
import { RunGuard } from '../../../src/migrate/guard.js';
import { MiglabError } from '../../../src/errors.js';
import { checkResultsDir } from '../../../src/report/results-dir.js';

const root = mkdtempSync(join(tmpdir(), 'miglab-results-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('the results folder, checked before anything starts', () => {
  it('is made private (0700) and must be writable with room', async () => {
    const dir = await checkResultsDir(join(root, 'a', 'b'));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    await expect(checkResultsDir(join(root, 'a'), 10 ** 9)).rejects.toThrow(/^the results folder .* has [\d.]+ MiB free; a run needs at least 1000000000 MiB; free some space or choose another folder with --results DIR$/);
    const file = join(root, 'file');
    writeFileSync(file, 'x');
    await expect(checkResultsDir(join(file, 'sub'))).rejects.toThrow(/cannot be made \(ENOTDIR/);
    // Node's recursive mkdir would hang under /proc: refused by the file system, at once.
    await expect(checkResultsDir('/proc/miglab-nonexistent/x')).rejects.toThrow(/^the results folder \/proc\/miglab-nonexistent\/x is on \/proc \(procfs\), which holds no files/);
  });
});

describe('the run guard', () => {
  it('keeps the first reason, aborts every wait, and keeps incidents with their times', () => {
    const g = new RunGuard();
    g.migrateSentAt = Date.now() - 1000;
    g.note('nfs', 'the NFS server is stopped');
    g.trip('nfs', new MiglabError('MIGRATION_FAILED', 'the NFS server is gone'));
    g.trip('console', new MiglabError('MIGRATION_FAILED', 'a kernel panic'));
    expect(g.signal.aborted).toBe(true);
    expect(g.tripped?.error.message).toBe('the NFS server is gone');
    expect(g.interrupted).toBe(false);
    expect(g.incidents.map((i) => i.source)).toEqual(['nfs', 'nfs', 'console']);
    expect(g.incidents[0]!.tMs).toBeGreaterThanOrEqual(1000);
  });

  it('tells an interrupt from outside, and by which signal', () => {
    const ac = new AbortController();
    const g = new RunGuard(ac.signal);
    ac.abort(new Error('received SIGTERM'));
    expect(g.signal.aborted).toBe(true);
    expect(g.interrupted).toBe(true);
    expect(g.interruptedBy).toBe('SIGTERM');
    g.trip('qemu-exit', new MiglabError('MIGRATION_FAILED', 'QEMU went away'));
    expect(g.tripped).toBeUndefined();
  });
});

describe('negative values on the command line', () => {
  it('are glued to their option so the option says what is wrong', () => {
    expect(glueNegativeValues(['migrate', '--memory', '-5G', '--downtime-limit', '-1ms', '--accel', 'tcg'])).toEqual(['migrate', '--memory=-5G', '--downtime-limit=-1ms', '--accel', 'tcg']);
    expect(glueNegativeValues(['lab', 'down', '--force', '-h'])).toEqual(['lab', 'down', '--force', '-h']);
  });
});
