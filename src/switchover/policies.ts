// Switchover policies as pure functions of the samples: fed each query-migrate sample in order,
// a policy returns a decision at each new pre-copy pass (and at each of its own steps): keep
// going, set QEMU's downtime-limit (QEMU switches over once what is left fits in it at the
// bandwidth it measures), or start post-copy. Every decision carries the figures behind it, so a
// run's record says why it switched when it did. Units test them on recorded pass series.
import type { Sample } from '../migrate/report.js';
import type { CapabilityName } from '../migrate/scenario.js';
import { policyCapabilities, type PolicySpec } from './spec.js';

/** x86's target page: QEMU's dirty rate is in pages per second. */
const PAGE_BYTES = 4096;
const MiB = 1024 * 1024;
/** local-minimum asks for this much more downtime than the estimate (QEMU's bandwidth estimate moves). */
const ESTIMATE_MARGIN = 1.2;

export type SwitchoverAction = 'keep' | 'set-downtime-limit' | 'start-postcopy';

/** The figures a decision was taken on (a sample's, at the start of a pass). */
export interface DecisionFigures {
  readonly tMs: number;
  /** QEMU's dirty-sync-count: pass k begins with sync k. */
  readonly pass?: number;
  readonly remainingBytes?: number;
  /** QEMU's send rate over its last iteration (mbps), in bytes per second. */
  readonly sendBytesPerS?: number;
  /** QEMU's measured dirty rate, in bytes per second. */
  readonly dirtyBytesPerS?: number;
  readonly expectedDowntimeMs?: number;
  readonly cpuThrottlePercent?: number;
}

export interface SwitchoverDecision extends DecisionFigures {
  readonly action: SwitchoverAction;
  /** With set-downtime-limit: the new limit. */
  readonly downtimeLimitMs?: number;
  readonly why: string;
}

export interface PolicyContext {
  readonly memoryMiB: number;
  /** The downtime-limit in force when the migration starts (QEMU's 300 ms unless set). */
  readonly downtimeLimitMs: number;
}

export interface PolicyRun {
  /** Capabilities the policy needs on both sides, set before the migration starts. */
  readonly capabilities: readonly CapabilityName[];
  /**
   * The next sample, in order: a decision, or undefined when this sample is not a moment to decide.
   * `passStartedAtMs`: when the sample's pass began (QEMU's MIGRATION_PASS event), if known.
   */
  observe(s: Sample, passStartedAtMs?: number): SwitchoverDecision | undefined;
}

/**
 * The figures of a sample. A sample comes 0-100 ms after the sync that began its pass, and QEMU
 * has sent meanwhile (at 113 MiB/s up to 11 MiB of 200: more than a 5 % tolerance), so when the
 * pass's MIGRATION_PASS event says when the sync was, what was sent since is added back: the bytes
 * left as the pass began, comparable from pass to pass.
 */
function figures(s: Sample, passStartedAtMs?: number): DecisionFigures {
  const sendBytesPerS = s.mbps === undefined ? undefined : (s.mbps * 1e6) / 8;
  const since = passStartedAtMs !== undefined && passStartedAtMs <= s.tMs ? s.tMs - passStartedAtMs : undefined;
  return {
    tMs: s.tMs,
    pass: s.dirtySyncCount,
    remainingBytes: s.remainingBytes !== undefined && since !== undefined && sendBytesPerS !== undefined ? Math.round(s.remainingBytes + (sendBytesPerS * since) / 1000) : s.remainingBytes,
    sendBytesPerS,
    dirtyBytesPerS: s.dirtyPagesRate === undefined ? undefined : s.dirtyPagesRate * PAGE_BYTES,
    expectedDowntimeMs: s.expectedDowntimeMs,
    cpuThrottlePercent: s.cpuThrottlePercent,
  };
}

const mib = (b: number | undefined) => (b === undefined ? '?' : `${(b / MiB).toFixed(1)} MiB`);
const rate = (b: number | undefined) => (b === undefined ? '?' : `${(b / MiB).toFixed(0)} MiB/s`);

/** Calls `onPass` once for each new pass an active migration begins. */
function perPass(onPass: (s: Sample, f: DecisionFigures) => SwitchoverDecision | undefined): (s: Sample, passStartedAtMs?: number) => SwitchoverDecision | undefined {
  let lastPass = 0;
  return (s, passStartedAtMs) => {
    if (s.status !== 'active' || s.dirtySyncCount === undefined || s.dirtySyncCount <= lastPass) return undefined;
    lastPass = s.dirtySyncCount;
    // The last sync, as QEMU completes: nothing left to decide about.
    if (s.remainingBytes === 0) return undefined;
    return onPass(s, figures(s, passStartedAtMs));
  };
}

/** The policy, started for one migration. */
export function startPolicy(spec: PolicySpec, ctx: PolicyContext): PolicyRun {
  return { ...decide(spec, ctx), capabilities: policyCapabilities(spec) };
}

