// Switchover policies as a person names them: `--switchover local-minimum:max=1s`. Each is a
// named strategy with parameters that decides, from the per-pass figures miglab samples anyway,
// when QEMU may stop the guest and switch over (src/switchover/policies.ts). Plain validated data.
import { UsageError } from '../errors.js';
import { parseDurationMs } from '../util/units.js';
import type { CapabilityName } from '../migrate/scenario.js';

export const POLICY_KINDS = ['qemu-default', 'downtime-steps', 'local-minimum', 'postcopy-after', 'auto-converge', 'dirty-limit', 'auto'] as const;
export type PolicyKind = (typeof POLICY_KINDS)[number];

export type PolicySpec =
  /** QEMU decides alone: it switches over once what is left fits in downtime-limit at the measured bandwidth. */
  | { readonly kind: 'qemu-default' }
  /**
   * OpenStack Nova's ramp (live_migration_downtime, _steps, _delay): downtime-limit starts at
   * max/steps and rises by (max - max/steps)/steps every delayPerGiB x the guest's RAM in GiB,
   * reaching max after `steps` steps.
   */
  | { readonly kind: 'downtime-steps'; readonly maxMs: number; readonly steps: number; readonly delayPerGiBMs: number }
  /**
   * KubeVirt's proposal (VEP 248): when the bytes left at a pass stop falling against the pass
   * before (by less than tolerancePct), more passes will not help: let QEMU switch now, with the
   * downtime that what is left needs at the measured send rate, up to maxMs.
   */
  | { readonly kind: 'local-minimum'; readonly maxMs: number; readonly tolerancePct: number }
  /** Pre-copy for N passes, then post-copy (the rest fetched on demand from the source). */
  | { readonly kind: 'postcopy-after'; readonly passes: number }
  /** QEMU's auto-converge: it throttles the guest's vCPUs more at each pass that does not converge. */
  | { readonly kind: 'auto-converge' }
  /** QEMU's dirty-limit (8.1+): caps each vCPU's dirty rate; needs KVM with a dirty ring (a run under TCG is refused before it boots). */
  | { readonly kind: 'dirty-limit' }
  /**
   * Chosen from the measured figures: pre-copy while the bytes left fall; once they stop, switch
   * if what is left fits in maxMs at the measured send rate (local-minimum), else post-copy, which
   * converges at any dirty rate (its cost is the faults served from the source afterwards).
   */
  | { readonly kind: 'auto'; readonly maxMs: number; readonly tolerancePct: number };

/** The forms, for --help and errors. */
export const POLICY_FORMS =
  'qemu-default, downtime-steps[:max=500ms,steps=10,delay-per-gib=75s], local-minimum[:max=1s,tolerance=5%], postcopy-after[:N passes, default 2], auto-converge, dirty-limit, auto[:max=1s,tolerance=5%]';

/** Nova's defaults (nova.conf [libvirt] live_migration_downtime, _steps, _delay). */
export const NOVA_DEFAULTS = { maxMs: 500, steps: 10, delayPerGiBMs: 75_000 } as const;
const LOCAL_MINIMUM_DEFAULTS = { maxMs: 1000, tolerancePct: 5 } as const;
const POSTCOPY_AFTER_DEFAULT = 2;

function bad(text: string, problem: string): UsageError {
  return new UsageError(`switchover policy "${text}": ${problem}`, `give one of ${POLICY_FORMS}`);
}

/** key=value pairs after the colon; each key must be one the policy takes. */
function options(text: string, rest: string, keys: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  if (!rest) return m;
  for (const part of rest.split(',')) {
    const [k, v, ...more] = part.split('=');
    if (v === undefined || v === '' || more.length > 0 || !k) throw bad(text, `"${part}" is not key=value`);
    if (!keys.includes(k)) throw bad(text, `"${k}" is not an option of this policy (it takes ${keys.join(', ')})`);
    if (m.has(k)) throw bad(text, `${k} is given twice`);
    m.set(k, v);
  }
  return m;
}

/** QEMU's downtime-limit is at most 2000 s (MAX_MIGRATE_DOWNTIME_SECONDS). */
const MAX_DOWNTIME_MS = 2_000_000;

function duration(text: string, key: string, v: string | undefined, fallback: number, max = MAX_DOWNTIME_MS): number {
  if (v === undefined) return fallback;
  try {
    const ms = parseDurationMs(v, key);
    if (ms >= 1 && ms <= max) return ms;
  } catch {
    // said below, in the policy's terms
  }
  throw bad(text, `${key}=${v} is not a duration from 1ms to ${max / 1000}s such as 500ms or 2s`);
}

