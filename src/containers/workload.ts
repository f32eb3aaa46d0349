// The program that runs as a container (vm-images/workload/miglab-workload.c), seen from the
// host: its modes, the compact form a CLI takes (`fibonacci`, `mem:64M@16M/s`), its command line
// with a reason per argument, and parsers of its UDP replies. The program's header comment has
// the protocol; src/containers/verify.ts recomputes its sequences and chain hash.
import { join } from 'node:path';
import { z } from 'zod';
import { UsageError } from '../errors.js';
import { findRepoDir } from '../util/repo.js';
import { parseFields } from '../guest/replies.js';
import type { ArgGroup, ExplainedCommand } from '../util/explained-command.js';
import { objectOrCompact } from '../util/validate.js';
import { parseWssAtRate, splitCompactForm } from '../workload/spec.js';

export const WORKLOAD_MODES = ['counter', 'natural', 'fibonacci', 'prime', 'mem'] as const;
export type WorkloadMode = (typeof WORKLOAD_MODES)[number];

/** Where the image puts the program in a container-host guest. */
export const WORKLOAD_BINARY = '/bin/miglab-workload';
/** Static, as the agent: the guest has no libc of its own for it, and the rootfs stays small. */
export const WORKLOAD_CFLAGS: readonly string[] = ['-static', '-O2', '-Wall', '-Wextra', '-Werror', '-pthread'];

export function workloadSourcePath(repoDir = findRepoDir()): string {
  return join(repoDir, 'vm-images', 'workload', 'miglab-workload.c');
}

/** The program's own default period per mode (ms): the counter of the reference report ticks once a second. */
export const DEFAULT_PERIOD_MS: Readonly<Record<WorkloadMode, number>> = { counter: 1000, natural: 10, fibonacci: 10, prime: 10, mem: 10 };

/** The program's limits on sizes and rates (MAX_MIB in the C source). */
const MAX_MIB = 1 << 20;

const SequenceSchema = z.object({ mode: z.enum(['counter', 'natural', 'fibonacci', 'prime']) }).strict();
const MemSchema = z
  .object({
    mode: z.literal('mem'),
    wssMiB: z.number().int().min(1).max(MAX_MIB),
    /** 0: the working set is written once and then only held. */
    rateMiBps: z.number().int().min(0).max(MAX_MIB),
  })
  .strict();
export const ContainerWorkloadObjectSchema = z.discriminatedUnion('mode', [SequenceSchema, MemSchema]);
/** A container workload as an object or in the compact form (`prime`, `mem:64M@16M/s`). */
export const ContainerWorkloadSchema = objectOrCompact(ContainerWorkloadObjectSchema, (text) => parseWorkloadSpec(text));

export type ContainerWorkload = Readonly<z.infer<typeof ContainerWorkloadObjectSchema>>;

const FORMS = 'counter, natural, fibonacci, prime or mem:<working set>@<write rate> (e.g. mem:64M@16M/s)';

/** The compact form: `counter`, `natural`, `fibonacci`, `prime`, `mem:64M@16M/s`. */
export function parseWorkloadSpec(text: string): ContainerWorkload {
  const { t, kind: mode, arg } = splitCompactForm(text);
  if (mode === 'mem') {
    const hint = 'write mem:<working set>@<write rate>, e.g. mem:64M@16M/s (rate 0: written once, then held)';
    if (!arg) throw new UsageError(`workload "${t}" lacks its working set and write rate`, hint);
    const { wssMiB, rateMiBps } = parseWssAtRate(t, arg, hint);
    const r = MemSchema.safeParse({ mode, wssMiB, rateMiBps });
    if (!r.success) throw new UsageError(`workload "${t}": the ${r.error.issues[0]?.path[0] === 'wssMiB' ? 'working set' : 'write rate'} must be at most ${MAX_MIB} MiB${r.error.issues[0]?.path[0] === 'wssMiB' ? '' : '/s'}`, hint);
    return r.data;
  }
  const seq = SequenceSchema.safeParse({ mode });
  if (!seq.success) throw new UsageError(`unknown container workload "${t}"`, `use one of ${FORMS}`);
  if (arg !== undefined) throw new UsageError(`workload "${t}": ${mode} takes no options`, `write just "${mode}"`);
  return seq.data;
}

/** The compact form of a workload; parseWorkloadSpec(formatWorkloadSpec(w)) gives w back. */
export function formatWorkloadSpec(w: ContainerWorkload): string {
  return w.mode === 'mem' ? `mem:${w.wssMiB}M@${w.rateMiBps}M/s` : w.mode;
}

export interface WorkloadLaunch {
  readonly workload: ContainerWorkload;
  /** The UDP port of its service (ping, state, verify). */
  readonly port: number;
  /** The container's own service address (IP_FREEBIND: it need not be on the guest yet); default all addresses. */
  readonly bind?: string;
  /**
   * The sequence log, e.g. on the shared checkpoint export: a new file per container, since the
   * program appends and verifyContinuity reads the log from index 0.
   */
  readonly logPath?: string;
  /** Default: the mode's own (DEFAULT_PERIOD_MS). */
  readonly periodMs?: number;
  /** Resident padding in MiB, touched once at start. */
  readonly rssMiB?: number;
  /** Default WORKLOAD_BINARY. */
  readonly binary?: string;
}

