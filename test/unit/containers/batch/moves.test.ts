// The scheduler's deadline on one CRIU command: a restore stuck past it is given up, recorded as
// such, and the step stops admitting, instead of the whole step waiting on it.
import { TimeoutError } from '../../../../src/errors.js';
import type { GuestExecResult } from '../../../../src/guest/control-client.js';
import type { ContainerHost } from '../../../../src/containers/hosts.js';
import type { BatchContainer } from '../../../../src/containers/batch/fleet.js';
import { moveScheduled, stuckCommand, type MoveContext } from '../../../../src/containers/batch/moves.js';

const ok = (): GuestExecResult => ({ argv: [], durationMs: 1, stdout: '', stderr: '', exitCode: 0, signal: 0, wallUs: 1000, utimeUs: 0, stimeUs: 0, maxRssKiB: 6800, timedOut: false });

/** A guest whose `criu restore` of one container never returns: the agent's deadline fires. */
function host(name: 'chost-src' | 'chost-dst', calls: string[][], stuckDir?: string, timeouts: number[] = []): ContainerHost {
  const exec = (argv: readonly string[], o: { timeoutMs?: number }): Promise<GuestExecResult> => {
    calls.push([name, ...argv]);
    if (argv[0]!.endsWith('criu')) timeouts.push(o.timeoutMs ?? -1);
    if (stuckDir !== undefined && argv[0]!.endsWith('criu') && argv[1] === 'restore' && argv.includes(`${stuckDir}/img`)) {
      return Promise.reject(new TimeoutError(`\`${argv.join(' ')}\` on ${name}`, o.timeoutMs ?? 0));
    }
    return Promise.resolve(ok());
  };
  return { name, ctl: { exec } } as unknown as ContainerHost;
}

const container = (index: number): BatchContainer => ({
  index,
  pid: 100 + index,
  startTime: 1,
  guestDir: `/ckpt/b/n5/c${index}`,
  hostDir: `/nonexistent/miglab-test/c${index}`,
  filesDir: `/run/miglab-batch/b/n5/c${index}`,
  filesInGuest: true,
});

describe('moveScheduled with a stuck command', () => {
  it('gives the stuck restore up at the deadline, records it, and admits no more', async () => {
    const calls: string[][] = [];
    const timeouts: number[] = [];
    const cs = [0, 1, 2, 3, 4].map(container);
    const ctx: MoveContext = {
      src: host('chost-src', calls, undefined, timeouts),
      dst: host('chost-dst', calls, cs[2]!.guestDir, timeouts),
      stepT0: Date.now(),
      signal: new AbortController().signal,
      latest: () => undefined,
      progress: () => undefined,
      criuTimeoutMs: 180_000,
    };
    const r = await moveScheduled(ctx, { atOnce: 1, admit: 5, reasons: [] }, cs);
    expect(r.moves.map((m) => m.outcome)).toEqual(['migrated', 'migrated', 'restore-failed', 'not-attempted', 'not-attempted']);
    expect(r.moves[2]!.restore).toMatchObject({ gaveUpAfterMs: 180_000, wallMs: null, error: 'still running after 180 s: given up (stuck)' });
    expect(r.stoppedEarly).toBe("c2's restore was still running after 180 s: the scheduler gave it up and stopped admitting (a command stuck that long means a guest or the export stalled)");
    // Each CRIU command went with the scheduler's deadline, and c3 and c4 were never dumped.
    expect(calls.filter((c) => c[1]!.endsWith('criu') && c[2] === 'dump').map((c) => c.find((a) => a.includes('/img')))).toEqual(['/ckpt/b/n5/c0/img', '/ckpt/b/n5/c1/img', '/ckpt/b/n5/c2/img']);
    expect(timeouts).toEqual(Array(6).fill(180_000));
  });

  it('retries no failed dump once a command was given up: each retry would wait out its deadline too', async () => {
    const calls: string[][] = [];
    const cs = [0, 1, 2, 3].map(container);
    const src = host('chost-src', calls);
    const failC1 = (argv: readonly string[]) => argv[1] === 'dump' && argv.includes(`${cs[1]!.guestDir}/img`);
    const exec = src.ctl.exec.bind(src.ctl);
    const srcFailing = { ...src, ctl: { exec: (argv: readonly string[], o: object) => (failC1(argv) ? Promise.resolve({ ...ok(), exitCode: 1 }) : exec(argv, o)) } } as unknown as ContainerHost;
    const ctx: MoveContext = { src: srcFailing, dst: host('chost-dst', calls, cs[2]!.guestDir), stepT0: Date.now(), signal: new AbortController().signal, latest: () => undefined, progress: () => undefined, criuTimeoutMs: 180_000 };
    const r = await moveScheduled(ctx, { atOnce: 1, admit: 4, reasons: [] }, cs);
    expect(r.moves.map((m) => `${m.index}/${m.attempt} ${m.outcome}`)).toEqual(['0/1 migrated', '1/1 dump-failed', '2/1 restore-failed', '3/1 not-attempted']);
  });

  it('says nothing when no command was given up', () => {
    expect(stuckCommand([{ index: 0, attempt: 1, outcome: 'dump-failed', dump: { startMs: 0, wallMs: 12, exitCode: 1, signal: null, maxRssKiB: 6000, error: 'x' } }])).toBeUndefined();
  });
});