function whole(text: string, key: string, v: string | undefined, fallback: number, max: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) throw bad(text, `${key}=${v} is not a whole number from 1 to ${max}`);
  return n;
}

export function parsePolicy(text: string): PolicySpec {
  const t = text.trim();
  const colon = t.indexOf(':');
  const name = colon < 0 ? t : t.slice(0, colon);
  const rest = colon < 0 ? '' : t.slice(colon + 1);
  switch (name) {
    case 'qemu-default':
    case 'auto-converge':
    case 'dirty-limit':
      if (rest) throw bad(text, `${name} takes no options`);
      return { kind: name };
    case 'downtime-steps': {
      const o = options(text, rest, ['max', 'steps', 'delay-per-gib']);
      const p = {
        kind: name,
        maxMs: duration(text, 'max', o.get('max'), NOVA_DEFAULTS.maxMs),
        steps: whole(text, 'steps', o.get('steps'), NOVA_DEFAULTS.steps, 100),
        delayPerGiBMs: duration(text, 'delay-per-gib', o.get('delay-per-gib'), NOVA_DEFAULTS.delayPerGiBMs, 3_600_000),
      } as const;
      // The first step is max/steps: below 1 ms QEMU would be asked for a downtime-limit of 0.
      if (p.maxMs / p.steps < 1) throw bad(text, `its first step, max/steps = ${(p.maxMs / p.steps).toFixed(2)} ms, is under 1 ms`);
      return p;
    }
    case 'local-minimum':
    case 'auto': {
      const o = options(text, rest, ['max', 'tolerance']);
      const tol = o.get('tolerance');
      const tolerancePct = tol === undefined ? LOCAL_MINIMUM_DEFAULTS.tolerancePct : /^\d+(\.\d+)?%?$/.test(tol) ? Number(tol.replace(/%$/, '')) : NaN;
      if (!(tolerancePct >= 0 && tolerancePct < 100)) throw bad(text, `tolerance=${tol} is not a percentage from 0 to below 100`);
      return { kind: name, maxMs: duration(text, 'max', o.get('max'), LOCAL_MINIMUM_DEFAULTS.maxMs), tolerancePct };
    }
    case 'postcopy-after':
      if (colon >= 0 && !rest) throw bad(text, 'say how many passes after the colon, e.g. postcopy-after:2 (or leave the colon out for 2)');
      return { kind: name, passes: rest ? whole(text, 'passes', rest, POSTCOPY_AFTER_DEFAULT, 1000) : POSTCOPY_AFTER_DEFAULT };
    default:
      throw bad(text, `"${name}" is not a policy`);
  }
}

const ms = (v: number) => (v % 1000 === 0 ? `${v / 1000}s` : `${v}ms`);

/** The policy in its compact form, every parameter spelt out: what run.json and the report show. */
export function formatPolicy(p: PolicySpec): string {
  switch (p.kind) {
    case 'downtime-steps':
      return `downtime-steps:max=${ms(p.maxMs)},steps=${p.steps},delay-per-gib=${ms(p.delayPerGiBMs)}`;
    case 'local-minimum':
    case 'auto':
      return `${p.kind}:max=${ms(p.maxMs)},tolerance=${p.tolerancePct}%`;
    case 'postcopy-after':
      return `postcopy-after:${p.passes}`;
    default:
      return p.kind;
  }
}

/** The downtime-limit a policy sets before the migration starts (downtime-steps' first step), if any. */
export function initialDowntimeLimitMs(p: PolicySpec): number | undefined {
  return p.kind === 'downtime-steps' ? Math.round(p.maxMs / p.steps) : undefined;
}

/** When downtime-steps reaches its max, since the migrate command (Nova: steps x delay-per-GiB x the RAM in GiB). */
export function rampEndMs(p: Extract<PolicySpec, { kind: 'downtime-steps' }>, memoryMiB: number): number {
  return Math.round((p.delayPerGiBMs * memoryMiB) / 1024) * p.steps;
}

/** Capabilities a policy needs on both sides, set before the migration starts. */
export function policyCapabilities(p: PolicySpec): CapabilityName[] {
  if (p.kind === 'postcopy-after' || p.kind === 'auto') return ['postcopy-ram'];
  if (p.kind === 'auto-converge' || p.kind === 'dirty-limit') return [p.kind];
  return [];
}

/** A short name for run names: local-minimum, postcopy-after2, downtime-steps. */
export function policyName(text: string): string {
  const p = parsePolicy(text);
  return p.kind === 'postcopy-after' ? `postcopy-after${p.passes}` : p.kind;
}
