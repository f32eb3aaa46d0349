// What the host is doing while guests migrate: CPU per core, load, pressure (PSI), memory, the
// QEMU processes (CPU time, RSS, open fds) and the byte counters of lab links. Used to show when a
// batch of migrations is bound by the host rather than by the network. The text parsers are pure
// and exported; `sampleHost` reads one sample (rates relative to a previous snapshot) and
// `startHostSampler` keeps sampling on a timer until stopped.
import { readFileSync, readdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import { startPeriodic } from '../util/periodic.js';
import { UsageError } from '../errors.js';
import type { Host } from '../host/host.js';
import { LocalHost } from '../host/local.js';
import { MeasureError, excerpt } from './errors.js';

// ---------------------------------------------------------------- pure parsers

/** Cumulative jiffies of one line of /proc/stat ("cpu" is the sum of all). */
export interface CpuTimes {
  readonly cpu: string;
  readonly user: number;
  readonly nice: number;
  readonly system: number;
  readonly idle: number;
  readonly iowait: number;
  readonly irq: number;
  readonly softirq: number;
  readonly steal: number;
}

export function parseProcStat(text: string): CpuTimes[] {
  const out: CpuTimes[] = [];
  for (const line of text.split('\n')) {
    if (!/^cpu\d*\s/.test(line)) continue;
    const [cpu = '', ...nums] = line.trim().split(/\s+/);
    const n = nums.map(Number);
    if (n.length < 4 || n.some((x) => !Number.isFinite(x))) throw new MeasureError('proc', `cannot read /proc/stat line "${excerpt(line)}"`);
    out.push({ cpu, user: n[0]!, nice: n[1]!, system: n[2]!, idle: n[3]!, iowait: n[4] ?? 0, irq: n[5] ?? 0, softirq: n[6] ?? 0, steal: n[7] ?? 0 });
  }
  if (out.length === 0) throw new MeasureError('proc', '/proc/stat has no cpu lines');
  return out;
}

export interface CpuUtilization {
  readonly cpu: string;
  /** Busy share of the time between two reads, 0-100; null if no time passed. */
  readonly busyPct: number | null;
  readonly iowaitPct: number | null;
  readonly stealPct: number | null;
}

/** Utilisation of each CPU between two /proc/stat reads. Guest time is inside user already. */
export function cpuUtilization(before: readonly CpuTimes[], after: readonly CpuTimes[]): CpuUtilization[] {
  return after.map((a) => {
    const b = before.find((x) => x.cpu === a.cpu);
    const total = (t: CpuTimes) => t.user + t.nice + t.system + t.idle + t.iowait + t.irq + t.softirq + t.steal;
    const dTotal = b ? total(a) - total(b) : 0;
    if (!b || dTotal <= 0) return { cpu: a.cpu, busyPct: null, iowaitPct: null, stealPct: null };
    const pct = (x: number) => Math.min(100, Math.max(0, (100 * x) / dTotal));
    return {
      cpu: a.cpu,
      busyPct: pct(dTotal - (a.idle - b.idle) - (a.iowait - b.iowait)),
      iowaitPct: pct(a.iowait - b.iowait),
      stealPct: pct(a.steal - b.steal),
    };
  });
}

export interface LoadAvg {
  readonly load1: number;
  readonly load5: number;
  readonly load15: number;
  readonly runnable: number;
  readonly threads: number;
}

export function parseLoadavg(text: string): LoadAvg {
  const m = /^(\S+)\s+(\S+)\s+(\S+)\s+(\d+)\/(\d+)/.exec(text.trim());
  if (!m) throw new MeasureError('proc', `cannot read /proc/loadavg "${excerpt(text)}"`);
  return { load1: Number(m[1]), load5: Number(m[2]), load15: Number(m[3]), runnable: Number(m[4]), threads: Number(m[5]) };
}

export interface PressureLine {
  readonly avg10: number;
  readonly avg60: number;
  readonly avg300: number;
  /** Total stall time since boot, microseconds. */
  readonly totalUs: number;
}

export interface Pressure {
  readonly some: PressureLine;
  /** Absent for cpu on older kernels. */
  readonly full?: PressureLine;
}

export function parsePressure(text: string): Pressure {
  const lines: Partial<Record<'some' | 'full', PressureLine>> = {};
  for (const line of text.split('\n')) {
    const m = /^(some|full)\s+avg10=([\d.]+)\s+avg60=([\d.]+)\s+avg300=([\d.]+)\s+total=(\d+)/.exec(line.trim());
    if (m) lines[m[1] as 'some' | 'full'] = { avg10: Number(m[2]), avg60: Number(m[3]), avg300: Number(m[4]), totalUs: Number(m[5]) };
  }
  if (!lines.some) throw new MeasureError('proc', `cannot read pressure "${excerpt(text)}"`);
  return lines.full ? { some: lines.some, full: lines.full } : { some: lines.some };
}

export interface MemInfo {
  readonly memTotalKiB: number;
  readonly memAvailableKiB: number;
  readonly swapTotalKiB: number;
  readonly swapFreeKiB: number;
}

export function parseMeminfo(text: string): MemInfo {
  const kib = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(\w+(?:\(\w+\))?):\s+(\d+)(?:\s+kB)?$/.exec(line.trim());
    if (m) kib.set(m[1]!, Number(m[2]));
  }
  const get = (k: string) => {
    const v = kib.get(k);
    if (v === undefined) throw new MeasureError('proc', `/proc/meminfo has no ${k}`);
    return v;
  };
  return { memTotalKiB: get('MemTotal'), memAvailableKiB: get('MemAvailable'), swapTotalKiB: get('SwapTotal'), swapFreeKiB: get('SwapFree') };
}

