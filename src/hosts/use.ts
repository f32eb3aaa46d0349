// The lab of a hosts file for one command: the file read and checked, one SSH connection per
// host, QEMU and the guests' CPU models checked on the hosts that run guests, and everything
// closed when the command's teardown runs. A run's setting that needs the embedded lab (link
// shaping, faults on links or the NFS server miglab does not own) is refused before any
// connection is made.
import { resolve } from 'node:path';
import { UsageError } from '../errors.js';
import type { FaultKind } from '../fault/spec.js';
import { checkCpuModels } from '../machine/cpu-models.js';
import { checkQemu } from '../preflight.js';
import type { Teardown } from '../util/teardown.js';
import { connectHosts, parseHostsFile } from './file.js';
import { hostsLabPrefix, HostsLab } from './lab.js';

/** Faults that act on the embedded lab's own switch, links or NFS server. */
const EMBEDDED_LAB_FAULTS: ReadonlySet<FaultKind> = new Set<FaultKind>(['link-down', 'link-loss', 'nfs-down', 'nfs-freeze']);

const CONNECT_TIMEOUT_MS = 20_000;

/** What a run asks of its lab that hosts from a hosts file may not give; throws a one-line UsageError. */
export function checkRunOnHosts(run: { readonly shaping?: unknown; readonly faults?: readonly { readonly kind: FaultKind }[] }): void {
  if (run.shaping !== undefined) {
    throw new UsageError('link shaping (--bandwidth, --delay, --loss) works on the embedded lab only', "drop it with --hosts: miglab does not change your hosts' links");
  }
  const fault = run.faults?.find((f) => EMBEDDED_LAB_FAULTS.has(f.kind));
  if (fault) {
    throw new UsageError(`the fault ${fault.kind} acts on the embedded lab's own links or NFS server`, 'with --hosts use kill-src, kill-dst, freeze-src, freeze-dst or guest-oom');
  }
}

/**
 * Which lab a hosts file makes on this machine (its prefix, named by the file's absolute path),
 * without connecting: for commands that act on miglab's state here only (`guests down`). The file
 * is read and checked, so a wrong path is one line.
 */
export async function hostsLabOf(hostsFile: string): Promise<{ prefix: string; hostsFile: string }> {
  await parseHostsFile(resolve(hostsFile));
  return { prefix: hostsLabPrefix(resolve(hostsFile)), hostsFile };
}

export interface UseHostsLabOptions {
  readonly signal?: AbortSignal;
  /** CPU models the run's guests use, checked against QEMU on src and dst. */
  readonly cpuModels?: Iterable<string>;
  /** Start the export miglab serves (storage: serve:) unless it runs; default true (false: status, down). */
  readonly serveStorage?: boolean;
}

export async function useHostsLab(td: Teardown, hostsFile: string, o: UseHostsLabOptions = {}): Promise<HostsLab> {
  const file = resolve(hostsFile);
  const spec = await parseHostsFile(file);
  const hosts = await connectHosts(spec, { timeoutMs: CONNECT_TIMEOUT_MS, signal: o.signal });
  td.defer('close the SSH connections to the hosts', async () => hosts.close());
  const models = [...(o.cpuModels ?? [])];
  for (const host of new Set([hosts.src, hosts.dst])) {
    await checkQemu(host);
    await checkCpuModels(host, models);
  }
  const byRole = { src: hosts.src, dst: hosts.dst, client: hosts.client };
  // The first connection lost ends the lab's runs (their watcher asks this every half second).
  const connectionLost = () => {
    for (const role of ['src', 'dst', 'client'] as const) {
      const lost = byRole[role].connectionLost();
      if (lost) return `${lost} (the ${role} host)`;
    }
    return undefined;
  };
  const lab = new HostsLab({ file, spec, hosts: byRole, connectionLost });
  td.defer("remove the hosts lab's empty state on this machine", () => lab.tidyState());
  // Not stopped with this command: the export lives until `lab down --hosts`, as the embedded lab's does.
  if (o.serveStorage !== false) {
    // Before anything else is started there: a bridge name taken on a host is refused first.
    await lab.ensureBridge(o.signal);
    await lab.ensureStorage({ signal: o.signal });
  }
  return lab;
}
