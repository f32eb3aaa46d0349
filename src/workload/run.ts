// Executes a WorkloadSpec (spec.ts) through the guest agent: start, status (with the rate really
// achieved), stop, and the integrity check that follows a migration (every dirty page, every disk
// record). The net workload is an iperf3 client in the agent's namespace (the lab's client host)
// against the guest's own iperf3 server (machine spec `iperfServer: true`); its process is owned
// here, keyed by the AgentClient, until stopWorkload. qemuImgCheck checks the data disk's image
// once QEMU has exited. The migration engine calls these around a run.
import { MiglabError } from '../errors.js';
import type { AgentClient, CallOptions } from '../guest/agent-client.js';
import type { Host, HostProcess, RunResult } from '../host/host.js';
import { CommandError } from '../host/local.js';
import { DEFAULT_IPERF_PORT, IperfError, iperfClientArgv, parseIperfJson, type IperfResult } from '../measure/iperf.js';
import { sleep } from '../util/deadline.js';
import type { WorkloadKind, WorkloadSpec } from './spec.js';

export interface WorkloadOptions extends CallOptions {
  /** net: how long the iperf3 client runs at most (the run's duration); stopWorkload ends it sooner. */
  readonly durationS?: number;
  /** net: the guest's iperf3 port. */
  readonly iperfPort?: number;
  /** net: append iperf3's output here. */
  readonly logFile?: string;
  /** net: that file cannot be written. */
  readonly onLogError?: (err: Error) => void;
}

/** What a workload is doing now, from the guest's own counters (or iperf3's, for net). */
export interface WorkloadStatus {
  readonly kind: WorkloadKind;
  readonly running: boolean;
  /** dirty: pages written x 4 KiB over the guest time since start; disk: bytes on disk over time. */
  readonly achievedMiBps?: number;
  readonly targetMiBps?: number;
  readonly pagesWritten?: number;
  /** cpu: xorshift64* steps per second, averaged since start. */
  readonly opsPerS?: number;
  readonly ops?: number;
  /** disk: seq of the last record on the disk (-1 before the first). */
  readonly diskSeq?: number;
  readonly diskRecords?: number;
  readonly achievedKiBps?: number;
  readonly targetKiBps?: number;
  /** disk: the writer reached the end of the disk and stopped. */
  readonly diskFull?: boolean;
  /** disk: the writer stopped on an I/O error. */
  readonly diskError?: string;
  /** net: iperf3's result, once its client has ended. */
  readonly net?: IperfResult;
  /**
   * net: bits per second, once its client has ended: what arrived when iperf3 ran its course;
   * when stopped early (its usual end here) iperf3 has only its own side, so the client's interval
   * figures (sent, or received with reverse).
   */
  readonly netBps?: number;
}

export interface IntegrityResult {
  /** What was checked: the dirty workload's pages, the disk workload's records, or nothing. */
  readonly checked: 'memory' | 'disk' | 'none';
  readonly ok: boolean;
  /** One line for reports and failure messages. */
  readonly detail: string;
  readonly pages?: number;
  readonly badPages?: number;
  readonly firstBadPage?: number;
  readonly records?: number;
  readonly badRecords?: number;
  readonly firstBadRecord?: number;
  readonly gaps?: number;
  readonly lastSeq?: number;
  /** disk: good records stamped earlier (guest clock) than the one before. */
  readonly backwards?: number;
}

interface NetRun {
  readonly proc: HostProcess;
  readonly argv: readonly string[];
  readonly chunks: Buffer[];
  result?: IperfResult;
}

// One iperf3 client per agent (per guest); the handle lives here from start to stop.
const netRuns = new WeakMap<AgentClient, NetRun>();
// iperf3 connects within this under TCG; a refused or unreachable server makes it exit sooner.
const NET_SETTLE_MS = 700;
const DEFAULT_NET_DURATION_S = 3600;

/**
 * How long a started workload runs before the migration starts. Every kind is at its rate when its
 * start returns (dirty and disk writers are paced from their start in 10 ms slices, cpu spins at
 * once, net's start waits until iperf3 has connected), so this waits only for a window over which
 * the status recorded before the migration (run.json workloadBefore) measures the rate achieved:
 * 20 of the writers' slices. It was 1 s: 0.8 s of every busy run, and of every busy guest's turn in
 * a batch, spent waiting for nothing.
 */
export const WORKLOAD_SETTLE_MS = 200;

export async function startWorkload(agent: AgentClient, spec: WorkloadSpec, opts: WorkloadOptions = {}): Promise<void> {
  const call = { timeoutMs: opts.timeoutMs, signal: opts.signal };
  switch (spec.kind) {
    case 'idle':
      return;
    case 'dirty':
      return agent.dirtyStart({ wssMiB: spec.wssMiB, rateMiBps: spec.rateMiBps, pattern: spec.pattern === 'sequential' ? 'seq' : 'random' }, call);
    case 'cpu':
      return agent.cpuStart(call);
    case 'disk':
      return agent.diskStart({ rateKiBps: spec.rateKiBps, recordBytes: spec.recordBytes }, call);
    case 'net':
      return startNet(agent, spec, opts);
  }
}