export interface PidStat {
  readonly pid: number;
  readonly comm: string;
  readonly state: string;
  /** The parent's pid (field 4). */
  readonly ppid: number;
  readonly utimeTicks: number;
  readonly stimeTicks: number;
  readonly threads: number;
  /** Start time since boot in ticks: a different value means the pid was reused. */
  readonly startTicks: number;
}

/** /proc/PID/stat. The command name may hold spaces and parentheses: it ends at the last ')'. */
export function parsePidStat(text: string): PidStat {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) throw new MeasureError('proc', `cannot read /proc/PID/stat "${excerpt(text)}"`);
  const pid = Number(text.slice(0, open).trim());
  // Fields after the name, numbered from 3 (state) as in proc(5).
  const f = text.slice(close + 1).trim().split(/\s+/);
  const field = (n: number) => Number(f[n - 3]);
  const r = { pid, comm: text.slice(open + 1, close), state: f[0] ?? '?', ppid: field(4), utimeTicks: field(14), stimeTicks: field(15), threads: field(20), startTicks: field(22) };
  if (![r.pid, r.utimeTicks, r.stimeTicks, r.threads, r.startTicks].every(Number.isFinite)) {
    throw new MeasureError('proc', `cannot read /proc/PID/stat "${excerpt(text)}"`);
  }
  return r;
}

export interface PidStatus {
  readonly name: string;
  readonly vmRssKiB?: number;
  readonly vmHwmKiB?: number;
  readonly voluntaryCtxtSwitches?: number;
  readonly nonvoluntaryCtxtSwitches?: number;
}

/** /proc/PID/status (kernel threads have no VmRSS). */
export function parsePidStatus(text: string): PidStatus {
  const kv = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) kv.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  const num = (k: string) => {
    const v = kv.get(k);
    return v === undefined ? undefined : Number(v.split(/\s+/)[0]);
  };
  const out: PidStatus = {
    name: kv.get('Name') ?? '',
    vmRssKiB: num('VmRSS'),
    vmHwmKiB: num('VmHWM'),
    voluntaryCtxtSwitches: num('voluntary_ctxt_switches'),
    nonvoluntaryCtxtSwitches: num('nonvoluntary_ctxt_switches'),
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined)) as unknown as PidStatus;
}

export interface LinkCounters {
  readonly dev: string;
  readonly operstate: string;
  readonly rxBytes: number;
  readonly txBytes: number;
  readonly rxPackets: number;
  readonly txPackets: number;
  readonly rxDropped: number;
  readonly txDropped: number;
  readonly rxErrors: number;
  readonly txErrors: number;
}

const DirSchema = z.object({ bytes: z.number(), packets: z.number(), errors: z.number(), dropped: z.number() });
const IpLinkSchema = z
  .array(
    z.object({
      ifname: z.string(),
      operstate: z.string().default('UNKNOWN'),
      // Older iproute2 prints `stats` instead of `stats64`.
      stats64: z.object({ rx: DirSchema, tx: DirSchema }).optional(),
      stats: z.object({ rx: DirSchema, tx: DirSchema }).optional(),
    }),
  )
  .min(1);

/**
 * `ip -s -j link show` (JSON): the counters of every link it lists, by name. One read of a
 * namespace serves all its links: parsed once, then looked up.
 */
