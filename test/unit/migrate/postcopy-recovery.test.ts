// Recovering a broken post-copy, against two fake QEMUs on real QMP sockets that behave as 7.2
// was measured to: migrate-pause on the source pauses it and the destination notices; the
// destination listens again after migrate-recover; a resume connects only to a listening
// destination (else QEMU stays postcopy-paused with an error); a pause before the destination runs
// the guest is never sent.
import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FaultRunner } from '../../../src/fault/runner.js';
import { driveMigration } from '../../../src/migrate/drive.js';
import { RunGuard } from '../../../src/migrate/guard.js';
import { QmpMigrationDriver } from '../../../src/migrate/monitor.js';
import { recoverPostcopy, type RecoveryParts } from '../../../src/migrate/postcopy-recovery.js';
import type { Sample } from '../../../src/migrate/report.js';
import { parseScenario } from '../../../src/migrate/scenario.js';
import type { Progress } from '../../../src/progress/progress.js';
import { QmpClient } from '../../../src/qmp/client.js';
import { Teardown } from '../../../src/util/teardown.js';
import { FakeQmpServer } from '../../support/fake-qmp.js';

const dir = mkdtempSync(join(tmpdir(), 'miglab-pcrec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const MiB = 1024 * 1024;
let n = 0;

/** A source and a destination in post-copy, the stream stuck at `stuckAt` bytes until a resume succeeds. */
async function pair(o: { refuseResumes?: number; remaining?: number; sameError?: boolean; trickle?: boolean } = {}) {
  const s = { status: 'postcopy-active', transferred: 100 * MiB, error: undefined as string | undefined, dstListening: false, dstStatus: 'postcopy-active', refusals: o.refuseResumes ?? 0 };
  const ram = () => ({ transferred: s.transferred, remaining: o.remaining ?? 50 * MiB, total: 256 * MiB, 'dirty-sync-count': 2 });
  const source = await FakeQmpServer.start(join(dir, `src${++n}.sock`), {
    handlers: {
      'query-migrate': () => {
        // Once back in post-copy the stream moves and soon ends.
        if (o.trickle) s.transferred += 4096;
        else if (s.status === 'postcopy-active' && s.dstListening) {
          s.transferred += 10 * MiB;
          if (s.transferred > 160 * MiB) s.status = 'completed';
        }
        return { return: { status: s.status, ram: ram(), ...(s.error ? { 'error-desc': s.error } : {}) } };
      },
      'migrate-pause': () => {
        s.status = 'postcopy-paused';
        s.dstStatus = 'postcopy-paused';
        return { return: {} };
      },
      migrate: (req) => {
        if (!(req.arguments as { resume?: boolean }).resume) return { error: { class: 'GenericError', desc: 'not a resume' } };
        if (s.refusals > 0 || !s.dstListening) {
          s.refusals--;
          // 7.2 writes the same words for each failed connect; the count tells the fake's apart.
          s.error = o.sameError ? "Failed to connect to '10.77.0.2:4444': No route to host" : `Failed to connect to '10.77.0.2:4444': Connection refused (${s.refusals})`;
          return { return: {} };
        }
        s.status = 'postcopy-active';
        return { return: {} };
      },
    },
  });
  const destination = await FakeQmpServer.start(join(dir, `dst${n}.sock`), {
    handlers: {
      'query-migrate': () => ({ return: { status: s.dstStatus } }),
      'migrate-pause': () => ({ error: { class: 'GenericError', desc: 'migrate-pause is currently only supported during postcopy-active state' } }),
      'migrate-recover': () => {
        if (s.dstListening) return { error: { class: 'GenericError', desc: 'Migrate recovery is triggered already' } };
        s.dstListening = true;
        return { return: {} };
      },
    },
  });
  const srcQmp = await QmpClient.connect(source.path, { timeoutMs: 2000 });
  const dstQmp = await QmpClient.connect(destination.path, { timeoutMs: 2000 });
  const close = async () => {
    await Promise.all([srcQmp.close(), dstQmp.close()]);
    await Promise.all([source.close(), destination.close()]);
  };
  const sent = (f: FakeQmpServer) => f.received.map((q) => q.execute).filter((c) => c !== 'qmp_capabilities' && c !== 'query-migrate');
  return { s, source, destination, src: new QmpMigrationDriver(srcQmp), dst: new QmpMigrationDriver(dstQmp), close, sent };
}

type Pair = Awaited<ReturnType<typeof pair>>;

/** `fn` on a fresh pair of fake QEMUs, closed afterwards. */
async function withPair<T>(o: Parameters<typeof pair>[0], fn: (p: Pair) => Promise<T>): Promise<T> {
  const p = await pair(o);
  try {
    return await fn(p);
  } finally {
    await p.close();
  }
}

/** recoverPostcopy on the pair, stalled at 0 on a clock started now; `extra` may read that clock. */
function recover(p: Pair, trigger: string, extra: (now: () => number) => Partial<RecoveryParts> = () => ({})) {
  const t0 = Date.now();
  const now = () => Date.now() - t0;
  return recoverPostcopy(trigger, 0, { source: p.src, destination: p.dst, uri: 'tcp:10.77.0.2:4444', withinMs: 20_000, now, ...extra(now) });
}

describe('recovering a broken post-copy', () => {
  it('pauses, has the destination listen, and resumes the source until QEMU says it connected', () =>
    withPair({ refuseResumes: 1 }, async (p) => {
      const rec = await recover(p, 'no byte moved for 2000 ms in post-copy');
      expect(rec).toMatchObject({ ok: true, trigger: 'no byte moved for 2000 ms in post-copy' });
      expect(p.sent(p.source)).toEqual(['migrate-pause', 'migrate', 'migrate']);
      // The destination was paused by the source's close: never paused by miglab. Before each resume it
      // is asked to listen; the second time it still listens from the first ("triggered already").
      expect(p.sent(p.destination)).toEqual(['migrate-recover', 'migrate-recover']);
      expect(rec.attempts.map((a) => a.outcome)).toEqual(['failed: Failed to connect to \'10.77.0.2:4444\': Connection refused (0)', 'resumed (postcopy-active)']);
      expect(rec.pausedAtMs).toBeGreaterThanOrEqual(rec.atMs);
      expect(rec.recoveredAtMs).toBeGreaterThan(rec.pausedAtMs!);
    }));

  it('sends a resume again when it is still paused a while later, though QEMU words each failure the same', () =>
    withPair({ refuseResumes: 2, sameError: true }, async (p) => {
      const rec = await recover(p, 'stall', () => ({ attemptMs: 300 }));
      expect(rec.ok).toBe(true);
      // The first failure is news (the error appears); the second says the same, caught by the wait.
      expect(rec.attempts.map((a) => a.outcome)).toEqual(["failed: Failed to connect to '10.77.0.2:4444': No route to host", "failed: Failed to connect to '10.77.0.2:4444': No route to host", 'resumed (postcopy-active)']);
      expect(p.sent(p.source).filter((c) => c === 'migrate')).toHaveLength(3);
    }));

  it('never sends a resume again while the source still has a connect pending (7.2 shows none in its status)', () =>
    withPair({ refuseResumes: 2, sameError: true }, async (p) => {
      const rec = await recover(p, 'stall', (now) => ({ attemptMs: 300, connectPending: () => Promise.resolve(now() < 2500) }));
      expect(rec.ok).toBe(true);
      expect(rec.attempts).toHaveLength(3);
      // The second failure reads as the first: only once no connect was pending was it sent again.
      expect(rec.attempts[2]!.atMs).toBeGreaterThanOrEqual(2500);
    }));

  it('stops at once when a QEMU has gone, and gives up when the window passes', async () => {
    const p = await pair();
    try {
      const t0 = Date.now();
      const gone = await recoverPostcopy('QEMU paused post-copy', 0, { source: p.src, destination: p.dst, uri: 'tcp:x:1', withinMs: 20_000, now: () => Date.now() - t0, gone: () => 'QEMU dst has exited' });
      expect(gone).toMatchObject({ ok: false, detail: 'QEMU dst has exited', attempts: [] });
      p.s.status = 'postcopy-active';
      p.s.dstStatus = 'postcopy-active';
      // A destination that never pauses (its monitor refuses) keeps the recovery from going on.
      p.s.dstStatus = 'postcopy-active';
      const late = await recoverPostcopy('stall', 0, { source: { pause: () => Promise.resolve(), info: () => p.src.info(), resume: (u: string) => p.src.resume(u) }, destination: p.dst, uri: 'tcp:x:1', withinMs: 1500, now: () => Date.now() - t0 - 10 });
      expect(late.ok).toBe(false);
      expect(late.detail).toMatch(/^not paused on both sides within 1500 ms/);
    } finally {
      await p.close();
    }
  });
});

describe('the drive loop in post-copy', () => {
  const progress: Progress = Object.assign(() => undefined, {});
  const drive = async (p: Awaited<ReturnType<typeof pair>>, destinationRuns: boolean, within = 20_000, timeoutMs = 5000) => {
    const td = new Teardown();
    const timeline: Sample[] = [];
    const faults = new FaultRunner([], { inject: () => Promise.reject(new Error('no faults here')), teardown: td, onError: () => undefined });
    const scenario = parseScenario({ sampleIntervalMs: 20, timeoutMs, capabilities: { 'postcopy-ram': true }, postcopyStallMs: 300, postcopyRecoverWithinMs: within });
    const guard = new RunGuard();
    try {
      const r = await driveMigration({
        driver: p.src,
        scenario,
        guard,
        faults,
        timeline,
        progress,
        sentAt: Date.now(),
        completedByEvent: () => false,
        recovery: { destination: p.dst, uri: 'tcp:10.77.0.2:4444', destinationRuns: () => destinationRuns },
      });
      return { r, timeline, notes: guard.incidents.map((i) => i.what) };
    } finally {
      await td.run();
    }
  };

  it('recovers a stalled post-copy instead of cancelling it, and completes', async () => {
    const p = await pair();
    try {
      const { r, notes } = await drive(p, true);
      expect(r.end).toBe('final');
      expect(r.final.status).toBe('completed');
      expect(r.recoveries).toHaveLength(1);
      expect(r.recoveries![0]).toMatchObject({ ok: true, trigger: expect.stringMatching(/^no byte moved for \d+ ms in post-copy \(postcopy-active\)$/) });
      expect(p.sent(p.source)).toEqual(['migrate-pause', 'migrate']);
      expect(p.sent(p.source)).not.toContain('migrate_cancel');
      expect(notes.some((w) => w.startsWith('post-copy recovered'))).toBe(true);
    } finally {
      await p.close();
    }
  });

  it('never pauses before the destination runs the guest, or once the source has sent its last page: it waits, then gives the guest up', async () => {
    for (const [runs, remaining, why] of [
      [false, 50 * MiB, 'before the destination started the guest'],
      [true, 0, 'after the source sent its last page'],
    ] as const) {
      const p = await pair({ remaining });
      try {
        const { r, notes } = await drive(p, runs, 1000);
        expect(r.end).toBe('postcopy-lost');
        expect(p.sent(p.source)).toEqual([]);
        expect(p.sent(p.destination)).toEqual([]);
        expect(r.recoveries![0]!.detail).toContain(why);
        expect(notes.filter((w) => w.includes('waiting for the stream'))).toHaveLength(1);
      } finally {
        await p.close();
      }
    }
  });

  it('gives a post-copy that never ends --timeout from its start, then the guest up: it cannot be cancelled', async () => {
    const p = await pair({ trickle: true });
    try {
      const { r } = await drive(p, true, 20_000, 1000);
      expect(r.end).toBe('postcopy-lost');
      expect(r.recoveries![0]).toMatchObject({ ok: false, trigger: 'post-copy not done 1000 ms after it began' });
      expect(p.sent(p.source)).toEqual([]);
    } finally {
      await p.close();
    }
  });
});
