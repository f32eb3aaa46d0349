// Pure parsers of the guest agent's UDP replies (protocol in vm-images/README.md). Each reply is
// one line of space-separated words, most of them `key=value`; a parser checks the leading words,
// reads the keys it needs and keeps numbers as numbers. Unknown extra keys are ignored, so the
// agent may add fields without breaking older hosts.
import { MiglabError } from '../errors.js';

export interface Pong {
  readonly token: string;
  /** The guest's CLOCK_MONOTONIC when it answered. */
  readonly guestMonoNs: bigint;
  /** The agent's heartbeat sequence number at that moment. */
  readonly hbSeq: number;
}

export interface AgentInfo {
  readonly bootId: string;
  readonly hbSeq: number;
  /** The address the guest really has ('none' without network). */
  readonly ip: string;
  readonly uptimeMs: number;
  readonly memTotalKiB: number;
  /** The kernel's MemAvailable: what a workload could still get without the OOM killer (newer agents). */
  readonly memAvailableKiB?: number;
  /** The address the agent's UDP socket is bound to: the lab address, or 0.0.0.0 without one (newer agents). */
  readonly udpBind?: string;
}

/** What a TCP connect attempt found, in the words the agent and miglab-probe print. */
export const TCP_CONNECT_RESULTS = ['open', 'refused', 'timeout', 'unreachable'] as const;
export type TcpConnectResult = (typeof TCP_CONNECT_RESULTS)[number];

export interface TcpConnect {
  /**
   * open: the handshake completed; refused: a RST came back (nothing listens); timeout: no answer
   * within the limit; unreachable: no route, or ARP/ICMP said the host cannot be reached.
   */
  readonly result: TcpConnectResult;
  /** How long the attempt took, by the clock of whoever made it (the guest's for the agent). */
  readonly elapsedMs: number;
}

export interface CpuBench {
  readonly ops: number;
  readonly elapsedMs: number;
  readonly opsPerS: number;
}

export interface MemBench {
  /** Bytes written (the memset and the copy). */
  readonly bytes: number;
  readonly elapsedMs: number;
  readonly bandwidthMiBps: number;
}

export interface DiskBench {
  /** The guest's block device: vda (virtio-blk) or sda (IDE). */
  readonly device: string;
  readonly writeMiBps: number;
  readonly readMiBps: number;
  readonly bytes: number;
  readonly writeMs?: number;
  readonly readMs?: number;
  /** 512-byte sectors that read back different from what was written (0 unless the disk is broken). */
  readonly badSectors?: number;
}

export type DirtyPattern = 'seq' | 'random';

export interface DirtyStatus {
  readonly wssMiB: number;
  readonly targetMiBps: number;
  readonly achievedMiBps: number;
  readonly pagesWritten: number;
  readonly running: boolean;
}

export interface DirtyVerify {
  readonly pages: number;
  readonly bad: number;
  /** Index of the first bad page, or undefined when none is bad. */
  readonly firstBad: number | undefined;
}

/** A reply that does not have the shape its request promises. */
export class AgentReplyError extends MiglabError {
  readonly reply: string;
  constructor(what: string, reply: string, why: string) {
    super('COMMAND_FAILED', `unexpected reply to ${what}: ${why}: "${reply.slice(0, 200)}"`, { context: { reply } });
    this.name = 'AgentReplyError';
    this.reply = reply;
  }
}

/** `key=value` words after the `lead` words. Throws unless the reply starts with `lead`. */
export function parseFields(reply: string, lead: readonly string[]): Map<string, string> {
  const words = reply.trim().split(/\s+/);
  const what = lead.join(' ');
  for (let i = 0; i < lead.length; i++) {
    if (words[i] !== lead[i]) throw new AgentReplyError(what, reply, `expected it to start with "${what}"`);
  }
  const fields = new Map<string, string>();
  for (const w of words.slice(lead.length)) {
    const eq = w.indexOf('=');
    if (eq > 0) fields.set(w.slice(0, eq), w.slice(eq + 1));
  }
  return fields;
}

function num(fields: Map<string, string>, key: string, what: string, reply: string): number {
  const raw = fields.get(key);
  const v = raw === undefined || raw === '' ? NaN : Number(raw);
  if (!Number.isFinite(v)) throw new AgentReplyError(what, reply, raw === undefined ? `no ${key}=` : `${key}=${raw} is not a number`);
  return v;
}

function optNum(fields: Map<string, string>, key: string, what: string, reply: string): number | undefined {
  return fields.has(key) ? num(fields, key, what, reply) : undefined;
}

function str(fields: Map<string, string>, key: string, what: string, reply: string): string {
  const v = fields.get(key);
  if (!v) throw new AgentReplyError(what, reply, `no ${key}=`);
  return v;
}