async function startNet(agent: AgentClient, spec: Extract<WorkloadSpec, { kind: 'net' }>, opts: WorkloadOptions): Promise<void> {
  if (netRuns.has(agent)) throw new MiglabError('BAD_INPUT', `a net workload to ${agent.guestIp} is already running; stop it first`);
  const argv = iperfClientArgv({
    server: agent.guestIp,
    port: opts.iperfPort ?? DEFAULT_IPERF_PORT,
    durationS: opts.durationS ?? DEFAULT_NET_DURATION_S,
    reverse: spec.reverse,
    bitrate: spec.bitrate,
  });
  const proc = agent.host.spawn(argv, { logFile: opts.logFile, onLogError: opts.onLogError });
  const run: NetRun = { proc, argv, chunks: [] };
  proc.stdout.on('data', (c: Buffer) => run.chunks.push(c));
  netRuns.set(agent, run);
  try {
    await sleep(NET_SETTLE_MS, opts.signal);
  } catch (err) {
    await finishNet(agent, run);
    throw err;
  }
  if (proc.hasExited) {
    // It ended at once: no server in the guest (iperfServer: false?) or no route. Say what iperf3 said.
    const r = await finishNet(agent, run);
    throw new IperfError(`iperf3 client on ${agent.host.name} to ${agent.guestIp} ended at once: ${r.error ?? 'no error given'}`, {
      iperfMessage: r.error,
      context: { host: agent.host.name, argv },
    });
  }
}

/** Stop the client (SIGTERM: iperf3 still prints its JSON, with what it measured so far). */
async function finishNet(agent: AgentClient, run: NetRun): Promise<IperfResult> {
  if (run.result) return run.result;
  await run.proc.stop(3000);
  netRuns.delete(agent);
  const text = Buffer.concat(run.chunks).toString('utf8');
  if (text.trim() === '') {
    throw new IperfError(`iperf3 client on ${agent.host.name} to ${agent.guestIp} printed nothing: ${run.proc.tail(5) || 'no output'}`, {
      context: { host: agent.host.name, argv: run.argv },
    });
  }
  run.result = parseIperfJson(text);
  return run.result;
}

/** iperf3 says this when stopped by a signal; its figures are still valid up to then. */
const IPERF_INTERRUPTED = /interrupt/i;

/** Throughput of an iperf3 run that may have been stopped early (its summary's receiver side is then 0). */
export function netBitsPerS(r: IperfResult): number {
  if (r.error === undefined || r.intervals.length === 0) return r.summary.receivedBps;
  const first = r.intervals[0]!;
  const last = r.intervals[r.intervals.length - 1]!;
  const seconds = last.endS - first.startS;
  const bytes = r.intervals.reduce((sum, i) => sum + i.bytes, 0);
  return seconds > 0 ? (bytes * 8) / seconds : 0;
}

export async function workloadStatus(agent: AgentClient, spec: WorkloadSpec, opts: CallOptions = {}): Promise<WorkloadStatus> {
  switch (spec.kind) {
    case 'idle':
      return { kind: 'idle', running: false };
    case 'dirty': {
      const s = await agent.dirtyStatus(opts);
      return { kind: 'dirty', running: s.running, achievedMiBps: s.achievedMiBps, targetMiBps: s.targetMiBps, pagesWritten: s.pagesWritten };
    }
    case 'cpu': {
      const s = await agent.cpuStatus(opts);
      return { kind: 'cpu', running: s.running, opsPerS: s.opsPerS, ops: s.ops };
    }
    case 'disk': {
      const s = await agent.diskStatus(opts);
      return {
        kind: 'disk',
        running: s.running,
        diskSeq: s.seq,
        diskRecords: s.records,
        diskFull: s.full,
        ...(s.achievedKiBps === undefined ? {} : { achievedKiBps: s.achievedKiBps, achievedMiBps: s.achievedKiBps / 1024 }),
        ...(s.targetKiBps === undefined ? {} : { targetKiBps: s.targetKiBps }),
        ...(s.error === undefined ? {} : { diskError: s.error }),
      };
    }
    case 'net': {
      const run = netRuns.get(agent);
      return { kind: 'net', running: run !== undefined && !run.proc.hasExited };
    }
  }
}

/** Stop the workload and return its final status (for net: iperf3's figures). Harmless when stopped. */
export async function stopWorkload(agent: AgentClient, spec: WorkloadSpec, opts: CallOptions = {}): Promise<WorkloadStatus> {
  switch (spec.kind) {
    case 'idle':
      break;
    case 'dirty':
      await agent.dirtyStop(opts);
      break;
    case 'cpu':
      await agent.cpuStop(opts);
      break;
    case 'disk':
      await agent.diskStop(opts);
      break;
    case 'net': {
      const run = netRuns.get(agent);
      if (!run) return { kind: 'net', running: false };
      const r = await finishNet(agent, run);
      if (r.error !== undefined && !IPERF_INTERRUPTED.test(r.error)) {
        throw new IperfError(`iperf3 client on ${agent.host.name} to ${agent.guestIp} failed: ${r.error}`, { iperfMessage: r.error, context: { argv: run.argv } });
      }
      return { kind: 'net', running: false, net: r, netBps: netBitsPerS(r) };
    }
  }
  return workloadStatus(agent, spec, opts);
}

