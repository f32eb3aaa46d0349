// A sweep over QEMU builds: the grid's qemu values become each point's scenario (SOURCE->DESTINATION
// is a migration between two builds), and the report's version matrix says per point whether it
// worked and, when not, why, from the saved reports alone.
import { describe, expect, it } from '@jest/globals';
import { expandGrid, parseSweepSpec, qemuOfGridValue } from '../../../src/sweep/spec.js';
import { qemuMatrix } from '../../../src/sweep/qemu-matrix.js';
import { summarizePoints } from '../../../src/sweep/summary.js';
import type { RunEntry } from '../../../src/sweep/results.js';
import { fakeReport } from './fake-report.js';

describe('grid.qemu', () => {
  it('reads one build, or SOURCE->DESTINATION', () => {
    expect(qemuOfGridValue('10.0')).toEqual({ source: '10.0' });
    expect(qemuOfGridValue('system->10.0')).toEqual({ source: 'system', destination: '10.0' });
    expect(qemuOfGridValue('10.0 -> 10.0')).toEqual({ source: '10.0' });
  });

  it('names points after the builds, machine type and devices, and puts them in the scenario', () => {
    const spec = parseSweepSpec({ name: 'qv', grid: { qemu: ['system', 'system->10.0'], machineType: ['auto', 'pc'], nicModel: ['e1000'] } });
    const points = expandGrid(spec);
    expect(points.map((p) => p.name)).toEqual(['qemu-system-mt-auto', 'qemu-system-mt-pc', 'qemu-system-to-10.0-mt-auto', 'qemu-system-to-10.0-mt-pc']);
    expect(points[3]!.scenario).toMatchObject({ qemu: { source: 'system', destination: '10.0' }, guest: { machineType: 'pc', nicModel: 'e1000' } });
  });
});

describe('qemuMatrix', () => {
  const entry = (point: string, qemu: { source: string; destination?: string }, machineType: string, ok: boolean, dstVersion: string): RunEntry => {
    const r = fakeReport({ scenario: { qemu, guest: { machineType } }, verdict: ok ? 'completed' : 'failed', downtimeMs: 20, totalTimeMs: 900 });
    const failure = ok ? undefined : "QEMU reports the migration failed: ...; its last words: qemu-system-x86_64: Machine type received is 'pc-i440fx-10.0' and local is 'pc-i440fx-7.2'";
    return { point, dir: `/r/${point}`, report: { ...r, failure, inputs: { ...r.inputs, qemu: { ...r.inputs.qemu, version: qemu.source === 'system' ? '7.2.22' : '10.0.2', destination: { version: dstVersion }, machineType: machineType === 'auto' ? 'pc-i440fx-7.2' : 'pc' } } } };
  };

  it('is absent when the builds do not vary', () => {
    expect(qemuMatrix(summarizePoints([entry('a', { source: 'system' }, 'auto', true, '7.2.22')]))).toBeUndefined();
  });

  it('gives each direction its outcome, versions and machine type, and the reason of a failure', () => {
    const entries = [
      entry('qemu-10.0-to-system-mt-auto', { source: '10.0', destination: 'system' }, 'auto', true, '7.2.22'),
      entry('qemu-10.0-to-system-mt-pc', { source: '10.0', destination: 'system' }, 'pc', false, '7.2.22'),
      entry('qemu-system-mt-auto', { source: 'system' }, 'auto', true, '7.2.22'),
    ];
    const m = qemuMatrix(summarizePoints(entries))!;
    expect(m.map((r) => [r.builds, r.versions, r.with, r.machineType, r.outcome])).toEqual([
      ['10.0->system', '10.0.2 -> 7.2.22', 'machineType=auto', 'pc-i440fx-7.2', 'works'],
      ['10.0->system', '10.0.2 -> 7.2.22', 'machineType=pc', 'pc', 'fails'],
      ['system', '7.2.22', 'machineType=auto', 'pc-i440fx-7.2', 'works'],
    ]);
    expect(m[1]!.why).toMatch(/Machine type received is 'pc-i440fx-10\.0' and local is 'pc-i440fx-7\.2'/);
    expect(m[0]!.downtimeMs).toBe(20);
    expect(m[1]!.downtimeMs).toBeUndefined();
  });
});
