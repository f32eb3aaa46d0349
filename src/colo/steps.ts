// The monitor commands that bring a COLO pair into lock-step and, after the primary is lost, make
// the secondary go on alone (QEMU's docs/system/qemu-colo.rst). Each is recorded with its side,
// what was sent, how long QEMU took to answer and why it is there, as the homework's commands are.
import { MiglabError } from '../errors.js';
import type { QmpClient } from '../qmp/client.js';
import { sleep, type WaitOptions } from '../util/deadline.js';
import { COLO_IDS } from './argv.js';

export interface ColoStep {
  readonly side: 'primary' | 'secondary';
  /** The command as QMP (or HMP through human-monitor-command) got it. */
  readonly command: string;
  readonly why: string;
  /** Epoch ms when it was sent, and how long QEMU took to answer. */
  readonly atMs: number;
  readonly ms: number;
  /** QEMU's refusal, word for word, when it refused. */
  readonly error?: string;
}

export class StepLog {
  readonly steps: ColoStep[] = [];

  async run<T>(side: ColoStep['side'], qmp: QmpClient, command: string, args: Record<string, unknown> | undefined, why: string, opts: WaitOptions): Promise<T> {
    const atMs = Date.now();
    const shown = args ? `${command} ${JSON.stringify(args)}` : command;
    try {
      const r = await qmp.execute<T>(command, args, opts);
      this.steps.push({ side, command: shown, why, atMs, ms: Date.now() - atMs });
      return r;
    } catch (err) {
      this.steps.push({ side, command: shown, why, atMs, ms: Date.now() - atMs, error: err instanceof Error ? err.message : String(err) });
      throw err;
    }
  }
}

export interface ColoAddresses {
  /** The secondary's lab address: its NBD export and its incoming migration listen there. */
  readonly secondaryIp: string;
  readonly nbdPort: number;
  readonly migrationPort: number;
}

/** Capabilities both sides need for COLO: x-colo, and return-path where the build requires it with x-colo (11.x). */
export async function setColoCapabilities(log: StepLog, side: ColoStep['side'], qmp: QmpClient, opts: WaitOptions): Promise<string[]> {
  const why = 'COLO over the migration channel: after the first full copy the stream stays open and carries a checkpoint at every period or miscompare';
  try {
    await log.run(side, qmp, 'migrate-set-capabilities', { capabilities: [{ capability: 'x-colo', state: true }] }, why, opts);
    return ['x-colo'];
  } catch (err) {
    // QEMU 11 says "Capability 'x-colo' requires capability 'return-path'"; 10.0 fails COLO with
    // return-path on. So it is set only when QEMU itself asks for it.
    if (!(err instanceof Error) || !/return-path/.test(err.message)) throw err;
    await log.run(side, qmp, 'migrate-set-capabilities', { capabilities: [{ capability: 'return-path', state: true }, { capability: 'x-colo', state: true }] }, `${why}; return-path with it, as this QEMU requires`, opts);
    return ['return-path', 'x-colo'];
  }
}

/** The secondary: COLO on, its disk exported over NBD for the primary's replication. */
export async function prepareSecondary(log: StepLog, qmp: QmpClient, a: ColoAddresses, opts: WaitOptions): Promise<string[]> {
  const caps = await setColoCapabilities(log, 'secondary', qmp, opts);
  await log.run('secondary', qmp, 'nbd-server-start', { addr: { type: 'inet', data: { host: a.secondaryIp, port: String(a.nbdPort) } } }, "an NBD server on the secondary's lab address: the primary's replication child writes the guest's disk writes here", opts);
  await log.run('secondary', qmp, 'nbd-server-add', { device: COLO_IDS.parent, writable: true }, "exports the secondary's copy of the image (parent0), writable, under that name", opts);
  return caps;
}

/** The primary: replication to the secondary added to its disk, COLO on, the checkpoint period, and the first copy started. */
export async function startPrimary(log: StepLog, qmp: QmpClient, a: ColoAddresses, checkpointMs: number, opts: WaitOptions): Promise<string[]> {
  const drive = `drive_add -n buddy driver=replication,mode=primary,file.driver=nbd,file.host=${a.secondaryIp},file.port=${a.nbdPort},file.export=${COLO_IDS.parent},node-name=${COLO_IDS.replication}`;
  await log.run('primary', qmp, 'human-monitor-command', { 'command-line': drive }, "block replication, primary side, over NBD to the secondary's export (HMP: QMP's blockdev-add cannot make this node); not yet in the disk's path", opts);
  await log.run('primary', qmp, 'x-blockdev-change', { parent: COLO_IDS.disk, node: COLO_IDS.replication }, "adds replication as the quorum's second child: from now on every guest write goes to the local image and to the secondary", opts);
  const caps = await setColoCapabilities(log, 'primary', qmp, opts);
  await log.run('primary', qmp, 'migrate-set-parameters', { 'x-checkpoint-delay': checkpointMs }, `a checkpoint every ${checkpointMs} ms at the latest (QEMU's default is 20 s); a miscompare asks for one sooner`, opts);
  await log.run('primary', qmp, 'migrate', { uri: `tcp:${a.secondaryIp}:${a.migrationPort}` }, "the first full copy of the guest to the secondary, as a live migration; then, instead of switching over, COLO keeps both running in lock-step", opts);
  return caps;
}

