// A record of every QMP message in both directions, each with the local time it was sent or
// received. miglab saves one per run (`<label>.qmp.jsonl`) so a result can be traced back to
// what QEMU actually said.
import { appendFileSync } from 'node:fs';

export interface TranscriptEntry {
  /** Local wall-clock time, ISO 8601 with milliseconds. */
  readonly time: string;
  /** `out`: miglab -> QEMU; `in`: QEMU -> miglab; `note`: connection events. */
  readonly dir: 'out' | 'in' | 'note';
  /** Which connection (e.g. "source", "destination" or the socket path). */
  readonly peer: string;
  readonly message?: unknown;
  /** Undecodable bytes, as text. */
  readonly raw?: string;
  readonly note?: string;
}

export interface QmpTranscript {
  record(entry: TranscriptEntry): void;
}

/** Keeps entries in memory (tests, short runs). */
export class MemoryTranscript implements QmpTranscript {
  readonly entries: TranscriptEntry[] = [];
  record(entry: TranscriptEntry): void {
    this.entries.push(entry);
  }
}

/**
 * Appends one JSON object per line to a file. Each entry is written synchronously: QMP traffic
 * is a few messages a second, and a run killed by Ctrl-C or a crash still leaves a whole file
 * with nothing to flush or close.
 */
export class Transcript implements QmpTranscript {
  private failed = false;
  /** `onError`: the file cannot be written (disk full, read-only); recording stops, QMP goes on. */
  constructor(
    readonly path: string,
    private readonly onError?: (err: Error) => void,
  ) {}
  record(entry: TranscriptEntry): void {
    if (this.failed) return;
    try {
      // Readable by its owner only: QMP traffic names the guest's devices and files.
      appendFileSync(this.path, `${JSON.stringify(entry)}\n`, { mode: 0o600 });
    } catch (err) {
      // Thrown inside the QMP socket's data handler, it would crash miglab and strand its QEMUs.
      this.failed = true;
      this.onError?.(err as Error);
    }
  }
}