function decide(spec: PolicySpec, ctx: PolicyContext): Omit<PolicyRun, 'capabilities'> {
  switch (spec.kind) {
    case 'qemu-default':
      return {
        observe: perPass((_s, f) => ({ ...f, action: 'keep', why: `QEMU switches over once what is left fits in downtime-limit ${ctx.downtimeLimitMs} ms at the bandwidth it measures (it expects ${f.expectedDowntimeMs ?? '?'} ms now)` })),
      };
    case 'downtime-steps':
      return downtimeSteps(spec, ctx);
    case 'local-minimum':
    case 'auto':
      return localMinimum(spec, ctx);
    case 'postcopy-after': {
      let started = false;
      return {
        observe: perPass((s, f) => {
          // Pass k begins with dirty sync k: N passes are done when sync N+1 happens.
          if (!started && s.dirtySyncCount! >= spec.passes + 1) {
            started = true;
            return { ...f, action: 'start-postcopy', why: `${spec.passes} pre-copy pass${spec.passes === 1 ? '' : 'es'} done, ${mib(f.remainingBytes)} left: the rest moves by post-copy` };
          }
          return started ? undefined : { ...f, action: 'keep', why: `pass ${s.dirtySyncCount} of the ${spec.passes} before post-copy` };
        }),
      };
    }
    case 'auto-converge':
    case 'dirty-limit':
      return {
        observe: perPass((_s, f) => ({
          ...f,
          action: 'keep',
          why:
            spec.kind === 'auto-converge'
              ? `QEMU throttles the vCPUs (${f.cpuThrottlePercent ?? 0} % now) until what is left fits in downtime-limit ${ctx.downtimeLimitMs} ms`
              : `QEMU limits each vCPU's dirty rate; what is left must fit in downtime-limit ${ctx.downtimeLimitMs} ms`,
        })),
      };
  }
}

/** Nova's ramp: step i (0..steps) at i x delay, downtime-limit base + offset x i (nova/virt/libvirt/migration.py downtime_steps). */
export function novaSteps(spec: Extract<PolicySpec, { kind: 'downtime-steps' }>, memoryMiB: number): { atMs: number; downtimeLimitMs: number }[] {
  const delay = Math.round((spec.delayPerGiBMs * memoryMiB) / 1024);
  const base = spec.maxMs / spec.steps;
  const offset = (spec.maxMs - base) / spec.steps;
  return Array.from({ length: spec.steps + 1 }, (_, i) => ({ atMs: delay * i, downtimeLimitMs: Math.round(base + offset * i) }));
}

function downtimeSteps(spec: Extract<PolicySpec, { kind: 'downtime-steps' }>, ctx: PolicyContext): Omit<PolicyRun, 'capabilities'> {
  const steps = novaSteps(spec, ctx.memoryMiB);
  let next = 1;
  let limit = steps[0]!.downtimeLimitMs;
  const pass = perPass((_s, f) => ({ ...f, action: 'keep', why: `downtime-limit ${limit} ms (step ${next - 1} of ${spec.steps}); the next step at ${steps[next]?.atMs ?? '-'} ms` }));
  return {
    observe: (s, passStartedAtMs) => {
      const step = steps[next];
      if (s.status === 'active' && step && s.tMs >= step.atMs) {
        next++;
        limit = step.downtimeLimitMs;
        // The pass bookkeeping still sees this sample; a pass that begins on it is recorded by the
        // step's decision, which carries the same figures.
        pass(s, passStartedAtMs);
        return { ...figures(s, passStartedAtMs), action: 'set-downtime-limit', downtimeLimitMs: limit, why: `step ${next - 1} of ${spec.steps} at ${step.atMs} ms (every ${steps[1]?.atMs ?? 0} ms: ${spec.delayPerGiBMs} ms per GiB of RAM)` };
      }
      return pass(s, passStartedAtMs);
    },
  };
}

/**
 * local-minimum, and auto (the same watch, with post-copy where local-minimum would keep going:
 * what is left needs more than max).
 */
function localMinimum(spec: Extract<PolicySpec, { kind: 'local-minimum' | 'auto' }>, ctx: PolicyContext): Omit<PolicyRun, 'capabilities'> {
  let previous: number | undefined;
  let limit = ctx.downtimeLimitMs;
  let postcopy = false;
  return {
    observe: perPass((s, f) => {
      if (postcopy) return undefined;
      const left = f.remainingBytes;
      const before = previous;
      previous = left;
      // Pass 1 is the bulk copy of all RAM: the first comparison is pass 3 against pass 2.
      if (left === undefined || before === undefined || s.dirtySyncCount! <= 2) return { ...f, action: 'keep', why: `pass ${s.dirtySyncCount}: ${mib(left)} left, nothing to compare yet` };
      const fell = before > 0 ? ((before - left) / before) * 100 : 0;
      if (fell > spec.tolerancePct) return { ...f, action: 'keep', why: `${mib(left)} left, ${fell.toFixed(0)} % less than the pass before: still falling` };
      if (f.sendBytesPerS === undefined || f.sendBytesPerS <= 0) return { ...f, action: 'keep', why: `stopped falling (${mib(before)} -> ${mib(left)}), but QEMU has not measured its send rate yet` };
      const needMs = Math.ceil(((left / f.sendBytesPerS) * 1000 * ESTIMATE_MARGIN) / 10) * 10;
      const stopped = `stopped falling (${mib(before)} -> ${mib(left)}, ${fell.toFixed(0)} %)`;
      const tooLong = `sending it at ${rate(f.sendBytesPerS)} needs about ${needMs} ms, more than max ${spec.maxMs} ms`;
      if (needMs > spec.maxMs && spec.kind === 'auto') {
        postcopy = true;
        return { ...f, action: 'start-postcopy', why: `${stopped}; ${tooLong}: post-copy instead (the rest fetched from the source as the guest touches it)` };
      }
      if (needMs > spec.maxMs) return { ...f, action: 'keep', why: `${stopped}, but ${tooLong}` };
      if (needMs <= limit) return { ...f, action: 'keep', why: `${stopped}; downtime-limit ${limit} ms already covers the ${needMs} ms it needs: QEMU switches by itself` };
      limit = needMs;
      return { ...f, action: 'set-downtime-limit', downtimeLimitMs: needMs, why: `${stopped}: switch now, allowing ${needMs} ms to send it at ${rate(f.sendBytesPerS)} (within max ${spec.maxMs} ms)` };
    }),
  };
}
