// `containers batch` input: every mistake refused in one line before anything starts.
import { checkBatchRequest, parseCounts } from '../../../../src/containers/batch/run.js';
import { UsageError } from '../../../../src/errors.js';

describe('containers batch input', () => {
  it('takes the ladder as text or numbers, rising', () => {
    expect(parseCounts('1, 10,100,400')).toEqual([1, 10, 100, 400]);
    expect(parseCounts([2, 4])).toEqual([2, 4]);
  });

  it.each([
    ['1,10,10', /do not rise: 10 follows 10/],
    ['10,1', /do not rise/],
    ['0,5', /"0" is not a whole number/],
    ['1.5', /"1.5"/],
    ['1,,3', /"" is not/],
    ['5000', /from 1 to 4000/],
  ])('refuses counts %s', (counts, msg) => {
    expect(() => parseCounts(counts)).toThrow(UsageError);
    expect(() => parseCounts(counts)).toThrow(msg);
  });

  it('fills the defaults: 2 GiB guests (the reference report\'s), 1 vCPU, the counter\'s own memory, one value a second, its files in the guest', () => {
    expect(checkBatchRequest({ counts: '1,10', mode: 'one-by-one' })).toEqual({ counts: [1, 10], mode: 'one-by-one', memoryMiB: 2048, vcpus: 1, rssMiB: 0, periodMs: 1000, files: 'guest' });
    expect(checkBatchRequest({ counts: '1', mode: 'scheduled', files: 'export' }).files).toBe('export');
    expect(checkBatchRequest({ counts: '3', mode: 'waves' }).waveSize).toBe(10);
  });

  it.each([
    [{ mode: 'sideways' }, /unknown batch mode "sideways"/],
    [{ mode: 'one-by-one', waveSize: 5 }, /--wave-size is for --mode waves/],
    [{ mode: 'waves', waveSize: 0 }, /wave size 0/],
    [{ mode: 'scheduled', memoryMiB: 100 }, /memory 100 MiB is out of range/],
    [{ mode: 'scheduled', rssMiB: -1 }, /per-container memory -1 MiB/],
    [{ mode: 'scheduled', periodMs: 10 }, /period 10 ms is out of range/],
    [{ mode: 'scheduled', vcpus: 0 }, /0 vCPUs/],
    [{ mode: 'scheduled', files: 'disk' }, /unknown place for the containers' files "disk"/],
  ])('refuses %o', (extra, msg) => {
    expect(() => checkBatchRequest({ counts: '1', ...extra } as never)).toThrow(msg);
  });
});
