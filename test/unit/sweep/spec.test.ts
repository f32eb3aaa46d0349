import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ScenarioSchema } from '../../../src/migrate/scenario.js';
import { expandGrid, loadSweepSpec, parseSweepSpec, parseSweepYaml, validateSweep } from '../../../src/sweep/spec.js';

const EXAMPLES = join(process.cwd(), 'examples', 'sweeps');

describe('expandGrid', () => {
  it('takes the cartesian product in a stable order, named by the values that vary', () => {
    const spec = parseSweepSpec({
      name: 's',
      base: { guest: { memoryMiB: 256, accel: 'tcg' }, parameters: { downtimeLimitMs: 100 } },
      grid: { memoryMiB: [512, 1024], maxBandwidthMiBps: [1024], capabilities: [[], ['xbzrle'], ['xbzrle', 'multifd']] },
    });
    const points = expandGrid(spec);
    expect(points.map((p) => p.name)).toEqual([
      'mem512-caps-none',
      'mem512-caps-xbzrle',
      'mem512-caps-xbzrle-multifd',
      'mem1024-caps-none',
      'mem1024-caps-xbzrle',
      'mem1024-caps-xbzrle-multifd',
    ]);
    expect(points[2]!.scenario).toEqual({
      guest: { memoryMiB: 512, accel: 'tcg' },
      parameters: { downtimeLimitMs: 100, maxBandwidthMiBps: 1024 },
      capabilities: { xbzrle: true, multifd: true },
    });
    expect(points[0]!.varying).toEqual(['memoryMiB', 'capabilities']);
    expect(points.every((p) => p.shaping === undefined)).toBe(true);
    // The base is not shared between points.
    expect(spec.base.guest).toEqual({ memoryMiB: 256, accel: 'tcg' });
  });

  it('varies faults (none, one, several in one run) and TLS, named by their values', () => {
    const spec = parseSweepSpec({ name: 'f', grid: { faults: ['none', 'kill-dst@2s', ['freeze-dst:2s@pass:2', 'link-loss:20:3s@50%']], tls: [false, true] } });
    const points = validateSweep(spec);
    expect(points.map((p) => p.name)).toEqual([
      'no-fault-plain',
      'no-fault-tls',
      'kill-dst-2s-plain',
      'kill-dst-2s-tls',
      'freeze-dst-2s-pass2+link-loss-20pct-3s-50pct-plain',
      'freeze-dst-2s-pass2+link-loss-20pct-3s-50pct-tls',
    ]);
    expect(points[0]!.parsed.faults).toEqual([]);
    expect(points[3]!.parsed).toMatchObject({ tls: true, faults: [{ kind: 'kill-dst', when: { kind: 'time', afterMs: 2000 } }] });
    expect(points[4]!.parsed.faults).toHaveLength(2);
    // Workloads in their compact form are named as run names name them.
    expect(expandGrid(parseSweepSpec({ name: 'w', grid: { workload: ['idle', 'dirty:32M@8M/s,random'] } })).map((p) => p.name)).toEqual(['idle', 'dirty32m-8mbps-random']);
    expect(() => validateSweep(parseSweepSpec({ name: 'g', grid: { faults: ['explode@2s'] } }))).toThrow(/^sweep g, point base: invalid migration scenario: faults.0: invalid fault "explode@2s": "explode" is not a fault kind \(kill-dst, .*\); write KIND/);
  });

  it('names link shaping, monitors, downtime limits and workloads', () => {
    const points = expandGrid(
      parseSweepSpec({
        name: 's',
        grid: {
          workload: ['idle', { kind: 'dirty', sizeMiB: 256, rateMiBps: 64, pattern: 'random' }, { kind: 'dirty', sizeMiB: 256, rateMiBps: 128, pattern: 'random' }],
          downtimeLimitMs: [50, 300],
          linkBandwidthMbit: [100, null],
          monitor: ['qmp', 'hmp'],
        },
      }),
    );
    expect(points).toHaveLength(24);
    expect(points.slice(0, 4).map((p) => p.name)).toEqual(['idle-dl50-link100-qmp', 'idle-dl50-link100-hmp', 'idle-dl50-link-unshaped-qmp', 'idle-dl50-link-unshaped-hmp']);
    expect(points[8]!.name).toBe('dirty-rate64-dl50-link100-qmp');
    expect(points[8]!.scenario).toMatchObject({ workload: { kind: 'dirty', rateMiBps: 64 }, parameters: { downtimeLimitMs: 50 }, monitor: 'qmp' });
    expect(points[0]!.shaping).toEqual({ bandwidthMbit: 100 });
    expect(points[2]!.shaping).toBeNull();
  });

  it('names a grid without variation "base" and applies the sweep deadline', () => {
    const [p] = expandGrid(parseSweepSpec({ name: 's', grid: { memoryMiB: [128] }, timeoutMs: 30000 }));
    expect(p!.name).toBe('base');
    expect(p!.scenario).toEqual({ guest: { memoryMiB: 128 }, timeoutMs: 30000 });
  });

  it('keeps postcopyAfterMs only where postcopy-ram is on', () => {
    const points = validateSweep(parseSweepSpec({ name: 's', base: { postcopyAfterMs: 1000 }, grid: { capabilities: [[], ['postcopy-ram']] } }));
    expect(points[0]!.parsed.postcopyAfterMs).toBeUndefined();
    expect(points[1]!.parsed.postcopyAfterMs).toBe(1000);
  });

  it('refuses a value listed twice (two points would share a name)', () => {
    expect(() => expandGrid(parseSweepSpec({ name: 's', grid: { memoryMiB: [128, 128] } }))).toThrow(/both named "mem128"/);
  });
});

