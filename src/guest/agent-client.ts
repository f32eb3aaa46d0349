// The host's client of the guest agent (vm-images/agent). Guests are reachable only from inside
// the lab's namespaces, so every request runs `miglab-probe cmd ...` on a host there (normally
// the lab's `client` host) and reads its one reply. One request, one datagram, no retries: bench
// and dirty requests are slow and not idempotent, so only waitReachable() repeats (pings).
import { AbortedError, describeError, MiglabError, TimeoutError } from '../errors.js';
import type { Host } from '../host/host.js';
import { CommandError } from '../host/local.js';
import type { LineSession } from '../host/line-session.js';
import type { WaitOptions } from '../util/deadline.js';
import { sleep, withDeadline } from '../util/deadline.js';
import {
  agentErrorReason,
  parseConnect,
  parseCpuBench,
  parseCpuStatus,
  parseDiskStatus,
  parseDiskVerify,
  parseDirtyStatus,
  parseDirtyVerify,
  parseDiskBench,
  parseInfo,
  parseMemBench,
  parseOk,
  parseOomAck,
  parsePong,
  type AgentInfo,
  type CpuBench,
  type CpuStatus,
  type DiskStatus,
  type DiskVerify,
  type DirtyPattern,
  type DirtyStatus,
  type DirtyVerify,
  type DiskBench,
  type MemBench,
  type Pong,
  type TcpConnect,
} from './replies.js';
import { checkConnectTarget } from './tcp-connect.js';

export const AGENT_PORT = 7777;

/** The agent answered `error ...`. */
export class AgentError extends MiglabError {
  readonly request: string;
  readonly reason: string;
  constructor(request: string, reason: string, context: Record<string, unknown>) {
    super('COMMAND_FAILED', `the guest agent refused "${request}": ${reason}`, { context: { ...context, request, reason } });
    this.name = 'AgentError';
    this.request = request;
    this.reason = reason;
  }
}

export interface AgentClientOptions {
  /** A host inside the lab that reaches the guest (the lab's `client` namespace). */
  readonly host: Host;
  readonly guestIp: string;
  readonly port?: number;
  /** The built miglab-probe (ensureProbeTool()). */
  readonly toolPath: string;
}

/** Optional deadline of a request whose default follows from its size. */
export type CallOptions = Partial<WaitOptions>;

export interface DirtyStartOptions {
  readonly wssMiB: number;
  /** 0: as fast as the guest can. */
  readonly rateMiBps: number;
  readonly pattern: DirtyPattern;
}

export interface DiskStartOptions {
  /** 0: as fast as the disk takes it. */
  readonly rateKiBps: number;
  /** Bytes per record, a multiple of 512 (default 4096). */
  readonly recordBytes?: number;
}

// Starting `ip netns exec` and the tool costs a few ms; under load, more. Added to every deadline
// given to the tool, so the tool's own (exit 2) timeout is the one that fires.
const PROCESS_SLACK_MS = 5000;
// TCG guests run slowly and a busy host slows them more: generous fixed parts per request.
const QUICK_MS = 5000;

export class AgentClient {
  readonly host: Host;
  readonly guestIp: string;
  readonly port: number;
  readonly toolPath: string;
  private pingToken = 0;
  /** `miglab-probe serve` on the host, while keepOpen() holds it (see request). */
  private session: Promise<LineSession> | undefined;
  private sessionBusy = false;
  private keeping = false;

  constructor(opts: AgentClientOptions) {
    this.host = opts.host;
    this.guestIp = opts.guestIp;
    this.port = opts.port ?? AGENT_PORT;
    this.toolPath = opts.toolPath;
  }

  private get where(): string {
    return `${this.guestIp}:${this.port} (from ${this.host.name})`;
  }

  /**
   * Keep one `miglab-probe serve` running on the host for this client's requests until close():
   * each request is then a line over an open channel (over SSH, no command started: a round trip
   * saved per request, tens of ms), instead of a `miglab-probe cmd` started for it. A run does
   * this for its guest; a request made while another is in flight, or when the session cannot
   * serve, runs as its own command as before.
   */
  keepOpen(): void {
    this.keeping = true;
  }

  /** End the serving session, if one was started. Safe to call twice. */
  async close(): Promise<void> {
    this.keeping = false;
    const session = this.session;
    this.session = undefined;
    if (session) await session.then((s) => s.close()).catch(() => undefined);
  }

