// Pure builders of the lab: ganesha's config and the tc command lines for shaping.
import { describe, expect, it } from '@jest/globals';
import { ganeshaConfig, nfsUrl } from '../../../src/lab/ganesha.js';
import { clearArgv, isNoQdiscError, isUnknownQdiscError, netemLimitPackets, shapingArgv, tbfBurstBytes } from '../../../src/lab/tc.js';

describe('ganeshaConfig', () => {
  const conf = ganeshaConfig({ serverIp: '10.77.0.1', clients: '10.77.0.0/24', exportDir: '/run/miglab/mlab/export', recoveryRoot: '/run/miglab/mlab/nfs/recov' });

  it('binds to the server address only and allows only the lab subnet', () => {
    expect(conf).toMatch(/Bind_Addr = 10\.77\.0\.1;/);
    expect(conf).toMatch(/CLIENT \{ Clients = 10\.77\.0\.0\/24; Access_Type = RW; \}/);
  });

  it('exports the directory read-write over NFSv3 and v4 with the VFS backend', () => {
    expect(conf).toMatch(/Path = \/run\/miglab\/mlab\/export;/);
    expect(conf).toMatch(/Protocols = 3, 4;/);
    expect(conf).toMatch(/FSAL \{ Name = VFS; \}/);
    expect(conf).toMatch(/Squash = No_Root_Squash;/);
  });

  it('keeps recovery state in the lab directory and skips the grace period', () => {
    expect(conf).toMatch(/RecoveryRoot = \/run\/miglab\/mlab\/nfs\/recov;/);
    expect(conf).toMatch(/Graceless = true;/);
  });

  it('has balanced braces', () => {
    expect((conf.match(/\{/g) ?? []).length).toBe((conf.match(/\}/g) ?? []).length);
  });

  it('builds NFSv3 URLs from the real path', () => {
    expect(nfsUrl('10.77.0.1', '/run/miglab/mlab/export', 'd.qcow2')).toBe('nfs://10.77.0.1/run/miglab/mlab/export/d.qcow2');
    expect(nfsUrl('10.77.0.1', '/srv/x')).toBe('nfs://10.77.0.1/srv/x');
  });
});

describe('shapingArgv', () => {
  it('uses tbf for a bandwidth limit alone (every kernel has it)', () => {
    expect(shapingArgv('up0', { bandwidthMbit: 50 })).toEqual(['tc', 'qdisc', 'replace', 'dev', 'up0', 'root', 'tbf', 'rate', '50000kbit', 'burst', '32768', 'latency', '50ms']);
    expect(tbfBurstBytes(10_000)).toBe(6_250_000);
  });

  it('uses netem for delay, jitter, loss, with the rate folded in', () => {
    expect(shapingArgv('up0', { bandwidthMbit: 100, delayMs: 10, jitterMs: 2, lossPct: 0.5 })).toEqual([
      'tc', 'qdisc', 'replace', 'dev', 'up0', 'root', 'netem', 'limit', '1000', 'delay', '10ms', '2ms', 'loss', '0.5%', 'rate', '100000kbit',
    ]);
    expect(shapingArgv('up0', { lossPct: 1 })).toEqual(['tc', 'qdisc', 'replace', 'dev', 'up0', 'root', 'netem', 'limit', '1000', 'loss', '1%']);
  });

  it('keeps fractional values exact and free of exponents', () => {
    expect(shapingArgv('up0', { bandwidthMbit: 0.5, delayMs: 0.1 })).toContain('500kbit');
    expect(shapingArgv('up0', { bandwidthMbit: 0.5, delayMs: 0.1 })).toContain('0.1ms');
  });

  it('sizes the netem queue to the bandwidth-delay product', () => {
    expect(netemLimitPackets({ bandwidthMbit: 50 })).toBe(1000);
    // 1 Gbit/s over 200 + 50 ms: 31.25 MB, about 20834 packets.
    expect(netemLimitPackets({ bandwidthMbit: 1000, delayMs: 200 })).toBe(20834);
  });

  it('refuses an empty shaping (that is clearArgv)', () => {
    expect(() => shapingArgv('up0', {})).toThrow(/empty/);
    expect(clearArgv('up0')).toEqual(['tc', 'qdisc', 'del', 'dev', 'up0', 'root']);
  });

  it('recognises tc answers', () => {
    expect(isNoQdiscError('Error: Cannot delete qdisc with handle of zero.')).toBe(true);
    expect(isUnknownQdiscError('Error: Specified qdisc kind is unknown.')).toBe(true);
    expect(isUnknownQdiscError('Error: Cannot delete qdisc with handle of zero.')).toBe(false);
  });
});
