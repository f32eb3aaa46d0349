// What sampling costs the host (issue 13): each of a run's samplers alone, for a fixed window,
// against the same window with nothing sampled, as CPU time of every process it takes:
// - query-migrate every 10 ms over QMP to a real QEMU (`-machine none`: no guest whose own CPU
//   would drown the figure; QEMU answers query-migrate the same way with or without one): this
//   process's CPU (the request, the JSON) and QEMU's (the answer);
// - the host counters every 10 ms as a batch reads them (sampleHost: /proc/stat, loadavg,
//   meminfo, PSI, the QEMU's stat, status and fds; and read through fs/promises, as before, for
//   the comparison), and a link's byte counters as the batch reads
//   them (link-reader.ts: a line to a reader in the namespace; and `ip -s link`, a command a
//   read, as it read them before);
// - the client probe at its 1 ms default and at 10 ms: the probe tool's own CPU (the answering
//   side, the guest's agent in a run, answers from this process here and is not counted).
// CPU times come from /proc (clock ticks, 10 ms each) and process.cpuUsage; each figure is the
// CPU used in the window less the same processes' CPU in the idle window, as % of one CPU.
import { execa, type ResultPromise } from 'execa';
import { createSocket } from 'node:dgram';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureProbeTool } from '../guest/probe-tool.js';
import { parseProbeCsv } from '../guest/probe.js';
import { localProcReader, parsePidStat, sampleHost, type HostSnapshot, type ProcReader } from '../measure/host-sampler.js';
import { QEMU_PROGRAM } from '../qemu/build.js';
import { QmpClient } from '../qmp/client.js';
import { LocalHost, NetnsHost } from '../host/local.js';
import { openLinkReader } from '../measure/link-reader.js';
import { sleep } from '../util/deadline.js';

/** One sampler's cost. */
export interface SamplerCost {
  readonly sampler: string;
  readonly intervalMs: number;
  /** Samples taken in the window (query-migrate answers, host samples, probes sent). */
  readonly samples: number;
  /** CPU used beyond the idle window's, ms, by whom. */
  readonly cpuMs: Readonly<Record<string, number>>;
  /** All of it as % of one CPU over the window. */
  readonly pctOfCpu: number;
}

export interface SamplingCost {
  readonly windowMs: number;
  readonly aimPct: number;
  readonly samplers: readonly SamplerCost[];
  /** query-migrate, host counters and the probe (at its 1 ms default) together, every 10 ms. */
  readonly totalPct: number;
}

const TICK_MS = 10; // USER_HZ: /proc's CPU times are in 1/100 s

async function pidCpuMs(pid: number): Promise<number> {
  const s = parsePidStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
  return (s.utimeTicks + s.stimeTicks) * TICK_MS;
}

/** This process's CPU, and that of its children it has waited for (the commands it ran). */
async function selfCpuMs(): Promise<{ self: number; children: number }> {
  const u = process.cpuUsage();
  const text = await readFile('/proc/self/stat', 'utf8');
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // Fields 16 and 17 (cutime, cstime), counted from 3 after the name.
  return { self: (u.user + u.system) / 1000, children: (Number(f[16 - 3]) + Number(f[17 - 3])) * TICK_MS };
}

/** Run `work` until the window closes, and the CPU it cost: each process's use less its idle rate. */
async function costOf(
  sampler: string,
  intervalMs: number,
  windowMs: number,
  pids: Readonly<Record<string, number>>,
  idlePerMs: Readonly<Record<string, number>>,
  work: (until: number) => Promise<number>,
  /** Count this process and the commands it ran (not when it only stands in for the guest). */
  countSelf = true,
): Promise<SamplerCost> {
  const before = await selfCpuMs();
  const pidBefore = Object.fromEntries(await Promise.all(Object.entries(pids).map(async ([k, pid]) => [k, await pidCpuMs(pid)] as const)));
  const t0 = Date.now();
  const samples = await work(t0 + windowMs);
  const took = Date.now() - t0;
  const after = await selfCpuMs();
  const cpuMs: Record<string, number> = countSelf
    ? { miglab: Math.max(0, after.self - before.self - (idlePerMs.miglab ?? 0) * took), commands: after.children - before.children }
    : {};
  for (const [k, pid] of Object.entries(pids)) cpuMs[k] = Math.max(0, (await pidCpuMs(pid)) - pidBefore[k]! - (idlePerMs[k] ?? 0) * took);
  const total = Object.values(cpuMs).reduce((a, b) => a + b, 0);
  return { sampler, intervalMs, samples, cpuMs, pctOfCpu: (100 * total) / took };
}

/** Every `intervalMs` until `until`, as the run's own loops do (sleep between the end of one and the next). */
async function every(intervalMs: number, until: number, f: () => Promise<unknown>, signal?: AbortSignal): Promise<number> {
  let n = 0;
  while (Date.now() < until) {
    await f();
    n++;
    await sleep(intervalMs, signal);
  }
  return n;
}

export interface SamplingCostOptions {
  readonly windowMs?: number;
  readonly cacheDir?: string;
  /** The namespace and link whose counters are read (default: this namespace's lo). */
  readonly linkNetns?: string;
  readonly linkDev?: string;
  readonly signal?: AbortSignal;
}

/** The reads of /proc as they were before (fs/promises: open, fstat, read, close through the thread pool), for the comparison. */
const asyncProcReader: ProcReader = {
  async readText(path) {
    return readFile(path, 'utf8').catch(() => undefined);
  },
  async countEntries(path) {
    return readdir(path).then(
      (e) => e.length,
      () => undefined,
    );
  },
};

