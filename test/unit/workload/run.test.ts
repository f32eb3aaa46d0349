import type { AgentClient } from '../../../src/guest/agent-client.js';
import type { DirtyVerify, DiskVerify } from '../../../src/guest/replies.js';
import type { Host, RunResult } from '../../../src/host/host.js';
import type { IperfResult } from '../../../src/measure/iperf.js';
import { netBitsPerS, qemuImgCheck, verifyIntegrity } from '../../../src/workload/run.js';
import { parseWorkload } from '../../../src/workload/spec.js';

function fakeAgent(replies: { dirty?: DirtyVerify; disk?: DiskVerify }): AgentClient {
  return {
    dirtyVerify: () => Promise.resolve(replies.dirty),
    diskVerify: () => Promise.resolve(replies.disk),
  } as unknown as AgentClient;
}

describe('verifyIntegrity', () => {
  const disk = parseWorkload('disk:512K/s');

  it('passes a clean working set and names the first bad page otherwise', async () => {
    const dirty = parseWorkload('dirty:64M@32M/s');
    expect(await verifyIntegrity(fakeAgent({ dirty: { pages: 16384, bad: 0, firstBad: undefined } }), dirty)).toEqual({
      checked: 'memory',
      ok: true,
      detail: 'all 16384 pages of the working set hold their last write',
      pages: 16384,
      badPages: 0,
    });
    const bad = await verifyIntegrity(fakeAgent({ dirty: { pages: 16384, bad: 1, firstBad: 5 } }), dirty);
    expect(bad).toMatchObject({ ok: false, badPages: 1, firstBadPage: 5, detail: '1 of 16384 pages are wrong, the first is page 5' });
  });

  it('passes intact records in sequence', async () => {
    const r = await verifyIntegrity(fakeAgent({ disk: { records: 256, bad: 0, firstBad: undefined, gaps: 0, lastSeq: 255, backwards: 0 } }), disk);
    expect(r).toMatchObject({ checked: 'disk', ok: true, records: 256, badRecords: 0, gaps: 0, lastSeq: 255 });
    expect(r.detail).toBe('all 256 records (seq 0..255) are intact and in sequence');
  });

  it.each<[string, DiskVerify, RegExp]>([
    ['a bad record', { records: 256, bad: 1, firstBad: 100, gaps: 0, lastSeq: 255 }, /1 bad \(first at seq 100\)/],
    ['a record out of place', { records: 256, bad: 0, firstBad: undefined, gaps: 1, lastSeq: 255 }, /1 out of sequence/],
    ['time running backwards', { records: 256, bad: 0, firstBad: undefined, gaps: 0, lastSeq: 255, backwards: 2 }, /2 with a guest time earlier/],
    ['a missing tail', { records: 256, bad: 1, firstBad: 255, gaps: 0, lastSeq: 254 }, /last good seq 254, expected 255/],
  ])('fails %s', async (_what, v, detail) => {
    const r = await verifyIntegrity(fakeAgent({ disk: v }), disk);
    expect(r.ok).toBe(false);
    expect(r.detail).toMatch(detail);
  });

  it('has nothing to check for the other workloads', async () => {
    for (const w of ['idle', 'cpu', 'net']) {
      expect(await verifyIntegrity(fakeAgent({}), parseWorkload(w))).toMatchObject({ checked: 'none', ok: true });
    }
  });
});

describe('qemuImgCheck', () => {
  function fakeHost(exitCode: number, stdout: string, stderr = ''): { host: Host; calls: (readonly string[])[] } {
    const calls: (readonly string[])[] = [];
    const host = {
      name: 'src',
      run: (argv: readonly string[]): Promise<RunResult> => {
        calls.push(argv);
        return Promise.resolve({ argv, exitCode, stdout, stderr, durationMs: 5 });
      },
    } as unknown as Host;
    return { host, calls };
  }

  it('runs qemu-img check on the qcow2 and reads its exit code', async () => {
    const { host, calls } = fakeHost(0, 'No errors were found on the image.\n');
    const r = await qemuImgCheck(host, '/srv/nfs/d.qcow2');
    expect(calls).toEqual([['qemu-img', 'check', '-f', 'qcow2', '/srv/nfs/d.qcow2']]);
    expect(r).toMatchObject({ ok: true, exitCode: 0, meaning: 'clean', output: 'No errors were found on the image.' });
  });

  it('reports corruption and leaks as not ok', async () => {
    expect(await qemuImgCheck(fakeHost(2, '', 'ERROR cluster 5 refcount=0 reference=1').host, 'x')).toMatchObject({ ok: false, meaning: 'the image is corrupted' });
    expect((await qemuImgCheck(fakeHost(3, '1 leaked clusters were found').host, 'x')).meaning).toMatch(/leaked/);
  });
});

describe('netBitsPerS', () => {
  const base: IperfResult = {
    protocol: 'TCP',
    reverse: false,
    streams: 1,
    durationS: 30,
    intervals: [
      { startS: 0, endS: 1, bitsPerSecond: 8e7, bytes: 1e7 },
      { startS: 1, endS: 1.5, bitsPerSecond: 8e7, bytes: 5e6 },
    ],
    summary: { sentBps: 8e7, receivedBps: 7.9e7, sentBytes: 1.5e7, receivedBytes: 1.5e7 },
  };
  it('takes what arrived from a run that ran its course', () => {
    expect(netBitsPerS(base)).toBe(7.9e7);
  });
  it('falls back to the client intervals when iperf3 was interrupted', () => {
    expect(netBitsPerS({ ...base, error: 'interrupt - the client has terminated', summary: { ...base.summary, receivedBps: 0 } })).toBeCloseTo(8e7);
  });
});
