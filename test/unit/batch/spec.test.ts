import { UsageError } from '../../../src/errors.js';
import { batchSpecFromArgs, checkBatch, expandSteps, guestScenario, parseBatchSpec, parseModeArg, parseStepsArg, peakPairs } from '../../../src/batch/index.js';

const fakeMem = (mib: number) => async () => mib;

describe('batch spec', () => {
  it('expands lists and growth rules into the values of N', () => {
    expect(expandSteps([1, 2, 4])).toEqual([1, 2, 4]);
    expect(expandSteps({ start: 1, factor: 2, max: 8 })).toEqual([1, 2, 4, 8]);
    expect(expandSteps({ start: 1, factor: 1.5, max: 6 })).toEqual([1, 2, 3, 5]);
    expect(expandSteps({ start: 2, add: 2, max: 7 })).toEqual([2, 4, 6]);
  });

  it('refuses a growth rule with both or neither of factor and add', () => {
    expect(() => parseBatchSpec({ steps: { start: 1, max: 4 } as never })).toThrow(/exactly one of factor or add/);
    expect(() => parseBatchSpec({ steps: { start: 1, max: 4, add: 1, factor: 2 } })).toThrow(UsageError);
    expect(() => parseBatchSpec({ mode: 'parallel', compare: true })).toThrow(/compare needs mode scheduled/);
  });

  it('gives each guest its own migration port and the batch deadline', () => {
    const spec = parseBatchSpec({ guests: [{ memoryMiB: 128 }, { memoryMiB: 512 }], timeoutMs: 30000 });
    expect(guestScenario(spec, 0)).toMatchObject({ port: 4444, guest: { memoryMiB: 128 }, timeoutMs: 30000 });
    expect(guestScenario(spec, 3)).toMatchObject({ port: 4447, guest: { memoryMiB: 512 } });
    expect(guestScenario(spec, 1, { maxBandwidthMiBps: 40, autoConverge: true, timeoutMs: 90000 })).toMatchObject({ parameters: { maxBandwidthMiBps: 40 }, capabilities: { 'auto-converge': true }, timeoutMs: 90000 });
  });

  it('injects faults into the guests whose entry names them, validated as any scenario', async () => {
    const spec = parseBatchSpec({ guests: [{ memoryMiB: 128, faults: ['kill-dst@pass:2'] }, { memoryMiB: 128 }] });
    expect(guestScenario(spec, 0)).toMatchObject({ faults: ['kill-dst@pass:2'] });
    expect(guestScenario(spec, 1)).not.toHaveProperty('faults');
    expect(guestScenario(spec, 2)).toMatchObject({ faults: ['kill-dst@pass:2'] });
    // From the command line: every guest.
    expect(batchSpecFromArgs({ fault: ['freeze-dst:2s@pass:2'] }).guests).toMatchObject({ faults: ['freeze-dst:2s@pass:2'] });
    expect(batchSpecFromArgs({}).guests).not.toHaveProperty('faults');
    await expect(checkBatch({ guests: { memoryMiB: 128, faults: ['kill-dst@never'] } }, async () => 100000)).rejects.toThrow(/invalid fault "kill-dst@never"/);
  });

  it('passes each guest its workload', () => {
    const dirty = { kind: 'dirty', wssMiB: 64, rateMiBps: 50, pattern: 'random' };
    expect(guestScenario(parseBatchSpec({ guests: { memoryMiB: 128, workload: dirty } }), 0)).toMatchObject({ workload: dirty });
    expect(guestScenario(parseBatchSpec({ guests: { memoryMiB: 128 } }), 0)).not.toHaveProperty('workload');
  });

  it('counts the pairs alive at once per mode', () => {
    expect(peakPairs('sequential', 8)).toBe(1);
    expect(peakPairs('parallel', 8)).toBe(8);
    expect(peakPairs({ waves: 3 }, 8)).toBe(3);
    expect(peakPairs({ waves: 3 }, 2)).toBe(2);
  });
});

describe('the memory guard refuses a batch before anything starts', () => {
  it('refuses N guests that would exhaust MemAvailable, saying how much was needed', async () => {
    // 4 pairs x 2 x (2048 + 150) = 17584 MiB against 16 GiB - 1 GiB reserve
    await expect(checkBatch({ guests: { memoryMiB: 2048 }, mode: 'parallel', steps: [4] }, fakeMem(16384))).rejects.toThrow(
      /^batch step N=4: refused: 4 pair\(s\) x 2 QEMUs x \(2048 MiB \+ 150 MiB overhead\) = 17584 MiB does not fit in 15360 MiB/,
    );
  });

  it('lets the same guests through one at a time, or in waves that fit', async () => {
    await expect(checkBatch({ guests: { memoryMiB: 2048 }, mode: 'sequential', steps: [4] }, fakeMem(16384))).resolves.toBeDefined();
    await expect(checkBatch({ guests: { memoryMiB: 2048 }, mode: { waves: 3 }, steps: [4] }, fakeMem(16384))).resolves.toBeDefined();
  });

  it('keeps the reserve: a step that fits only by using it is refused', async () => {
    await expect(checkBatch({ guests: { memoryMiB: 128 }, steps: [2], memoryReserveMiB: 4096 }, fakeMem(5000))).rejects.toThrow(/refused/);
    await expect(checkBatch({ guests: { memoryMiB: 128 }, steps: [2], memoryReserveMiB: 1024 }, fakeMem(5000))).resolves.toBeDefined();
  });
});

describe('batch command-line options', () => {
  it('reads steps, modes and sizes as the user types them', () => {
    expect(parseStepsArg('1,2,4')).toEqual([1, 2, 4]);
    expect(parseStepsArg('1..8*2')).toEqual({ start: 1, max: 8, factor: 2 });
    expect(parseStepsArg('1..6+1')).toEqual({ start: 1, max: 6, add: 1 });
    expect(() => parseStepsArg('1-4')).toThrow('--steps 1-4: not a list of N or a growth rule; give a list like 1,2,4 or a rule like 1..8*2 or 1..6+1');
    expect(parseModeArg('waves:2')).toEqual({ waves: 2 });
    expect(() => parseModeArg('fast')).toThrow('--mode fast: not a mode; give sequential, parallel, waves:K or scheduled');
    const spec = parseBatchSpec(batchSpecFromArgs({ steps: '1,2', mode: 'scheduled', compare: true, memory: '128M', timeout: '30s', deadline: '5m', reserve: '2G', bandwidth: '100mbit', prefix: 'mlbt' }));
    expect(spec).toMatchObject({ mode: 'scheduled', compare: true, steps: [1, 2], timeoutMs: 30000, deadlineMs: 300000, memoryReserveMiB: 2048, guests: { memoryMiB: 128 }, shaping: { bandwidthMbit: 100 }, lab: { prefix: 'mlbt' } });
  });
});
