// The container batch's scheduler and its gate: how many dumps and restores at once, how many
// containers chost-dst has room for, and when the next dump must wait.
import { planContainerSchedule, PSI_IO_LIMIT, PSI_MEMORY_LIMIT, RESERVE_MIB } from '../../../../src/containers/batch/schedule.js';
import { gateReason } from '../../../../src/containers/batch/moves.js';

const base = { count: 399, srcVcpus: 1, dstVcpus: 1, srcAvailableMiB: 1800, dstAvailableMiB: 1800, dumpRssMiB: 6.7, restoreRssMiB: 6.5, perContainerMiB: 0.5 };

describe('planContainerSchedule', () => {
  it('moves one container at a time per vCPU when memory is plenty, and admits every container that fits', () => {
    const p = planContainerSchedule(base);
    expect(p.atOnce).toBe(1);
    expect(p.admit).toBe(399);
    expect(p.reasons.join(' ')).toContain('1 vCPU');
    expect(p.reasons.join(' ')).toContain('take turns');
  });

  it('takes more at once with more vCPUs in both guests, but never more than memory allows', () => {
    expect(planContainerSchedule({ ...base, srcVcpus: 4, dstVcpus: 2 }).atOnce).toBe(2);
    // (150 - 128) / 6.7 = 3.28 -> 3 dumps fit, though 8 vCPUs would allow 8.
    expect(planContainerSchedule({ ...base, srcVcpus: 8, dstVcpus: 8, srcAvailableMiB: 150 }).atOnce).toBe(3);
    // No room at all still moves one at a time (the gate then decides whether it may start).
    expect(planContainerSchedule({ ...base, srcAvailableMiB: 100 }).atOnce).toBe(1);
  });

  it('leaves on chost-src the containers chost-dst has no room for, and says so with the figures', () => {
    // (1000 - 128 - 1 x 6.5) / 12 = 72.1 -> 72 of 399.
    const p = planContainerSchedule({ ...base, dstAvailableMiB: 1000, perContainerMiB: 12 });
    expect(p.admit).toBe(72);
    const room = p.reasons.find((r) => r.startsWith('room on chost-dst'))!;
    expect(room).toContain('72 of 399 are moved');
    expect(room).toContain('327 stay on chost-src');
  });

  it('never plans more at once than there are containers', () => {
    expect(planContainerSchedule({ ...base, count: 2, srcVcpus: 8, dstVcpus: 8 })).toMatchObject({ atOnce: 2, admit: 2 });
  });

  it('treats a per-container cost measured as zero (noise) as small, not as infinite room', () => {
    expect(planContainerSchedule({ ...base, perContainerMiB: 0 }).admit).toBe(399);
  });
});

describe('gateReason', () => {
  const s = { atMs: 0, guest: 'chost-dst' as const, rttMs: 5, memAvailableMiB: 900, psiMemSome10: 0 };
  it('lets a dump go when pressure is low and memory above the reserve, or when there is no sample yet', () => {
    expect(gateReason(s, 'chost-dst')).toBeUndefined();
    expect(gateReason(undefined, 'chost-dst')).toBeUndefined();
  });
  it('holds it back on memory pressure or on memory below the reserve, naming the figure', () => {
    expect(gateReason({ ...s, psiMemSome10: PSI_MEMORY_LIMIT + 2.5 }, 'chost-dst')).toBe(`chost-dst's memory pressure is ${PSI_MEMORY_LIMIT + 2.5} % (PSI some avg10 > ${PSI_MEMORY_LIMIT})`);
    expect(gateReason({ ...s, memAvailableMiB: RESERVE_MIB - 1 }, 'chost-src')).toContain(`${RESERVE_MIB - 1} MiB available`);
    expect(gateReason({ ...s, psiIoSome10: 99.5 }, 'chost-src')).toBe(`chost-src's I/O pressure is 99.5 % (PSI some avg10 > ${PSI_IO_LIMIT}): the shared export is saturated`);
    expect(gateReason({ ...s, psiIoSome10: PSI_IO_LIMIT }, 'chost-src')).toBeUndefined();
  });
});
