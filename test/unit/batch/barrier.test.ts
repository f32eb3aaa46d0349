import { BootBarrier, MigrationSlots } from '../../../src/batch/barrier.js';

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

describe('BootBarrier.gate', () => {
  it('counts a guest that is done without booting as gone, and one that booted only once', async () => {
    const b = new BootBarrier(2);
    const g0 = b.gate();
    const g1 = b.gate();
    const waiting = g0.ready();
    g0.done(); // booted already: done must not count it twice
    let opened = false;
    void b.opened.then(() => (opened = true));
    await Promise.resolve();
    expect(opened).toBe(false);
    g1.done(); // failed before booting
    await waiting;
    expect(opened).toBe(true);
  });
});

describe('MigrationSlots', () => {
  it('lets K guests migrate at once; the next starts when one ends, in arrival order', async () => {
    const slots = new MigrationSlots(1);
    const order: string[] = [];
    const [a, b, c] = [slots.gate(), slots.gate(), slots.gate()];
    await a.ready();
    const bTurn = b.ready().then(() => order.push('b'));
    const cTurn = c.ready().then(() => order.push('c'));
    await Promise.resolve();
    expect(order).toEqual([]);
    expect(slots.inUse).toBe(1);
    a.migrated();
    await bTurn;
    expect(order).toEqual(['b']);
    b.done(); // failed after booting: its slot goes to c
    await cTurn;
    c.migrated();
    c.done(); // already given back: no double release
    expect(slots.inUse).toBe(0);
  });

  it("says when a guest's place is given back: at its migration's end, or when it is done without one", async () => {
    const slots = new MigrationSlots(1);
    const a = slots.gate();
    const b = slots.gate();
    let aReleased = false;
    void a.released.then(() => (aReleased = true));
    await a.ready();
    await Promise.resolve();
    expect(aReleased).toBe(false);
    a.migrated();
    await a.released;
    expect(aReleased).toBe(true);
    // Never reached its turn (failed while booting): released all the same, so the scheduler moves on.
    b.done();
    await expect(b.released).resolves.toBeUndefined();
    expect(slots.inUse).toBe(0);
  });

  it('a guest that never booted gives nothing back', async () => {
    const slots = new MigrationSlots(2);
    slots.gate().done();
    expect(slots.inUse).toBe(0);
    await slots.gate().ready();
    expect(slots.inUse).toBe(1);
  });
});
