// Every long-lived process miglab starts in a lab (QEMUs, the downtime probe, iperf3, perf) is
// recorded here, one file per process under STATE_ROOT/PREFIX/procs, with its pid and start time,
// the miglab process that started it, and that run's id and guest slot. A miglab killed with
// SIGKILL cannot stop its children; with this record `lab status` names them as orphans and
// `lab down` stops exactly them (by pid and start time, never a process that reused the pid)
// before it deletes the namespaces they would otherwise keep alive. One file per process, written
// atomically, so concurrent runs on one lab never rewrite each other's records.
import { programArgv } from '../util/explained-command.js';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { Duplex } from 'node:stream';
import type { Host, HostProcess, RunOptions, RunResult, SeriesOptions, SpawnOptions } from '../host/host.js';
import type { LineSession } from '../host/line-session.js';
import { MiglabError, describeError } from '../errors.js';
import { isOwnedAlive, procStartTime, selfProcess, type OwnedProcess } from './proc.js';

const Owned = z.object({ pid: z.number().int().positive(), startTime: z.number().int().nonnegative() });

export const RecordedProcessSchema = Owned.extend({
  /** In words: "qemu-system-x86_64 in mlab-src". */
  what: z.string(),
  /** The command line (long arguments cut), for the user's eyes. */
  argv: z.array(z.string()),
  /** Where it runs: the lab's namespace (RecordingHost's label). */
  netns: z.string(),
  /** The miglab process that started it. */
  owner: Owned,
  runId: z.string().optional(),
  slot: z.number().int().nonnegative().optional(),
  startedAt: z.string(),
});
export type RecordedProcess = z.infer<typeof RecordedProcessSchema>;

/** Who a lab host's spawns belong to (a run's id and guest slot), beyond the miglab process. */
export interface SpawnOwner {
  readonly runId?: string;
  readonly slot?: number;
}


/** The records of processes on this machine (and its namespaces), named by pid and start time. */
export class ProcessRegistry implements ProcessRecorder {
  constructor(readonly dir: string) {}

  get description(): string {
    return `the lab's state under ${this.dir}`;
  }

  recordSpawn(proc: HostProcess, argv: readonly string[], label: string, owner: SpawnOwner): (() => void) | undefined {
    const startTime = procStartTime(proc.pid);
    if (startTime === undefined) return undefined;
    const owned = { pid: proc.pid, startTime };
    this.record({
      ...owned,
      what: `${programArgv(argv)[0]!.split('/').pop()} in ${label}`,
      argv: argv.map((a) => (a.length > 120 ? `${a.slice(0, 117)}...` : a)),
      netns: label,
      owner: selfProcess(),
      ...(owner.runId !== undefined ? { runId: owner.runId } : {}),
      ...(owner.slot !== undefined ? { slot: owner.slot } : {}),
      startedAt: new Date().toISOString(),
    });
    return () => this.forget(owned);
  }

  private file(p: OwnedProcess): string {
    return join(this.dir, `${p.pid}-${p.startTime}.json`);
  }

