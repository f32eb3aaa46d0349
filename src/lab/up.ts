// Bringing the two-host lab up on one machine: network namespaces src, dst and client joined by a
// switch namespace, an NFS export of the guests' disks served from src, link shaping of the
// migration path. `labUp` builds it (undoing everything on failure or Ctrl-C) and records it in
// a state file; down.ts takes it down and attaches to it, handle.ts is the lab runs use. See
// docs/lab.md.
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync, rmSync } from 'node:fs';
import { relative } from 'node:path';
import { AbortedError, MiglabError, TimeoutError, describeError } from '../errors.js';
import type { Host, RunResult } from '../host/host.js';
import type { WaitOptions } from '../util/deadline.js';
import { Teardown } from '../util/teardown.js';
import { checkLabDependencies, checkRoot } from './deps.js';
import { LabImpl, listNetns, STEP_TIMEOUT_MS, type Lab } from './handle.js';
import { applyLabFirewall } from './firewall.js';
import { THIS_MACHINE, type LabMachine } from './machine.js';
import { labNfsParams, startNfsServer, waitNfsReady } from './nfs.js';
import { selfProcess, stopOwnedGroup } from './proc.js';
import { HOST_ROLES, isEmptyShaping, labNames, labNamespaces, labPaths, parseLabSpec, type LabSpec, type LabSpecInput } from './spec.js';
import { writeLabState, type LabState } from './state.js';

/** A locally administered, fixed MAC for the lab's bridge number `n` (0 = the switch). */
export function bridgeMac(n: number): string {
  return `02:6d:6c:62:00:${n.toString(16).padStart(2, '0')}`;
}

export interface LabUpOptions extends WaitOptions {
  /**
   * Brought up for one run of this process (which takes it down itself): `lab down` from
   * elsewhere refuses while this process lives, so it cannot pull the lab from under the run.
   */
  readonly ephemeral?: boolean;
  /** The machine to build it on (default this one). */
  readonly machine?: LabMachine;
}

async function refuseIfUp(spec: LabSpec, machine: LabMachine): Promise<void> {
  const paths = labPaths(spec);
  if (existsSync(paths.stateFile)) {
    throw new MiglabError(
      'LAB_STATE',
      `a lab with prefix "${spec.prefix}" is already up (state in ${paths.stateFile}); use it, or take it down first with \`miglab lab down --prefix ${spec.prefix}\``,
      { context: { prefix: spec.prefix } },
    );
  }
  const existing = new Set(await listNetns(machine.host));
  const taken = labNamespaces(spec.prefix).filter((ns) => existing.has(ns));
  if (taken.length > 0) {
    throw new MiglabError(
      'LAB_STATE',
      `network namespace(s) ${taken.join(', ')} already exist but no miglab state records them; miglab never reuses or removes namespaces it did not make: choose another prefix, or remove them yourself (ip netns del NAME)`,
      { context: { prefix: spec.prefix, namespaces: taken } },
    );
  }
}

export function isInside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith('..') && !rel.startsWith('/'));
}

/**
 * Bring a lab up. Validates `specInput`, checks root and the programs needed, refuses if a lab
 * with that prefix (or any of its namespaces) exists, then builds it; on any failure, timeout or
 * abort, everything made so far is removed before the error is thrown.
 */
