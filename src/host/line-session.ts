// A conversation with a program on a host: a line written to its stdin, a line read back from its
// stdout. The clock measurement uses it so that each reading costs one round trip over an open
// channel (about a millisecond) instead of a new SSH command (tens of milliseconds), which is
// what bounds the offset.
import type { Readable, Writable } from 'node:stream';
import { MiglabError } from '../errors.js';
import { withDeadline } from '../util/deadline.js';

export interface LineSession {
  /** Write `line` and wait for the next line the program prints. */
  ask(line: string, opts?: { readonly timeoutMs?: number }): Promise<string>;
  /** End the program's input (it ends), and wait for it. */
  close(): Promise<void>;
}

const ASK_TIMEOUT_MS = 10_000;

/** A session over the program's stdin (`input`) and stdout (`output`); `ended` resolves when it has ended. */
export function lineSession(what: string, input: Writable, output: Readable, ended: Promise<unknown>): LineSession {
  let buffered = '';
  const lines: string[] = [];
  const waiting: Array<(line: string | undefined) => void> = [];
  let finished = false;
  const deliver = () => {
    while (lines.length > 0 && waiting.length > 0) waiting.shift()!(lines.shift());
    if (finished) while (waiting.length > 0) waiting.shift()!(undefined);
  };
  output.on('data', (d: Buffer) => {
    buffered += d.toString('utf8');
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    lines.push(...parts);
    deliver();
  });
  const end = () => {
    finished = true;
    deliver();
  };
  output.on('end', end);
  output.on('close', end);
  input.on('error', () => undefined); // a program that ended first: its answer (none) tells the caller
  return {
    async ask(line, opts = {}) {
      if (finished) throw new MiglabError('COMMAND_FAILED', `${what} has ended`);
      const answer = new Promise<string | undefined>((resolve) => waiting.push(resolve));
      input.write(`${line}\n`);
      const got = await withDeadline(`an answer from ${what}`, answer, { timeoutMs: opts.timeoutMs ?? ASK_TIMEOUT_MS });
      if (got === undefined) throw new MiglabError('COMMAND_FAILED', `${what} ended without answering`);
      return got;
    },
    async close() {
      input.end();
      await withDeadline(`${what} to end`, ended, { timeoutMs: ASK_TIMEOUT_MS }).catch(() => undefined);
    },
  };
}