  /** Send `text`, return the reply; `error ...` replies become an AgentError. */
  async request(text: string, opts: WaitOptions): Promise<string> {
    const words = text.trim().split(/\s+/).filter(Boolean);
    if (words.length === 0) throw new MiglabError('BAD_INPUT', 'an agent request needs at least one word');
    const req = words.join(' ');
    const operation = `agent request "${req}" to ${this.where}`;
    if (opts.signal?.aborted) throw new AbortedError(operation, opts.signal.reason);
    const timeoutMs = Math.max(1, Math.ceil(opts.timeoutMs));
    const context = { host: this.host.name, guestIp: this.guestIp, port: this.port };
    const served = await this.overSession(req, timeoutMs, opts.signal);
    let reply: string;
    if (served !== undefined) {
      if (served.kind === 'timeout') throw new TimeoutError(operation, timeoutMs, context);
      if (served.kind === 'error') throw new MiglabError('COMMAND_FAILED', `${operation} failed on ${this.host.name}: ${served.text}`, { context });
      reply = served.text;
    } else {
      const argv = [this.toolPath, 'cmd', this.guestIp, String(this.port), String(timeoutMs), ...words];
      const r = await this.host.run(argv, { reject: false, timeoutMs: timeoutMs + PROCESS_SLACK_MS, signal: opts.signal });
      if (opts.signal?.aborted) throw new AbortedError(operation, opts.signal.reason);
      if (r.exitCode === 2) throw new TimeoutError(operation, timeoutMs, context);
      if (r.exitCode !== 0) throw new CommandError(this.host.name, r);
      reply = r.stdout.trim();
    }
    const reason = agentErrorReason(reply);
    if (reason !== undefined) throw new AgentError(req, reason, context);
    return reply;
  }

  /**
   * The request over the serving session: its answer, or undefined when it must run as a command
   * (no session kept, one in flight, or the session could not start). A session that fails once
   * the request is written to it is ended (the next request starts another), and the request
   * fails: it may have reached the guest, and agent requests are not all idempotent. An abort
   * ends the session too (its answer would come to the next request).
   */
  private async overSession(req: string, timeoutMs: number, signal?: AbortSignal): Promise<{ kind: 'reply' | 'timeout' | 'error'; text: string } | undefined> {
    if (!this.keeping || this.sessionBusy) return undefined;
    this.sessionBusy = true;
    const session = (this.session ??= this.host.converse([this.toolPath, 'serve', this.guestIp, String(this.port)]));
    const drop = () => {
      if (this.session === session) this.session = undefined;
      void session.then((s) => s.close()).catch(() => undefined);
    };
    try {
      let open: LineSession;
      try {
        open = await session;
      } catch {
        drop();
        return undefined;
      }
      const operation = `agent request "${req}" to ${this.where}`;
      let line: string;
      try {
        line = await withDeadline(`an answer from miglab-probe serve on ${this.host.name}`, open.ask(`${timeoutMs} ${req}`, { timeoutMs: timeoutMs + PROCESS_SLACK_MS }), { timeoutMs: timeoutMs + PROCESS_SLACK_MS, signal });
      } catch (err) {
        drop();
        if (signal?.aborted) throw new AbortedError(operation, signal.reason);
        throw new MiglabError('COMMAND_FAILED', `${operation}: miglab-probe serve on ${this.host.name} failed: ${describeError(err)}`, { cause: err });
      }
      const m = /^(reply|timeout|error) ?(.*)$/.exec(line);
      if (!m) {
        drop();
        throw new MiglabError('INTERNAL', `${operation}: miglab-probe serve answered "${line.slice(0, 80)}"`);
      }
      return { kind: m[1] as 'reply' | 'timeout' | 'error', text: m[2]!.trim() };
    } finally {
      this.sessionBusy = false;
    }
  }

  async ping(opts: WaitOptions): Promise<Pong> {
    const token = `c${++this.pingToken}`;
    const pong = parsePong(await this.request(`ping ${token}`, opts));
    if (pong.token !== token) throw new MiglabError('COMMAND_FAILED', `ping ${token} to ${this.where} was answered with token ${pong.token}`);
    return pong;
  }