describe('sweep spec errors: one line with the path', () => {
  it.each([
    ['name: s\ngrid:\n  memroyMiB: [1]\n', /^f\.yaml: unknown key grid\.memroyMiB$/],
    ['name: s\nfoo: 1\n', /unknown key foo/],
    ['name: s\ngrid:\n  capabilities: [[xbzrle, turbo]]\n', /grid\.capabilities\[0\]\[1\]/],
    ['name: s\ngrid:\n  memoryMiB: []\n', /grid\.memoryMiB: give at least one value/],
    ['name: s\nrepetitions: 0\n', /repetitions/],
    ['grid: {}\n', /name/],
    ['name: s\ngrid: [unclosed\n', /^f\.yaml:\d+:\d+: invalid YAML: /],
  ])('%j', (yaml, message) => {
    let err: unknown;
    try {
      parseSweepYaml(yaml, 'f.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'BAD_INPUT' });
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain('\n');
  });

  it('names the point whose scenario is invalid', () => {
    expect(() => validateSweep(parseSweepSpec({ name: 's', grid: { memoryMiB: [128, 16] } }))).toThrow(/^sweep s, point mem16: invalid migration scenario: guest\.memoryMiB/);
    expect(() => validateSweep(parseSweepSpec({ name: 's', base: { guest: { colour: 'red' } } }))).toThrow(/point base: .*guest/);
  });

  it('says when the file cannot be read', async () => {
    await expect(loadSweepSpec('/nonexistent/sweep.yaml')).rejects.toThrow('cannot read sweep file /nonexistent/sweep.yaml: ENOENT; give the path of a sweep YAML (examples in examples/sweeps/)');
  });
});

describe('example sweeps', () => {
  const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml'));
  // Workloads are validated by the scenario once it knows them; until then only the expansion is checked.
  const scenarioKnowsWorkloads = 'workload' in ScenarioSchema.unwrap().shape;

  it('are all there', () => {
    expect(files.sort()).toEqual(['bandwidth-vs-total-time.yaml', 'capabilities-compared.yaml', 'dirty-rate-vs-downtime.yaml', 'faults.yaml', 'memory-vs-downtime.yaml', 'postcopy.yaml', 'qemu-versions.yaml', 'switchover-policies.yaml']);
  });

  it.each(files)('%s parses and expands into valid points', async (f) => {
    const spec = await loadSweepSpec(join(EXAMPLES, f));
    expect(`${spec.name}.yaml`).toBe(f);
    const points = expandGrid(spec);
    expect(points.length).toBeGreaterThanOrEqual(3);
    expect(new Set(points.map((p) => p.name)).size).toBe(points.length);
    const usesWorkload = points.some((p) => p.scenario.workload !== undefined);
    if (!usesWorkload || scenarioKnowsWorkloads) expect(validateSweep(spec)).toHaveLength(points.length);
  });

  it('name their points after what varies', async () => {
    const names = async (f: string) => expandGrid(await loadSweepSpec(join(EXAMPLES, f))).map((p) => p.name);
    expect(await names('memory-vs-downtime.yaml')).toEqual(['mem256', 'mem512', 'mem1024']);
    expect(await names('dirty-rate-vs-downtime.yaml')).toEqual(['dirty-rate8', 'dirty-rate32', 'dirty-rate64', 'dirty-rate128', 'dirty-rate256', 'dirty-rate512']);
    expect(await names('bandwidth-vs-total-time.yaml')).toEqual(['link100', 'link250', 'link500', 'link1000', 'link-unshaped']);
    expect(await names('capabilities-compared.yaml')).toEqual(['caps-none', 'caps-xbzrle', 'caps-auto-converge', 'caps-multifd', 'caps-postcopy-ram']);
  });
});