export function parseIpLinkStats(text: string): Map<string, LinkCounters> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new MeasureError('ip', `link statistics are not JSON: "${excerpt(text)}"`, { cause: err });
  }
  const parsed = IpLinkSchema.safeParse(raw);
  if (!parsed.success) throw new MeasureError('ip', `unexpected link statistics: ${z.prettifyError(parsed.error)}`);
  const out = new Map<string, LinkCounters>();
  for (const link of parsed.data) {
    const s = link.stats64 ?? link.stats;
    if (!s) throw new MeasureError('ip', `no statistics for ${link.ifname} (was -s given?)`);
    out.set(link.ifname, {
      dev: link.ifname,
      operstate: link.operstate,
      rxBytes: s.rx.bytes,
      txBytes: s.tx.bytes,
      rxPackets: s.rx.packets,
      txPackets: s.tx.packets,
      rxDropped: s.rx.dropped,
      txDropped: s.tx.dropped,
      rxErrors: s.rx.errors,
      txErrors: s.tx.errors,
    });
  }
  return out;
}

/** Every link's counters in `netns` (the host's own namespace when absent), in one `ip` call. */
export function ipLinkStatsArgv(netns?: string): string[] {
  if (netns !== undefined && !/^[\w.-]{1,64}$/.test(netns)) throw new UsageError(`invalid network namespace name "${netns}"`);
  return ['ip', ...(netns ? ['-n', netns] : []), '-s', '-j', 'link', 'show'];
}

// ---------------------------------------------------------------- sampling

export interface LinkRef {
  /** The namespace the link is in; the host's own namespace when absent. */
  readonly netns?: string;
  readonly dev: string;
}

/** Where the sampler reads files: the local /proc by default; a remote reader can stand in. */
export interface ProcReader {
  /** The file's text, or undefined if it does not exist (a process that has exited). */
  readText(path: string): Promise<string | undefined>;
  /** Number of entries in a directory, or undefined if it does not exist. */
  countEntries(path: string): Promise<number | undefined>;
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ESRCH';
}

/**
 * This machine's /proc, read synchronously: its files are made by the kernel from memory as they
 * are read (no disk to wait for), and fs/promises' open, fstat, read and close through the thread
 * pool cost 3-4 times the CPU: sampling /proc/stat, loadavg, meminfo, PSI and one process every
 * 10 ms took 18.9 % of a CPU that way and 5.6 % this way (bench runs' sampling cost).
 */
export const localProcReader: ProcReader = {
  async readText(path) {
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw new MeasureError('proc', `cannot read ${path}`, { cause: err });
    }
  },
  async countEntries(path) {
    try {
      return readdirSync(path).length;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw new MeasureError('proc', `cannot list ${path}`, { cause: err });
    }
  },
};

/** The raw counters of one read; rates need two of them. */
export interface HostSnapshot {
  /** Monotonic clock (performance.now()) of the read, for intervals. */
  readonly monoMs: number;
  readonly cpuTimes: readonly CpuTimes[];
  readonly pids: ReadonlyMap<number, PidStat>;
  readonly links: ReadonlyMap<string, LinkCounters>;
}

export interface ProcessSample {
  readonly pid: number;
  /** false once the process has gone: its figures are then absent, not zero. */
  readonly alive: boolean;
  readonly comm?: string;
  readonly state?: string;
  readonly threads?: number;
  readonly cpuTimeS?: number;
  /** CPU used since the previous sample, 100 = one CPU (multi-threaded QEMU may exceed 100). */
  readonly cpuPct?: number;
  readonly vmRssKiB?: number;
  readonly fdCount?: number;
}

export interface LinkSample extends LinkRef {
  /** The migration's end it is on, where src and dst are different machines (read on each). */
  readonly role?: 'src' | 'dst';
  readonly counters?: LinkCounters;
  readonly rxBitsPerSecond?: number;
  readonly txBitsPerSecond?: number;
  /** Why the counters could not be read (the namespace or link is gone). */
  readonly error?: string;
}

export interface HostSample {
  /** Wall clock of the read (Date.now()). */
  readonly atMs: number;
  /** Time since the snapshot rates are relative to. */
  readonly intervalMs: number;
  readonly cpus: readonly CpuUtilization[];
  readonly loadavg: LoadAvg;
  /** Absent where the kernel has no PSI. */
  readonly pressure: { readonly cpu?: Pressure; readonly memory?: Pressure; readonly io?: Pressure };
  readonly memory: MemInfo;
  readonly processes: readonly ProcessSample[];
  readonly links: readonly LinkSample[];
}

