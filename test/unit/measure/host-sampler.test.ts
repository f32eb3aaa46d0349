import { jest } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { MiglabError, UsageError } from '../../../src/errors.js';
import {
  cpuUtilization,
  ipLinkStatsArgv,
  parseIpLinkStats,
  parseLoadavg,
  parseMeminfo,
  parsePidStat,
  parsePidStatus,
  parsePressure,
  parseProcStat,
  sampleHost,
  type ProcReader,
} from '../../../src/measure/host-sampler.js';
import type { Host } from '../../../src/host/host.js';
import { runOnlyHost } from '../../support/fake-host.js';

const fixture = (name: string) => readFileSync(new URL(`../../fixtures/measure/${name}`, import.meta.url), 'utf8');

describe('/proc parsers on text from this machine', () => {
  it('reads /proc/stat per CPU and computes busy % between two reads', () => {
    const a = parseProcStat(fixture('proc-stat-1.txt'));
    const b = parseProcStat(fixture('proc-stat-2.txt'));
    expect(a.map((c) => c.cpu)).toEqual(['cpu', 'cpu0', 'cpu1']);
    expect(a[1]).toEqual({ cpu: 'cpu0', user: 11519, nice: 0, system: 2264, idle: 96388, iowait: 27, irq: 0, softirq: 102, steal: 82 });
    const u = cpuUtilization(a, b);
    expect(u).toHaveLength(3);
    for (const c of u) {
      expect(c.busyPct).not.toBeNull();
      expect(c.busyPct!).toBeGreaterThanOrEqual(0);
      expect(c.busyPct!).toBeLessThanOrEqual(100);
    }
  });

  it('computes busy % by hand and gives null when no time passed', () => {
    const t = { cpu: 'cpu0', user: 100, nice: 0, system: 50, idle: 800, iowait: 50, irq: 0, softirq: 0, steal: 0 };
    const later = { ...t, user: 130, system: 60, idle: 850, iowait: 60 };
    expect(cpuUtilization([t], [later])).toEqual([{ cpu: 'cpu0', busyPct: 40, iowaitPct: 10, stealPct: 0 }]);
    expect(cpuUtilization([t], [t])[0]!.busyPct).toBeNull();
  });

  it('reads loadavg, pressure and meminfo', () => {
    expect(parseLoadavg(fixture('proc-loadavg.txt'))).toMatchObject({ load1: expect.any(Number), runnable: expect.any(Number) });
    expect(parseLoadavg('3.81 1.20 0.47 8/151 11031\n')).toEqual({ load1: 3.81, load5: 1.2, load15: 0.47, runnable: 8, threads: 151 });
    const io = parsePressure(fixture('proc-pressure-io.txt'));
    expect(io.full).toBeDefined();
    expect(parsePressure('some avg10=92.11 avg60=63.08 avg300=21.70 total=88256264\n')).toEqual({
      some: { avg10: 92.11, avg60: 63.08, avg300: 21.7, totalUs: 88256264 },
    });
    const mem = parseMeminfo(fixture('proc-meminfo.txt'));
    expect(mem.memAvailableKiB).toBeGreaterThan(0);
    expect(mem.memTotalKiB).toBeGreaterThanOrEqual(mem.memAvailableKiB);
    expect(mem.swapFreeKiB).toBeLessThanOrEqual(mem.swapTotalKiB);
    expect(() => parseMeminfo('MemTotal: 5 kB\n')).toThrow(MiglabError);
  });

  it('reads /proc/PID/stat and status, also with a name holding spaces and parentheses', () => {
    expect(parsePidStat(fixture('proc-pid-stat.txt'))).toEqual({
      pid: 11449, comm: 'sleep', state: 'S', ppid: 11438, utimeTicks: 0, stimeTicks: 0, threads: 1, startTicks: 110653,
    });
    const odd = '42 (qemu (x) s) R 1 42 42 0 -1 4194304 1 0 0 0 250 75 0 0 20 0 5 0 999 1000 10 18446744073709551615';
    expect(parsePidStat(odd)).toMatchObject({ pid: 42, comm: 'qemu (x) s', state: 'R', ppid: 1, utimeTicks: 250, stimeTicks: 75, threads: 5, startTicks: 999 });
    const st = parsePidStatus(fixture('proc-pid-status.txt'));
    expect(st.name).toBe('sleep');
    expect(st.vmRssKiB).toBeGreaterThan(0);
    expect(parsePidStatus('Name:\tkthreadd\nState:\tS (sleeping)\n')).toEqual({ name: 'kthreadd' });
  });

  it('reads `ip -s -j link show` counters', () => {
    expect(parseIpLinkStats(fixture('ip-link-lo.json')).get('lo')).toEqual({
      dev: 'lo', operstate: 'UNKNOWN', rxBytes: 1900585910, txBytes: 1900585910, rxPackets: 38597, txPackets: 38597,
      rxDropped: 0, txDropped: 0, rxErrors: 0, txErrors: 0,
    });
    expect(() => parseIpLinkStats('[]')).toThrow(MiglabError);
    expect(() => parseIpLinkStats('Device "x" does not exist.')).toThrow(/not JSON/);
  });

  it('builds the ip argv with and without a namespace', () => {
    expect(ipLinkStatsArgv('mlab-src')).toEqual(['ip', '-n', 'mlab-src', '-s', '-j', 'link', 'show']);
    expect(ipLinkStatsArgv()).toEqual(['ip', '-s', '-j', 'link', 'show']);
    expect(() => ipLinkStatsArgv('a b')).toThrow(UsageError);
  });
});

