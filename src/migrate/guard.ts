// The run's alarm: one AbortSignal that every wait of a run uses, which fires either because the
// user interrupted (Ctrl-C, SIGTERM, a caller's abort) or because a watcher saw the run cannot go
// on (a QEMU died, the guest's kernel panicked or its OOM killer struck, the NFS server is gone, a
// results file cannot be written, the lab was taken down). The first reason wins and is what the
// run reports; a run that was interrupted says so and by which signal. Every notable thing a
// watcher sees is also kept as an incident with its time, so a fault's time to detection can be
// read off the record.
import { MiglabError } from '../errors.js';

export interface Incident {
  /** Since the migrate command was sent (negative: before it). */
  readonly tMs: number;
  /** Epoch ms. */
  readonly atMs: number;
  /** Which watcher: qemu-exit, console, nfs, lab, results, stall, migration, fault. */
  readonly source: string;
  readonly what: string;
}

export class RunGuard {
  private readonly ac = new AbortController();
  readonly signal: AbortSignal;
  private first: { source: string; error: MiglabError; atMs: number } | undefined;
  readonly incidents: Incident[] = [];
  /** Epoch ms of the migrate command; 0 until it is sent. */
  migrateSentAt = 0;

  constructor(private readonly outer?: AbortSignal) {
    this.signal = outer ? AbortSignal.any([outer, this.ac.signal]) : this.ac.signal;
  }

  /** The user (or the caller) interrupted the run; `interruptedBy` says how. */
  get interrupted(): boolean {
    return this.outer?.aborted === true;
  }

  /** The signal name behind an interrupt (SIGINT, SIGTERM), when the abort reason names one. */
  get interruptedBy(): string | undefined {
    if (!this.interrupted) return undefined;
    const reason = this.outer?.reason as unknown;
    const m = /\b(SIG[A-Z]+)\b/.exec(reason instanceof Error ? reason.message : String(reason));
    return m?.[1] ?? 'abort';
  }

  /** Why a watcher stopped the run, if one did. */
  get tripped(): { readonly source: string; readonly error: MiglabError; readonly atMs: number } | undefined {
    return this.first;
  }

  /** Keep an incident (and return it) without stopping the run. */
  note(source: string, what: string): Incident {
    const atMs = Date.now();
    const inc: Incident = { tMs: this.migrateSentAt ? atMs - this.migrateSentAt : 0, atMs, source, what };
    this.incidents.push(inc);
    return inc;
  }

  /** The run cannot go on: keep the reason (the first one wins) and abort every wait. */
  trip(source: string, error: MiglabError): void {
    this.note(source, error.message);
    if (this.first || this.interrupted) return;
    this.first = { source, error, atMs: Date.now() };
    this.ac.abort(error);
  }
}

/** A run stopped by a watcher: the run's reason (what the user reads) with its source. */
export function trippedError(source: string, message: string, context: Record<string, unknown> = {}): MiglabError {
  return new MiglabError('MIGRATION_FAILED', message, { context: { ...context, watcher: source } });
}