export interface LockStep {
  /** Epoch ms when query-migrate first said "colo". */
  readonly atMs: number;
  /** From the migrate command to that answer. */
  readonly afterMs: number;
}

/**
 * Wait until the primary reports "colo". A migration that ends as a plain one ("completed": QEMU
 * 10.0.2's regression) or fails is said in QEMU's own words.
 */
export async function awaitLockStep(qmp: QmpClient, sentAtMs: number, opts: WaitOptions & { readonly what: string }): Promise<LockStep> {
  const until = Date.now() + opts.timeoutMs;
  let last: Record<string, unknown> = {};
  while (Date.now() < until) {
    last = await qmp.queryMigrate({ timeoutMs: Math.min(5000, opts.timeoutMs), signal: opts.signal });
    const status = String(last.status ?? '');
    if (status === 'colo') return { atMs: Date.now(), afterMs: Date.now() - sentAtMs };
    if (status === 'completed') {
      throw new MiglabError('COLO', `${opts.what} ended the first copy as a plain migration (query-migrate: "completed") instead of entering COLO; QEMU 10.0.2 does this (upstream regression 4881411136, fixed in 10.0.7): use --qemu 11.1`);
    }
    if (status === 'failed' || status === 'cancelled') {
      throw new MiglabError('COLO', `${opts.what} did not enter COLO: query-migrate says ${status}${last['error-desc'] ? `: ${String(last['error-desc'])}` : ''}`);
    }
    await sleep(100, opts.signal);
  }
  throw new MiglabError('COLO', `${opts.what} was not in COLO ${Math.round(opts.timeoutMs / 1000)} s after migrate (query-migrate: ${JSON.stringify(last.status ?? last)})`);
}

export interface Failover {
  /** x-colo-lost-heartbeat sent; the secondary's guest stopped (its last STOP) and resumed (on the command), as QEMU's events stamped it. */
  readonly commandAtMs: number;
  readonly stopAtMs?: number;
  readonly resumeAtMs?: number;
  /** query-colo-status afterwards. */
  readonly status?: Record<string, unknown>;
}

/**
 * The secondary takes over: the NBD export stopped (nobody writes through it now), COLO's failover
 * (its guest goes on alone from where it is: the last checkpoint's state and what it ran since),
 * the filters and their connections to the lost primary removed. `runState` gives the secondary's
 * STOP and RESUME times since lock-step began: the pause is from its last STOP (a checkpoint the
 * loss cut short, or the failover command's own) to the RESUME after x-colo-lost-heartbeat.
 */
export async function failOver(log: StepLog, qmp: QmpClient, runState: { runStateTimes(): readonly { event: string; atMs: number }[] }, opts: WaitOptions): Promise<Failover> {
  await log.run('secondary', qmp, 'nbd-server-stop', undefined, 'the primary that wrote through the NBD export is gone: stop serving it before the disk is taken over', opts);
  const commandAtMs = Date.now();
  await log.run('secondary', qmp, 'x-colo-lost-heartbeat', undefined, "failover: the secondary leaves COLO and its guest goes on alone (block replication's active and hidden disks are merged into the image)", opts);
  for (const id of COLO_IDS.secondaryFilters) await log.run('secondary', qmp, 'object-del', { id }, `removes filter ${id}: it joined this guest's NIC to the primary`, opts);
  for (const id of COLO_IDS.secondaryChardevs) await log.run('secondary', qmp, 'chardev-remove', { id }, `removes the connection ${id} to the primary`, opts);
  const status = await log.run<Record<string, unknown>>('secondary', qmp, 'query-colo-status', undefined, 'what COLO says of itself after the failover (mode none, last-mode secondary, reason request)', opts).catch(() => undefined);
  const times = runState.runStateTimes();
  const resume = times.find((e) => e.event === 'RESUME' && e.atMs >= commandAtMs - 1);
  const stop = resume ? times.filter((e) => e.event === 'STOP' && e.atMs <= resume.atMs).at(-1) : undefined;
  return { commandAtMs, stopAtMs: stop?.atMs, resumeAtMs: resume?.atMs, status };
}

/** After the tap joined the bridge: the guest's NIC announces itself, so the network learns where it is now. */
export async function announce(log: StepLog, qmp: QmpClient, opts: WaitOptions): Promise<void> {
  await log.run('secondary', qmp, 'announce-self', { initial: 50, max: 550, rounds: 5, step: 100 }, "gratuitous ARP/RARP from the guest's NIC, as after a migration: the switch still sends the guest's traffic to the dead primary's port until it hears the guest from here", opts);
}
