// `containers migrate` refuses bad input in one line that names the problem and the fix, before
// it checks the machine or starts anything (these calls would otherwise need root, QEMU and a lab).
import { UsageError } from '../../../src/errors.js';
import { lazyPagesTransferred } from '../../../src/containers/lazy.js';
import { checkFrozen } from '../../../src/containers/migrate.js';
import { containersMigrate } from '../../../src/containers/run.js';

const ok = { workload: 'counter', strategy: 'stop-and-copy' } as const;

describe('containers migrate input', () => {
  it.each([
    [{ ...ok, workload: 'fib' }, /unknown container workload "fib"/],
    [{ ...ok, workload: 'mem:0M@8M/s' }, /mem:0M@8M\/s/],
    [{ ...ok, strategy: 'precopy' }, /unknown strategy "precopy"/],
    [{ ...ok, transfer: 'scp' }, /unknown transfer "scp"/],
    [{ ...ok, strategy: 'lazy', transfer: 'page-server' }, /the lazy strategy takes no --transfer page-server/],
    [{ ...ok, periodMs: 0 }, /workload period 0 ms is out of range/],
    [{ ...ok, rules: { maxRounds: -1 } }, /max rounds -1 is out of range/],
    [{ ...ok, rules: { minPages: 1.5 } }, /min pages 1.5/],
    [{ ...ok, memRounds: { budgetPages: 0 } }, /page budget 0/],
    [{ ...ok, memRounds: { plateauPct: 150 } }, /plateau 150%/],
    [{ ...ok, memoryMiB: 10 }, /memory 10 MiB is out of range/],
    [{ ...ok, workload: 'mem:400M@1M/s', memoryMiB: 256 }, /a 400 MiB working set does not fit in 256 MiB container hosts/],
    [{ ...ok, workload: 'mem:200M@1M/s', transfer: 'page-server', memoryMiB: 512 }, /the destination holds the images too/],
  ])('refuses %j', async (req, message) => {
    const err = await containersMigrate(req).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(message);
  });
});

describe('CRIU\'s frozen time', () => {
  it('is taken when it fits in the time the dump ran', () => {
    expect(checkFrozen(412.8, 774)).toEqual({ ms: 412.8 });
    expect(checkFrozen(null, 774)).toEqual({ ms: null });
  });

  it('is left out, with the reason, when it is longer than the dump ran (CRIU 3.17.1 with --lazy-pages)', () => {
    const r = checkFrozen(3358018.7, 2177);
    expect(r.ms).toBeNull();
    expect(r.rejected).toBe("CRIU's stats-dump gave 3358018.7 ms of frozen time for a dump that ran 2177 ms: not a measurement, left out");
  });
});

describe('the lazy-pages log', () => {
  it('gives the pages moved from its last "UFFD transferred pages" line, or none', () => {
    expect(lazyPagesTransferred('(12.7) uffd: 1-9: UFFD transferred pages: (100/16392)\n(12.76) uffd: 1-9: UFFD transferred pages: (16392/16392)\n')).toBe(16392);
    expect(lazyPagesTransferred('(0.1) Error (criu/uffd.c:1): cannot connect\n')).toBeNull();
  });
});
