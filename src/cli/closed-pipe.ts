// A reader that stops early (`miglab plot DIR | head`, `miglab migrate 2>&1 | head`) closes the
// pipe miglab writes to. Node then emits EPIPE as an 'error' event on that stream, and with no
// listener it becomes an uncaught exception: the process dies at once (exit 1, its message lost in
// the closed pipe) and skips its cleanup, leaving QEMUs running and no run.json. With this guard
// the rest of that stream's output is dropped and the command ends as it would.
import type { EventEmitter } from 'node:events';

/** Drop what is written to `stream` once its reader has gone; other stream errors still throw. */
export function dropWritesOnClosedPipe(stream: EventEmitter): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    // ERR_STREAM_DESTROYED: a write after the EPIPE, on a stream Node has already given up on.
    if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
  });
}