  record(p: RecordedProcess): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const file = this.file(p);
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(p)}\n`, { mode: 0o600 });
    renameSync(tmp, file);
  }

  forget(p: OwnedProcess): void {
    rmSync(this.file(p), { force: true });
  }

  /** Every record (unreadable ones are skipped: a record torn by a crash names nothing for sure). */
  list(): RecordedProcess[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: RecordedProcess[] = [];
    for (const name of names.filter((n) => n.endsWith('.json'))) {
      try {
        const r = RecordedProcessSchema.safeParse(JSON.parse(readFileSync(join(this.dir, name), 'utf8')));
        if (r.success) out.push(r.data);
      } catch {
        // A torn or half-written record: skip it; its process, if any, still shows in the lab's namespaces.
      }
    }
    return out.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  }

  /** Recorded processes still running; records of ended ones are dropped on the way. */
  live(filter: { runId?: string; slot?: number } = {}): RecordedProcess[] {
    const out: RecordedProcess[] = [];
    for (const p of this.list()) {
      if (!isOwnedAlive(p)) {
        this.forget(p);
        continue;
      }
      if (filter.runId !== undefined && p.runId !== filter.runId) continue;
      if (filter.slot !== undefined && p.slot !== filter.slot) continue;
      out.push(p);
    }
    return out;
  }

  /** Live processes whose miglab is gone: nobody will stop them but `lab down` (or a run reclaiming the slot). */
  orphans(): RecordedProcess[] {
    return this.live().filter((p) => !isOwnedAlive(p.owner));
  }

  /** Live processes of miglab runs that are still running: a run is in progress on the lab. */
  inUse(): RecordedProcess[] {
    return this.live().filter((p) => isOwnedAlive(p.owner));
  }
}

/** One line for messages: "qemu-system-x86_64 in mlab-src (pid 123, run X, slot g0, miglab pid 99)". */
export function describeRecorded(p: RecordedProcess): string {
  const parts = [`pid ${p.pid}`];
  if (p.runId) parts.push(`run ${p.runId}`);
  if (p.slot !== undefined) parts.push(`slot g${p.slot}`);
  parts.push(`miglab pid ${p.owner.pid}${isOwnedAlive(p.owner) ? '' : ', gone'}`);
  return `${p.what} (${parts.join(', ')})`;
}

/** Keeps a lab host's long-lived processes on record while they run (ProcessRegistry for this machine's). */
export interface ProcessRecorder {
  /** Where records are kept, for messages: "the lab's state under /var/lib/miglab/mlab/procs". */
  readonly description: string;
  /**
   * Record `proc`, started from `argv` on `label` (a namespace, or user@address), as `owner`'s.
   * Returns how to forget it once it ends, or undefined when it is gone already (it failed at
   * once: its exit tells the caller why). Throws when it cannot be recorded.
   */
  recordSpawn(proc: HostProcess, argv: readonly string[], label: string, owner: SpawnOwner): (() => void) | undefined;
}

/**
 * A host of the lab whose long-lived processes are recorded as they start and forgotten when they
 * end; everything else goes to the host it wraps. A process that cannot be recorded is not left
 * running unrecorded.
 */
export class RecordingHost implements Host {
  constructor(
    private readonly inner: Host,
    /** Where its processes run, in records: the namespace ("mlab-src"), or user@address. */
    readonly label: string,
    private readonly recorder: ProcessRecorder,
    private readonly owner: SpawnOwner = {},
  ) {}

  get name(): string {
    return this.inner.name;
  }

  get sharesLocalFiles(): boolean | undefined {
    return this.inner.sharesLocalFiles;
  }

  /** The same host, recording its spawns as `owner`'s. */
  ownedBy(owner: SpawnOwner): RecordingHost {
    return new RecordingHost(this.inner, this.label, this.recorder, owner);
  }

  spawn(argv: readonly string[], opts: SpawnOptions = {}): HostProcess {
    const proc = this.inner.spawn(argv, opts);
    let forget: (() => void) | undefined;
    try {
      forget = this.recorder.recordSpawn(proc, argv, this.label, this.owner);
    } catch (err) {
      void proc.stop(0);
      throw new MiglabError('LAB_STATE', `cannot record ${argv[0]} (pid ${proc.pid}) in ${this.recorder.description}: ${describeError(err)}; it was stopped`, { cause: err });
    }
    if (forget) void proc.exited.then(forget);
    return proc;
  }

  run(argv: readonly string[], opts?: RunOptions): Promise<RunResult> {
    return this.inner.run(argv, opts);
  }
  runSeries(argvs: readonly (readonly string[])[], opts?: SeriesOptions): Promise<RunResult[]> {
    return this.inner.runSeries(argvs, opts);
  }
  which(program: string): Promise<string | undefined> {
    return this.inner.which(program);
  }
  converse(argv: readonly string[]): Promise<LineSession> {
    return this.inner.converse(argv);
  }
  connectUnix(path: string): Promise<Duplex> {
    return this.inner.connectUnix(path);
  }
  makeTempDir(parent: string, prefix: string): Promise<string> {
    return this.inner.makeTempDir(parent, prefix);
  }
  remove(path: string): Promise<void> {
    return this.inner.remove(path);
  }
  readText(path: string): Promise<string | undefined> {
    return this.inner.readText(path);
  }
  putFile(localPath: string, path: string): Promise<boolean> {
    return this.inner.putFile(localPath, path);
  }
}