const MODE_WHY: Readonly<Record<WorkloadMode, string>> = {
  counter: "the reference report's counter: v_i = i, one value a second unless --period-ms says otherwise",
  natural: 'the natural numbers v_i = i, a generator whose every value the host can recompute',
  fibonacci: 'Fibonacci numbers mod 2^64 (v_0 = 0, v_1 = 1): each value depends on the two before it, so a lost update shows',
  prime: 'the i-th prime by trial division: the work per value grows, as a CPU-bound container',
  mem: 'a tick counter that writes into a working set at a set rate: the memory a dump has to copy, and how fast it changes',
};

/** The program's command line, each argument with the reason it is there. */
export function workloadArgv(spec: WorkloadLaunch): ExplainedCommand {
  const g: ArgGroup[] = [];
  const add = (why: string, ...args: string[]) => g.push({ args, why });
  const w = spec.workload;
  add('the container workload: a static program that emits a checkable sequence and answers over UDP', spec.binary ?? WORKLOAD_BINARY);
  add(MODE_WHY[w.mode], w.mode);
  add('its UDP service: ping (the downtime probe), state (the continuity checks) and verify', '--port', String(spec.port));
  if (spec.bind !== undefined) {
    add("the container's own service address, which moves with it between guests (bound with IP_FREEBIND, so it need not be on the guest yet)", '--bind', spec.bind);
  }
  if (spec.logPath !== undefined) {
    add('each value as one line "i v", one write(2) per line: the log shows a gap, a repeat or a torn line after a restore', '--log', spec.logPath);
  }
  if (spec.periodMs !== undefined) add(`one value every ${spec.periodMs} ms instead of the mode's ${DEFAULT_PERIOD_MS[w.mode]} ms`, '--period-ms', String(spec.periodMs));
  if (spec.rssMiB !== undefined && spec.rssMiB > 0) {
    add(`${spec.rssMiB} MiB of resident memory touched once at start, as a Go runtime would hold: what each container costs its host`, '--rss-mib', String(spec.rssMiB));
  }
  if (w.mode === 'mem') {
    add(`a working set of ${w.wssMiB} MiB, every page tagged so \`verify\` finds a lost write`, '--wss-mib', String(w.wssMiB));
    add(
      w.rateMiBps === 0 ? 'the working set is written once and then held' : `${w.rateMiBps} MiB/s written into it, page by page: the pages a pre-dump round leaves dirty`,
      '--rate-mibps',
      String(w.rateMiBps),
    );
  }
  return { argv: g.flatMap((x) => x.args), explained: g };
}

/** The program's `state` reply. Numbers as numbers; v as a bigint (Fibonacci mod 2^64 passes 2^53). */
export interface WorkloadState {
  readonly mode: WorkloadMode;
  /** Values emitted so far. */
  readonly n: number;
  /** The last index, n-1 (-1 before the first value). */
  readonly i: number;
  /** The last value (0 before the first). */
  readonly v: bigint;
  /** The chain hash after value i: 16 lowercase hex digits. */
  readonly h: string;
  /** As the process sees them: inside its PID namespace. */
  readonly pid: number;
  readonly ppid: number;
  readonly child: number;
  /** A beat came from the child in the last 2 s of the process's running time. */
  readonly childAlive: boolean;
  /** The log fd's offset; -1 without a log. */
  readonly logBytes: number;
  /** VmRSS; -1 if /proc did not say. */
  readonly rssKiB: number;
  /** The mem working set's pass (0 in other modes). */
  readonly gen: number;
  /** Pages the mem writer wrote since start (0 in other modes). */
  readonly written: number;
}

const INT_RE = /^-?\d+$/;

/** A `state` reply, or undefined if the line is not one (a field missing or malformed). */
export function parseWorkloadState(line: string): WorkloadState | undefined {
  if (!/^state\s/.test(line.trim())) return undefined;
  const f = parseFields(line, ['state']);
  const mode = f.get('mode');
  const h = f.get('h');
  const v = f.get('v');
  if (!WORKLOAD_MODES.includes(mode as WorkloadMode) || !h || !/^[0-9a-f]{16}$/.test(h) || !v || !/^\d+$/.test(v)) return undefined;
  const ints: Record<string, number> = {};
  for (const key of ['n', 'i', 'pid', 'ppid', 'child', 'child_alive', 'log_bytes', 'rss_kib', 'gen', 'written']) {
    const raw = f.get(key);
    if (raw === undefined || !INT_RE.test(raw)) return undefined;
    ints[key] = Number(raw);
  }
  if (ints.i !== ints.n! - 1 || ints.n! < 0 || (ints.child_alive !== 0 && ints.child_alive !== 1)) return undefined;
  return {
    mode: mode as WorkloadMode,
    n: ints.n!,
    i: ints.i!,
    v: BigInt(v),
    h,
    pid: ints.pid!,
    ppid: ints.ppid!,
    child: ints.child!,
    childAlive: ints.child_alive === 1,
    logBytes: ints.log_bytes!,
    rssKiB: ints.rss_kib!,
    gen: ints.gen!,
    written: ints.written!,
  };
}

/** The mem mode's `verify` reply: every page's tag checked against the writer's position. */
export type MemVerify = { readonly ok: true; readonly pages: number } | { readonly ok: false; readonly firstBad: number; readonly bad: number; readonly pages: number };

/** `verify ok pages=N` or `verify bad page=K bad=M pages=N`; undefined for anything else. */
export function parseMemVerify(reply: string): MemVerify | undefined {
  const t = reply.trim();
  let m = /^verify ok pages=(\d+)$/.exec(t);
  if (m) return { ok: true, pages: Number(m[1]) };
  m = /^verify bad page=(\d+) bad=(\d+) pages=(\d+)$/.exec(t);
  return m ? { ok: false, firstBad: Number(m[1]), bad: Number(m[2]), pages: Number(m[3]) } : undefined;
}
