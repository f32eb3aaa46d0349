import {
  AgentReplyError,
  agentErrorReason,
  parseConnect,
  parseCpuBench,
  parseDirtyStatus,
  parseDirtyVerify,
  parseDiskBench,
  parseInfo,
  parseMemBench,
  parseOk,
  parseOomAck,
  parsePong,
  parseProbeConnect,
} from '../../../src/guest/replies.js';

describe('agent reply parsers', () => {
  it('reads a pong, keeping the guest clock exact', () => {
    expect(parsePong('pong c7 18446744073709551615 42')).toEqual({ token: 'c7', guestMonoNs: 18446744073709551615n, hbSeq: 42 });
    expect(() => parsePong('pong c7 x 42')).toThrow(AgentReplyError);
  });

  it('reads info', () => {
    expect(parseInfo('info boot=5e0c1a2b3c4d5e6f seq=17 ip=10.77.0.100 uptime_ms=5312 mem_total_kib=232676')).toEqual({
      bootId: '5e0c1a2b3c4d5e6f',
      hbSeq: 17,
      ip: '10.77.0.100',
      uptimeMs: 5312,
      memTotalKiB: 232676,
    });
  });

  it('reads what newer agents add to info: available memory and the bound address', () => {
    // Captured from a 128 MiB guest right after boot.
    expect(parseInfo('info boot=b4c4bc806f299392 seq=2 ip=10.77.0.100 uptime_ms=3702 mem_total_kib=81916 mem_available_kib=45180 udp_bind=10.77.0.100')).toEqual({
      bootId: 'b4c4bc806f299392',
      hbSeq: 2,
      ip: '10.77.0.100',
      uptimeMs: 3702,
      memTotalKiB: 81916,
      memAvailableKiB: 45180,
      udpBind: '10.77.0.100',
    });
    expect(() => parseInfo('info boot=ab seq=1 ip=1.2.3.4 uptime_ms=1 mem_total_kib=1 mem_available_kib=lots')).toThrow(/mem_available_kib=lots/);
  });

  it('reads TCP connect results from the agent and from miglab-probe', () => {
    // Replies seen from a guest in the lab: a closed port on src, the NFS port, a silent address, a foreign subnet.
    expect(parseConnect('ok connect refused 62.1')).toEqual({ result: 'refused', elapsedMs: 62.1 });
    expect(parseConnect('ok connect open 23.6')).toEqual({ result: 'open', elapsedMs: 23.6 });
    expect(parseConnect('ok connect timeout 3011.1')).toEqual({ result: 'timeout', elapsedMs: 3011.1 });
    expect(parseConnect('ok connect unreachable 0.4')).toEqual({ result: 'unreachable', elapsedMs: 0.4 });
    expect(parseProbeConnect('refused 2.5\n')).toEqual({ result: 'refused', elapsedMs: 2.5 });
    expect(parseProbeConnect('open 0')).toEqual({ result: 'open', elapsedMs: 0 });
    expect(() => parseConnect('ok')).toThrow(/connect.*"ok connect"/);
    expect(() => parseConnect('ok connect filtered 1.0')).toThrow(AgentReplyError);
    expect(() => parseConnect('ok connect open')).toThrow(/open\|refused\|timeout\|unreachable <ms>/);
    expect(() => parseProbeConnect('refused 2.5 extra')).toThrow(/miglab-probe connect/);
  });

  it('reads the oom acknowledgement', () => {
    expect(() => parseOomAck('ok oom')).not.toThrow();
    expect(() => parseOomAck('ok')).toThrow(/oom.*"ok oom"/);
  });

  it('reads the benches', () => {
    expect(parseCpuBench('bench cpu ops=123863040 ms=300.4 ops_per_s=412327000')).toEqual({ ops: 123863040, elapsedMs: 300.4, opsPerS: 412327000 });
    expect(parseMemBench('bench mem bytes=704643072 ms=301.2 MiBps=2231.0')).toEqual({ bytes: 704643072, elapsedMs: 301.2, bandwidthMiBps: 2231 });
    expect(parseDiskBench('bench disk dev=vda write_MiBps=85.3 read_MiBps=410.9 bytes=16777216 write_ms=187.6 read_ms=38.9 bad_sectors=0')).toEqual({
      device: 'vda',
      writeMiBps: 85.3,
      readMiBps: 410.9,
      bytes: 16777216,
      writeMs: 187.6,
      readMs: 38.9,
      badSectors: 0,
    });
    // The minimal form of the protocol (no timings) parses too.
    expect(parseDiskBench('bench disk dev=sda write_MiBps=9.5 read_MiBps=20 bytes=1048576')).toEqual({ device: 'sda', writeMiBps: 9.5, readMiBps: 20, bytes: 1048576 });
  });

  it('reads dirty status and verify', () => {
    expect(parseDirtyStatus('dirty wss_mib=64 target_mibps=100 achieved_mibps=99.2 pages_written=50790 running=1')).toEqual({
      wssMiB: 64,
      targetMiBps: 100,
      achievedMiBps: 99.2,
      pagesWritten: 50790,
      running: true,
    });
    expect(parseDirtyVerify('verify pages=16384 bad=0 first_bad=-1')).toEqual({ pages: 16384, bad: 0, firstBad: undefined });
    expect(parseDirtyVerify('verify pages=16384 bad=3 first_bad=77')).toEqual({ pages: 16384, bad: 3, firstBad: 77 });
    expect(() => parseOk('ok', 'dirty stop')).not.toThrow();
  });

  it('names the request and the missing field when a reply has the wrong shape', () => {
    expect(() => parseCpuBench('bench mem bytes=1 ms=1 MiBps=1')).toThrow(/bench cpu.*start with "bench cpu"/);
    expect(() => parseMemBench('bench mem bytes=1 ms=1')).toThrow(/no MiBps=/);
    expect(() => parseInfo('info boot=ab seq=x ip=1.2.3.4 uptime_ms=1 mem_total_kib=1')).toThrow(/seq=x is not a number/);
    expect(() => parseDirtyStatus('dirty wss_mib=1 target_mibps=1 achieved_mibps=1 pages_written=1 running=yes')).toThrow(/running/);
    expect(() => parseOk('error busy', 'dirty start')).toThrow(/dirty start/);
  });

  it('recognises error replies', () => {
    expect(agentErrorReason('error busy')).toBe('busy');
    expect(agentErrorReason('error nomem 4096 MiB')).toBe('nomem 4096 MiB');
    expect(agentErrorReason('ok')).toBeUndefined();
    expect(agentErrorReason('errors=0')).toBeUndefined();
  });
});