/** The agent's error replies start with `error`; the rest is its reason. */
export function agentErrorReason(reply: string): string | undefined {
  const t = reply.trim();
  if (t === 'error') return '';
  return t.startsWith('error ') ? t.slice(6) : undefined;
}

export function parsePong(reply: string): Pong {
  const w = reply.trim().split(/\s+/);
  if (w.length < 4 || w[0] !== 'pong' || !/^\d+$/.test(w[2]!) || !/^\d+$/.test(w[3]!)) {
    throw new AgentReplyError('ping', reply, 'expected "pong <token> <mono_ns> <hb_seq>"');
  }
  return { token: w[1]!, guestMonoNs: BigInt(w[2]!), hbSeq: Number(w[3]!) };
}

export function parseInfo(reply: string): AgentInfo {
  const what = 'info';
  const f = parseFields(reply, ['info']);
  const memAvailableKiB = optNum(f, 'mem_available_kib', what, reply);
  const udpBind = f.get('udp_bind');
  return {
    bootId: str(f, 'boot', what, reply),
    hbSeq: num(f, 'seq', what, reply),
    ip: str(f, 'ip', what, reply),
    uptimeMs: num(f, 'uptime_ms', what, reply),
    memTotalKiB: num(f, 'mem_total_kib', what, reply),
    ...(memAvailableKiB === undefined ? {} : { memAvailableKiB }),
    ...(udpBind ? { udpBind } : {}),
  };
}

function connectWords(what: string, reply: string, words: readonly string[]): TcpConnect {
  const [result, ms] = words;
  if (words.length !== 2 || !(TCP_CONNECT_RESULTS as readonly string[]).includes(result ?? '') || !/^\d+(\.\d+)?$/.test(ms ?? '')) {
    throw new AgentReplyError(what, reply, `expected "${TCP_CONNECT_RESULTS.join('|')} <ms>"`);
  }
  return { result: result as TcpConnectResult, elapsedMs: Number(ms) };
}

/** The agent's answer to `connect IP PORT [TIMEOUT_MS]`: `ok connect <result> <ms>`. */
export function parseConnect(reply: string): TcpConnect {
  const w = reply.trim().split(/\s+/);
  if (w[0] !== 'ok' || w[1] !== 'connect') throw new AgentReplyError('connect', reply, 'expected it to start with "ok connect"');
  return connectWords('connect', reply, w.slice(2));
}

/** The line `miglab-probe connect IP PORT TIMEOUT_MS` prints: `<result> <ms>`. */
export function parseProbeConnect(line: string): TcpConnect {
  return connectWords('miglab-probe connect', line, line.trim().split(/\s+/));
}

/** The agent's answer to `oom`, sent before it starts eating memory. */
export function parseOomAck(reply: string): void {
  if (reply.trim() !== 'ok oom') throw new AgentReplyError('oom', reply, 'expected "ok oom"');
}

export function parseCpuBench(reply: string): CpuBench {
  const what = 'bench cpu';
  const f = parseFields(reply, ['bench', 'cpu']);
  return { ops: num(f, 'ops', what, reply), elapsedMs: num(f, 'ms', what, reply), opsPerS: num(f, 'ops_per_s', what, reply) };
}

export function parseMemBench(reply: string): MemBench {
  const what = 'bench mem';
  const f = parseFields(reply, ['bench', 'mem']);
  return { bytes: num(f, 'bytes', what, reply), elapsedMs: num(f, 'ms', what, reply), bandwidthMiBps: num(f, 'MiBps', what, reply) };
}

export function parseDiskBench(reply: string): DiskBench {
  const what = 'bench disk';
  const f = parseFields(reply, ['bench', 'disk']);
  const r: DiskBench = {
    device: str(f, 'dev', what, reply),
    writeMiBps: num(f, 'write_MiBps', what, reply),
    readMiBps: num(f, 'read_MiBps', what, reply),
    bytes: num(f, 'bytes', what, reply),
  };
  const writeMs = optNum(f, 'write_ms', what, reply);
  const readMs = optNum(f, 'read_ms', what, reply);
  const badSectors = optNum(f, 'bad_sectors', what, reply);
  return {
    ...r,
    ...(writeMs === undefined ? {} : { writeMs }),
    ...(readMs === undefined ? {} : { readMs }),
    ...(badSectors === undefined ? {} : { badSectors }),
  };
}

export function parseDirtyStatus(reply: string): DirtyStatus {
  const what = 'dirty status';
  const f = parseFields(reply, ['dirty']);
  const running = f.get('running');
  if (running !== '0' && running !== '1') throw new AgentReplyError(what, reply, 'running= is not 0 or 1');
  return {
    wssMiB: num(f, 'wss_mib', what, reply),
    targetMiBps: num(f, 'target_mibps', what, reply),
    achievedMiBps: num(f, 'achieved_mibps', what, reply),
    pagesWritten: num(f, 'pages_written', what, reply),
    running: running === '1',
  };
}

