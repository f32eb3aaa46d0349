// One /proc round: the script really run by sh on this machine (what a host runs over SSH), and
// its output parsed back into files, counts, pids and link counters; and sampleHost fed from it.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { LocalHost } from '../../../src/host/local.js';
import { hostSnapshot, sampleHost } from '../../../src/measure/host-sampler.js';
import { parseProcRound, procRoundArgv, readProcRound, roundReader } from '../../../src/measure/proc-round.js';

describe('a /proc round', () => {
  it('reads files, finds processes by command line with their files, and a link, in one command', async () => {
    // A process of our own to find: a sleep whose argument no other process has.
    const tag = `${Date.now() % 100000}.${process.pid}`;
    const child = spawn('sleep', [tag], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 100));
      const round = await readProcRound(new LocalHost(), { files: ['/proc/loadavg', '/proc/no-such-file'], processes: `^sleep ${tag.replace('.', '\\.')}$`, links: ['lo', 'no-such-link0'] }, { timeoutMs: 10_000 });
      expect(round.files.get('/proc/loadavg')).toMatch(/^[\d.]+ [\d.]+ [\d.]+ \d+\/\d+ \d+\n$/);
      expect(round.files.has('/proc/no-such-file')).toBe(false);
      expect(round.pids).toEqual([child.pid]);
      // The process's files as the kernel has them: its cmdline with its NULs, its stat.
      expect(round.files.get(`/proc/${child.pid}/cmdline`)).toBe(`sleep\0${tag}\0`);
      expect(round.files.get(`/proc/${child.pid}/stat`)).toMatch(new RegExp(`^${child.pid} \\(sleep\\) `));
      expect(round.files.get(`/proc/${child.pid}/status`)).toMatch(/^Name:\s+sleep$/m);
      expect(round.counts.get(`/proc/${child.pid}/fd`)).toBeGreaterThanOrEqual(3);
      expect(round.links.get('lo')?.dev).toBe('lo');
      expect(round.linkErrors.get('no-such-link0')).toMatch(/no-such-link0|does not exist/i);
      expect(round.endMono).toBeGreaterThan(round.startMono);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('keeps a file exactly, with or without its last newline, whatever it holds', () => {
    const m = 'miglab-0123';
    const out = [`\n${m} f /a\n`, 'one\ntwo', `\n${m} rc 0\n`, `\n${m} f /b\n`, 'x\n\n', `\n${m} rc 0\n`, `\n${m} f /gone\n`, `\n${m} rc 1\n`, `\n${m} n /d\n`, '7\n', `\n${m} rc 0`].join('');
    const r = parseProcRound(out, m);
    expect(r.files).toEqual(new Map([['/a', 'one\ntwo'], ['/b', 'x\n\n']]));
    expect(r.counts).toEqual(new Map([['/d', 7]]));
  });

  it('passes every path as an argument, never inside the script', () => {
    const argv = procRoundArgv({ files: ["/tmp/a b'c"], processes: 'x$(reboot)', links: ['eth0'] }, 'M');
    expect(argv.slice(0, 2)).toEqual(['sh', '-c']);
    expect(argv.slice(3)).toEqual(['miglab-proc-round', 'M', 'x$(reboot)', '1', "/tmp/a b'c", 'eth0']);
  });

  it('feeds sampleHost: two rounds make a sample with rates, and a file it did not read is refused', async () => {
    const files = ['/proc/stat', '/proc/loadavg', '/proc/meminfo', '/proc/pressure/cpu', '/proc/pressure/memory', '/proc/pressure/io'];
    const asked = new Set([...files, `/proc/${process.pid}/stat`, `/proc/${process.pid}/status`, `/proc/${process.pid}/fd`]);
    const pattern = `^${readFileSync('/proc/self/cmdline', 'utf8').split('\0')[0]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`;
    const host = new LocalHost();
    const read = async () => {
      const r = await readProcRound(host, { files, processes: pattern }, { timeoutMs: 10_000 });
      expect(r.pids).toContain(process.pid);
      return roundReader(r, asked);
    };
    const previous = await hostSnapshot({ pids: [process.pid], reader: await read() });
    await new Promise((r) => setTimeout(r, 200));
    const { sample } = await sampleHost({ pids: [process.pid], previous, reader: await read() });
    expect(sample.intervalMs).toBeGreaterThan(150);
    expect(sample.cpus.find((c) => c.cpu === 'cpu')!.busyPct).not.toBeNull();
    expect(sample.processes[0]).toMatchObject({ pid: process.pid, alive: true });
    expect(sample.memory.memTotalKiB).toBeGreaterThan(0);
    await expect(roundReader({ files: new Map(), counts: new Map() }, new Set()).readText('/proc/1/stat')).rejects.toThrow(/was not read in this round/);
  });
});