export interface SampleHostOptions {
  readonly pids?: readonly number[];
  readonly links?: readonly LinkRef[];
  /** The snapshot to compute rates against; without it two reads `windowMs` apart are made. */
  readonly previous?: HostSnapshot;
  readonly windowMs?: number;
  readonly reader?: ProcReader;
  /** Runs `ip` for link counters (default: this machine). */
  readonly host?: Host;
  readonly signal?: AbortSignal;
}

/** Clock ticks per second for /proc times (USER_HZ): 100 on every Linux ABI miglab runs on. */
const USER_HZ = 100;

/** CPU time (user + system) a process of `host` has used so far, in ms; undefined once it is gone. */
export async function processCpuMs(host: Host, pid: number): Promise<number | undefined> {
  try {
    const text = await host.readText(`/proc/${pid}/stat`);
    if (text === undefined) return undefined;
    const st = parsePidStat(text);
    return ((st.utimeTicks + st.stimeTicks) * 1000) / USER_HZ;
  } catch {
    return undefined; // it exited (mid-read): no figure, rather than a made-up one
  }
}
const linkKey = (l: LinkRef) => `${l.netns ?? ''}/${l.dev}`;

/** The links' counters: one `ip` call and one parse per namespace, each link looked up in it. */
async function readLinks(host: Host, links: readonly LinkRef[], signal?: AbortSignal): Promise<Map<string, LinkCounters | Error>> {
  const out = new Map<string, LinkCounters | Error>();
  const namespaces = [...new Set(links.map((l) => l.netns))];
  await Promise.all(
    namespaces.map(async (netns) => {
      const r = await host.run(ipLinkStatsArgv(netns), { reject: false, timeoutMs: 5000, signal });
      const counters = r.exitCode === 0 ? parseIpLinkStats(r.stdout) : undefined;
      for (const l of links.filter((x) => x.netns === netns)) {
        const where = `${netns ? `${netns}/` : ''}${l.dev}`;
        const c = counters?.get(l.dev);
        if (c) out.set(linkKey(l), c);
        else out.set(linkKey(l), new MeasureError('ip', counters ? `${where}: no such link` : `${where}: ${excerpt(r.stderr) || `exit ${r.exitCode}`}`));
      }
    }),
  );
  return out;
}

async function snapshot(opts: SampleHostOptions, reader: ProcReader, host: Host): Promise<{ snap: HostSnapshot; linkErrors: Map<string, Error> }> {
  const monoMs = performance.now();
  const [statText, pidStats, linkResults] = await Promise.all([
    reader.readText('/proc/stat'),
    Promise.all((opts.pids ?? []).map(async (pid) => [pid, await reader.readText(`/proc/${pid}/stat`)] as const)),
    readLinks(host, opts.links ?? [], opts.signal),
  ]);
  if (statText === undefined) throw new MeasureError('proc', '/proc/stat is missing');
  const pids = new Map<number, PidStat>();
  for (const [pid, text] of pidStats) if (text !== undefined) pids.set(pid, parsePidStat(text));
  const links = new Map<string, LinkCounters>();
  const linkErrors = new Map<string, Error>();
  for (const [k, v] of linkResults) {
    if (v instanceof Error) linkErrors.set(k, v);
    else links.set(k, v);
  }
  return { snap: { monoMs, cpuTimes: parseProcStat(statText), pids, links }, linkErrors };
}

/** The raw counters of one read (the `previous` of the first sample), without rates. */
export async function hostSnapshot(opts: SampleHostOptions = {}): Promise<HostSnapshot> {
  return (await snapshot(opts, opts.reader ?? localProcReader, opts.host ?? new LocalHost())).snap;
}

/**
 * One sample of the host. Returns the sample and the snapshot to pass as `previous` next time.
 * Processes that have exited are reported `alive:false`; unreadable links carry an `error`.
 */
