import { describe, expect, it } from '@jest/globals';
import { expectedOutcome, judgeFaults } from '../../../src/fault/outcome.js';
import { parseFault } from '../../../src/fault/spec.js';
import { faultRows } from '../../../src/fault/table.js';
import type { RunReport } from '../../../src/migrate/report.js';
import { parseScenario } from '../../../src/migrate/scenario.js';

const limits = { stallAfterMs: 15000, postcopyStallMs: 2000, postcopyRecoverWithinMs: 60000 };
const exp = (t: string) => expectedOutcome(parseFault(t), limits);

describe('the outcome each fault must have', () => {
  it('is written down once, per kind and duration', () => {
    expect(exp('kill-dst@2s')).toMatchObject({ verdicts: ['failed'], sourceRunsOn: true, destinationStops: false });
    expect(exp('kill-src@2s')).toMatchObject({ verdicts: ['failed'], sourceRunsOn: false, destinationStops: true });
    // After the switchover the guest is the destination's.
    expect(exp('kill-src@completed')).toMatchObject({ verdicts: ['completed'], sourceRunsOn: false });
    expect(exp('kill-dst@completed')).toMatchObject({ verdicts: ['failed'], sourceRunsOn: false });
    expect(exp('freeze-dst:3s@2s')).toMatchObject({ verdicts: ['completed'] });
    expect(exp('freeze-dst@2s')).toMatchObject({ verdicts: ['stalled', 'did-not-converge'], sourceRunsOn: true });
    expect(exp('link-down:5s@2s')).toMatchObject({ verdicts: ['completed'] });
    expect(exp('link-down:10s@2s').verdicts).toEqual(['completed', 'stalled']);
    expect(exp('link-down:20s@2s')).toMatchObject({ verdicts: ['stalled', 'did-not-converge'], sourceRunsOn: true });
    expect(exp('nfs-down@2s')).toMatchObject({ verdicts: ['failed'], names: 'NFS' });
    expect(exp('guest-oom@2s')).toMatchObject({ verdicts: ['failed'], names: 'OOM' });
    expect(exp('kill-dst@2s').text).toBe('failed; the source runs on');
    expect(exp('link-down:5s@2s').text).toBe('completed; the guest intact on the destination');
  });

  it('once post-copy has begun, is recovered or loses the guest: the source can never take it back', () => {
    // (60 s window - 2 s stall - 5 s) / 2: outages up to 26.5 s must be recovered.
    expect(exp('link-down:5s@postcopy-active')).toMatchObject({ verdicts: ['completed'], sourceRunsOn: false });
    expect(exp('link-down:26s@postcopy-active').verdicts).toEqual(['completed']);
    expect(exp('link-down:27s@postcopy-active')).toMatchObject({ verdicts: ['completed', 'failed'], sourceRunsOn: false });
    expect(exp('link-down@postcopy-active')).toMatchObject({ verdicts: ['failed'], sourceRunsOn: false, names: 'lost' });
    expect(exp('freeze-dst:3s@postcopy-active').verdicts).toEqual(['completed']);
    expect(exp('kill-dst@postcopy-active')).toMatchObject({ verdicts: ['failed'], sourceRunsOn: false, names: 'lost' });
    expect(exp('kill-src@postcopy-active')).toMatchObject({ verdicts: ['failed'], sourceRunsOn: false, destinationStops: false });
    // Before post-copy the same cut is a pre-copy stall the source survives.
    expect(exp('link-down@2s').sourceRunsOn).toBe(true);
  });
});

function report(faults: string[], o: Partial<RunReport['outputs']>, verdict: RunReport['verdict'], failure?: string, events: RunReport['events'] = []): RunReport {
  const scenario = parseScenario({ faults });
  const specs = scenario.faults;
  return {
    verdict,
    failure,
    events,
    inputs: { scenario },
    outputs: {
      faults: specs.map((spec, i) => ({ fault: faults[i]!, spec, fired: true, firedAtMs: 2000, detail: 'done' })),
      incidents: [
        { tMs: 2000, atMs: 0, source: 'fault', what: 'fired' },
        { tMs: 2012, atMs: 0, source: 'qemu-exit', what: 'the destination QEMU was killed by SIGKILL' },
      ],
      leftovers: [],
      ...o,
    },
  } as unknown as RunReport;
}

describe('judging a run against its faults', () => {
  it('passes a run that ended as the fault requires, with the time it took to notice', () => {
    const r = report(['kill-dst@2s'], { status: 'failed', after: { source: { process: 'running', status: 'running', heartbeat: 'continuing' }, destination: { process: 'exited', exit: { exitCode: null, signal: 'SIGKILL' } } } }, 'failed', 'QEMU reports the migration failed');
    const [j] = judgeFaults(r);
    expect(j).toMatchObject({ fault: 'kill-dst@2s', met: true, misses: [], detectMs: 12, detectedAs: 'qemu-exit: the destination QEMU was killed by SIGKILL' });
    const [row] = faultRows([{ point: 'fault-kill-dst-2s', rep: 1, report: r }]);
    expect(row).toMatchObject({ verdict: 'failed', source: 'running, beating', destination: 'killed (SIGKILL)', asExpected: 'yes', detectMs: 12, leftovers: 0 });
  });

  it("judges a fault in post-copy by post-copy's rules only once the destination ran the guest", () => {
    const after = { source: { process: 'running', status: 'postmigrate', heartbeat: 'silent' }, destination: { process: 'exited', exit: { exitCode: null, signal: 'SIGKILL' } } } as const;
    const postcopy = { enteredAtMs: 1500, preempt: false, recoveries: [] };
    const lost = "post-copy broke (QEMU paused post-copy) and was not recovered: QEMU dst has exited; the guest is lost: its memory is split between the source and the destination";
    const moved = report(['kill-dst@2s'], { status: 'postcopy-paused', after, postcopy }, 'failed', lost, [{ tMs: 1600, side: 'destination', event: 'RESUME' }]);
    expect(judgeFaults(moved)[0]).toMatchObject({ met: true, expected: 'failed; the failure names lost' });
    // QEMU said postcopy-active, but the destination never started the guest: the source holds all of it, and must run on.
    const notMoved = report(['kill-dst@2s'], { status: 'failed', after, postcopy }, 'failed', 'QEMU reports the migration failed');
    expect(judgeFaults(notMoved)[0]).toMatchObject({ met: false, expected: 'failed; the source runs on' });
  });

  it('names every way a run missed', () => {
    const r = report(['nfs-down@2s'], { after: { source: { process: 'exited', exit: { exitCode: 1, signal: null } }, destination: { process: 'running', status: 'inmigrate' } }, leftovers: ['tap-g0 still on src'] }, 'did-not-converge', 'did not converge');
    const [j] = judgeFaults(r);
    expect(j!.met).toBe(false);
    expect(j!.misses).toEqual(['verdict did-not-converge, expected failed', 'the failure does not name NFS: did not converge', 'left behind: tap-g0 still on src']);
    const unfired = report(['kill-dst@pass:9'], {}, 'completed');
    (unfired.outputs.faults as unknown as { fired: boolean; notFired?: string }[])[0] = { ...unfired.outputs.faults![0]!, fired: false, notFired: 'the migration completed first' };
    expect(judgeFaults(unfired)[0]!.misses[0]).toBe('it never fired (the migration completed first)');
  });
});
