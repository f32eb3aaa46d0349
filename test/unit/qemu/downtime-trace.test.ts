// QEMU's per-device downtime trace read into where a switchover's time went: the lines of a real
// QEMU 10.0.2 pre-copy migration (test/fixtures/downtime-trace), the two hosts' clock offset, lines
// that are no downtime event, a file holding an earlier attempt, a post-copy destination, and the
// Markdown the run report shows.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { breakdownLines, downtimeBreakdown, parseDowntimeTrace } from '../../../src/qemu/downtime-trace.js';

const fixture = (name: string) => readFileSync(new URL(`../../fixtures/downtime-trace/${name}`, import.meta.url), 'utf8');
const SOURCE = fixture('source.trace');
const DESTINATION = fixture('destination.trace');

/** The text with every timestamp moved by whole seconds, as another host's clock or an earlier attempt would have it. */
const shifted = (text: string, seconds: number) => text.replace(/@(\d+)\./g, (_m, s: string) => `@${Number(s) + seconds}.`);

/** A checkpoint's time in µs, read from the text itself rather than through the parser. */
function stampUs(text: string, checkpoint: string): bigint {
  const m = new RegExp(`@(\\d+)\\.(\\d{6}):vmstate_downtime_checkpoint ${checkpoint}$`, 'm').exec(text);
  if (!m) throw new Error(`no ${checkpoint} in the text`);
  return BigInt(m[1]!) * 1_000_000n + BigInt(m[2]!);
}

/** The sum of the downtime= values of one kind of event, read from the text. */
const downtimeSumUs = (text: string, event: 'save' | 'load') => [...text.matchAll(new RegExp(`vmstate_downtime_${event} .* downtime=(\\d+)$`, 'gm'))].reduce((t, m) => t + Number(m[1]), 0);