export async function sampleHost(opts: SampleHostOptions = {}): Promise<{ sample: HostSample; snapshot: HostSnapshot }> {
  const reader = opts.reader ?? localProcReader;
  const host = opts.host ?? new LocalHost();
  let previous = opts.previous;
  if (!previous) {
    previous = (await snapshot(opts, reader, host)).snap;
    await new Promise((resolve) => setTimeout(resolve, opts.windowMs ?? 200));
    if (opts.signal?.aborted) throw opts.signal.reason;
  }
  const [{ snap, linkErrors }, loadText, memText, psi, procDetails] = await Promise.all([
    snapshot(opts, reader, host),
    reader.readText('/proc/loadavg'),
    reader.readText('/proc/meminfo'),
    Promise.all((['cpu', 'memory', 'io'] as const).map(async (r) => [r, await reader.readText(`/proc/pressure/${r}`)] as const)),
    Promise.all(
      (opts.pids ?? []).map(async (pid) => ({
        pid,
        status: await reader.readText(`/proc/${pid}/status`),
        fdCount: await reader.countEntries(`/proc/${pid}/fd`),
      })),
    ),
  ]);
  if (loadText === undefined || memText === undefined) throw new MeasureError('proc', '/proc/loadavg or /proc/meminfo is missing');
  const intervalMs = snap.monoMs - previous.monoMs;
  const pressure: { cpu?: Pressure; memory?: Pressure; io?: Pressure } = {};
  for (const [r, text] of psi) if (text !== undefined) pressure[r] = parsePressure(text);

  const processes: ProcessSample[] = procDetails.map(({ pid, status, fdCount }) => {
    const now = snap.pids.get(pid);
    if (!now || status === undefined) return { pid, alive: false };
    const before = previous.pids.get(pid);
    const ticks = now.utimeTicks + now.stimeTicks;
    const sameProcess = before !== undefined && before.startTicks === now.startTicks;
    const cpuPct =
      sameProcess && intervalMs > 0 ? (100 * (ticks - before.utimeTicks - before.stimeTicks)) / USER_HZ / (intervalMs / 1000) : undefined;
    const st = parsePidStatus(status);
    const s: ProcessSample = {
      pid,
      alive: true,
      comm: now.comm,
      state: now.state,
      threads: now.threads,
      cpuTimeS: ticks / USER_HZ,
      cpuPct,
      vmRssKiB: st.vmRssKiB,
      fdCount,
    };
    return Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined)) as unknown as ProcessSample;
  });

  const links: LinkSample[] = (opts.links ?? []).map((l) => {
    const ref = l.netns ? { netns: l.netns, dev: l.dev } : { dev: l.dev };
    const err = linkErrors.get(linkKey(l));
    if (err) return { ...ref, error: err.message };
    const now = snap.links.get(linkKey(l))!;
    const before = previous.links.get(linkKey(l));
    if (!before || intervalMs <= 0 || now.rxBytes < before.rxBytes || now.txBytes < before.txBytes) return { ...ref, counters: now };
    const bps = (d: number) => (8 * d) / (intervalMs / 1000);
    return { ...ref, counters: now, rxBitsPerSecond: bps(now.rxBytes - before.rxBytes), txBitsPerSecond: bps(now.txBytes - before.txBytes) };
  });

  return {
    sample: {
      atMs: Date.now(),
      intervalMs,
      cpus: cpuUtilization(previous.cpuTimes, snap.cpuTimes),
      loadavg: parseLoadavg(loadText),
      pressure,
      memory: parseMeminfo(memText),
      processes,
      links,
    },
    snapshot: snap,
  };
}

export interface HostSamplerOptions {
  readonly intervalMs: number;
  readonly pids?: readonly number[];
  readonly links?: readonly LinkRef[];
  readonly reader?: ProcReader;
  readonly host?: Host;
  /** Called with each sample as it is taken (e.g. to append to a report file). */
  readonly onSample?: (sample: HostSample) => void;
}

export interface HostSampler {
  /** Samples taken so far, oldest first. */
  readonly samples: readonly HostSample[];
  /** Stop sampling and return every sample; rethrows an error that ended sampling. Idempotent. */
  stop(): Promise<HostSample[]>;
}

/** Sample the host every `intervalMs` until `stop()`. The first sample comes one interval in. */
export function startHostSampler(opts: HostSamplerOptions): HostSampler {
  if (!Number.isInteger(opts.intervalMs) || opts.intervalMs < 50) {
    throw new UsageError(`invalid host sampling interval ${opts.intervalMs} ms`, 'use a whole number of at least 50 ms');
  }
  const base = { pids: opts.pids, links: opts.links, reader: opts.reader, host: opts.host ?? new LocalHost() };
  return startPeriodic<HostSample>({
    what: 'host sampler',
    intervalMs: opts.intervalMs,
    onSample: opts.onSample,
    start: async (signal) => {
      let { snap: previous } = await snapshot({ ...base, signal }, base.reader ?? localProcReader, base.host);
      return async (tickSignal) => {
        const { sample, snapshot: snap } = await sampleHost({ ...base, previous, signal: tickSignal });
        previous = snap;
        return sample;
      };
    },
  });
}