/**
 * Check what the workload left in the guest: every page of the dirty working set against the
 * generation last written to it, or every disk record from the start of the disk to the last
 * written (header, checksum, place in the sequence). Other workloads leave nothing to check.
 */
export async function verifyIntegrity(agent: AgentClient, spec: WorkloadSpec, opts: CallOptions = {}): Promise<IntegrityResult> {
  if (spec.kind === 'dirty') {
    const v = await agent.dirtyVerify(opts);
    const ok = v.bad === 0;
    return {
      checked: 'memory',
      ok,
      detail: ok ? `all ${v.pages} pages of the working set hold their last write` : `${v.bad} of ${v.pages} pages are wrong, the first is page ${v.firstBad}`,
      pages: v.pages,
      badPages: v.bad,
      ...(v.firstBad === undefined ? {} : { firstBadPage: v.firstBad }),
    };
  }
  if (spec.kind === 'disk') {
    const v = await agent.diskVerify(opts);
    const backwards = v.backwards ?? 0;
    const complete = v.records === 0 ? v.lastSeq === -1 : v.lastSeq === v.records - 1;
    const ok = v.bad === 0 && v.gaps === 0 && backwards === 0 && complete;
    const problems = [
      v.bad > 0 ? `${v.bad} bad (first at seq ${v.firstBad})` : undefined,
      v.gaps > 0 ? `${v.gaps} out of sequence` : undefined,
      backwards > 0 ? `${backwards} with a guest time earlier than the record before` : undefined,
      complete ? undefined : `last good seq ${v.lastSeq}, expected ${v.records - 1}`,
    ].filter(Boolean);
    return {
      checked: 'disk',
      ok,
      detail: ok ? `all ${v.records} records (seq 0..${v.lastSeq}) are intact and in sequence` : `of ${v.records} records: ${problems.join(', ')}`,
      records: v.records,
      badRecords: v.bad,
      ...(v.firstBad === undefined ? {} : { firstBadRecord: v.firstBad }),
      gaps: v.gaps,
      lastSeq: v.lastSeq,
      backwards,
    };
  }
  return { checked: 'none', ok: true, detail: `a ${spec.kind} workload leaves nothing in the guest to verify` };
}

export interface QemuImgCheck {
  /** Exit code 0: no errors, no leaks. */
  readonly ok: boolean;
  readonly exitCode: number;
  /** What the exit code means (qemu-img(1)). */
  readonly meaning: string;
  readonly output: string;
  readonly argv: readonly string[];
}

const QEMU_IMG_CHECK_EXIT: Record<number, string> = {
  0: 'clean',
  1: 'the check could not be completed',
  2: 'the image is corrupted',
  3: 'clusters leaked (harmless, wastes space)',
  63: 'the format does not support checks',
};

/** `qemu-img check -f qcow2 PATH` on `host`. Run it once QEMU has exited (the image must not be open). */
export async function qemuImgCheck(host: Host, pathOrUrl: string, opts: CallOptions = {}): Promise<QemuImgCheck> {
  const argv = qemuImgCheckArgv(pathOrUrl);
  return checkOutcome(argv, await host.run(argv, { reject: false, timeoutMs: opts.timeoutMs ?? 60_000, signal: opts.signal }));
}

/**
 * A data disk checked (as qemuImgCheck) and then removed, as one series on its host: whatever the
 * check found, the disk goes; a removal that failed is thrown as the command's error.
 */
export async function checkThenRemoveDisk(host: Host, path: string, opts: CallOptions = {}): Promise<QemuImgCheck> {
  const argv = qemuImgCheckArgv(path);
  const [check, removal] = await host.runSeries([argv, ['rm', '-f', '--', path]], { keepGoing: true, reject: false, timeoutMs: (opts.timeoutMs ?? 60_000) + 10_000, signal: opts.signal });
  if (removal && removal.exitCode !== 0) throw new CommandError(host.name, removal);
  return checkOutcome(argv, check!);
}

function qemuImgCheckArgv(pathOrUrl: string): string[] {
  return ['qemu-img', 'check', '-f', 'qcow2', pathOrUrl];
}

function checkOutcome(argv: string[], r: RunResult): QemuImgCheck {
  const output = [r.stdout.trim(), r.stderr.trim()].filter(Boolean).join('\n');
  return { ok: r.exitCode === 0, exitCode: r.exitCode, meaning: QEMU_IMG_CHECK_EXIT[r.exitCode] ?? `exit code ${r.exitCode}`, output, argv };
}
