// The measurement tools against the real programs on this machine: perf on a busy process,
// iperf3 over loopback, and the host sampler. Everything started here is stopped here by pid.
import { jest } from '@jest/globals';
import { LocalHost } from '../../src/host/local.js';
import type { HostProcess } from '../../src/host/host.js';
import { startHostSampler } from '../../src/measure/host-sampler.js';
import { IperfError, runIperf, startIperfServer } from '../../src/measure/iperf.js';
import { runPerfStat, startPerfSampler } from '../../src/measure/perf.js';
import { sleep } from '../../src/util/deadline.js';

jest.setTimeout(30_000);
const host = new LocalHost();

describe('perf stat', () => {
  let busy: HostProcess;
  beforeAll(() => {
    busy = host.spawn(['sh', '-c', 'while :; do :; done']);
  });
  afterAll(async () => {
    await busy.stop(1000);
  });

  it('samples a busy process every 250 ms; cycles are unsupported or counted, never a fake zero', async () => {
    const sampler = startPerfSampler(host, { pid: busy.pid, intervalMs: 250 });
    await sleep(1500);
    const series = await sampler.stop({ timeoutMs: 5000 });
    expect(series.intervals.length).toBeGreaterThanOrEqual(4);
    for (const iv of series.intervals) {
      const clock = iv.rows.find((r) => r.event === 'task-clock')!;
      expect(clock).toMatchObject({ supported: true, unit: 'msec' });
      if (clock.counted) {
        // The loop can use at most the whole interval of one CPU (plus perf's timing slack).
        expect(clock.value!).toBeGreaterThan(0);
        expect(iv.cpusUtilized!).toBeLessThanOrEqual(1.1);
      }
      const cycles = iv.rows.find((r) => r.event === 'cycles')!;
      if (cycles.supported && cycles.counted) expect(cycles.value!).toBeGreaterThan(0);
      else expect(cycles.value).toBeNull();
    }
    const busyIntervals = series.intervals.filter((iv) => (iv.cpusUtilized ?? 0) > 0.05);
    expect(busyIntervals.length).toBeGreaterThanOrEqual(3);
    // stop() is idempotent and perf is gone.
    await expect(sampler.stop()).resolves.toBe(series);
    expect(() => process.kill(sampler.perfPid, 0)).toThrow();
  });

  it('counts a fixed window once', async () => {
    const s = await runPerfStat(host, { pid: busy.pid, durationMs: 500 }, { timeoutMs: 5000 });
    expect(s.cpusUtilized!).toBeGreaterThan(0);
    expect(s.rows.find((r) => r.event === 'instructions')!.value === 0).toBe(false);
  });

  it('fails clearly for a pid that does not exist', async () => {
    await expect(runPerfStat(host, { pid: 4_000_000, durationMs: 200 }, { timeoutMs: 5000 })).rejects.toThrow(/no process with pid 4000000/);
  });
});

describe('iperf3 over loopback', () => {
  it('measures TCP throughput between a server and a client it started', async () => {
    const server = await startIperfServer(host, { bind: '127.0.0.1', port: 5299, oneOff: true }, { timeoutMs: 5000 });
    try {
      const r = await runIperf(host, { server: '127.0.0.1', port: 5299, durationS: 1 }, { timeoutMs: 10_000 });
      expect(r.protocol).toBe('TCP');
      expect(r.summary.receivedBps).toBeGreaterThan(0);
      expect(r.intervals.length).toBeGreaterThanOrEqual(1);
    } finally {
      await server.stop();
    }
  });

  it('turns iperf3\'s JSON error into an IperfError', async () => {
    const err = await runIperf(host, { server: '127.0.0.1', port: 5298, durationS: 1 }, { timeoutMs: 10_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IperfError);
    expect((err as IperfError).message).toMatch(/Connection refused/);
  });
});

describe('host sampler', () => {
  it('samples CPU, memory and this process for a second', async () => {
    const sampler = startHostSampler({ intervalMs: 250, pids: [process.pid], links: [{ dev: 'lo' }] });
    await sleep(1100);
    const samples = await sampler.stop();
    expect(samples.length).toBeGreaterThanOrEqual(3);
    for (const s of samples) {
      for (const c of s.cpus) {
        expect(c.busyPct!).toBeGreaterThanOrEqual(0);
        expect(c.busyPct!).toBeLessThanOrEqual(100);
      }
      expect(s.memory.memAvailableKiB).toBeGreaterThan(0);
      expect(s.processes[0]).toMatchObject({ pid: process.pid, alive: true });
      expect(s.processes[0]!.vmRssKiB!).toBeGreaterThan(0);
      expect(s.links[0]!.counters!.rxBytes).toBeGreaterThanOrEqual(0);
    }
  });
});
