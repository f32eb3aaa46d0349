// The container workload (vm-images/workload/miglab-workload.c), built with the image's flags and
// run on this machine on 127.0.0.1: its sequences and chain hash against verify.ts's generators,
// its log, its child, its pacing after a stop, the mem working set's verify, and its refusals.
// Every process is started from the argv workloadArgv builds, and killed by its pid at the end.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chainHash, sequenceValue, verifyContinuity } from '../../../src/containers/verify.js';
import {
  ContainerWorkloadSchema,
  formatWorkloadSpec,
  parseMemVerify,
  parseWorkloadSpec,
  parseWorkloadState,
  WORKLOAD_CFLAGS,
  workloadArgv,
  workloadSourcePath,
  type ContainerWorkload,
  type WorkloadLaunch,
  type WorkloadState,
} from '../../../src/containers/workload.js';
import { parsePong } from '../../../src/guest/replies.js';
import { pollUntil, sleep } from '../../../src/util/deadline.js';
import { parseInput } from '../../../src/util/validate.js';
import { askUdp, freeUdpPort } from '../../support/udp.js';

const dir = mkdtempSync(join(tmpdir(), 'miglab-workload-'));
const binary = join(dir, 'miglab-workload');
const started: ChildProcess[] = [];
const PERIOD_MS = 5;

beforeAll(() => {
  const r = spawnSync('gcc', [...WORKLOAD_CFLAGS, '-o', binary, workloadSourcePath()], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`gcc failed (${r.error?.message ?? r.status}): ${r.stderr}`);
}, 60_000);

