// Noticing the migration a person starts at the source's monitor. miglab cannot see what is typed
// into telnet or socat, but QEMU tells every QMP monitor: a MIGRATION event with status `setup`
// (capability `events`, which the engine sets) carries QEMU's own time of the start. A
// `query-migrate` right after subscribing covers a migration begun before the subscription.
import { MiglabError } from '../errors.js';
import type { QmpClient } from '../qmp/client.js';
import type { QmpEvent } from '../qmp/types.js';
import { eventTimeMs } from '../qmp/types.js';
import { withDeadline } from '../util/deadline.js';

/** query-migrate's status before any migration was started on this QEMU. */
const NOT_STARTED = new Set(['none', undefined]);

export interface AwaitStartOptions {
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
  /** Told QEMU's time of the start (epoch ms) the moment it is seen, before the promise settles. */
  readonly began: (atMs: number) => void;
}

/** The status QEMU reported when the migration was first seen (setup, active, or already final). */
export async function awaitMigrationStart(qmp: QmpClient, o: AwaitStartOptions): Promise<string> {
  let settle: (status: string) => void = () => undefined;
  const seen = new Promise<string>((resolve) => (settle = resolve));
  // Runs inside the QMP client's dispatch, so the engine's next event is already timed from it.
  const off = qmp.onEvent((e: QmpEvent) => {
    if (e.event !== 'MIGRATION') return;
    const status = String((e.data as { status?: unknown }).status);
    if (status === 'none') return;
    o.began(eventTimeMs(e));
    settle(status);
  });
  try {
    const now = await qmp.migrationInfo({ timeoutMs: 10000, signal: o.signal });
    if (!NOT_STARTED.has(now.status)) {
      o.began(Date.now());
      settle(now.status);
    }
    return await withDeadline('waiting for a migration started by hand', seen, o).catch((err: unknown) => {
      if (err instanceof MiglabError && err.code === 'TIMEOUT') {
        throw new MiglabError('TIMEOUT', `no migration was started within ${Math.round(o.timeoutMs / 1000)} s of the guests being ready; give more time with --hold`, { cause: err });
      }
      throw err;
    });
  } finally {
    off();
  }
}
