// Where a batch samples, per lab: the host the guests' sources run on, the batch's QEMU processes
// there, and the migration link. The embedded lab is namespaces of this machine: its /proc is
// read here, the QEMUs are those in the lab's src or dst namespace, and the link is read on the
// lab's switch (src's and dst's ports at one instant). Hosts from a hosts file are other
// machines: the source host's /proc is read over SSH in one command a tick (proc-round.ts), the
// QEMUs are those whose command line names the lab's runDir there, and the link is the source's
// interface on its route to the migration address plus the destination's interface holding that
// address, each read on its own host. The memory guard and the stall verdict read the same host.
import { programArgv } from '../util/explained-command.js';
import { readFile, readdir, readlink, stat } from 'node:fs/promises';
import { cpus as osCpus, release } from 'node:os';
import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import type { Host } from '../host/host.js';
import type { Lab } from '../lab/index.js';
import { THIS_MACHINE, type LabMachine } from '../lab/machine.js';
import { parseProcStat as parseLabProcStat } from '../lab/proc.js';
import { MeasureError } from '../measure/errors.js';
import { openLinkReader, type LinkReader } from '../measure/link-reader.js';
import { withDeadline } from '../util/deadline.js';
import { localProcReader, parseMeminfo, parseProcStat, type LinkCounters, type ProcReader } from '../measure/host-sampler.js';
import { readProcRound, roundReader } from '../measure/proc-round.js';
import { escapeRegex } from '../util/regex.js';

const USER_HZ = 100;

/** The sampled host as the batch record and the memory guard see it. */
export interface SampledHost {
  /** Which host, in words: "this machine", "src (root@10.0.0.1)". */
  readonly where: string;
  readonly cpus: number;
  readonly memTotalMiB: number;
  readonly memAvailableMiB: number;
  readonly swapUsedMiB: number;
  readonly kernel: string;
}

/** One migration link end as read in one tick: its counters and when the read began and ended. */
export interface LinkRead {
  /** The namespace the link is in (the embedded lab's switch); absent on a host's own. */
  readonly netns?: string;
  readonly dev: string;
  /** Which end of the migration it is on hosts: src sends the stream, dst receives it. */
  readonly role?: 'src' | 'dst';
  /** performance.now() when the read began and ended: the counters are of some moment between. */
  readonly startMono: number;
  readonly endMono: number;
  readonly counters?: LinkCounters;
  readonly error?: string;
}

/** What one tick read: the files sampleHost asks for, the batch's QEMUs now, the link ends. */
export interface TickRead {
  readonly reader: ProcReader;
  /** pid -> `g3-source`. */
  readonly qemus: ReadonlyMap<number, string>;
  readonly links: readonly LinkRead[];
}

export interface BatchSampling {
  /** QEMUs of one migrating pair on the judged host: 2 when source and destination share it, else 1 (the memory guard counts them). */
  readonly qemusPerPair: 1 | 2;
  /** The host the batch is judged by: its CPUs, memory and kernel now. */
  host(signal?: AbortSignal): Promise<SampledHost>;
  /** One tick: the batch's QEMUs started at or after `sinceMs` (epoch), their files, the link. */
  read(sinceMs: number, signal?: AbortSignal): Promise<TickRead>;
  /** End what the reads keep open (idempotent). */
  close(): Promise<void>;
}

/** `g3-source` from a QEMU argv, or undefined when it is not a lab guest's QEMU. */
export function qemuGuestLabel(command: readonly string[]): string | undefined {
  const argv = programArgv(command);
  if (!/qemu-system-/.test(argv[0] ?? '')) return undefined;
  const i = argv.indexOf('-name');
  const m = i >= 0 ? /(?:^|,)guest=(g\d+-(?:source|destination))(?:,|$)/.exec(argv[i + 1] ?? '') : null;
  return m?.[1];
}

/** Boot time (epoch ms) from /proc/stat's btime. */
function bootTimeMs(procStat: string): number {
  const m = /^btime\s+(\d+)/m.exec(procStat);
  return m ? Number(m[1]) * 1000 : 0;
}

/** Whether a process (its /proc/PID/stat) started at or after `sinceMs`; one second of slack, btime is whole seconds. */
function startedSince(statText: string, bootMs: number, sinceMs: number): boolean {
  const startTicks = parseLabProcStat(statText)?.startTime ?? NaN;
  const startMs = bootMs + (startTicks / USER_HZ) * 1000;
  return Number.isFinite(startMs) && startMs >= sinceMs - 1000;
}

/** Inode numbers of named network namespaces (/run/netns/NAME), to match /proc/PID/ns/net. */
export async function netnsInodes(names: readonly string[]): Promise<Set<number>> {
  const out = new Set<number>();
  for (const n of names) out.add((await stat(`/run/netns/${n}`)).ino);
  return out;
}

