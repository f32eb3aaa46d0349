// iperf3 between lab endpoints (host <-> guest, namespace <-> namespace), for the "with/without
// virtio" throughput comparison and for load during a migration. The client always runs with
// `-J`; its JSON (TCP and UDP shapes) is validated here, and iperf3's own `{"error": ...}` becomes
// an IperfError. Servers bind a given lab address, never a wildcard, and are owned by the handle
// that started them.
import { z } from 'zod';
import { UsageError } from '../errors.js';
import type { ExitInfo, Host, HostProcess } from '../host/host.js';
import { pollUntil, withDeadline, type WaitOptions } from '../util/deadline.js';
import { parsePort } from '../util/units.js';
import { MeasureError, excerpt } from './errors.js';

export const DEFAULT_IPERF_PORT = 5201;

export interface IperfClientOptions {
  /** The server's address (a lab address or 127.0.0.1). */
  readonly server: string;
  readonly port?: number;
  readonly durationS: number;
  /** Server sends, client receives (`-R`). */
  readonly reverse?: boolean;
  readonly udp?: boolean;
  /** Target rate in iperf3's syntax ("100M", "1G"); UDP defaults to only 1M without it. */
  readonly bitrate?: string;
  /** Seconds between interval reports (`-i`). */
  readonly intervalS?: number;
  /** Parallel streams (`-P`). */
  readonly parallel?: number;
  /** Local address to send from (`-B`). */
  readonly bind?: string;
}

const WILDCARDS = new Set(['', '0.0.0.0', '::', '[::]', '*']);

function checkAddress(address: string, what: string): void {
  if (WILDCARDS.has(address.trim())) throw new UsageError(`${what} "${address}" is a wildcard`, 'give one lab address, e.g. 10.77.0.1');
  if (!/^[\w.:-]+$/.test(address)) throw new UsageError(`invalid ${what} "${address}"`, 'give an IP address or host name');
}

/** `iperf3 -c SERVER ... -J`. Pure. */
export function iperfClientArgv(opts: IperfClientOptions): string[] {
  checkAddress(opts.server, 'iperf3 server address');
  const port = parsePort(opts.port ?? DEFAULT_IPERF_PORT, 'iperf3 port');
  if (!(opts.durationS > 0)) throw new UsageError(`invalid iperf3 duration ${opts.durationS} s`, 'it must be greater than zero');
  const argv = ['iperf3', '-c', opts.server, '-p', String(port), '-t', String(opts.durationS), '-J'];
  if (opts.bind !== undefined) {
    checkAddress(opts.bind, 'iperf3 client bind address');
    argv.push('-B', opts.bind);
  }
  if (opts.reverse) argv.push('-R');
  if (opts.udp) argv.push('-u');
  if (opts.bitrate !== undefined) {
    if (!/^\d+(\.\d+)?[kmgt]?$/i.test(opts.bitrate)) throw new UsageError(`invalid iperf3 bitrate "${opts.bitrate}"`, 'use e.g. 100M or 1G (bits per second)');
    argv.push('-b', opts.bitrate);
  }
  if (opts.intervalS !== undefined) {
    if (!(opts.intervalS >= 0.1)) throw new UsageError(`invalid iperf3 interval ${opts.intervalS} s`, 'use at least 0.1 s');
    argv.push('-i', String(opts.intervalS));
  }
  if (opts.parallel !== undefined) {
    if (!Number.isInteger(opts.parallel) || opts.parallel < 1 || opts.parallel > 128) {
      throw new UsageError(`invalid iperf3 stream count ${opts.parallel}`, 'use a whole number from 1 to 128');
    }
    argv.push('-P', String(opts.parallel));
  }
  return argv;
}

export interface IperfServerOptions {
  /** The lab address to listen on; wildcards are refused. */
  readonly bind: string;
  readonly port: number;
  /** Serve one test, then exit (`-1`). */
  readonly oneOff?: boolean;
}

/** `iperf3 -s -B BIND -p PORT [-1]`. Pure. */
export function iperfServerArgv(opts: IperfServerOptions): string[] {
  checkAddress(opts.bind, 'iperf3 server bind address');
  const port = parsePort(opts.port, 'iperf3 port');
  return ['iperf3', '-s', '-B', opts.bind, '-p', String(port), ...(opts.oneOff ? ['-1'] : [])];
}

const SumSchema = z.object({
  start: z.number(),
  end: z.number(),
  seconds: z.number().optional(),
  bytes: z.number().nonnegative(),
  bits_per_second: z.number().nonnegative(),
  retransmits: z.number().optional(),
  jitter_ms: z.number().optional(),
  lost_packets: z.number().optional(),
  packets: z.number().optional(),
  lost_percent: z.number().optional(),
  sender: z.boolean().optional(),
});

