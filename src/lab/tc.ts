// Link shaping of the migration path: tc argv for the src and dst uplinks (up0), as pure functions
// so they can be unit-tested. A bandwidth limit alone uses tbf, which every kernel has; delay,
// jitter or loss need netem (which also does the rate then), and some kernels lack it (this
// project's own test machines do): that is reported as a missing kernel feature, never ignored.
// `replace` makes changing the shaping of a running lab one command.
import type { Shaping } from './spec.js';

const MTU_BYTES = 1500;
/** Assumed speed of an unshaped veth, for sizing netem's queue when only a delay is added. */
const UNSHAPED_MBIT = 10_000;
/** Queueing allowed beyond the configured delay, in ms. */
const QUEUE_HEADROOM_MS = 50;
/** tbf's bucket holds this much time at the configured rate (and at least TBF_MIN_BURST_BYTES). */
const TBF_BURST_MS = 5;
const TBF_MIN_BURST_BYTES = 32 * 1024;

/** Format a number for tc without exponents or float noise ("0.1", not "0.1000000001"). */
function num(n: number): string {
  return String(Number(n.toFixed(3)));
}

/** kbit keeps fractional Mbit/s exact. */
function rateArg(mbit: number): string {
  return `${Math.max(1, Math.round(mbit * 1000))}kbit`;
}

export function needsNetem(s: Shaping): boolean {
  return s.delayMs !== undefined || s.lossPct !== undefined || s.jitterMs !== undefined;
}

/**
 * netem's queue (in packets) must hold a bandwidth-delay product, or a delayed fast link drops
 * packets that the user never asked to lose; but a queue far larger than that only adds delay.
 */
export function netemLimitPackets(s: Shaping): number {
  const delayMs = (s.delayMs ?? 0) + (s.jitterMs ?? 0);
  // Without delay, netem queues only what the rate holds back: its default queue is plenty.
  if (delayMs === 0) return 1000;
  const mbit = s.bandwidthMbit ?? UNSHAPED_MBIT;
  const windowMs = delayMs + QUEUE_HEADROOM_MS;
  const bdpPackets = Math.ceil((mbit * 1e6 * (windowMs / 1000)) / 8 / MTU_BYTES);
  return Math.max(1000, bdpPackets);
}

export function tbfBurstBytes(bandwidthMbit: number): number {
  return Math.max(TBF_MIN_BURST_BYTES, Math.ceil((bandwidthMbit * 1e6 * (TBF_BURST_MS / 1000)) / 8));
}

/** The argv that sets `s` (non-empty) as the root qdisc of `dev`. */
export function shapingArgv(dev: string, s: Shaping): string[] {
  const base = ['tc', 'qdisc', 'replace', 'dev', dev, 'root'];
  if (!needsNetem(s)) {
    if (s.bandwidthMbit === undefined) throw new Error('shapingArgv: empty shaping (use clearArgv)');
    return [...base, 'tbf', 'rate', rateArg(s.bandwidthMbit), 'burst', String(tbfBurstBytes(s.bandwidthMbit)), 'latency', `${QUEUE_HEADROOM_MS}ms`];
  }
  const argv = [...base, 'netem', 'limit', String(netemLimitPackets(s))];
  if (s.delayMs !== undefined) {
    argv.push('delay', `${num(s.delayMs)}ms`);
    if (s.jitterMs !== undefined && s.jitterMs > 0) argv.push(`${num(s.jitterMs)}ms`);
  }
  if (s.lossPct !== undefined) argv.push('loss', `${num(s.lossPct)}%`);
  if (s.bandwidthMbit !== undefined) argv.push('rate', rateArg(s.bandwidthMbit));
  return argv;
}

/** Remove the root qdisc, back to the default. Fails (harmlessly) if there is none. */
export function clearArgv(dev: string): string[] {
  return ['tc', 'qdisc', 'del', 'dev', dev, 'root'];
}

export function showArgv(dev: string): string[] {
  return ['tc', 'qdisc', 'show', 'dev', dev];
}

/** tc's answer when there is no root qdisc to delete: not an error for `clearShaping`. */
export function isNoQdiscError(stderr: string): boolean {
  return /Cannot delete qdisc with handle of zero|Invalid handle/i.test(stderr);
}

/** tc's answer when the kernel lacks the qdisc (e.g. no sch_netem module). */
export function isUnknownQdiscError(stderr: string): boolean {
  return /Specified qdisc kind is unknown|unknown qdisc/i.test(stderr);
}