/**
 * Lab guests' QEMU processes of this machine started at or after `sinceMs` (epoch), in one of
 * the namespaces `inNetns` (inode numbers; all namespaces when undefined): pid -> label.
 */
export async function findGuestQemus(sinceMs: number, opts: { bootMs?: number; inNetns?: ReadonlySet<number> } = {}): Promise<Map<number, string>> {
  const boot = opts.bootMs ?? bootTimeMs(await readFile('/proc/stat', 'utf8'));
  const out = new Map<number, string>();
  const entries = await readdir('/proc');
  await Promise.all(
    entries
      .filter((e) => /^\d+$/.test(e))
      .map(async (e) => {
        // A process may exit between the listing and the read: skip it, it is not sampled.
        const cmdline = await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '');
        const label = qemuGuestLabel(cmdline.split('\0'));
        if (!label) return;
        if (opts.inNetns) {
          const ns = await readlink(`/proc/${e}/ns/net`).catch(() => '');
          if (!opts.inNetns.has(Number(/\[(\d+)\]/.exec(ns)?.[1]))) return;
        }
        const stat = await readFile(`/proc/${e}/stat`, 'utf8').catch(() => '');
        if (startedSince(stat, boot, sinceMs)) out.set(Number(e), label);
      }),
  );
  return out;
}

/** CPUs (cpuN lines of /proc/stat), memory and kernel, from the texts of those files. */
function describeHost(where: string, procStat: string, meminfo: string, kernel: string): SampledHost {
  const m = parseMeminfo(meminfo);
  return {
    where,
    cpus: parseProcStat(procStat).filter((c) => c.cpu !== 'cpu').length,
    memTotalMiB: Math.round(m.memTotalKiB / 1024),
    memAvailableMiB: m.memAvailableKiB / 1024,
    swapUsedMiB: (m.swapTotalKiB - m.swapFreeKiB) / 1024,
    kernel: kernel.trim(),
  };
}

/** A tick's link reads may take this long (a busy host's `ip`, an SSH round trip). */
const READ_TIMEOUT_MS = 5000;

/** The embedded lab: this machine's /proc, QEMUs by namespace, the link on the lab's switch. */
export function embeddedSampling(lab: Lab, machine: LabMachine = THIS_MACHINE): BatchSampling {
  const sw = { netns: lab.names.switchNs, ports: [lab.names.switchPort.src, lab.names.switchPort.dst] };
  // One reader in the switch's namespace for the whole batch: a line a tick, not a command (link-reader.ts).
  let reader: Promise<LinkReader> | undefined;
  let ctx: Promise<{ bootMs: number; inNetns: Set<number> }> | undefined;
  return {
    // Both ends of every pair run on this machine.
    qemusPerPair: 2,
    async host() {
      const meminfo = await readFile('/proc/meminfo', 'utf8');
      const m = parseMeminfo(meminfo);
      return { where: 'this machine', cpus: osCpus().length, memTotalMiB: Math.round(m.memTotalKiB / 1024), memAvailableMiB: m.memAvailableKiB / 1024, swapUsedMiB: (m.swapTotalKiB - m.swapFreeKiB) / 1024, kernel: release() };
    },
    async read(sinceMs, signal) {
      ctx ??= (async () => ({ bootMs: bootTimeMs(await readFile('/proc/stat', 'utf8')), inNetns: await netnsInodes([lab.names.ns.src, lab.names.ns.dst]) }))();
      const { bootMs, inNetns } = await ctx;
      const [qemus, ports] = await Promise.all([
        findGuestQemus(sinceMs, { bootMs, inNetns }),
        (async () => {
          // Both ports in one answer: src's and dst's counters from the same instant.
          reader ??= openLinkReader(machine.netns('switch', sw.netns), sw.ports);
          const r = await reader;
          const startMono = performance.now();
          const counters = await withDeadline(`reading the switch's ports in ${sw.netns}`, r.read({ timeoutMs: READ_TIMEOUT_MS }), { timeoutMs: READ_TIMEOUT_MS, signal });
          return { startMono, endMono: performance.now(), counters };
        })(),
      ]);
      const links = sw.ports.map((dev): LinkRead => {
        const c = ports.counters.get(dev);
        return { netns: sw.netns, dev, startMono: ports.startMono, endMono: ports.endMono, ...(c && typeof c !== 'string' ? { counters: c } : { error: `${sw.netns}/${dev}: ${c ?? 'not read'}` }) };
      });
      return { reader: localProcReader, qemus, links };
    },
    async close() {
      const r = reader;
      reader = undefined;
      if (r) await (await r).close();
    },
  };
}

/** The files every tick reads on the sampled host (besides each QEMU's). */
const TICK_FILES = ['/proc/stat', '/proc/loadavg', '/proc/meminfo', '/proc/pressure/cpu', '/proc/pressure/memory', '/proc/pressure/io'];

