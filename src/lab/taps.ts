// Guest taps on a host's bridge: one way to make, check and remove them, for the embedded lab's
// namespaces and for hosts reached over SSH alike. QEMU opens a tap by name on the host it runs on.
import { MiglabError } from '../errors.js';
import type { Host } from '../host/host.js';
import { CommandError } from '../host/local.js';
import { checkTapName } from './spec.js';

/** Time allowed to one tap command when the caller gives none. */
const TAP_STEP_MS = 10_000;

export interface TapStep {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** The host a tap goes on: its runner and how messages name it. */
export interface TapHost {
  readonly role: string;
  readonly where: string;
  readonly host: Host;
}

const waits = (opts: TapStep = {}) => ({ timeoutMs: opts.timeoutMs ?? TAP_STEP_MS, signal: opts.signal });

export async function tapExistsOn(on: TapHost, name: string, opts?: TapStep): Promise<boolean> {
  const r = await on.host.run(['ip', 'link', 'show', 'dev', checkTapName(name)], { ...waits(opts), reject: false });
  return r.exitCode === 0;
}

/**
 * Which of the links `names` exist on the host, asked in one step (`ip link show` of each, one
 * after another whatever each found).
 */
export async function tapsPresentOn(on: TapHost, names: readonly string[], opts?: TapStep): Promise<string[]> {
  const rs = await on.host.runSeries(
    names.map((n) => ['ip', 'link', 'show', 'dev', checkTapName(n)]),
    { ...waits(opts), reject: false, keepGoing: true },
  );
  return names.filter((_, i) => rs[i]?.exitCode === 0);
}

/**
 * `ip link show dev NAME` turned around: succeeds when no link of that name exists, so that a
 * series creating the tap goes on only then.
 */
const LINK_ABSENT = ['sh', '-c', '! ip link show dev "$1" >/dev/null 2>&1', 'link-absent'];

/**
 * Create a persistent tap `name` on `bridge`, up; a link of that name already there is an error
 * (never taken over). The check, the tap and its place on the bridge are one series on the host.
 * `bridge` undefined: the tap is made up but on no bridge (a COLO secondary's, until failover).
 */
export async function addTapOn(on: TapHost, bridge: string | undefined, name: string, opts?: TapStep): Promise<void> {
  const steps = [
    [...LINK_ABSENT, checkTapName(name)],
    ['ip', 'tuntap', 'add', 'dev', name, 'mode', 'tap'],
    ['ip', 'link', 'set', 'dev', name, ...(bridge ? ['master', bridge] : []), 'up'],
  ];
  const rs = await on.host.runSeries(steps, { ...waits(opts), reject: false });
  const [absent, made, joined] = rs;
  if (absent && absent.exitCode !== 0) {
    throw new MiglabError('LAB_STATE', `a link named ${name} already exists on ${on.role} (${on.where})`, { context: { host: on.role, tap: name } });
  }
  if (made && made.exitCode !== 0) throw new CommandError(on.host.name, made);
  if (joined && joined.exitCode !== 0) {
    await on.host.run(['ip', 'link', 'del', 'dev', name], { timeoutMs: TAP_STEP_MS, reject: false });
    throw new CommandError(on.host.name, joined);
  }
}

/**
 * Put a tap on `bridge`, or take it off any bridge (undefined): a COLO secondary's tap stays off
 * the network while the primary lives, and joins it at failover.
 */
export async function bridgeTapOn(on: TapHost, bridge: string | undefined, name: string, opts?: TapStep): Promise<void> {
  await on.host.run(['ip', 'link', 'set', 'dev', checkTapName(name), ...(bridge ? ['master', bridge] : ['nomaster'])], waits(opts));
}

/** Remove the tap; nothing to do if it is gone already. */
export async function removeTapOn(on: TapHost, name: string, opts?: TapStep): Promise<void> {
  const r = await on.host.run(['ip', 'link', 'del', 'dev', checkTapName(name)], { ...waits(opts), reject: false });
  if (r.exitCode !== 0 && (await tapExistsOn(on, name, opts))) throw new CommandError(on.host.name, r);
}