describe('sampleHost with a fake /proc', () => {
  // Two reads of a fake machine: a QEMU pid that used 50 ticks (0.5 s of CPU), a pid that has gone,
  // and a link that moved 1 MB each way.
  function fakeProc(): ProcReader {
    // Each file's first read is the "before", later reads the "after".
    const seen = new Map<string, number>();
    const files = (reads: number): Record<string, string> => ({
      '/proc/stat': reads === 0 ? 'cpu 100 0 100 800 0 0 0 0\ncpu0 100 0 100 800 0 0 0 0\n' : 'cpu 150 0 150 900 0 0 0 0\ncpu0 150 0 150 900 0 0 0 0\n',
      '/proc/10/stat': `10 (qemu-system-x86) S 1 1 1 0 -1 0 0 0 0 0 ${reads === 0 ? 100 : 130} ${reads === 0 ? 0 : 20} 0 0 20 0 4 0 555 0 0`,
      '/proc/10/status': 'Name:\tqemu-system-x86\nVmRSS:\t  262144 kB\n',
      '/proc/loadavg': '0.50 0.40 0.30 2/100 999\n',
      '/proc/meminfo': 'MemTotal: 1000 kB\nMemAvailable: 600 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n',
      '/proc/pressure/cpu': 'some avg10=1.00 avg60=0.50 avg300=0.10 total=1000\n',
    });
    return {
      async readText(path) {
        const n = seen.get(path) ?? 0;
        seen.set(path, n + 1);
        return files(n)[path];
      },
      async countEntries(path) {
        return path === '/proc/10/fd' ? 17 : undefined;
      },
    };
  }
  /** `ip -s -j link show` of namespace ns1 (veth0 and veth1), 1 MB more each way at every read after the first; `ran` keeps the argvs. */
  function fakeHost(ran: string[][] = []): Host {
    let n = 0;
    return runOnlyHost('fake', async (argv) => {
      ran.push([...argv]);
      const bytes = n++ === 0 ? 1000 : 1001000;
      const link = (ifname: string) => ({ ifname, operstate: 'UP', stats64: { rx: { bytes, packets: 1, errors: 0, dropped: 0 }, tx: { bytes, packets: 1, errors: 0, dropped: 0 } } });
      return { argv, exitCode: 0, stdout: JSON.stringify([link('veth0'), link('veth1')]), stderr: '', durationMs: 1 };
    });
  }

  it('reports CPU, memory, pressure, processes and link rates; a gone pid is alive:false', async () => {
    const { sample } = await sampleHost({ pids: [10, 11], links: [{ netns: 'ns1', dev: 'veth0' }], reader: fakeProc(), host: fakeHost(), windowMs: 100 });
    expect(sample.cpus).toEqual([
      { cpu: 'cpu', busyPct: 50, iowaitPct: 0, stealPct: 0 },
      { cpu: 'cpu0', busyPct: 50, iowaitPct: 0, stealPct: 0 },
    ]);
    expect(sample.memory.memAvailableKiB).toBe(600);
    expect(sample.pressure.cpu?.some.avg10).toBe(1);
    expect(sample.pressure.io).toBeUndefined();
    const qemu = sample.processes[0]!;
    expect(qemu).toMatchObject({ pid: 10, alive: true, comm: 'qemu-system-x86', threads: 4, cpuTimeS: 1.5, vmRssKiB: 262144, fdCount: 17 });
    // 50 ticks = 0.5 s of CPU in about 0.1 s
    expect(qemu.cpuPct!).toBeGreaterThan(100);
    expect(sample.processes[1]).toEqual({ pid: 11, alive: false });
    const link = sample.links[0]!;
    expect(link).toMatchObject({ netns: 'ns1', dev: 'veth0', counters: { rxBytes: 1001000 } });
    expect(link.rxBitsPerSecond! * (sample.intervalMs / 1000)).toBeCloseTo(8e6, 0);
  });

  it("reads a namespace's links with one ip call and one parse, and says which link is not there", async () => {
    const ran: string[][] = [];
    const parse = jest.spyOn(JSON, 'parse');
    const links = [{ netns: 'ns1', dev: 'veth0' }, { netns: 'ns1', dev: 'veth1' }, { netns: 'ns1', dev: 'gone0' }];
    const { sample } = await sampleHost({ links, reader: fakeProc(), host: fakeHost(ran), windowMs: 10 });
    const parses = parse.mock.calls.length;
    parse.mockRestore();
    // Two reads (the one rates are relative to, and the sample's), each one call and one parse for all three links.
    expect(ran).toEqual([ipLinkStatsArgv('ns1'), ipLinkStatsArgv('ns1')]);
    expect(parses).toBe(2);
    expect(sample.links.map((l) => [l.dev, l.counters?.rxBytes, l.error])).toEqual([
      ['veth0', 1001000, undefined],
      ['veth1', 1001000, undefined],
      ['gone0', undefined, 'ip: ns1/gone0: no such link'],
    ]);
  });
});