afterAll(async () => {
  for (const p of started) {
    if (p.exitCode !== null || p.signalCode !== null) continue;
    // The beating child first, so that the workload reaps it (it would die with its parent
    // anyway, but then as an orphan for this machine's init to reap).
    const children = readFileSync(`/proc/${p.pid}/task/${p.pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
    for (const child of children) process.kill(child, 'SIGKILL');
    await pollUntil('the workload to reap its child', () => (children.every(reaped) ? true : undefined), { timeoutMs: 3000 });
    const exited = new Promise((resolve) => p.once('exit', resolve));
    process.kill(p.pid!, 'SIGKILL');
    await exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

interface Running {
  readonly proc: ChildProcess;
  readonly port: number;
  readonly log: string;
  readonly stderr: () => string;
}

/** Start the workload from workloadArgv's command line and wait until it answers `state`. */
async function start(workload: ContainerWorkload, more: Partial<WorkloadLaunch> = {}): Promise<Running> {
  const port = await freeUdpPort();
  const log = join(dir, `${workload.mode}-${port}.log`);
  const { argv } = workloadArgv({ workload, port, bind: '127.0.0.1', logPath: log, periodMs: PERIOD_MS, binary, ...more });
  const proc = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  started.push(proc);
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await pollUntil(`${workload.mode} answering on port ${port}`, () => askUdp(port, 'state', 200).catch(() => undefined), { timeoutMs: 5000 });
  return { proc, port, log, stderr: () => err };
}

async function state(w: Running): Promise<WorkloadState> {
  const reply = await askUdp(w.port, 'state', 2000);
  const s = parseWorkloadState(reply);
  if (!s) throw new Error(`not a state reply: ${reply} (stderr: ${w.stderr()})`);
  return s;
}

/** The state once at least n values are out. */
function stateAtLeast(w: Running, n: number): Promise<WorkloadState> {
  return pollUntil(`n >= ${n}`, async () => ((await state(w)).n >= n ? state(w) : undefined), { timeoutMs: 10_000, intervalMs: 20 });
}

/** A process is gone once it has no /proc entry or is a zombie waiting for its parent. */
function gone(pid: number): boolean {
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

/** No /proc entry at all: its parent waited for it. */
const reaped = (pid: number): boolean => !existsSync(`/proc/${pid}`);

describe('the compact form and the command line', () => {
  it('parses each mode and mem:<wss>@<rate>, and formats them back', () => {
    for (const text of ['counter', 'natural', 'fibonacci', 'prime']) expect(parseWorkloadSpec(text)).toEqual({ mode: text });
    expect(parseWorkloadSpec('mem:64M@16M/s')).toEqual({ mode: 'mem', wssMiB: 64, rateMiBps: 16 });
    expect(parseWorkloadSpec('mem:1G@0')).toEqual({ mode: 'mem', wssMiB: 1024, rateMiBps: 0 });
    for (const w of [{ mode: 'prime' }, { mode: 'mem', wssMiB: 64, rateMiBps: 16 }] as const) expect(parseWorkloadSpec(formatWorkloadSpec(w))).toEqual(w);
    expect(parseInput(ContainerWorkloadSchema, 'mem:8M@2M/s', 'workload')).toEqual({ mode: 'mem', wssMiB: 8, rateMiBps: 2 });
    expect(parseInput(ContainerWorkloadSchema, { mode: 'natural' }, 'workload')).toEqual({ mode: 'natural' });
  });

  it('refuses bad forms in one line that names the accepted ones', () => {
    expect(() => parseWorkloadSpec('walk')).toThrow(
      'unknown container workload "walk"; use one of counter, natural, fibonacci, prime or mem:<working set>@<write rate> (e.g. mem:64M@16M/s)',
    );
    expect(() => parseWorkloadSpec('mem')).toThrow(/^workload "mem" lacks its working set and write rate; write mem:<working set>@<write rate>, e.g. mem:64M@16M\/s/);
    expect(() => parseWorkloadSpec('mem:64M')).toThrow(/^workload "mem:64M" lacks its write rate \(after @\); write mem:/);
    expect(() => parseWorkloadSpec('natural:5')).toThrow('workload "natural:5": natural takes no options; write just "natural"');
    expect(() => parseWorkloadSpec('mem:0@1M/s')).toThrow(/the working set must be a whole number of MiB, at least 1/);
    expect(() => parseInput(ContainerWorkloadSchema, 'mem:64M@fast', 'workload')).toThrow(/invalid workload "mem:64M@fast"/);
  });

  it('explains every argument', () => {
    const c = workloadArgv({ workload: { mode: 'mem', wssMiB: 64, rateMiBps: 16 }, port: 9000, bind: '10.77.0.200', logPath: '/ckpt/r/c1/seq.log', rssMiB: 12 });
    expect(c.argv).toEqual([
      '/bin/miglab-workload',
      'mem',
      '--port',
      '9000',
      '--bind',
      '10.77.0.200',
      '--log',
      '/ckpt/r/c1/seq.log',
      '--rss-mib',
      '12',
      '--wss-mib',
      '64',
      '--rate-mibps',
      '16',
    ]);
    expect(c.explained.flatMap((g) => g.args)).toEqual(c.argv);
    for (const g of c.explained) expect(g.why.length).toBeGreaterThan(20);
    expect(workloadArgv({ workload: { mode: 'counter' }, port: 9001 }).argv).toEqual(['/bin/miglab-workload', 'counter', '--port', '9001']);
  });

  it('parses state and verify replies, and nothing else', () => {
    const line = 'state mode=fibonacci n=95 i=94 v=1293530146158671551 h=0123456789abcdef pid=1 ppid=0 child=2 child_alive=1 log_bytes=2000 rss_kib=700 gen=0 written=0';
    expect(parseWorkloadState(line)).toEqual({
      mode: 'fibonacci',
      n: 95,
      i: 94,
      v: 1293530146158671551n,
      h: '0123456789abcdef',
      pid: 1,
      ppid: 0,
      child: 2,
      childAlive: true,
      logBytes: 2000,
      rssKiB: 700,
      gen: 0,
      written: 0,
    });
    expect(parseWorkloadState(line.replace('i=94', 'i=93'))).toBeUndefined();
    expect(parseWorkloadState(line.replace('mode=fibonacci', 'mode=lucas'))).toBeUndefined();
    expect(parseWorkloadState(line.replace(' pid=1', ''))).toBeUndefined();
    expect(parseWorkloadState('pong 1 2 3')).toBeUndefined();
    expect(parseMemVerify('verify ok pages=16384')).toEqual({ ok: true, pages: 16384 });
    expect(parseMemVerify('verify bad page=7 bad=2 pages=16384')).toEqual({ ok: false, firstBad: 7, bad: 2, pages: 16384 });
    expect(parseMemVerify('error unknown request')).toBeUndefined();
  });
});

describe('miglab-workload', () => {
  it('emits each sequence with its chain hash, logs every value once, and keeps its child', async () => {
    const modes = ['natural', 'fibonacci', 'prime', 'counter'] as const;
    // 120 values: Fibonacci wraps past 2^64 at index 94.
    await Promise.all(
      modes.map(async (mode) => {
        const w = await start({ mode });
        const before = await stateAtLeast(w, 20);
        const after = await stateAtLeast(w, 120);
        expect(after.v).toBe(sequenceValue(mode, after.i));
        expect(after.h).toBe(chainHash(mode, after.n));
        expect(after).toMatchObject({ mode, pid: w.proc.pid, ppid: process.pid, childAlive: true, gen: 0, written: 0 });
        // The child is a real process of the workload's.
        expect(readFileSync(`/proc/${after.child}/stat`, 'utf8')).toMatch(new RegExp(`^${after.child} \\(miglab-workload\\) [RS] ${w.proc.pid} `));
        const r = verifyContinuity({ mode, before, after, log: readFileSync(w.log, 'utf8') });
        expect(r.checks.filter((c) => !c.ok)).toEqual([]);
        expect(r.checks.map((c) => c.name)).toEqual(['sequence', 'log', 'process tree', 'log offset']);
      }),
    );
  }, 20_000);

  it('answers ping in the agent\'s format with the count and its CLOCK_MONOTONIC, and refuses unknown requests', async () => {
    const w = await start({ mode: 'natural' });
    const s = await stateAtLeast(w, 5);
    const t0 = process.hrtime.bigint(); // CLOCK_MONOTONIC on Linux, as the workload's clock
    const pong = parsePong(await askUdp(w.port, 'ping t42', 2000));
    const t1 = process.hrtime.bigint();
    expect(pong.token).toBe('t42');
    expect(pong.hbSeq).toBeGreaterThanOrEqual(s.n);
    expect(pong.guestMonoNs >= t0 && pong.guestMonoNs <= t1).toBe(true);
    expect(await askUdp(w.port, 'dance', 2000)).toBe('error unknown request');
    expect(await askUdp(w.port, 'verify', 2000)).toBe('error verify is for mode mem, this is natural');
  });

  it('after a stop, resumes its pace instead of bursting out the values it missed', async () => {
    const w = await start({ mode: 'fibonacci' });
    const before = await stateAtLeast(w, 10);
    const stopMs = 1000;
    process.kill(w.proc.pid!, 'SIGSTOP');
    await sleep(stopMs);
    process.kill(w.proc.pid!, 'SIGCONT');
    const after = await state(w);
    // Caught up, it would have put out about stopMs / PERIOD_MS = 200 values at once.
    const missed = stopMs / PERIOD_MS;
    expect(after.n - before.n).toBeLessThan(missed / 2);
    const later = await stateAtLeast(w, after.n + 5);
    const r = verifyContinuity({ mode: 'fibonacci', before, after: later, log: readFileSync(w.log, 'utf8') });
    expect(r.checks.filter((c) => !c.ok)).toEqual([]);
  }, 15_000);

  it('reaps a child that died and reports it gone; the child dies with its parent', async () => {
    const a = await start({ mode: 'natural' });
    const before = await stateAtLeast(a, 3);
    process.kill(before.child, 'SIGKILL');
    const after = await pollUntil('child_alive=0', async () => ((await state(a)).childAlive ? undefined : state(a)), { timeoutMs: 6000, intervalMs: 100 });
    expect(reaped(before.child)).toBe(true);
    const tree = verifyContinuity({ mode: 'natural', before, after }).checks.find((c) => c.name === 'process tree');
    expect(tree).toMatchObject({ ok: false, detail: expect.stringMatching(/^the child \(pid \d+\) is not beating on the destination \(child_alive=0\)/) });

    const b = await start({ mode: 'counter' });
    const { child } = await state(b);
    expect(gone(child)).toBe(false);
    const exited = new Promise((resolve) => b.proc.once('exit', resolve));
    process.kill(b.proc.pid!, 'SIGKILL');
    await exited;
    await pollUntil('the orphaned child to end', () => (gone(child) ? true : undefined), { timeoutMs: 3000 });
  }, 15_000);

  it('keeps a mem working set whose verify finds a page changed behind its back', async () => {
    const w = await start({ mode: 'mem', wssMiB: 4, rateMiBps: 40 }, { rssMiB: 8 });
    // 40 MiB/s through 4 MiB: a pass every 100 ms.
    const s = await pollUntil('a second pass', async () => {
      const st = await state(w);
      return st.gen >= 3 ? st : undefined;
    }, { timeoutMs: 5000, intervalMs: 50 });
    expect(s.written).toBeGreaterThanOrEqual(1024);
    expect(s.rssKiB).toBeGreaterThanOrEqual((4 + 8) * 1024);
    expect(parseMemVerify(await askUdp(w.port, 'verify', 2000))).toEqual({ ok: true, pages: 1024 });
    expect(verifyContinuity({ mode: 'mem', before: s, after: await state(w), log: readFileSync(w.log, 'utf8') }).ok).toBe(true);

    // A held set (rate 0): overwrite page 100's tag through /proc/PID/mem, as a lost page would look.
    const held = await start({ mode: 'mem', wssMiB: 4, rateMiBps: 0 });
    expect(parseMemVerify(await askUdp(held.port, 'verify', 2000))).toEqual({ ok: true, pages: 1024 });
    const base = findWorkingSet(held.proc.pid!);
    const mem = openSync(`/proc/${held.proc.pid}/mem`, 'r+');
    try {
      writeSync(mem, Buffer.alloc(8, 0xee), 0, 8, base + 100 * 4096);
    } finally {
      closeSync(mem);
    }
    expect(await askUdp(held.port, 'verify', 2000)).toBe('verify bad page=100 bad=1 pages=1024');
  }, 15_000);

  it('binds an address this machine does not have (IP_FREEBIND), as a container whose address moves with it', async () => {
    const port = await freeUdpPort();
    const address = '10.255.254.253'; // on no interface here
    const { argv } = workloadArgv({ workload: { mode: 'natural' }, port, bind: address, binary });
    const proc = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
    started.push(proc);
    // /proc/net/udp lists local addresses as little-endian hex: 10.255.254.253 is FDFEFF0A.
    const want = `FDFEFF0A:${port.toString(16).toUpperCase().padStart(4, '0')}`;
    await pollUntil(`a socket bound to ${address}:${port}`, () => {
      if (proc.exitCode !== null) throw new Error(`the workload exited ${proc.exitCode}: the bind failed`);
      return readFileSync('/proc/net/udp', 'utf8').includes(` ${want} `) ? true : undefined;
    }, { timeoutMs: 5000 });
  });

  it('refuses bad arguments with one line on stderr and exit 2, and a taken port with exit 1', async () => {
    const cases: [string[], RegExp][] = [
      [[], /^miglab-workload: no mode given; usage: miglab-workload counter\|natural/],
      [['walk', '--port', '1'], /unknown mode "walk": the first argument is one of counter, natural, fibonacci, prime, mem$/],
      [['natural'], /--port is missing/],
      [['natural', '--port', '0'], /--port "0" is not a UDP port, 1-65535$/],
      [['natural', '--port', '70000'], /--port "70000" is not a UDP port/],
      [['natural', '--port', '5', '--period-ms', 'abc'], /--period-ms "abc" is not a period in ms/],
      [['natural', '--port', '5', '--period-ms'], /--period-ms needs a value$/],
      [['natural', '--port', '5', '--port', '6'], /--port is given twice$/],
      [['mem', '--port', '5', '--wss-mib', '4'], /mode mem needs --wss-mib N and --rate-mibps R/],
      [['prime', '--port', '5', '--wss-mib', '4'], /--wss-mib and --rate-mibps are for mode mem only, not prime$/],
      [['natural', '--port', '5', '--bind', 'nowhere'], /--bind "nowhere" is not an IPv4 address$/],
      [['natural', '--port', '5', '--frobnicate', '1'], /unknown argument "--frobnicate"/],
    ];
    for (const [args, re] of cases) {
      const r = spawnSync(binary, args, { encoding: 'utf8', timeout: 5000 });
      expect({ args, status: r.status }).toEqual({ args, status: 2 });
      expect(r.stderr.split('\n').filter(Boolean)).toEqual([expect.stringMatching(re)]);
    }
    const w = await start({ mode: 'natural' });
    const r = spawnSync(binary, ['natural', '--port', String(w.port), '--bind', '127.0.0.1'], { encoding: 'utf8', timeout: 5000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^miglab-workload: bind udp 127\\.0\\.0\\.1:${w.port}: Address already in use\\n$`));
  });
});

/** The address of the mem working set: the anonymous mapping whose pages start with the tags of pass 1. */
function findWorkingSet(pid: number): number {
  const tag = (page: number) => (1n << 32n) | BigInt((page ^ 0x5a5a5a5a) >>> 0);
  const mem = openSync(`/proc/${pid}/mem`, 'r');
  try {
    const word = Buffer.alloc(8);
    for (const line of readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) rw-p \S+ \S+ 0\s*$/.exec(line);
      if (!m) continue;
      const [from, to] = [parseInt(m[1]!, 16), parseInt(m[2]!, 16)];
      for (let at = from; at + 2 * 4096 <= to; at += 4096) {
        readSync(mem, word, 0, 8, at);
        if (word.readBigUInt64LE() !== tag(0)) continue;
        readSync(mem, word, 0, 8, at + 4096);
        if (word.readBigUInt64LE() === tag(1)) return at;
      }
    }
  } finally {
    closeSync(mem);
  }
  throw new Error(`no working set found in /proc/${pid}/maps`);
}