  /** Ping until the agent answers, each try with a short deadline, up to `timeoutMs` in all. */
  async waitReachable(opts: WaitOptions): Promise<Pong> {
    const operation = `waiting for the guest agent at ${this.where} to answer`;
    const deadline = Date.now() + opts.timeoutMs;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) throw new TimeoutError(operation, opts.timeoutMs, { host: this.host.name, guestIp: this.guestIp });
      try {
        return await this.ping({ timeoutMs: Math.min(500, left), signal: opts.signal });
      } catch (err) {
        if (!(err instanceof TimeoutError)) throw err;
      }
      await sleep(Math.min(50, Math.max(0, deadline - Date.now())), opts.signal);
    }
  }

  async info(opts: CallOptions = {}): Promise<AgentInfo> {
    return parseInfo(await this.request('info', { timeoutMs: opts.timeoutMs ?? QUICK_MS, signal: opts.signal }));
  }

  /** Integer work for `ms` of guest time. */
  async benchCpu(ms: number, opts: CallOptions = {}): Promise<CpuBench> {
    checkInt('bench cpu duration (ms)', ms, 1, 600_000);
    return parseCpuBench(await this.request(`bench cpu ${ms}`, { timeoutMs: opts.timeoutMs ?? 2 * ms + QUICK_MS, signal: opts.signal }));
  }

  /** memset + memcpy over `mib` MiB for `ms` of guest time. */
  async benchMem(mib: number, ms: number, opts: CallOptions = {}): Promise<MemBench> {
    checkInt('bench mem size (MiB)', mib, 1, 8192);
    checkInt('bench mem duration (ms)', ms, 1, 600_000);
    // Populating the two buffers comes before the timed part: about 50 ms per MiB under TCG, at worst.
    const timeoutMs = opts.timeoutMs ?? 2 * ms + 50 * mib + QUICK_MS;
    return parseMemBench(await this.request(`bench mem ${mib} ${ms}`, { timeoutMs, signal: opts.signal }));
  }

  /** Sequential O_DIRECT write (+fsync) then read of `mib` MiB on the guest's data disk. */
  async benchDisk(mib: number, opts: CallOptions = {}): Promise<DiskBench> {
    checkInt('bench disk size (MiB)', mib, 1, 8192);
    // A slow shared disk (NFS over a shaped link) may do a few MiB/s: allow 1 s per MiB.
    const timeoutMs = opts.timeoutMs ?? 1000 * mib + 10_000;
    return parseDiskBench(await this.request(`bench disk ${mib}`, { timeoutMs, signal: opts.signal }));
  }

  async dirtyStart(o: DirtyStartOptions, opts: CallOptions = {}): Promise<void> {
    checkInt('dirty working set (MiB)', o.wssMiB, 1, 1 << 20);
    checkInt('dirty rate (MiB/s)', o.rateMiBps, 0, 1 << 20);
    // The working set is allocated and written once before `ok`.
    const timeoutMs = opts.timeoutMs ?? 20 * o.wssMiB + QUICK_MS;
    parseOk(await this.request(`dirty start ${o.wssMiB} ${o.rateMiBps} ${o.pattern}`, { timeoutMs, signal: opts.signal }), 'dirty start');
  }

  async dirtyStatus(opts: CallOptions = {}): Promise<DirtyStatus> {
    return parseDirtyStatus(await this.request('dirty status', { timeoutMs: opts.timeoutMs ?? QUICK_MS, signal: opts.signal }));
  }

  async dirtyStop(opts: CallOptions = {}): Promise<void> {
    parseOk(await this.request('dirty stop', { timeoutMs: opts.timeoutMs ?? QUICK_MS, signal: opts.signal }), 'dirty stop');
  }

  /** Check every page of the working set against the generation last written to it. */
  async dirtyVerify(opts: CallOptions = {}): Promise<DirtyVerify> {
    return parseDirtyVerify(await this.request('dirty verify', { timeoutMs: opts.timeoutMs ?? 30_000, signal: opts.signal }));
  }

  /** For tests of the checks: change one page's tag behind the workload's back (verify must see it). */
  async dirtyCorrupt(pageIndex: number, opts: CallOptions = {}): Promise<void> {
    checkInt('dirty page index', pageIndex, 0, 2 ** 32 - 2);
    parseOk(await this.request(`dirty corrupt ${pageIndex}`, { timeoutMs: opts.timeoutMs ?? QUICK_MS, signal: opts.signal }), 'dirty corrupt');
  }

  /** A continuous integer loop in its own guest thread; `start` while running restarts the count. */
  async cpuStart(opts: CallOptions = {}): Promise<void> {
    parseOk(await this.request('cpu start', { timeoutMs: opts.timeoutMs ?? QUICK_MS, signal: opts.signal }), 'cpu start');
  }

  async cpuStatus(opts: CallOptions = {}): Promise<CpuStatus> {
    return parseCpuStatus(await this.request('cpu status', { timeoutMs: opts.timeoutMs ?? QUICK_MS, signal: opts.signal }));
  }

  async cpuStop(opts: CallOptions = {}): Promise<void> {
    parseOk(await this.request('cpu stop', { timeoutMs: opts.timeoutMs ?? QUICK_MS, signal: opts.signal }), 'cpu stop');
  }

  /** Append checksummed, sequence-numbered records to the data disk from offset 0 (replaces an earlier run). */
  async diskStart(o: DiskStartOptions, opts: CallOptions = {}): Promise<void> {
    checkInt('disk rate (KiB/s)', o.rateKiBps, 0, 1 << 22);
    const recordBytes = o.recordBytes ?? 4096;
    checkInt('disk record size (bytes)', recordBytes, 512, 1 << 20);
    if (recordBytes % 512 !== 0) throw new MiglabError('BAD_INPUT', `disk record size must be a multiple of 512 bytes, not ${recordBytes}`);
    const req = `disk start ${o.rateKiBps}${o.recordBytes === undefined ? '' : ` ${recordBytes}`}`;
    parseOk(await this.request(req, { timeoutMs: opts.timeoutMs ?? QUICK_MS, signal: opts.signal }), 'disk start');
  }

  async diskStatus(opts: CallOptions = {}): Promise<DiskStatus> {
    return parseDiskStatus(await this.request('disk status', { timeoutMs: opts.timeoutMs ?? QUICK_MS, signal: opts.signal }));
  }

  /** Stops the writer; waits for its batch in flight (one write + fdatasync). */
  async diskStop(opts: CallOptions = {}): Promise<void> {
    parseOk(await this.request('disk stop', { timeoutMs: opts.timeoutMs ?? 15_000, signal: opts.signal }), 'disk stop');
  }

  /** Read back every record written (O_DIRECT) and check header, checksum and place. */
  async diskVerify(opts: CallOptions = {}): Promise<DiskVerify> {
    // Reads only what was written; a run that filled a large disk on slow storage needs a longer timeoutMs.
    return parseDiskVerify(await this.request('disk verify', { timeoutMs: opts.timeoutMs ?? 60_000, signal: opts.signal }));
  }

  /**
   * One TCP connect from inside the guest to ip:port, given up after `timeoutMs` (guest time). A
   * refused, timed-out or unreachable target is a result, not an error: this is how a run proves
   * what the guest cannot reach. An `open` result has made (and closed) a real connection: aimed at
   * a QEMU waiting with -incoming, that is an incoming migration that fails at once.
   */
  async tcpConnect(ip: string, port: number, opts: WaitOptions): Promise<TcpConnect> {
    checkConnectTarget(ip, port, opts.timeoutMs);
    const timeoutMs = Math.ceil(opts.timeoutMs);
    return parseConnect(await this.request(`connect ${ip} ${port} ${timeoutMs}`, { timeoutMs: timeoutMs + QUICK_MS, signal: opts.signal }));
  }

  /**
   * The guest-oom fault: the agent answers, then eats memory until the guest kernel's OOM killer
   * kills it. After this the agent is gone for good; the console shows the kernel's
   * "Out of memory: Killed process N (miglab-agent)" line and then MIGLAB-AGENT-EXIT status=137.
   */
  async startOom(opts: CallOptions = {}): Promise<void> {
    parseOomAck(await this.request('oom', { timeoutMs: opts.timeoutMs ?? QUICK_MS, signal: opts.signal }));
  }

  /** For tests of the checks: flip the payload of record `seq` on the disk (verify must see it). */
  async diskCorrupt(seq: number, opts: CallOptions = {}): Promise<void> {
    checkInt('disk record seq', seq, 0, Number.MAX_SAFE_INTEGER);
    parseOk(await this.request(`disk corrupt ${seq}`, { timeoutMs: opts.timeoutMs ?? 15_000, signal: opts.signal }), 'disk corrupt');
  }
}

function checkInt(what: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) throw new MiglabError('BAD_INPUT', `${what} must be a whole number from ${min} to ${max}, not ${v}`);
}
