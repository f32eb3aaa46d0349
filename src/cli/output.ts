// Where the CLI's output goes, from the global options: result lines on stdout (stderr under
// --json, which puts the command's summary alone on stdout as JSON), and progress on stderr: a
// live line rewritten in place on a terminal, plain timestamped lines elsewhere, none under
// --quiet. Every line written goes past the live line without tearing it (src/progress/render.ts).
import { chalkStderr } from 'chalk';
import { ProgressRenderer } from '../progress/render.js';
import type { CommandIo } from './io.js';

export interface OutputOptions {
  /** No progress at all: result lines and errors only. */
  readonly quiet: boolean;
  /** The command's summary as JSON on stdout, nothing else there. */
  readonly json: boolean;
}

/** A stream as the CLI uses it: process.stdout and process.stderr, or fakes in tests. */
export interface OutputStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export interface CliOutput {
  readonly io: Omit<CommandIo, 'signal'>;
  /** Before the error line and at the end: the live line is cleared and its timers stopped. */
  stop(): void;
}

/** JSON as run.json is written: bigints (QEMU counters) as strings. */
function jsonText(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2);
}

/** Whether a live line can be drawn: a terminal that understands cursor movement. */
export function drawsInPlace(stream: OutputStream, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && env.TERM !== 'dumb';
}

export function cliOutput(o: OutputOptions, streams: { stdout: OutputStream; stderr: OutputStream } = { stdout: process.stdout, stderr: process.stderr }, watchSignals = true): CliOutput {
  const { stdout, stderr } = streams;
  const renderer = o.quiet
    ? undefined
    : new ProgressRenderer({
        stream: stderr,
        inPlace: drawsInPlace(stderr),
        // Coloured as stderr allows (a terminal), whatever stdout is: `2> log` gets no escape codes.
        style: { stamp: (s) => chalkStderr.dim(s), phase: (s) => chalkStderr.cyan(s) },
        watchSignals,
      });
  const write = (stream: OutputStream, text: string) => (renderer ? renderer.around(() => stream.write(text)) : stream.write(text));
  return {
    io: {
      out: (line) => write(o.json ? stderr : stdout, `${line}\n`),
      json: o.json ? (value) => write(stdout, `${jsonText(value)}\n`) : undefined,
      progress: renderer?.progress,
    },
    stop: () => renderer?.stop(),
  };
}