describe('parseDowntimeTrace', () => {
  it("reads the source's checkpoints in order and each section it saved", () => {
    const t = parseDowntimeTrace(SOURCE);
    expect(t.checkpoints.map((c) => c.name)).toEqual(['src-downtime-start', 'src-vm-stopped', 'src-iterable-saved', 'src-non-iterable-saved', 'src-downtime-end']);
    expect(t.checkpoints[0]!.atMs).toBeCloseTo(1796319645743.151, 3);
    expect(t.devices).toHaveLength(42);
    expect(t.devices.find((d) => d.idstr === '0000:00:02.0/virtio-net')).toEqual({ op: 'save', idstr: '0000:00:02.0/virtio-net', instanceId: 0, type: 'non-iterable', us: 372, atMs: expect.closeTo(1796319645746.766, 3) });
    expect(t.devices.filter((d) => d.type === 'iterable').map((d) => [d.idstr, d.us])).toEqual([['ram', 1123]]);
    expect(t.devices.filter((d) => d.idstr === 'smbus-eeprom').map((d) => d.instanceId)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it("reads the destination's loads, then its four pre-copy checkpoints", () => {
    const t = parseDowntimeTrace(DESTINATION);
    expect(t.checkpoints.map((c) => c.name)).toEqual(['dst-precopy-loadvm-completed', 'dst-precopy-bh-enter', 'dst-precopy-bh-announced', 'dst-precopy-bh-vm-started']);
    expect(t.devices).toHaveLength(32);
    expect(new Set(t.devices.map((d) => d.op))).toEqual(new Set(['load']));
    expect(t.devices.find((d) => d.idstr === '0000:00:02.0/virtio-net')?.us).toBe(3219);
  });

  it('skips what is no timestamped downtime event: warnings, blank lines, other trace events, bad arguments', () => {
    const noise = [
      '',
      '2026-12-03T10:20:45.001234Z qemu-system-x86_64: warning: host doesn\'t support requested feature: CPUID.80000001H:ECX.svm [bit 2]',
      '15612@1796319645.743200:migrate_set_state new state device',
      'vmstate_downtime_checkpoint src-downtime-start',
      '15612@1796319645.744000:vmstate_downtime_save type=weird idstr=x instance_id=0 downtime=5',
      '15612@1796319645.744000:vmstate_downtime_save type=iterable idstr=ram instance_id=0',
      '15612@1796319645.744000:vmstate_downtime_checkpoint',
      '15612@1796319645.744000:vmstate_downtime_checkpoint two words',
      'garbage@1796319645.744000:vmstate_downtime_checkpoint src-downtime-start',
    ];
    const lines = SOURCE.trimEnd().split('\n');
    // The noise between the real lines, and Windows line ends, as a copied file may have them.
    const noisy = lines.flatMap((l, i) => [l, noise[i % noise.length]!]).join('\r\n');
    expect(parseDowntimeTrace(noisy)).toEqual(parseDowntimeTrace(SOURCE));
    expect(parseDowntimeTrace(noise.join('\n'))).toEqual({ checkpoints: [], devices: [] });
  });
});

describe('downtimeBreakdown', () => {
  const b = downtimeBreakdown(parseDowntimeTrace(SOURCE), parseDowntimeTrace(DESTINATION))!;

  it('lays both sides on one time line, from src-downtime-start to the vCPUs running on the destination', () => {
    expect(b.phases.map((p) => [p.from, p.to, p.side, p.ms])).toEqual([
      ['src-downtime-start', 'src-vm-stopped', 'source', 0.293],
      ['src-vm-stopped', 'src-iterable-saved', 'source', 1.157],
      ['src-iterable-saved', 'src-non-iterable-saved', 'source', 2.21],
      ['src-non-iterable-saved', 'src-downtime-end', 'source', 0.033],
      ['src-downtime-end', 'dst-precopy-loadvm-completed', 'both', 6.775],
      ['dst-precopy-loadvm-completed', 'dst-precopy-bh-enter', 'destination', 0.029],
      ['dst-precopy-bh-enter', 'dst-precopy-bh-announced', 'destination', 0.016],
      ['dst-precopy-bh-announced', 'dst-precopy-bh-vm-started', 'destination', 0.114],
    ]);
    expect(b.phases[1]!.what).toBe("the source saves the iterable state (RAM's last dirty pages)");
    expect(b.phases[4]!.what).toBe('the last bytes cross the link and the destination loads them');
    expect(b.phases[7]!.what).toBe('the destination starts the vCPUs');
  });

  it("totals the pause as the destination's vm-started minus the source's src-downtime-start", () => {
    const us = stampUs(DESTINATION, 'dst-precopy-bh-vm-started') - stampUs(SOURCE, 'src-downtime-start');
    expect(b.totalMs).toBe(Number(us) / 1000);
    expect(b.totalMs).toBe(10.627);
    expect(b.phases.reduce((t, p) => t + p.ms, 0)).toBeCloseTo(10.627, 6);
  });

  it("lists each side's sections slowest first, an instance past the first by its number, and sums them", () => {
    expect(b.sourceDevices.slice(0, 3)).toEqual([
      { device: 'ram', type: 'iterable', ms: 1.123 },
      { device: '0000:00:01.3/piix4_pm', type: 'non-iterable', ms: 1.116 },
      { device: '0000:00:02.0/virtio-net', type: 'non-iterable', ms: 0.372 },
    ]);
    expect(b.sourceDevices.find((d) => d.device === 'i8259#1')?.ms).toBe(0.02);
    expect(b.destinationDevices[0]).toEqual({ device: '0000:00:02.0/virtio-net', type: 'non-iterable', ms: 3.219 });
    expect(b.sourceDevices).toHaveLength(42);
    expect(b.destinationDevices).toHaveLength(32);
    expect(b.sourceSaveMs).toBe(downtimeSumUs(SOURCE, 'save') / 1000);
    expect(b.destinationLoadMs).toBe(downtimeSumUs(DESTINATION, 'load') / 1000);
    expect([b.sourceSaveMs, b.destinationLoadMs]).toEqual([3.131, 8.037]);
  });

  it("takes the destination's clock offset off its times", () => {
    const ahead = parseDowntimeTrace(shifted(DESTINATION, 2));
    const unaligned = downtimeBreakdown(parseDowntimeTrace(SOURCE), ahead)!;
    expect(unaligned.totalMs).toBe(2010.627);
    expect(unaligned.phases[4]).toMatchObject({ from: 'src-downtime-end', to: 'dst-precopy-loadvm-completed', ms: 2006.775 });
    expect(downtimeBreakdown(parseDowntimeTrace(SOURCE), ahead, 2000)).toEqual(b);
    // A destination clock behind the source's: its checkpoints would precede the switchover.
    expect(downtimeBreakdown(parseDowntimeTrace(SOURCE), parseDowntimeTrace(shifted(DESTINATION, -3)), -3000)).toEqual(b);
  });

  it('keeps only the last switchover of a file that holds an earlier, failed one', () => {
    // The earlier attempt: 5 s before, a slow virtio-net, and the destination's load failed
    // (QEMU logs dst-precopy-loadvm-completed anyway, and no resume follows).
    const earlierSource = shifted(SOURCE, -5).replace(/(virtio-net instance_id=0 downtime=)372/, '$19999').replace(/^.*src-downtime-end\n/m, '');
    const earlierDestination = shifted(DESTINATION, -5).replace(/(virtio-net instance_id=0 downtime=)3219/, '$18888').replace(/^.*dst-precopy-bh-.*\n?/gm, '');
    const source = parseDowntimeTrace(earlierSource + SOURCE);
    const destination = parseDowntimeTrace(earlierDestination + DESTINATION);
    expect(source.checkpoints.filter((c) => c.name === 'src-downtime-start')).toHaveLength(2);
    expect(destination.checkpoints.filter((c) => c.name === 'dst-precopy-loadvm-completed')).toHaveLength(2);
    const kept = downtimeBreakdown(source, destination)!;
    expect(kept).toEqual(b);
    expect(kept.sourceDevices.some((d) => d.ms === 9.999)).toBe(false);
    expect(kept.destinationDevices.some((d) => d.ms === 8.888)).toBe(false);
  });

  it('is undefined when the source never began a switchover', () => {
    expect(downtimeBreakdown(parseDowntimeTrace(''), parseDowntimeTrace(DESTINATION))).toBeUndefined();
    const stoppedOnly = SOURCE.replace(/^.*src-downtime-start\n/m, '');
    expect(downtimeBreakdown(parseDowntimeTrace(stoppedOnly), parseDowntimeTrace(DESTINATION))).toBeUndefined();
  });

  it('has no total when the destination never started the vCPUs, and runs the phases to its last checkpoint', () => {
    const died = downtimeBreakdown(parseDowntimeTrace(SOURCE), parseDowntimeTrace(DESTINATION.replace(/^.*dst-precopy-bh-.*\n?/gm, '')))!;
    expect(died.totalMs).toBeUndefined();
    expect(died.phases.at(-1)).toMatchObject({ from: 'src-downtime-end', to: 'dst-precopy-loadvm-completed', ms: 6.775 });
    expect(died.destinationDevices).toHaveLength(32);
    expect(breakdownLines(died).some((l) => l.includes('**total**'))).toBe(false);
  });

  it("reads a post-copy destination's checkpoints, words an unknown one generically, and leaves out the RAM section loaded once the guest runs", () => {
    const at = (us: number) => `15562@1796319645.${753000 + us}`;
    const postcopy = [
      `${at(0)}:vmstate_downtime_load type=non-iterable idstr=0000:00:02.0/virtio-net instance_id=0 downtime=3000`,
      `${at(100)}:vmstate_downtime_checkpoint dst-precopy-loadvm-completed`,
      `${at(200)}:vmstate_downtime_checkpoint dst-postcopy-bh-enter`,
      `${at(500)}:vmstate_downtime_checkpoint dst-postcopy-bh-cpu-synced`,
      `${at(600)}:vmstate_downtime_checkpoint dst-postcopy-bh-announced`,
      `${at(700)}:vmstate_downtime_checkpoint dst-postcopy-bh-cache-invalidated`,
      `${at(900)}:vmstate_downtime_checkpoint dst-postcopy-bh-flags-cleared`,
      `${at(1000)}:vmstate_downtime_checkpoint dst-postcopy-bh-vm-started`,
      // Post-copy's end, long after the switchover: the last of RAM, the guest running.
      `15562@1796319649.000000:vmstate_downtime_load type=iterable idstr=ram instance_id=0 downtime=40000`,
    ].join('\n');
    const p = downtimeBreakdown(parseDowntimeTrace(SOURCE), parseDowntimeTrace(postcopy))!;
    expect(p.phases.slice(4).map((x) => [x.to, x.ms, x.what])).toEqual([
      ['dst-precopy-loadvm-completed', 6.256, 'the last bytes cross the link and the destination loads them'],
      ['dst-postcopy-bh-enter', 0.1, "the destination's main loop gets to the resume step (a bottom half)"],
      ['dst-postcopy-bh-cpu-synced', 0.3, 'the destination puts the vCPU registers into KVM'],
      ['dst-postcopy-bh-announced', 0.1, "the destination announces the guest's network cards"],
      ['dst-postcopy-bh-cache-invalidated', 0.1, 'the destination activates the disks'],
      ['dst-postcopy-bh-flags-cleared', 0.2, "up to QEMU's dst-postcopy-bh-flags-cleared checkpoint (miglab has no words for it yet)"],
      ['dst-postcopy-bh-vm-started', 0.1, 'the destination starts the vCPUs'],
    ]);
    expect(p.totalMs).toBe(10.849);
    expect(p.destinationDevices).toEqual([{ device: '0000:00:02.0/virtio-net', type: 'non-iterable', ms: 3 }]);
  });
});

describe('breakdownLines', () => {
  const b = downtimeBreakdown(parseDowntimeTrace(SOURCE), parseDowntimeTrace(DESTINATION))!;

  it('writes the phases table with a total row, then each side\'s slowest sections, a blank line between', () => {
    const lines = breakdownLines(b);
    expect(lines.slice(0, 3)).toEqual(['| phase | side | ms |', '| --- | --- | ---: |', '| the source stops the vCPUs (`src-downtime-start` → `src-vm-stopped`) | source | 0.293 |']);
    expect(lines).toContain('| the last bytes cross the link and the destination loads them (`src-downtime-end` → `dst-precopy-loadvm-completed`) | both | 6.78 |');
    expect(lines).toContain('| the source saves the devices\' state (the non-iterable sections) (`src-iterable-saved` → `src-non-iterable-saved`) | source | 2.21 |');
    expect(lines[10]).toBe('| **total**, the guest paused (`src-downtime-start` → `dst-precopy-bh-vm-started`) | both | 10.6 |');
    expect(lines.slice(11)).toEqual([
      '',
      'slowest to save (3.13 ms in all, 42 sections): `ram` (iterable) 1.12 ms, `piix4_pm` 1.12 ms, `virtio-net` 0.372 ms, `ide` 0.125 ms, `cpu` 0.066 ms',
      '',
      'slowest to load (8.04 ms in all, 32 sections): `virtio-net` 3.22 ms, `ram` (iterable) 1.24 ms, `piix4_pm` 1.24 ms, `kvm-tpr-opt` 0.92 ms, `I440FX` 0.573 ms',
    ]);
  });

  it('names as many devices as asked, the whole idstr where the last part is shared, and says when a side traced none', () => {
    const nic = (device: string, ms: number) => ({ device, type: 'non-iterable' as const, ms });
    const twoNics = { ...b, sourceDevices: [nic('0000:00:02.0/virtio-net', 0.5), nic('0000:00:03.0/virtio-net', 0.4), nic('cpu', 0.1)], destinationDevices: [] };
    const lines = breakdownLines(twoNics, 2);
    expect(lines.at(-3)).toBe(`slowest to save (3.13 ms in all, 3 sections): \`0000:00:02.0/virtio-net\` 0.5 ms, \`0000:00:03.0/virtio-net\` 0.4 ms`);
    expect(lines.at(-1)).toBe('slowest to load: none traced');
  });
});