const IperfJsonSchema = z.object({
  start: z
    .object({
      version: z.string().optional(),
      test_start: z.object({ protocol: z.string(), num_streams: z.number(), reverse: z.number(), duration: z.number() }).optional(),
    })
    .optional(),
  intervals: z.array(z.object({ sum: SumSchema })).default([]),
  end: z
    .object({
      sum_sent: SumSchema.optional(),
      sum_received: SumSchema.optional(),
      // UDP in older iperf3 versions has only `sum`.
      sum: SumSchema.optional(),
      cpu_utilization_percent: z.object({ host_total: z.number(), remote_total: z.number() }).optional(),
    })
    .optional(),
  error: z.string().optional(),
});

export interface IperfInterval {
  readonly startS: number;
  readonly endS: number;
  readonly bitsPerSecond: number;
  readonly bytes: number;
  readonly retransmits?: number;
  readonly jitterMs?: number;
  readonly lostPackets?: number;
  readonly packets?: number;
  readonly lostPercent?: number;
}

export interface IperfSummary {
  /** Bits per second as the sender counted them. */
  readonly sentBps: number;
  /** Bits per second that arrived: the throughput to report. */
  readonly receivedBps: number;
  readonly sentBytes: number;
  readonly receivedBytes: number;
  readonly retransmits?: number;
  readonly jitterMs?: number;
  readonly lostPercent?: number;
}

export interface IperfResult {
  readonly protocol: 'TCP' | 'UDP';
  readonly reverse: boolean;
  readonly streams: number;
  readonly durationS: number;
  readonly version?: string;
  /** Intervals as the client saw them (sender side, or receiver side with reverse). */
  readonly intervals: readonly IperfInterval[];
  readonly summary: IperfSummary;
  readonly cpuUtilizationPct?: { readonly local: number; readonly remote: number };
  /** iperf3's own error message, when it printed one. */
  readonly error?: string;
}

/** iperf3 failed and said why (in its JSON), or printed something unreadable. */
export class IperfError extends MeasureError {
  /** What iperf3 said, if it said anything. */
  readonly iperfMessage?: string;
  constructor(message: string, options: { iperfMessage?: string; cause?: unknown; context?: Record<string, unknown> } = {}) {
    super('iperf3', message, options);
    this.name = 'IperfError';
    this.iperfMessage = options.iperfMessage;
  }
}

function omitUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/**
 * Parse `iperf3 -J` output (TCP or UDP). A JSON error object without results comes back with
 * `error` set and empty figures; callers that need figures use `runIperf`, which throws then.
 */
export function parseIperfJson(text: string): IperfResult {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new IperfError(`output is not JSON: "${excerpt(text)}"`, { cause: err });
  }
  const parsed = IperfJsonSchema.safeParse(raw);
  if (!parsed.success) throw new IperfError(`unexpected JSON: ${z.prettifyError(parsed.error)}`);
  const j = parsed.data;
  const ts = j.start?.test_start;
  const sent = j.end?.sum_sent ?? j.end?.sum;
  const received = j.end?.sum_received ?? j.end?.sum;
  if (!ts || !sent || !received) {
    if (j.error === undefined) throw new IperfError('JSON has no test results and no error message');
    return {
      protocol: 'TCP',
      reverse: false,
      streams: 0,
      durationS: 0,
      version: j.start?.version,
      intervals: [],
      summary: { sentBps: 0, receivedBps: 0, sentBytes: 0, receivedBytes: 0 },
      error: j.error,
    };
  }
  const protocol = ts.protocol.toUpperCase() === 'UDP' ? 'UDP' : 'TCP';
  const intervals = j.intervals.map(({ sum: s }) =>
    omitUndefined<IperfInterval>({
      startS: s.start,
      endS: s.end,
      bitsPerSecond: s.bits_per_second,
      bytes: s.bytes,
      retransmits: s.retransmits,
      jitterMs: s.jitter_ms,
      lostPackets: s.lost_packets,
      packets: s.packets,
      lostPercent: s.lost_percent,
    }),
  );
  // UDP loss and jitter are measured by the receiver.
  const summary = omitUndefined<IperfSummary>({
    sentBps: sent.bits_per_second,
    receivedBps: received.bits_per_second,
    sentBytes: sent.bytes,
    receivedBytes: received.bytes,
    retransmits: protocol === 'TCP' ? sent.retransmits : undefined,
    jitterMs: protocol === 'UDP' ? received.jitter_ms : undefined,
    lostPercent: protocol === 'UDP' ? received.lost_percent : undefined,
  });
  const cpu = j.end?.cpu_utilization_percent;
  return omitUndefined<IperfResult>({
    protocol,
    reverse: ts.reverse !== 0,
    streams: ts.num_streams,
    durationS: ts.duration,
    version: j.start?.version,
    intervals,
    summary,
    cpuUtilizationPct: cpu ? { local: cpu.host_total, remote: cpu.remote_total } : undefined,
    error: j.error,
  });
}