export async function labUp(specInput: LabSpecInput, opts: LabUpOptions): Promise<Lab> {
  const spec = parseLabSpec(specInput);
  checkRoot();
  const machine = opts.machine ?? THIS_MACHINE;
  const rootNs = machine.host;
  await checkLabDependencies(rootNs);
  await refuseIfUp(spec, machine);

  const started = Date.now();
  const left = () => {
    const ms = opts.timeoutMs - (Date.now() - started);
    if (ms <= 0) throw new TimeoutError('lab up', opts.timeoutMs, { prefix: spec.prefix });
    return ms;
  };
  const names = labNames(spec.prefix);
  const paths = labPaths(spec);
  const td = new Teardown();
  const undoOpts = { timeoutMs: STEP_TIMEOUT_MS };
  const run = (host: Host, argv: string[]): Promise<RunResult> => host.run(argv, { timeoutMs: left(), signal: opts.signal });

  try {
    // The lab directory is made without `recursive`: a concurrent `lab up` with the same prefix
    // fails here rather than sharing it.
    const stateRootCreated = !existsSync(spec.stateRoot);
    mkdirSync(spec.stateRoot, { recursive: true, mode: 0o755 });
    if (stateRootCreated) td.defer(`remove ${spec.stateRoot}`, () => removeDirIfEmpty(spec.stateRoot));
    try {
      mkdirSync(paths.labDir, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      throw new MiglabError('LAB_STATE', `${paths.labDir} exists: another lab with prefix "${spec.prefix}" is being set up, or one was interrupted; run \`miglab lab down --prefix ${spec.prefix}\``, {
        cause: err,
      });
    }
    td.defer(`remove ${paths.labDir}`, () => rmSync(paths.labDir, { recursive: true, force: true }));

    const state: LabState = {
      version: 1,
      phase: 'creating',
      spec,
      createdAt: new Date().toISOString(),
      ownerPid: process.pid,
      ownerStartTime: selfProcess().startTime,
      ephemeral: opts.ephemeral ?? false,
      labDir: paths.labDir,
      stateRootCreated,
      // Listed before they exist so a `lab up` killed half-way can still be taken down.
      netns: labNamespaces(spec.prefix),
      exportDir: paths.exportDir,
      exportDirCreated: false,
    };
    writeLabState(paths.stateFile, state);

    // Namespaces, each with lo up.
    for (const ns of state.netns) {
      await run(rootNs, ['ip', 'netns', 'add', ns]);
      td.defer(`delete namespace ${ns}`, async () => void (await rootNs.run(['ip', 'netns', 'del', ns], undoOpts)));
      await run(rootNs, ['ip', '-n', ns, 'link', 'set', 'dev', 'lo', 'up']);
    }
    const sw = machine.netns('switch', names.switchNs);
    // Each bridge gets a fixed address. A bridge left to itself takes the lowest address of its
    // ports and changes it whenever a QEMU's tap (random address) joins or leaves: the host's IP
    // then moves to a new MAC, the other hosts' ARP caches point at the old one, and their packets
    // to it are dropped until ARP re-resolves, tens of seconds later. Seen as QEMUs hanging in the
    // NFS mount with a SYN to the server's rpcbind unanswered (docs/batch.md).
    const bridge = (host: Host, name: string, mac: string) =>
      run(host, ['ip', 'link', 'add', 'name', name, 'address', mac, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
    await bridge(sw, names.switchBridge, bridgeMac(0));
    await run(sw, ['ip', 'link', 'set', 'dev', names.switchBridge, 'up']);

    const lab = new LabImpl(spec, paths.exportDir, machine);
    for (const role of HOST_ROLES) {
      const h = lab.hosts[role];
      const port = names.switchPort[role];
      // Both ends are created inside their namespaces, so nothing appears in the root namespace.
      await run(rootNs, ['ip', 'link', 'add', 'name', names.uplink, 'netns', names.ns[role], 'type', 'veth', 'peer', 'name', port, 'netns', names.switchNs]);
      await run(sw, ['ip', 'link', 'set', 'dev', port, 'master', names.switchBridge, 'up']);
      const cidr = `${h.ip}/${lab.prefixLength}`;
      if (role === 'client') {
        await run(h.host, ['ip', 'addr', 'add', cidr, 'dev', names.uplink]);
        await run(h.host, ['ip', 'link', 'set', 'dev', names.uplink, 'up']);
      } else {
        await bridge(h.host, names.hostBridge, bridgeMac(HOST_ROLES.indexOf(role) + 1));
        await run(h.host, ['ip', 'link', 'set', 'dev', names.uplink, 'master', names.hostBridge, 'up']);
        await run(h.host, ['ip', 'addr', 'add', cidr, 'dev', names.hostBridge]);
        await run(h.host, ['ip', 'link', 'set', 'dev', names.hostBridge, 'up']);
      }
    }

    // The firewall (firewall.ts), before any server starts: only src opens TCP connections to
    // dst, only src and dst reach the NFS server. Deleting the namespaces removes it.
    await applyLabFirewall(lab, { timeoutMs: left(), signal: opts.signal });

    // The export directory and the NFS server.
    if (existsSync(paths.exportDir)) {
      if (!statSync(paths.exportDir).isDirectory()) {
        throw new MiglabError('BAD_INPUT', `the export directory ${paths.exportDir} exists and is not a directory`, { context: { exportDir: paths.exportDir } });
      }
    } else {
      mkdirSync(paths.exportDir, { recursive: true, mode: 0o700 });
      state.exportDirCreated = true;
      if (!isInside(paths.labDir, paths.exportDir)) td.defer(`remove ${paths.exportDir}`, () => removeDirIfEmpty(paths.exportDir));
    }
    mkdirSync(paths.nfsDir, { recursive: true });
    mkdirSync(paths.ckptDir, { recursive: true, mode: 0o700 });
    const server = await startNfsServer(names.ns.src, labNfsParams(spec, paths, lab.nfs.serverIp));
    td.defer('stop the NFS server', async () => void (await stopOwnedGroup(server, undoOpts)));
    state.nfs = {
      server: { pid: server.pid, startTime: server.startTime },
      serverIp: lab.nfs.serverIp,
      configFile: server.configFile,
      logFile: server.logFile,
      ganeshaLogFile: server.ganeshaLogFile,
    };
    writeLabState(paths.stateFile, state);
    await waitNfsReady(lab.hosts.dst.host, server, lab.nfs.serverIp, paths.exportDir, { timeoutMs: left(), signal: opts.signal });

    if (spec.shaping && !isEmptyShaping(spec.shaping)) {
      await lab.shapeLinks(spec.shaping, { timeoutMs: left(), signal: opts.signal });
      state.shaping = spec.shaping;
    }

    state.phase = 'up';
    writeLabState(paths.stateFile, state);
    return lab;
  } catch (caught) {
    // Ctrl-C may surface as a cancelled command; say what happened.
    const err = opts.signal?.aborted && !(caught instanceof AbortedError) ? new AbortedError('lab up', caught) : caught;
    const problems = await td.run();
    if (problems.length === 0) throw err;
    throw new MiglabError(
      err instanceof MiglabError ? err.code : 'INTERNAL',
      `${describeError(err)}; cleaning up after it also failed: ${problems.join('; ')}`,
      { cause: err, context: { prefix: spec.prefix, cleanupProblems: problems } },
    );
  }
}

export function removeDirIfEmpty(dir: string): void {
  try {
    if (readdirSync(dir).length === 0) rmdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    // Gone already: nothing to remove.
  }
}

