import { compareSteps, diagnoseStep, distribution, linkUse, saturation } from '../../../src/batch/index.js';
import { attempt, sample, step } from './helpers.js';

const CTX = { cpus: 2, memoryReserveMiB: 1024 };

describe('distribution', () => {
  it('gives min, median and max of the values present', () => {
    expect(distribution([30, undefined, 10, 20, 40])).toEqual({ min: 10, median: 25, max: 40, count: 4 });
    expect(distribution([undefined])).toBeUndefined();
  });
});

describe('saturation', () => {
  it('calls CPU saturated when the CPUs are near 100 % and tasks wait for them, quoting the values', () => {
    const s = saturation([sample({ atMs: 1000, busyPct: 60, psiCpu: 10 }), sample({ atMs: 3000, busyPct: 99.5, psiCpu: 72.3, load1: 5.1 })], CTX, 0);
    expect(s.resource).toBe('cpu');
    expect(s.evidence).toBe('CPU busy 99.5 % (mean of 2 CPUs) at 3.0 s, PSI cpu some avg10 72.3 at 3.0 s, load1 5.1');
  });

  it('puts the network first when the migration link runs at the shaped bandwidth', () => {
    const s = saturation([sample({ atMs: 2000, busyPct: 99, psiCpu: 50, srcTxMbps: 96 })], { ...CTX, linkBandwidthMbit: 100 }, 0);
    expect(s.saturated).toEqual(['network', 'cpu']);
    expect(s.evidence).toMatch(/^migration link at 96\.0 Mbit\/s at 2\.0 s, 96 % of the shaped 100 Mbit\/s/);
  });

  it('puts memory first when MemAvailable nears the reserve', () => {
    const s = saturation([sample({ atMs: 0, memAvailableMiB: 1200, busyPct: 99, psiCpu: 50 })], CTX, 0);
    expect(s.resource).toBe('memory');
    expect(s.evidence).toContain('MemAvailable fell to 1200 MiB');
  });

  it('says so when nothing was saturated', () => {
    const s = saturation([sample({ atMs: 0, busyPct: 40, psiCpu: 5 })], CTX, 0);
    expect(s.resource).toBe('none');
    expect(s.evidence).toMatch(/^no resource saturated: peak CPU busy 40\.0 %/);
  });
});

describe('diagnoseStep', () => {
  it('counts migrations, downtimes and failures by kind, and takes the evidence from just before the stall', () => {
    const st = step({
      n: 4,
      startedAtMs: 0,
      endedAtMs: 30000,
      attempts: [
        attempt({ guestIndex: 0, totalTimeMs: 600, downtimeMs: 40, bootToHeartbeatMs: 5000 }),
        attempt({ guestIndex: 1, totalTimeMs: 900, downtimeMs: 120, bootToHeartbeatMs: 9000 }),
        attempt({ guestIndex: 2, outcome: 'did-not-converge' }),
        attempt({ guestIndex: 3, outcome: 'aborted' }),
      ],
      stall: { symptom: 'did-not-converge', atMs: 20000, confirmedAtMs: 21000, detail: 'g2', evidence: {}, guestIndex: 2 },
    });
    const samples = [sample({ atMs: 5000, busyPct: 100, psiCpu: 90 }), sample({ atMs: 18000, busyPct: 70, psiCpu: 15 }), sample({ atMs: 20500, busyPct: 75, psiCpu: 12 })];
    const d = diagnoseStep(st, samples, CTX, 0);
    expect(d).toMatchObject({ n: 4, attempted: 4, migrated: 2, failuresByKind: { 'did-not-converge': 1, aborted: 1 } });
    expect(d.downtimeMs).toEqual({ min: 40, median: 80, max: 120, count: 2 });
    expect(d.bootToHeartbeatMs?.median).toBe(7000);
    // The CPU peak at 5 s is outside the window before the stall: not the cause.
    expect(d.saturation.resource).toBe('none');
  });

  it('counts a guest migrated on the scheduler\'s retry once, and keeps its first failure', () => {
    const d = diagnoseStep(step({ n: 1, attempts: [attempt({ guestIndex: 0, outcome: 'did-not-converge' }), attempt({ guestIndex: 0, attempt: 2, downtimeMs: 10 })] }), [], CTX, 0);
    expect(d).toMatchObject({ attempted: 1, migrated: 1, migratedOnRetry: 1, failuresByKind: { 'did-not-converge': 1 } });
  });
});

describe('compareSteps', () => {
  it('puts naive parallel and the scheduler side by side where both ran at the same N', () => {
    const naive = diagnoseStep(step({ n: 3, variant: 'naive-parallel', endedAtMs: 40000, attempts: [attempt({ guestIndex: 0, downtimeMs: 300 }), attempt({ guestIndex: 1, outcome: 'operation-timeout' }), attempt({ guestIndex: 2, outcome: 'aborted' })], stall: { symptom: 'operation-timeout', atMs: 1, confirmedAtMs: 2, detail: '', evidence: {} } }), [], CTX, 0);
    const sched = diagnoseStep(step({ n: 3, mode: 'scheduled', endedAtMs: 25000, attempts: [0, 1, 2].map((i) => attempt({ guestIndex: i, downtimeMs: 50 + i })), plan: { concurrency: 1, inFlight: 2, limitedBy: 'cpu', limits: { cpu: 1, network: 3, memory: 9, saturation: 3 }, order: [0, 1, 2], timeoutMs: 60000, reasons: [] } }), [], CTX, 0);
    const only = diagnoseStep(step({ n: 1, attempts: [attempt({ guestIndex: 0 })] }), [], CTX, 0);
    expect(compareSteps([only, naive, sched])).toEqual([
      { n: 3, variant: 'naive parallel', migrated: 1, wallMs: 40000, migratingMs: undefined, lowerBoundMs: undefined, vsLowerBound: undefined, worstDowntimeMs: 300, failures: 2, stalled: 'operation-timeout', concurrency: '3' },
      { n: 3, variant: 'scheduled', migrated: 3, wallMs: 25000, migratingMs: undefined, lowerBoundMs: undefined, vsLowerBound: undefined, worstDowntimeMs: 52, failures: 0, stalled: 'no', concurrency: '1' },
    ]);
  });
});

describe('linkUse', () => {
  const sent = (guestIndex: number, at: number, end: number, mib: number) =>
    attempt({ guestIndex, migrateSentAtMs: at, transferredMiB: mib, events: [{ atMs: at, guestIndex, event: 'migrate-sent' }, { atMs: end, guestIndex, event: 'migration-end' }] });

  it('spans the first migrate to the last end and sets bytes at the shaped rate as the bound', () => {
    // 2 x 50 MiB = 838.9 Mbit; at 100 Mbit/s the link needs 8389 ms at least; they took 10000 ms.
    const u = linkUse([sent(0, 1000, 6000, 50), sent(1, 2000, 11000, 50)], 100);
    expect(u.migratingMs).toBe(10000);
    expect(u.transferredMiB).toBe(100);
    expect(u.lowerBoundMs).toBeCloseTo(8388.6, 1);
    expect(u.vsLowerBound).toBeCloseTo(10000 / 8388.608, 3);
  });

  it('has no bound on an unshaped link, and no span without a migration', () => {
    expect(linkUse([sent(0, 0, 500, 10)], undefined)).toEqual({ migratingMs: 500, transferredMiB: 10 });
    expect(linkUse([attempt({ guestIndex: 0, outcome: 'error' })], 100)).toEqual({ migratingMs: undefined, transferredMiB: undefined });
  });
});