const RouteSchema = z.array(z.object({ dev: z.string() })).min(1);
const AddrSchema = z.array(z.object({ ifname: z.string() }));

/** The interface `host` sends to `address` through (`ip route get`). */
async function routeDev(host: Host, address: string): Promise<string> {
  const r = await host.run(['ip', '-j', 'route', 'get', address], { timeoutMs: READ_TIMEOUT_MS });
  return RouteSchema.parse(JSON.parse(r.stdout))[0]!.dev;
}

/** The interface of `host` that holds `address`, or undefined. */
async function addressDev(host: Host, address: string): Promise<string | undefined> {
  const r = await host.run(['ip', '-j', 'addr', 'show', 'to', address], { timeoutMs: READ_TIMEOUT_MS, reject: false });
  if (r.exitCode !== 0) return undefined;
  return AddrSchema.parse(JSON.parse(r.stdout || '[]'))[0]?.ifname;
}


/**
 * The batch's QEMUs on a host, as a pgrep -f pattern (an extended regex of the command line):
 * QEMU's argv (a path or a bare name) naming the lab's runDir, where its monitor sockets are. A
 * build with its own libraries shows its loader first (ld-linux-x86-64.so.2 --library-path DIR
 * --argv0 WRAPPER PROGRAM ...: its wrapper exec'd that).
 */
export function qemuProcessPattern(runDir: string): string {
  return `^([^ ]*/ld-linux[^ ]* (--[^ ]+ [^ ]+ )*)?([^ ]*/)?qemu-system-[^ ]* .*${escapeRegex(`${runDir}/`)}`;
}

/**
 * Hosts from a hosts file: the source host's /proc in one SSH command a tick, the batch's QEMUs
 * by the lab's runDir in their command line, the link at both ends (each end's own host).
 */
export function hostsSampling(lab: Lab): BatchSampling {
  const { src, dst } = lab.hosts;
  const where = `the source host ${src.where}`;
  const processes = qemuProcessPattern(src.runDir);
  let devs: Promise<{ src: string; dst: string }> | undefined;
  const findDevs = async () => {
    // The migration goes to dst's migration address: src's interface on the route there, and
    // dst's interface holding it (or its route back to src, when the address is not its own: NAT).
    const [s, d] = await Promise.all([routeDev(src.host, dst.ip), addressDev(dst.host, dst.ip)]);
    return { src: s, dst: d ?? (await routeDev(dst.host, src.ip)) };
  };
  return {
    // Each tick is one command over the connection miglab keeps: nothing of its own to end.
    async close() {},
    // The destinations run on dst, unless the hosts file makes it the same machine.
    qemusPerPair: src.host === dst.host ? 2 : 1,
    async host(signal) {
      const r = await readProcRound(src.host, { files: ['/proc/stat', '/proc/meminfo', '/proc/sys/kernel/osrelease'] }, { timeoutMs: READ_TIMEOUT_MS, signal });
      const [st, mem, kernel] = ['/proc/stat', '/proc/meminfo', '/proc/sys/kernel/osrelease'].map((f) => r.files.get(f));
      if (st === undefined || mem === undefined) throw new MeasureError('proc', `cannot read /proc/stat or /proc/meminfo on ${src.where}`);
      return describeHost(where, st, mem, kernel ?? 'unknown');
    },
    async read(sinceMs, signal) {
      devs ??= findDevs();
      const dev = await devs;
      const opts = { timeoutMs: READ_TIMEOUT_MS, signal };
      const [round, dstRound] = await Promise.all([readProcRound(src.host, { files: TICK_FILES, processes, links: [dev.src] }, opts), readProcRound(dst.host, { files: [], links: [dev.dst] }, opts)]);
      const bootMs = bootTimeMs(round.files.get('/proc/stat') ?? '');
      const qemus = new Map<number, string>();
      const asked = new Set(TICK_FILES);
      for (const pid of round.pids) {
        const label = qemuGuestLabel((round.files.get(`/proc/${pid}/cmdline`) ?? '').split('\0'));
        const statText = round.files.get(`/proc/${pid}/stat`);
        if (!label || statText === undefined || !startedSince(statText, bootMs, sinceMs)) continue;
        qemus.set(pid, label);
        for (const f of ['stat', 'status', 'fd']) asked.add(`/proc/${pid}/${f}`);
      }
      const end = (r: typeof round, role: 'src' | 'dst', name: string): LinkRead => {
        const counters = r.links.get(name);
        return { dev: name, role, startMono: r.startMono, endMono: r.endMono, ...(counters ? { counters } : { error: `${name} on ${lab.hosts[role].where}: ${r.linkErrors.get(name) ?? 'not read'}` }) };
      };
      return { reader: roundReader(round, asked), qemus, links: [end(round, 'src', dev.src), end(dstRound, 'dst', dev.dst)] };
    },
  };
}
