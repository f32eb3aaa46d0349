// What a long-lived process prints, kept the same way wherever it runs (LocalProcess, SshProcess):
// appended to an optional log file on the controller, and its last lines kept for error messages.
import { createWriteStream, type WriteStream } from 'node:fs';
import type { SpawnOptions } from './host.js';

/** Lines kept for `tail()`: enough for any error message, bounded for a process that runs for hours. */
const TAIL_KEEP = 200;

export class ProcessOutput {
  private readonly lines: string[] = [];
  private log: WriteStream | undefined;

  constructor(opts: Pick<SpawnOptions, 'logFile' | 'onLogError'>) {
    // Logs may hold what a guest printed: readable by their owner only.
    this.log = opts.logFile ? createWriteStream(opts.logFile, { flags: 'a', mode: 0o600 }) : undefined;
    // A full or read-only disk must not crash miglab (an unhandled stream error would, leaving
    // every QEMU running): stop logging and tell the owner, who fails its run cleanly.
    this.log?.on('error', (err) => {
      this.log = undefined;
      opts.onLogError?.(err);
    });
  }

  /** A chunk of stdout or stderr: logged, and its non-blank lines kept. */
  keep(chunk: Buffer): void {
    this.log?.write(chunk);
    for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) this.lines.push(l);
    if (this.lines.length > TAIL_KEEP) this.lines.splice(0, this.lines.length - TAIL_KEEP);
  }

  /** The process has ended: close the log. */
  end(): void {
    this.log?.end();
  }

  tail(n = 20): string {
    return this.lines.slice(-n).join('\n');
  }
}