export function parseDirtyVerify(reply: string): DirtyVerify {
  const what = 'dirty verify';
  const f = parseFields(reply, ['verify']);
  const firstBad = num(f, 'first_bad', what, reply);
  return { pages: num(f, 'pages', what, reply), bad: num(f, 'bad', what, reply), firstBad: firstBad < 0 ? undefined : firstBad };
}

export function parseOk(reply: string, what: string): void {
  if (reply.trim() !== 'ok') throw new AgentReplyError(what, reply, 'expected "ok"');
}

export interface CpuStatus {
  /** xorshift64* steps since `cpu start`. */
  readonly ops: number;
  /** Guest time since start (to stop, once stopped). */
  readonly elapsedMs: number;
  /** ops over elapsedMs: the average since start. */
  readonly opsPerS: number;
  readonly running: boolean;
}

export interface DiskStatus {
  /** Seq of the last record on the disk (fdatasync'd), -1 before the first. */
  readonly seq: number;
  readonly records: number;
  readonly bytes: number;
  readonly running: boolean;
  /** The writer reached the end of the disk and stopped. */
  readonly full: boolean;
  /** The writer stopped on an I/O error (named in `error`). */
  readonly failed?: boolean;
  readonly error?: string;
  readonly device?: string;
  readonly recordBytes?: number;
  readonly targetKiBps?: number;
  /** Bytes on the disk over the guest time since start: the rate really achieved. */
  readonly achievedKiBps?: number;
  readonly elapsedMs?: number;
  readonly diskBytes?: number;
}

export interface DiskVerify {
  readonly records: number;
  /** Records whose header or checksum is wrong. */
  readonly bad: number;
  /** Seq (slot) of the first bad record, or undefined when none is bad. */
  readonly firstBad: number | undefined;
  /** Well-formed records in the wrong slot (the sequence is broken). */
  readonly gaps: number;
  /** Highest seq among good records, -1 when there is none. */
  readonly lastSeq: number;
  /** Good records stamped with an earlier guest time than the one before. */
  readonly backwards?: number;
}

function flag(fields: Map<string, string>, key: string, what: string, reply: string): boolean {
  const v = fields.get(key);
  if (v !== '0' && v !== '1') throw new AgentReplyError(what, reply, `${key}= is not 0 or 1`);
  return v === '1';
}

export function parseCpuStatus(reply: string): CpuStatus {
  const what = 'cpu status';
  const f = parseFields(reply, ['cpu']);
  return {
    ops: num(f, 'ops', what, reply),
    elapsedMs: num(f, 'ms', what, reply),
    opsPerS: num(f, 'ops_per_s', what, reply),
    running: flag(f, 'running', what, reply),
  };
}

export function parseDiskStatus(reply: string): DiskStatus {
  const what = 'disk status';
  const f = parseFields(reply, ['disk']);
  const base: DiskStatus = {
    seq: num(f, 'seq', what, reply),
    records: num(f, 'records', what, reply),
    bytes: num(f, 'bytes', what, reply),
    running: flag(f, 'running', what, reply),
    full: flag(f, 'full', what, reply),
  };
  const dev = f.get('dev');
  const error = f.get('error');
  const extra = {
    failed: f.has('failed') ? flag(f, 'failed', what, reply) : undefined,
    error: error === undefined || error === 'none' ? undefined : error,
    device: dev === undefined || dev === 'none' ? undefined : dev,
    recordBytes: optNum(f, 'record_bytes', what, reply),
    targetKiBps: optNum(f, 'target_kibps', what, reply),
    achievedKiBps: optNum(f, 'achieved_kibps', what, reply),
    elapsedMs: optNum(f, 'ms', what, reply),
    diskBytes: optNum(f, 'disk_bytes', what, reply),
  };
  return { ...base, ...Object.fromEntries(Object.entries(extra).filter(([, v]) => v !== undefined)) };
}

export function parseDiskVerify(reply: string): DiskVerify {
  const what = 'disk verify';
  const f = parseFields(reply, ['disk', 'verify']);
  const firstBad = num(f, 'first_bad', what, reply);
  const backwards = optNum(f, 'backwards', what, reply);
  return {
    records: num(f, 'records', what, reply),
    bad: num(f, 'bad', what, reply),
    firstBad: firstBad < 0 ? undefined : firstBad,
    gaps: num(f, 'gaps', what, reply),
    lastSeq: num(f, 'last_seq', what, reply),
    ...(backwards === undefined ? {} : { backwards }),
  };
}
