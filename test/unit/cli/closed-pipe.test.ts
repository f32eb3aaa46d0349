// `miglab migrate 2>&1 | head -5`: once head has gone, writes to the pipe fail with EPIPE. They
// must be dropped, not end miglab before its cleanup. A real pipe to a real process that closes
// its end without reading stands in for head.
import { afterEach, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { PassThrough, type Writable } from 'node:stream';
import { dropWritesOnClosedPipe } from '../../../src/cli/closed-pipe.js';

const readers: ChildProcess[] = [];
afterEach(async () => {
  for (const r of readers.splice(0)) {
    r.stdout!.destroy();
    const exited = once(r, 'exit');
    r.kill();
    await exited;
  }
});

/** A pipe whose reader has closed it: the stdin of a shell that closes it and says so. (A reader
 * that exited would not do: Node then destroys the pipe itself, and no write reaches it.) */
async function closedPipe(): Promise<Writable> {
  const reader = spawn('sh', ['-c', 'exec 0<&-; echo closed; sleep 30'], { stdio: ['pipe', 'pipe', 'ignore'] });
  readers.push(reader);
  await once(reader.stdout!, 'data');
  return reader.stdin!;
}

/** Write lines as a progress renderer does, a tick apart, so each write meets the closed pipe. */
async function writeLines(stream: Writable, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    stream.write(`progress line ${i}\n`);
    await new Promise((r) => setImmediate(r));
  }
}

describe('dropWritesOnClosedPipe', () => {
  it('a write to a closed pipe emits EPIPE, which unguarded ends the process', async () => {
    const pipe = await closedPipe();
    const errors: string[] = [];
    pipe.on('error', (e: NodeJS.ErrnoException) => errors.push(e.code ?? ''));
    await writeLines(pipe, 5);
    expect(errors).toContain('EPIPE');
  });

  it('drops the writes that follow and lets the writer carry on', async () => {
    // Unguarded, the EPIPE here would be an uncaught exception and fail this test.
    const pipe = await closedPipe();
    dropWritesOnClosedPipe(pipe);
    await expect(writeLines(pipe, 20)).resolves.toBeUndefined();
    expect(pipe.listenerCount('error')).toBe(1);
  });

  it('still throws on any other stream error', () => {
    const stream = new PassThrough();
    dropWritesOnClosedPipe(stream);
    expect(() => stream.emit('error', Object.assign(new Error('disk full'), { code: 'ENOSPC' }))).toThrow('disk full');
  });
});
