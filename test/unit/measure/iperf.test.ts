import { readFileSync } from 'node:fs';
import { MiglabError, UsageError } from '../../../src/errors.js';
import { IperfError, iperfClientArgv, iperfServerArgv, parseIperfJson, parseSsListeners } from '../../../src/measure/iperf.js';

const fixture = (name: string) => readFileSync(new URL(`../../fixtures/measure/${name}`, import.meta.url), 'utf8');

describe('iperfClientArgv', () => {
  it('always asks for JSON', () => {
    expect(iperfClientArgv({ server: '10.77.0.100', durationS: 5 })).toEqual(['iperf3', '-c', '10.77.0.100', '-p', '5201', '-t', '5', '-J']);
  });
  it('maps every option to its flag', () => {
    const argv = iperfClientArgv({ server: '127.0.0.1', port: 5299, durationS: 1, reverse: true, udp: true, bitrate: '100M', intervalS: 0.5, parallel: 4, bind: '127.0.0.2' });
    expect(argv).toEqual(['iperf3', '-c', '127.0.0.1', '-p', '5299', '-t', '1', '-J', '-B', '127.0.0.2', '-R', '-u', '-b', '100M', '-i', '0.5', '-P', '4']);
  });
  it('refuses bad input before running', () => {
    expect(() => iperfClientArgv({ server: '0.0.0.0', durationS: 1 })).toThrow(UsageError);
    expect(() => iperfClientArgv({ server: '10.0.0.1', durationS: 0 })).toThrow(UsageError);
    expect(() => iperfClientArgv({ server: '10.0.0.1', durationS: 1, bitrate: 'fast' })).toThrow(/bitrate/);
    expect(() => iperfClientArgv({ server: '10.0.0.1', durationS: 1, port: 70000 })).toThrow(UsageError);
    expect(() => iperfClientArgv({ server: '10.0.0.1', durationS: 1, parallel: 0 })).toThrow(UsageError);
  });
});

describe('iperfServerArgv', () => {
  it('binds the given lab address and port', () => {
    expect(iperfServerArgv({ bind: '10.77.0.1', port: 5299, oneOff: true })).toEqual(['iperf3', '-s', '-B', '10.77.0.1', '-p', '5299', '-1']);
    expect(iperfServerArgv({ bind: '127.0.0.1', port: 5201 })).toEqual(['iperf3', '-s', '-B', '127.0.0.1', '-p', '5201']);
  });
  it('never binds a wildcard', () => {
    for (const bind of ['0.0.0.0', '::', '', '*']) expect(() => iperfServerArgv({ bind, port: 5201 })).toThrow(/wildcard/);
  });
});

describe('parseIperfJson on real iperf3 3.12 output', () => {
  it('reads TCP: throughput, bytes and retransmits', () => {
    const r = parseIperfJson(fixture('iperf-tcp.json'));
    expect(r).toMatchObject({ protocol: 'TCP', reverse: false, streams: 1, durationS: 1, version: 'iperf 3.12' });
    expect(r.summary).toEqual({
      sentBps: 9468253081.623653,
      receivedBps: 9431312622.652054,
      sentBytes: 1183580160,
      receivedBytes: 1179254784,
      retransmits: 8,
    });
    expect(r.intervals).toHaveLength(1);
    expect(r.intervals[0]).toEqual({ startS: 0, endS: 1.000041, bitsPerSecond: 9468253005.92234, bytes: 1183580160, retransmits: 8 });
    expect(r.cpuUtilizationPct?.local).toBeGreaterThan(0);
    expect(r.error).toBeUndefined();
  });

  it('reads a reverse TCP test', () => {
    const r = parseIperfJson(fixture('iperf-tcp-reverse.json'));
    expect(r.reverse).toBe(true);
    expect(r.summary.receivedBps).toBeGreaterThan(0);
    expect(r.intervals[0]!.retransmits).toBeUndefined();
  });

  it('reads UDP: packets, jitter and loss from the receiver', () => {
    const r = parseIperfJson(fixture('iperf-udp.json'));
    expect(r.protocol).toBe('UDP');
    expect(r.summary).toEqual({
      sentBps: 100131898.63519691,
      receivedBps: 100097867.77634393,
      sentBytes: 12517376,
      receivedBytes: 12517376,
      jitterMs: 0.0024753319897304615,
      lostPercent: 0,
    });
    expect(r.intervals[0]).toMatchObject({ packets: 382, bytes: 12517376 });
  });

  it('returns iperf3\'s own error message', () => {
    const r = parseIperfJson(fixture('iperf-error-refused.json'));
    expect(r.error).toBe('unable to connect to server: Connection refused');
    expect(r.intervals).toEqual([]);
  });

  it('refuses text that is not iperf3 JSON with a MiglabError', () => {
    expect(() => parseIperfJson('iperf3: error - unable to connect')).toThrow(IperfError);
    expect(() => parseIperfJson('{"start": {}, "intervals": [], "end": {}}')).toThrow(/no test results/);
    expect(() => parseIperfJson('{"intervals": [{"sum": {"start": "x"}}]}')).toThrow(MiglabError);
  });
});

describe('parseSsListeners', () => {
  it('reads real `ss -Htln` output and IPv6/scoped forms', () => {
    expect(parseSsListeners(fixture('ss-tln-iperf.txt'))).toEqual([
      { address: '0.0.0.0', port: 2024 },
      { address: '127.0.0.1', port: 5299 },
    ]);
    const text = 'LISTEN 0 128 [::1]:5201 [::]:*\nLISTEN 0 4096 127.0.0.53%lo:53 0.0.0.0:*\nLISTEN 0 128 *:22 *:*\n\n';
    expect(parseSsListeners(text)).toEqual([
      { address: '::1', port: 5201 },
      { address: '127.0.0.53', port: 53 },
      { address: '*', port: 22 },
    ]);
  });
});
