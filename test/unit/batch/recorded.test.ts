// Decisions on samples recorded by a real batch (naive parallel, N=4 idle 128 MiB guests on the
// 2-core TCG machine, which other work shared): what a user would read in the report.
import { readFileSync } from 'node:fs';
import { detectHostStall, diagnoseStep, estimateResourceUse, planSchedule, StallThresholdsSchema, type BatchSample, type MigrationAttempt, type StepRecord } from '../../../src/batch/index.js';

const rec = JSON.parse(readFileSync(new URL('./fixtures/naive-parallel-n4.json', import.meta.url), 'utf8')) as {
  step: Pick<StepRecord, 'n' | 'mode' | 'variant' | 'startedAtMs' | 'endedAtMs'>;
  attempts: MigrationAttempt[];
  samples: BatchSample[];
};
const step: StepRecord = { ...rec.step, attempts: rec.attempts.map((a) => ({ ...a, events: [] })), guard: { needMiB: 2224, usableMiB: 22000, message: '' } };

describe('on recorded samples of naive parallel N=4', () => {
  it('diagnoses the CPU as the saturated resource and quotes the values', () => {
    const d = diagnoseStep(step, rec.samples, { cpus: 2, memoryReserveMiB: 1024 }, rec.step.startedAtMs);
    expect(d.migrated).toBe(4);
    expect(d.saturation.resource).toBe('cpu');
    expect(d.saturation.peak.cpuBusyPct).toBeGreaterThanOrEqual(90);
    expect(d.saturation.evidence).toMatch(/^CPU busy \d+\.\d % \(mean of 2 CPUs\) at \d+\.\d s, PSI cpu some avg10 [\d.]+ at/);
    // Boots overlapped: the slowest guest took far longer than one TCG boot alone (4-6 s).
    expect(d.bootToHeartbeatMs!.max).toBeGreaterThan(8000);
  });

  it('measures what a guest pair costs and lets the scheduler run fewer at once on 2 CPUs', () => {
    const use = estimateResourceUse(rec.samples, 2);
    expect(use.pairSamples).toBeGreaterThan(5);
    expect(use.pairCores).toBeGreaterThan(0.2);
    expect(use.pairCores).toBeLessThan(2);
    const plan = planSchedule({ guests: [0, 1, 2, 3].map((i) => ({ guestIndex: i, memoryMiB: 128, dirtyRateMiBps: 0 })), use, memAvailableMiB: 23000, memoryReserveMiB: 1024, timeoutMs: 60000 });
    expect(plan.limitedBy).toBe('cpu');
    expect(plan.concurrency).toBeLessThan(4);
  });

  it('calls a stall with strict CPU thresholds and none with the defaults', () => {
    const ctx = { cpus: 2, memoryReserveMiB: 1024, swapUsedAtStartMiB: 0 };
    expect(detectHostStall(rec.samples, StallThresholdsSchema.parse({}), ctx)).toBeUndefined();
    const strict = detectHostStall(rec.samples, StallThresholdsSchema.parse({ psiCpuSomeAvg10: 40 }), ctx);
    expect(strict?.symptom).toBe('psi-cpu');
    expect(strict!.evidence.psiCpuSomeAvg10).toBeGreaterThan(40);
  });
});