/** Run an iperf3 client on `clientHost` and return its validated result; iperf3's errors throw. */
export async function runIperf(clientHost: Host, opts: IperfClientOptions, wait: WaitOptions): Promise<IperfResult> {
  const argv = iperfClientArgv(opts);
  if (wait.timeoutMs <= opts.durationS * 1000) {
    throw new UsageError(`iperf3 timeout ${wait.timeoutMs} ms is not longer than its duration ${opts.durationS} s`, 'allow a few seconds more');
  }
  const target = `${opts.server}:${opts.port ?? DEFAULT_IPERF_PORT}`;
  const operation = `iperf3 client on ${clientHost.name} to ${target}`;
  const result = await withDeadline(operation, clientHost.run(argv, { reject: false, timeoutMs: wait.timeoutMs, signal: wait.signal }), {
    timeoutMs: wait.timeoutMs + 1000,
    signal: wait.signal,
  });
  const context = { host: clientHost.name, argv, exitCode: result.exitCode };
  if (result.stdout.trim() === '') {
    if ((await clientHost.which('iperf3')) === undefined) {
      throw new IperfError(`iperf3 is not installed on ${clientHost.name}; install it with: apt-get install iperf3`, { context });
    }
    throw new IperfError(`${operation} exited ${result.exitCode} without output${result.stderr.trim() ? `: ${excerpt(result.stderr)}` : ''}`, { context });
  }
  const parsed = parseIperfJson(result.stdout);
  if (parsed.error !== undefined) {
    throw new IperfError(`${operation} failed: ${parsed.error}`, { iperfMessage: parsed.error, context: { ...context, partial: parsed } });
  }
  if (result.exitCode !== 0) throw new IperfError(`${operation} exited ${result.exitCode}: ${excerpt(result.stderr)}`, { context });
  return parsed;
}

export interface Listener {
  readonly address: string;
  readonly port: number;
}

/** Parse `ss -Htln` (or -Huln) output into listening addresses. Pure. */
export function parseSsListeners(text: string): Listener[] {
  const out: Listener[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    const local = fields[3];
    if (!local) continue;
    const colon = local.lastIndexOf(':');
    if (colon < 0) continue;
    const port = Number(local.slice(colon + 1));
    if (!Number.isInteger(port)) continue;
    const address = local
      .slice(0, colon)
      .replace(/^\[(.*)\]$/, '$1')
      .replace(/%.*$/, '');
    out.push({ address, port });
  }
  return out;
}

export interface IperfServer {
  readonly host: string;
  readonly bind: string;
  readonly port: number;
  readonly pid: number;
  readonly exited: Promise<ExitInfo>;
  /** Stop the server (SIGTERM, then SIGKILL). Harmless once it has exited (e.g. after a one-off test). */
  stop(): Promise<ExitInfo>;
}

/**
 * Start an iperf3 server on `host` and resolve once it listens on `bind:port` (checked with
 * `ss -Htln` on the same host, under `wait`). On any failure the server is stopped again.
 */
export async function startIperfServer(host: Host, opts: IperfServerOptions & { readonly logFile?: string }, wait: WaitOptions): Promise<IperfServer> {
  const argv = iperfServerArgv(opts);
  const proc: HostProcess = host.spawn(argv, { logFile: opts.logFile });
  const what = `iperf3 server on ${host.name} at ${opts.bind}:${opts.port}`;
  try {
    await pollUntil(
      `${what} to listen`,
      async () => {
        if (proc.hasExited) {
          const exit = await proc.exited;
          throw new IperfError(`${what} exited (code ${exit.exitCode}, signal ${exit.signal}) before listening: ${excerpt(proc.tail(5)) || 'no output'}`, {
            context: { host: host.name, argv },
          });
        }
        const ss = await host.run(['ss', '-Htln'], { timeoutMs: wait.timeoutMs, signal: wait.signal });
        const listening = parseSsListeners(ss.stdout).some((l) => l.port === opts.port && (l.address === opts.bind || WILDCARDS.has(l.address)));
        return listening ? true : undefined;
      },
      { ...wait, intervalMs: 50 },
    );
  } catch (err) {
    await proc.stop(1000);
    throw err;
  }
  return {
    host: host.name,
    bind: opts.bind,
    port: opts.port,
    pid: proc.pid,
    exited: proc.exited,
    stop: () => proc.stop(2000),
  };
}
