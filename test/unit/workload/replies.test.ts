import { AgentReplyError, parseCpuStatus, parseDiskStatus, parseDiskVerify, parseDirtyVerify } from '../../../src/guest/replies.js';

describe('replies of the workload commands', () => {
  it('reads cpu status', () => {
    expect(parseCpuStatus('cpu ops=655360000 ms=2012.5 ops_per_s=325643000 running=1')).toEqual({
      ops: 655360000,
      elapsedMs: 2012.5,
      opsPerS: 325643000,
      running: true,
    });
    expect(parseCpuStatus('cpu ops=0 ms=0.0 ops_per_s=0 running=0').running).toBe(false);
    expect(() => parseCpuStatus('cpu ops=1 ms=1 ops_per_s=1 running=yes')).toThrow(AgentReplyError);
  });

  it('reads disk status, with and without the optional fields', () => {
    const full =
      'disk seq=255 records=256 bytes=1048576 running=1 full=0 failed=0 error=none dev=vda record_bytes=4096 target_kibps=512 achieved_kibps=508.3 ms=2014.2 disk_bytes=67108864';
    expect(parseDiskStatus(full)).toEqual({
      seq: 255,
      records: 256,
      bytes: 1048576,
      running: true,
      full: false,
      failed: false,
      device: 'vda',
      recordBytes: 4096,
      targetKiBps: 512,
      achievedKiBps: 508.3,
      elapsedMs: 2014.2,
      diskBytes: 67108864,
    });
    expect(parseDiskStatus('disk seq=-1 records=0 bytes=0 running=0 full=0')).toEqual({ seq: -1, records: 0, bytes: 0, running: false, full: false });
    expect(parseDiskStatus('disk seq=9 records=10 bytes=40960 running=0 full=0 failed=1 error=EIO dev=sda')).toMatchObject({ failed: true, error: 'EIO', device: 'sda' });
    expect(() => parseDiskStatus('disk verify records=1')).toThrow(AgentReplyError);
  });

  it('reads disk verify', () => {
    expect(parseDiskVerify('disk verify records=256 bad=0 first_bad=-1 gaps=0 last_seq=255 backwards=0')).toEqual({
      records: 256,
      bad: 0,
      firstBad: undefined,
      gaps: 0,
      lastSeq: 255,
      backwards: 0,
    });
    expect(parseDiskVerify('disk verify records=256 bad=1 first_bad=100 gaps=0 last_seq=255')).toEqual({ records: 256, bad: 1, firstBad: 100, gaps: 0, lastSeq: 255 });
    expect(() => parseDiskVerify('disk seq=1 records=2')).toThrow(/expected it to start with "disk verify"/);
    expect(() => parseDiskVerify('disk verify records=2 bad=0 first_bad=-1 last_seq=1')).toThrow(/no gaps=/);
  });

  it('reads a dirty verify that found a corrupted page', () => {
    expect(parseDirtyVerify('verify pages=16384 bad=1 first_bad=5')).toEqual({ pages: 16384, bad: 1, firstBad: 5 });
  });
});
