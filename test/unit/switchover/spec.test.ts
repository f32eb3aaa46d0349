// Naming a switchover policy: the compact forms, their defaults spelt out, and a bad one refused in
// one line that lists the forms.
import { describe, expect, it } from '@jest/globals';
import { formatPolicy, NOVA_DEFAULTS, parsePolicy, policyCapabilities, policyName } from '../../../src/switchover/spec.js';
import { deferIncoming, parseScenario, scenarioCapabilities, scenarioName } from '../../../src/migrate/scenario.js';

describe('parsePolicy', () => {
  it("reads each policy, with Nova's and miglab's defaults", () => {
    expect(parsePolicy('qemu-default')).toEqual({ kind: 'qemu-default' });
    expect(parsePolicy('downtime-steps')).toEqual({ kind: 'downtime-steps', ...NOVA_DEFAULTS });
    expect(parsePolicy('downtime-steps:max=2s,steps=4,delay-per-gib=8s')).toEqual({ kind: 'downtime-steps', maxMs: 2000, steps: 4, delayPerGiBMs: 8000 });
    expect(parsePolicy('local-minimum:max=1500ms,tolerance=2%')).toEqual({ kind: 'local-minimum', maxMs: 1500, tolerancePct: 2 });
    expect(parsePolicy('postcopy-after')).toEqual({ kind: 'postcopy-after', passes: 2 });
    expect(parsePolicy('postcopy-after:5')).toEqual({ kind: 'postcopy-after', passes: 5 });
  });

  it('spells every parameter out, and reads its own output back', () => {
    for (const t of ['qemu-default', 'downtime-steps', 'local-minimum', 'postcopy-after:3', 'auto-converge', 'dirty-limit', 'auto:max=2s']) {
      const p = parsePolicy(t);
      expect(parsePolicy(formatPolicy(p))).toEqual(p);
    }
    expect(formatPolicy(parsePolicy('local-minimum'))).toBe('local-minimum:max=1s,tolerance=5%');
  });

  it('refuses what is no policy, an unknown option and a bad value, naming it', () => {
    expect(() => parsePolicy('fastest')).toThrow(/^switchover policy "fastest": "fastest" is not a policy; give one of qemu-default, downtime-steps/);
    expect(() => parsePolicy('local-minimum:steps=3')).toThrow(/"steps" is not an option of this policy \(it takes max, tolerance\)/);
    expect(() => parsePolicy('downtime-steps:max=0s')).toThrow(/max=0s is not a duration from 1ms to 2000s/);
    expect(() => parsePolicy('postcopy-after:0')).toThrow(/passes=0 is not a whole number from 1/);
    expect(() => parsePolicy('auto-converge:fast')).toThrow(/auto-converge takes no options/);
  });

  it('names the capabilities a policy needs, which the run then sets', () => {
    expect(policyCapabilities(parsePolicy('postcopy-after:2'))).toEqual(['postcopy-ram']);
    expect(policyCapabilities(parsePolicy('local-minimum'))).toEqual([]);
    const s = parseScenario({ switchover: 'postcopy-after:2', faults: ['kill-src@postcopy-active'] });
    // A run that may enter post-copy also measures its vCPUs' waits, unless told not to.
    expect(scenarioCapabilities(s)).toEqual({ 'postcopy-ram': true, 'postcopy-blocktime': true });
    expect(scenarioCapabilities({ ...s, capabilities: { 'postcopy-blocktime': false } })).toEqual({ 'postcopy-ram': true, 'postcopy-blocktime': false });
    expect(scenarioName(s)).toMatch(/-sw-postcopy-after2-/);
    // QEMU 10.0 takes multifd and postcopy-preempt only before the destination listens.
    expect(deferIncoming(s)).toBe(false);
    expect(deferIncoming({ ...s, capabilities: { 'postcopy-preempt': true } })).toBe(true);
    expect(deferIncoming({ ...s, capabilities: { multifd: true } })).toBe(true);
    expect(policyName('downtime-steps:max=1s')).toBe('downtime-steps');
  });

  it('refuses a policy that contradicts the scenario', () => {
    expect(() => parseScenario({ switchover: 'downtime-steps:delay-per-gib=1s', parameters: { downtimeLimitMs: 300 } })).toThrow(/sets downtime-limit itself, step by step/);
    expect(() => parseScenario({ switchover: 'postcopy-after:2', capabilities: { 'postcopy-ram': true }, postcopyAfterMs: 1000 })).toThrow(/both say when to start post-copy/);
  });
});

describe('what a policy is not given', () => {
  it('refuses values QEMU would refuse mid-run, empty values, and a key given twice', () => {
    expect(() => parsePolicy('local-minimum:max=3000s')).toThrow(/max=3000s is not a duration from 1ms to 2000s/);
    expect(() => parsePolicy('downtime-steps:max=4ms')).toThrow(/its first step, max\/steps = 0\.40 ms, is under 1 ms/);
    expect(() => parsePolicy('local-minimum:tolerance=')).toThrow(/"tolerance=" is not key=value/);
    expect(() => parsePolicy('local-minimum:tolerance=abc')).toThrow(/tolerance=abc is not a percentage/);
    expect(() => parsePolicy('postcopy-after:')).toThrow(/say how many passes after the colon/);
    expect(() => parsePolicy('local-minimum:max=1s,max=2s')).toThrow(/max is given twice/);
  });

  it('is spelt out once in the scenario, so two spellings are one policy', () => {
    expect(parseScenario({ switchover: 'local-minimum:max=2s' }).switchover).toBe('local-minimum:max=2s,tolerance=5%');
  });

  it('refuses what contradicts it, before anything starts', () => {
    expect(() => parseScenario({ switchover: 'auto', capabilities: { 'postcopy-ram': true }, postcopyAfterMs: 1000 })).toThrow(/and --postcopy-after both say when to start post-copy/);
    expect(() => parseScenario({ switchover: 'auto', capabilities: { 'postcopy-ram': false } })).toThrow(/needs the postcopy-ram capability, which the scenario turns off/);
    expect(() => parseScenario({ switchover: 'dirty-limit', capabilities: { 'auto-converge': true } })).toThrow(/^dirty-limit and auto-converge together: QEMU refuses the pair/);
    // Nova's defaults on a 512 MiB guest: 10 steps of 37.5 s, the max reached at 375 s.
    expect(() => parseScenario({ switchover: 'downtime-steps', guest: { memoryMiB: 512 } })).toThrow(/reaches its max 375 s after the migrate command .* after the 120 s deadline; give a shorter delay-per-gib/);
    expect(parseScenario({ switchover: 'downtime-steps', guest: { memoryMiB: 512 }, timeoutMs: 400000 }).switchover).toBe('downtime-steps:max=500ms,steps=10,delay-per-gib=75s');
  });
});