export async function measureSamplingCost(opts: SamplingCostOptions = {}): Promise<SamplingCost> {
  const windowMs = opts.windowMs ?? 10_000;
  const signal = opts.signal;
  const wait = (ms: number) => sleep(ms, signal);
  const tick = (intervalMs: number, until: number, f: () => Promise<unknown>) => every(intervalMs, until, f, signal);
  const dir = await mkdtemp(join(tmpdir(), 'miglab-sampling-'));
  // Its own children, each in a process group of its own (a Ctrl-C at the terminal reaches miglab,
  // which ends them), ended by their pid below.
  const started: ResultPromise[] = [];
  try {
    const sock = join(dir, 'qmp.sock');
    // -machine none: no guest whose CPU would drown the figure. Its query-migrate answer is `{}`
    // (no migration), shorter than a running migration's: the figure is QMP's own cost.
    const qemu = execa(QEMU_PROGRAM, ['-machine', 'none', '-nodefaults', '-display', 'none', '-S', '-qmp', `unix:${sock},server=on,wait=off`], { reject: false, detached: true });
    started.push(qemu);
    const qmp = await QmpClient.connect(sock, { timeoutMs: 20_000, name: 'sampling-cost', signal });
    try {
      // The idle window: what this process and QEMU use with nothing sampled.
      const idle0 = await selfCpuMs();
      const q0 = await pidCpuMs(qemu.pid!);
      const t0 = Date.now();
      await wait(windowMs);
      const idleMs = Date.now() - t0;
      const idlePerMs = { miglab: ((await selfCpuMs()).self - idle0.self) / idleMs, qemu: ((await pidCpuMs(qemu.pid!)) - q0) / idleMs };
      const samplers: SamplerCost[] = [];
      samplers.push(await costOf('query-migrate (QMP)', 10, windowMs, { qemu: qemu.pid! }, idlePerMs, (until) => tick(10, until, () => qmp.migrationInfo())));
      for (const [name, reader] of [
        ['host counters (/proc, a QEMU)', localProcReader],
        ['host counters (/proc through fs/promises, before)', asyncProcReader],
      ] as const) {
        let previous: HostSnapshot | undefined;
        samplers.push(
          await costOf(name, 10, windowMs, {}, idlePerMs, (until) =>
            tick(10, until, async () => {
              previous = (await sampleHost({ pids: [qemu.pid!], previous, windowMs: 0, reader })).snapshot;
            }),
          ),
        );
      }
      // A link's counters as the batch reads them (one reader in the namespace, a line a read),
      // and as it read them before (a command a read), for the comparison.
      const dev = opts.linkDev ?? 'lo';
      const linkHost = opts.linkNetns ? new NetnsHost('link', opts.linkNetns) : new LocalHost('link');
      // Started and ended inside the window: the reader's CPU (its start included) is then a waited child's.
      samplers.push(
        await costOf('link counters (link-reader)', 10, windowMs, {}, idlePerMs, async (until) => {
          const reader = await openLinkReader(linkHost, [dev]);
          try {
            return await tick(10, until, () => reader.read());
          } finally {
            await reader.close();
          }
        }),
      );
      const linkArgv = ['ip', ...(opts.linkNetns ? ['-n', opts.linkNetns] : []), '-s', 'link', 'show', 'dev', dev];
      samplers.push(await costOf('link counters (ip -s link, before)', 10, windowMs, {}, idlePerMs, (until) => tick(10, until, () => execa(linkArgv[0]!, linkArgv.slice(1)))));
      // The probe against a small answering process (the guest's agent in a run).
      const tool = await ensureProbeTool({ cacheDir: opts.cacheDir, signal });
      for (const intervalUs of [1000, 10_000]) {
        const { port, stop } = await startAnswerer();
        try {
          const probe = execa(tool, ['ping', '127.0.0.1', String(port), String(intervalUs), String(windowMs + 5000)], { reject: false, detached: true });
          started.push(probe);
          await wait(200);
          let from = 0;
          const cost = await costOf(
            'client probe (miglab-probe ping)',
            intervalUs / 1000,
            windowMs,
            { probe: probe.pid! },
            idlePerMs,
            async (until) => {
              from = Date.now();
              await wait(until - Date.now());
              return 0;
            },
            false,
          );
          probe.kill('SIGINT');
          const out = await probe;
          // The probes it sent in the window, from its own rows.
          const rows = parseProbeCsv(String(out.stdout ?? '')).rows;
          const lo = BigInt(from) * 1_000_000n;
          const hi = BigInt(from + windowMs) * 1_000_000n;
          samplers.push({ ...cost, samples: rows.filter((r) => r.sentNs >= lo && r.sentNs < hi).length });
        } finally {
          stop();
        }
      }
      const at = (name: string, ms: number) => samplers.find((x) => x.sampler.startsWith(name) && x.intervalMs === ms)?.pctOfCpu ?? 0;
      const totalPct = at('query-migrate', 10) + at('host counters (/proc, a QEMU)', 10) + at('link counters (link-reader)', 10) + at('client probe', 1);
      return { windowMs, aimPct: 2, samplers, totalPct };
    } finally {
      await qmp.close().catch(() => undefined);
    }
  } finally {
    for (const p of started) if (p.exitCode === null && p.pid) p.kill('SIGKILL');
    await Promise.allSettled(started);
    await rm(dir, { recursive: true, force: true });
  }
}

/** A UDP answerer speaking the agent's ping (`pong SEQ MONO` for `ping SEQ`); its CPU is not counted. */
async function startAnswerer(): Promise<{ port: number; stop: () => void }> {
  const socket = createSocket('udp4');
  socket.on('message', (msg, rinfo) => {
    const text = msg.toString('utf8');
    if (text.startsWith('ping ')) socket.send(`pong ${text.slice(5).trim()} ${process.hrtime.bigint()}`, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { port: socket.address().port, stop: () => socket.close() };
}
