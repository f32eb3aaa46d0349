import { describe, expect, it } from '@jest/globals';
import { faultName, formatFault, parseFault, type FaultSpec } from '../../../src/fault/spec.js';
import { describeTrigger, isDue, progressPercent } from '../../../src/fault/trigger.js';
import { parseScenario, scenarioName } from '../../../src/migrate/scenario.js';
import { scenarioFromArgs } from '../../../src/cli/options.js';

describe('fault compact form', () => {
  it('parses every kind and WHEN form, and formats back to the same text', () => {
    const cases: [string, FaultSpec][] = [
      ['kill-dst@2s', { kind: 'kill-dst', when: { kind: 'time', afterMs: 2000 } }],
      ['kill-src@500ms', { kind: 'kill-src', when: { kind: 'time', afterMs: 500 } }],
      ['freeze-dst:5s@pass:2', { kind: 'freeze-dst', durationMs: 5000, when: { kind: 'pass', pass: 2 } }],
      ['freeze-src@50%', { kind: 'freeze-src', when: { kind: 'progress', percent: 50 } }],
      ['link-down:3s@postcopy-active', { kind: 'link-down', durationMs: 3000, when: { kind: 'status', status: 'postcopy-active' } }],
      ['link-loss:20:3s@2s', { kind: 'link-loss', lossPercent: 20, durationMs: 3000, when: { kind: 'time', afterMs: 2000 } }],
      ['link-loss:2.5@12.5%', { kind: 'link-loss', lossPercent: 2.5, when: { kind: 'progress', percent: 12.5 } }],
      ['nfs-down@pass:1', { kind: 'nfs-down', when: { kind: 'pass', pass: 1 } }],
      ['nfs-freeze:1500ms@device', { kind: 'nfs-freeze', durationMs: 1500, when: { kind: 'status', status: 'device' } }],
      ['guest-oom@0s', { kind: 'guest-oom', when: { kind: 'time', afterMs: 0 } }],
    ];
    for (const [text, spec] of cases) {
      expect(parseFault(text)).toEqual(spec);
      expect(parseFault(formatFault(spec))).toEqual(spec);
    }
    expect(formatFault(parseFault('freeze-dst:5000ms@pass:2'))).toBe('freeze-dst:5s@pass:2');
  });

  it('names runs from the values, file-safe', () => {
    expect(faultName(parseFault('kill-dst@2s'))).toBe('kill-dst-2s');
    expect(faultName(parseFault('freeze-dst:5s@pass:2'))).toBe('freeze-dst-5s-pass2');
    expect(faultName(parseFault('link-loss:20:3s@50%'))).toBe('link-loss-20pct-3s-50pct');
    expect(faultName(parseFault('nfs-freeze:1500ms@2.5s'))).toBe('nfs-freeze-1500ms-2500ms');
  });

  it('says what is wrong with bad input, in one line with the accepted forms', () => {
    const bad: [string, RegExp][] = [
      ['kill-dst', /say when it happens after "@"/],
      ['explode@2s', /"explode" is not a fault kind/],
      ['kill-dst:5s@2s', /kill-dst takes no arguments/],
      ['freeze-dst:soon@2s', /"soon" is not a duration/],
      ['freeze-dst:1s:2s@2s', /too many arguments/],
      ['link-loss@2s', /link-loss needs a loss percentage/],
      ['link-loss:150@2s', /link-loss needs a loss percentage above 0 and at most 100/],
      ['kill-dst@pass:0', /passes count from 1/],
      ['kill-dst@0%', /a share of RAM sent is above 0 % and at most 100 %, not 0%/],
      ['kill-dst@101%', /at most 100 %, not 101%/],
      ['kill-dst@2s,kill-src@3s', /one fault at a time; repeat --fault for each fault/],
      ['kill-dst@colo', /is not a time, pass:N, a percentage or a migration status \(setup, active/],
      ['kill-dst@whenever', /is not a time, pass:N, a percentage or a migration status/],
    ];
    for (const [text, re] of bad) {
      expect(() => parseFault(text)).toThrow(re);
      expect(() => parseFault(text)).toThrow(/^invalid fault ".*"/);
    }
  });

  it('is validated with the scenario: unreachable faults are refused before anything starts', () => {
    const s = parseScenario({ faults: ['kill-dst@2s', { kind: 'link-down', durationMs: 1000, when: { kind: 'pass', pass: 2 } }] });
    expect(s.faults.map(formatFault)).toEqual(['kill-dst@2s', 'link-down:1s@pass:2']);
    expect(scenarioName(s)).toMatch(/-kill-dst-2s-link-down-1s-pass2$/);
    expect(() => parseScenario({ faults: ['kill-dst@postcopy-active'] })).toThrow(/waits for post-copy, which this run never enters/);
    expect(() => parseScenario({ timeoutMs: 5000, faults: ['kill-dst@5s'] })).toThrow(/after the migration's deadline/);
    expect(() => parseScenario({ faults: ['kill-dst'] })).toThrow(/faults.0/);
    expect(() => parseScenario({ faults: [{ kind: 'kill-dst', durationMs: 5, when: { kind: 'time', afterMs: 0 } }] })).toThrow(/takes no duration/);
  });

  it('comes from the command line (--fault, repeatable; --stall-after)', () => {
    const base = { memory: '256M', vcpus: 1, accel: 'tcg', cpu: 'qemu64', nic: 'virtio-net-pci', disk: 'virtio', 'disk-size': '64M', monitor: 'qmp', port: '4444', capability: [], 'sample-interval': '100ms', timeout: '30s' };
    const s = parseScenario(scenarioFromArgs({ ...base, fault: ['kill-dst@2s', 'nfs-freeze:3s@pass:2'], 'stall-after': '20s' }));
    expect(s.faults.map(formatFault)).toEqual(['kill-dst@2s', 'nfs-freeze:3s@pass:2']);
    expect(s.stallAfterMs).toBe(20000);
    expect(() => scenarioFromArgs({ ...base, fault: ['kill-dst@soon'] })).toThrow(/^--fault kill-dst@soon: "soon" is not a time/);
  });
});

describe('fault triggers', () => {
  it('fire on time, pass, share of RAM sent and status', () => {
    expect(isDue({ kind: 'time', afterMs: 2000 }, { tMs: 1999 })).toBe(false);
    expect(isDue({ kind: 'time', afterMs: 2000 }, { tMs: 2000 })).toBe(true);
    expect(isDue({ kind: 'pass', pass: 2 }, { tMs: 0 })).toBe(false);
    expect(isDue({ kind: 'pass', pass: 2 }, { tMs: 0, pass: 2 })).toBe(true);
    expect(isDue({ kind: 'progress', percent: 50 }, { tMs: 0, totalBytes: 100, remainingBytes: 51 })).toBe(false);
    expect(isDue({ kind: 'progress', percent: 50 }, { tMs: 0, totalBytes: 100, remainingBytes: 50 })).toBe(true);
    // Before QEMU has counted the RAM there is no share to speak of.
    expect(progressPercent({ tMs: 0, totalBytes: 0, remainingBytes: 0 })).toBeUndefined();
    expect(isDue({ kind: 'status', status: 'postcopy-active' }, { tMs: 0, status: 'active' })).toBe(false);
    expect(isDue({ kind: 'status', status: 'postcopy-active' }, { tMs: 0, status: 'postcopy-active' })).toBe(true);
  });

  it('describe what the run saw when they fired', () => {
    expect(describeTrigger({ kind: 'pass', pass: 2 }, { tMs: 1834.4, pass: 2 })).toBe('when pass 2 began (1834 ms after migrate)');
    expect(describeTrigger({ kind: 'progress', percent: 50 }, { tMs: 900, totalBytes: 200, remainingBytes: 99 })).toBe('when 50.5 % of RAM was sent (900 ms after migrate)');
    expect(describeTrigger({ kind: 'time', afterMs: 2000 }, { tMs: 2003 })).toBe('2003 ms after migrate');
  });
});
