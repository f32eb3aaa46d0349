import { parse as parseYaml } from 'yaml';
import { UsageError } from '../../../src/errors.js';
import { formatWorkload, parseWorkload, workloadName, WorkloadSpecSchema, type WorkloadSpec } from '../../../src/workload/spec.js';

describe('parseWorkload (the compact CLI form)', () => {
  it.each<[string, WorkloadSpec]>([
    ['idle', { kind: 'idle' }],
    ['cpu', { kind: 'cpu' }],
    ['CPU', { kind: 'cpu' }],
    ['dirty:512M@200M/s,random', { kind: 'dirty', wssMiB: 512, rateMiBps: 200, pattern: 'random' }],
    ['dirty:256M@0,sequential', { kind: 'dirty', wssMiB: 256, rateMiBps: 0, pattern: 'sequential' }],
    ['dirty:1G@1G/s,seq', { kind: 'dirty', wssMiB: 1024, rateMiBps: 1024, pattern: 'sequential' }],
    ['dirty:64@32', { kind: 'dirty', wssMiB: 64, rateMiBps: 32, pattern: 'sequential' }],
    ['dirty: 128MiB @ 0M/s , random', { kind: 'dirty', wssMiB: 128, rateMiBps: 0, pattern: 'random' }],
    ['disk:1M/s', { kind: 'disk', rateKiBps: 1024 }],
    ['disk:512K/s', { kind: 'disk', rateKiBps: 512 }],
    ['disk:300', { kind: 'disk', rateKiBps: 300 }],
    ['disk:0', { kind: 'disk', rateKiBps: 0 }],
    ['net', { kind: 'net' }],
    ['net:reverse', { kind: 'net', reverse: true }],
    ['net:100M,reverse', { kind: 'net', bitrate: '100M', reverse: true }],
  ])('%s', (text, spec) => {
    expect(parseWorkload(text)).toEqual(spec);
  });

  it.each<[string, RegExp]>([
    ['', /unknown workload ""; use one of idle, cpu, dirty:/],
    ['stress', /unknown workload "stress"; use one of/],
    ['cpu:4', /cpu takes no options; write just "cpu"/],
    ['dirty', /lacks its working set and rate; write dirty:<working set>@<rate>/],
    ['dirty:512M', /workload "dirty:512M" lacks its write rate \(after @\); write dirty:/],
    ['dirty:lots@200M/s', /invalid workload "dirty:lots@200M\/s"; write dirty:/],
    ['dirty:512M@fast', /invalid workload/],
    ['dirty:512M@200M/s,zigzag', /unknown pattern "zigzag"; use sequential or random/],
    ['dirty:512M@200M/s,random,extra', /invalid workload/],
    ['dirty:1.5M@10', /whole number of MiB/],
    ['dirty:512M@1.5M/s', /whole number of MiB\/s/],
    ['disk', /lacks its rate; write disk:<rate>, e.g. disk:1M\/s/],
    ['disk:slow', /invalid workload "disk:slow"; write disk:/],
    ['disk:100B/s', /whole number of KiB\/s/],
    ['net:sideways', /unexpected "sideways"; write net, net:reverse/],
    ['net:reverse,reverse', /unexpected "reverse"/],
    ['net:', /invalid workload "net:"/],
  ])('refuses %j with a one-line hint', (text, message) => {
    let err: unknown;
    try {
      parseWorkload(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).code).toBe('BAD_INPUT');
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain('\n');
  });

  it('round-trips through formatWorkload', () => {
    for (const t of ['idle', 'cpu', 'dirty:512M@200M/s,random', 'dirty:256M@0,sequential', 'disk:1M/s', 'net', 'net:reverse', 'net:1G,reverse']) {
      const s = parseWorkload(t);
      expect(parseWorkload(formatWorkload(s))).toEqual(s);
    }
  });
});

describe('workloadName', () => {
  it.each<[string, string]>([
    ['idle', 'idle'],
    ['cpu', 'cpu'],
    ['dirty:512M@200M/s,random', 'dirty512m-200mbps-random'],
    ['dirty:256M@0,sequential', 'dirty256m-max-sequential'],
    ['dirty:2G@300,seq', 'dirty2g-300mbps-sequential'],
    ['disk:1M/s', 'disk1mbps'],
    ['disk:512K/s', 'disk512kbps'],
    ['disk:0', 'diskmax'],
    ['net', 'net'],
    ['net:reverse', 'net-reverse'],
    ['net:100M,reverse', 'net-100m-reverse'],
  ])('%s -> %s', (text, name) => {
    expect(workloadName(parseWorkload(text))).toBe(name);
    expect(name).toMatch(/^[a-z0-9-]+$/);
  });

  it('names a non-default record size', () => {
    expect(workloadName({ kind: 'disk', rateKiBps: 1024, recordBytes: 8192 })).toBe('disk1mbps-rec8k');
    expect(workloadName({ kind: 'disk', rateKiBps: 1024, recordBytes: 4096 })).toBe('disk1mbps');
  });
});

describe('WorkloadSpecSchema (inside YAML specs)', () => {
  it('takes objects, filling the default pattern', () => {
    const doc = parseYaml('workload:\n  kind: dirty\n  wssMiB: 512\n  rateMiBps: 200\n') as { workload: unknown };
    expect(WorkloadSpecSchema.parse(doc.workload)).toEqual({ kind: 'dirty', wssMiB: 512, rateMiBps: 200, pattern: 'sequential' });
    expect(WorkloadSpecSchema.parse({ kind: 'net', reverse: true, bitrate: '1G' })).toEqual({ kind: 'net', reverse: true, bitrate: '1G' });
  });

  it('takes the compact string', () => {
    const doc = parseYaml('workloads: [idle, "dirty:512M@200M/s,random", "disk:1M/s"]') as { workloads: unknown[] };
    expect(doc.workloads.map((w) => WorkloadSpecSchema.parse(w))).toEqual([
      { kind: 'idle' },
      { kind: 'dirty', wssMiB: 512, rateMiBps: 200, pattern: 'random' },
      { kind: 'disk', rateKiBps: 1024 },
    ]);
  });

  it('refuses bad values, saying why', () => {
    expect(WorkloadSpecSchema.safeParse({ kind: 'dirty', wssMiB: 0, rateMiBps: 10 }).success).toBe(false);
    expect(WorkloadSpecSchema.safeParse({ kind: 'disk', rateKiBps: 10, recordBytes: 1000 }).success).toBe(false);
    expect(WorkloadSpecSchema.safeParse({ kind: 'cpu', threads: 2 }).success).toBe(false);
    expect(WorkloadSpecSchema.safeParse({ kind: 'net', bitrate: 'fast' }).success).toBe(false);
    const r = WorkloadSpecSchema.safeParse('dirty:512M@200M/s,zigzag');
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toContain('unknown pattern \\"zigzag\\"');
  });
});
