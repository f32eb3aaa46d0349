import { detectHostStall, firstStall, hostSymptoms, memoryGuard, maxPairsInMemory, runStall, runSymptom, StallThresholdsSchema, type RunOutcome } from '../../../src/batch/index.js';
import { sample } from './helpers.js';

const T = StallThresholdsSchema.parse({ psiCpuSomeAvg10: 80, psiMemorySomeAvg10: 10, loadPerCpu: 4, swapGrowthMiB: 64, sustainSamples: 3 });
const CTX = { cpus: 2, memoryReserveMiB: 1024, swapUsedAtStartMiB: 0 };

describe('host symptoms', () => {
  it('sees nothing on a quiet host', () => {
    expect(hostSymptoms(sample({ atMs: 0 }), T, CTX)).toEqual([]);
  });

  it('names each symptom with the value that crossed its line', () => {
    const s = sample({ atMs: 0, psiCpu: 91.5, psiMem: 12, load1: 9, memAvailableMiB: 800, swapUsedMiB: 100, busyPct: 99 });
    const got = hostSymptoms(s, T, CTX);
    expect(got.map((x) => x.symptom).sort()).toEqual(['memory-available', 'psi-cpu', 'psi-memory', 'run-queue', 'swap-growing']);
    expect(got.find((x) => x.symptom === 'psi-cpu')!.evidence).toEqual({ psiCpuSomeAvg10: 91.5, cpuBusyPct: 99 });
    expect(got.find((x) => x.symptom === 'run-queue')!.detail).toContain('4.5 per CPU');
  });
});

describe('detectHostStall', () => {
  it('ignores a CPU pressure spike shorter than the sustain window', () => {
    const xs = [sample({ atMs: 0, psiCpu: 90 }), sample({ atMs: 500, psiCpu: 90 }), sample({ atMs: 1000, psiCpu: 20 }), sample({ atMs: 1500, psiCpu: 90 })];
    expect(detectHostStall(xs, T, CTX)).toBeUndefined();
  });

  it('reports sustained CPU pressure from the sample where it began', () => {
    const xs = [0, 1, 2, 3, 4].map((i) => sample({ atMs: 1000 + i * 500, psiCpu: i >= 1 ? 85 + i : 10, busyPct: 99 }));
    const s = detectHostStall(xs, T, CTX)!;
    expect(s.symptom).toBe('psi-cpu');
    expect(s.atMs).toBe(1500);
    expect(s.confirmedAtMs).toBe(2500);
    expect(s.evidence).toMatchObject({ psiCpuSomeAvg10: 86, confirmedPsiCpuSomeAvg10: 88 });
  });

  it('stops at once when MemAvailable falls below the reserve, even with CPU pressure building earlier', () => {
    const xs = [sample({ atMs: 0, psiCpu: 90 }), sample({ atMs: 500, psiCpu: 90, memAvailableMiB: 900 })];
    const s = detectHostStall(xs, T, CTX)!;
    expect(s.symptom).toBe('memory-available');
    expect(s.atMs).toBe(500);
  });

  it('counts swap growth relative to the batch start, not swap already in use', () => {
    const ctx = { ...CTX, swapUsedAtStartMiB: 500 };
    expect(detectHostStall([sample({ atMs: 0, swapUsedMiB: 520 })], T, ctx)).toBeUndefined();
    expect(detectHostStall([sample({ atMs: 0, swapUsedMiB: 600 })], T, ctx)!.symptom).toBe('swap-growing');
  });

  it('takes the run queue per CPU', () => {
    const xs = [0, 1, 2].map((i) => sample({ atMs: i * 500, load1: 7 }));
    expect(detectHostStall(xs, T, CTX)).toBeUndefined();
    expect(detectHostStall(xs, T, { ...CTX, cpus: 1 })!.symptom).toBe('run-queue');
  });
});

describe('run symptoms', () => {
  const run = (o: Partial<RunOutcome>): RunOutcome => ({ verdict: 'completed', finishedAt: new Date(10000).toISOString(), outputs: {}, timeline: [], ...o });

  it('classifies what went wrong with one migration', () => {
    expect(runSymptom(run({}))).toBeUndefined();
    expect(runSymptom(run({ verdict: 'did-not-converge', failure: 'did not converge within 60000 ms' }))).toBe('did-not-converge');
    expect(runSymptom(run({ verdict: 'failed', failure: "the guest's heartbeat did not continue on the destination" }))).toBe('heartbeat-broken');
    expect(runSymptom(run({ verdict: 'failed', outputs: { heartbeat: { continuous: false } as never } }))).toBe('heartbeat-broken');
    expect(runSymptom(run({ verdict: 'failed', failure: 'QEMU for g1 (dst) did not start: cannot connect to QMP socket /x/dst.qmp: no answer within 60000 ms' }))).toBe('qemu-did-not-start');
    expect(runSymptom(run({ verdict: 'failed', failure: 'QMP query-migrate did not finish within 10000 ms' }))).toBe('monitor-unresponsive');
    expect(runSymptom(run({ verdict: 'failed', failure: 'waiting for the guest agent did not finish within 60000 ms' }))).toBe('operation-timeout');
    expect(runSymptom(run({ verdict: 'failed', failure: 'the destination is inmigrate, not running, after the migration completed' }))).toBe('destination-not-resumed');
    expect(runSymptom(run({ verdict: 'failed', failure: 'QEMU reports the migration failed: broken pipe' }))).toBe('migration-failed');
  });

  it('times a non-convergence at the last QEMU sample, on the absolute time axis', () => {
    const s = runStall(run({ verdict: 'did-not-converge', failure: 'did not converge', outputs: { migrateSentAtMs: 5000 }, timeline: [{ tMs: 100 }, { tMs: 3000 }] }), 3)!;
    expect(s).toMatchObject({ symptom: 'did-not-converge', atMs: 8000, confirmedAtMs: 10000, guestIndex: 3 });
    expect(s.detail).toMatch(/^g3: /);
  });

  it('picks the stall that began first', () => {
    const a = { symptom: 'psi-cpu' as const, atMs: 2000, confirmedAtMs: 3000, detail: '', evidence: {} };
    const b = { symptom: 'did-not-converge' as const, atMs: 1500, confirmedAtMs: 9000, detail: '', evidence: {} };
    expect(firstStall([undefined, a, b])).toBe(b);
    expect(firstStall([])).toBeUndefined();
  });
});

describe('memory guard', () => {
  it('refuses a step that would eat into the reserve, with the arithmetic in the message', () => {
    const g = memoryGuard({ pairs: 4, memoryMiB: 2048, memAvailableMiB: 16000, reserveMiB: 1024 });
    expect(g.ok).toBe(false);
    expect(g.needMiB).toBe(4 * 2 * (2048 + 150));
    expect(g.usableMiB).toBe(14976);
    expect(g.message).toMatch(/^refused: 4 pair\(s\) x 2 QEMUs x \(2048 MiB \+ 150 MiB overhead\) = 17584 MiB does not fit in 14976 MiB/);
  });

  it('lets a step through that fits', () => {
    expect(memoryGuard({ pairs: 2, memoryMiB: 128, memAvailableMiB: 20000, reserveMiB: 1024 }).ok).toBe(true);
    expect(maxPairsInMemory(128, 20000, 1024)).toBe(Math.floor(18976 / 556));
    expect(maxPairsInMemory(65536, 20000, 1024)).toBe(0);
  });
});
