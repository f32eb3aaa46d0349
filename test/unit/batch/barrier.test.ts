import { BootBarrier } from '../../../src/batch/barrier.js';

describe('BootBarrier', () => {
  it('opens when every guest has booted or left, not before', async () => {
    const b = new BootBarrier(3);
    let opened = false;
    const first = b.arrive().then(() => (opened = true));
    await Promise.resolve();
    expect(opened).toBe(false);
    b.leave(); // a guest that failed to boot
    await Promise.resolve();
    expect(opened).toBe(false);
    await b.arrive();
    await first;
    expect(opened).toBe(true);
  });

  it('is open at once for an empty group', async () => {
    await expect(new BootBarrier(0).opened).resolves.toBeUndefined();
  });
});
