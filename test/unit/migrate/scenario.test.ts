import { scenarioFromArgs, scenarioFromArgsChecked, shapingFromArgs } from '../../../src/cli/options.js';
import { hmpParameterCommands, qmpParameters } from '../../../src/migrate/monitor.js';
import { derivePasses, type Sample } from '../../../src/migrate/report.js';
import { parseScenario, scenarioName } from '../../../src/migrate/scenario.js';

const args = {
  memory: '512M', vcpus: 1, accel: 'tcg', cpu: 'qemu64', nic: 'e1000', disk: 'ide', 'disk-size': '64M', monitor: 'hmp', port: '4444',
  'max-bandwidth': '1G/s', 'downtime-limit': '50ms', capability: ['xbzrle'], 'sample-interval': '100ms', timeout: '30s',
};

describe('scenario', () => {
  it('turns CLI options into a validated scenario whose name derives from its values', () => {
    const s = parseScenario(scenarioFromArgs(args));
    expect(s.guest).toMatchObject({ memoryMiB: 512, nicModel: 'e1000', diskInterface: 'ide', diskSizeMiB: 64 });
    expect(s.parameters).toEqual({ maxBandwidthMiBps: 1024, downtimeLimitMs: 50 });
    expect(scenarioName(s)).toBe('512m-idle-e1000-ide-hmp-bw1024-dl50-xbzrle');
    expect(scenarioName(parseScenario(scenarioFromArgs({ ...args, workload: 'dirty:256M@64M/s,random' })))).toMatch(/^512m-dirty256m-64mbps-random-e1000/);
  });

  it('starts the guest cold unless a warm start is asked for', () => {
    expect(parseScenario(scenarioFromArgs(args)).guest.start).toBe('cold');
    expect(parseScenario(scenarioFromArgs({ ...args, start: 'warm' })).guest.start).toBe('warm');
    // Named apart: a warm start changes QEMU's figures.
    expect(scenarioName(parseScenario(scenarioFromArgs({ ...args, start: 'warm' })))).toBe('512m-idle-e1000-ide-hmp-warm-bw1024-dl50-xbzrle');
    expect(parseScenario({}).guest.start).toBe('cold');
    expect(() => parseScenario({ guest: { start: 'hot' as never } })).toThrow(/start/);
  });

  it('rejects contradictions before anything starts', () => {
    expect(() => parseScenario({ postcopyAfterMs: 1000 })).toThrow(/postcopy-ram/);
    expect(() => parseScenario({ port: 4444, hmpTelnetPort: 4444 })).toThrow(/both 4444/);
    expect(() => parseScenario({ port: 80 })).toThrow(/port/);
    expect(() => scenarioFromArgs({ ...args, port: 'x' })).toThrow('--port x: not a port; give a number from 1 to 65535');
  });

  it('maps parameters to QEMU names and units on both monitors', () => {
    expect(qmpParameters({ maxBandwidthMiBps: 1024, downtimeLimitMs: 50, xbzrleCacheMiB: 64 })).toEqual({
      'max-bandwidth': 1073741824, 'downtime-limit': 50, 'xbzrle-cache-size': 67108864,
    });
    expect(hmpParameterCommands({ maxBandwidthMiBps: 1024, downtimeLimitMs: 50 })).toEqual([
      'migrate_set_parameter max-bandwidth 1048576K', 'migrate_set_parameter downtime-limit 50',
    ]);
  });

  it('parses link shaping options', () => {
    expect(shapingFromArgs({ bandwidth: '100mbit', delay: '5ms' })).toEqual({ bandwidthMbit: 100, delayMs: 5, lossPct: undefined });
    expect(shapingFromArgs({})).toBeUndefined();
    expect(() => shapingFromArgs({ loss: 101 })).toThrow(/--loss/);
  });
});

describe('derivePasses', () => {
  const timeline: Sample[] = [
    { tMs: 0, status: 'active', dirtySyncCount: 1, remainingBytes: 100 },
    { tMs: 100, status: 'active', dirtySyncCount: 1, remainingBytes: 50 },
    { tMs: 200, status: 'active', dirtySyncCount: 2, remainingBytes: 20 },
    { tMs: 300, status: 'completed', dirtySyncCount: 3, remainingBytes: 0 },
  ];
  it('uses dirty-sync-count changes when there are no pass events', () => {
    expect(derivePasses(timeline, []).map((p) => [p.pass, p.tMs, p.remainingBytes])).toEqual([[1, 0, 100], [2, 200, 20], [3, 300, 0]]);
  });
  it('prefers MIGRATION_PASS events', () => {
    const passes = derivePasses(timeline, [{ tMs: 150, side: 'source', event: 'MIGRATION_PASS', data: { pass: 2 } }]);
    expect(passes).toEqual([expect.objectContaining({ pass: 2, tMs: 150, source: 'event', remainingBytes: 20 })]);
  });
});

describe('workloads that cannot fit', () => {
  it('refuses a dirty working set larger than the guest can hold, before anything boots, with the memory that would do', () => {
    expect(() => parseScenario({ guest: { memoryMiB: 128 }, workload: 'dirty:64M@8M/s' })).toThrow(
      'a dirty working set of 64 MiB does not fit in a 128 MiB guest (at most 24 MiB does: its kernel and initramfs take about 100 MiB); give the guest at least 192 MiB (--memory 192M; guest.memoryMiB in a spec), or dirty a smaller working set',
    );
    expect(() => parseScenario({ guest: { memoryMiB: 256 }, workload: 'dirty:5G@8M/s' })).toThrow(/at least 5440 MiB \(--memory 5440M/);
    expect(parseScenario({ guest: { memoryMiB: 192 }, workload: 'dirty:64M@8M/s' }).workload).toMatchObject({ wssMiB: 64 });
    expect(parseScenario({ guest: { memoryMiB: 512 }, workload: 'dirty:256M@8M/s' }).workload).toMatchObject({ wssMiB: 256 });
  });
});

describe('command-line values out of range', () => {
  it('are reported against the option and the value as typed', () => {
    const base = { memory: '256M', vcpus: 1, accel: 'tcg', cpu: 'qemu64', nic: 'virtio-net-pci', disk: 'virtio', 'disk-size': '64M', monitor: 'qmp', port: '4444', capability: [], 'sample-interval': '100ms', timeout: '30s' };
    expect(() => scenarioFromArgsChecked({ ...base, memory: '5T' })).toThrow('--memory 5T: too large; give from 64M to 64G (a size like 256M or 1G)');
    expect(() => scenarioFromArgsChecked({ ...base, timeout: '5' })).toThrow('--timeout 5: too short (a bare number is milliseconds); give at least 1s (a duration like 500ms, 90s or 2m)');
    expect(() => scenarioFromArgsChecked({ ...base, 'stall-after': '500ms' })).toThrow('--stall-after 500ms: too short; give at least 1s (a duration like 500ms, 90s or 2m)');
    expect(() => scenarioFromArgsChecked({ ...base, 'max-bandwidth': '0' })).toThrow('--max-bandwidth 0: too small; give more than 0 (a rate in bytes per second like 128M/s or 1G/s)');
    expect(scenarioFromArgsChecked(base).timeoutMs).toBe(30000);
  });
});
