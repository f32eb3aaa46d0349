// `lab up|status|down --hosts FILE`: the lab of a hosts file as a whole. Up checks the hosts
// and puts what runs need on them ahead of the first run; status says what miglab has there
// now; down takes all of it away, so the hosts are left as miglab found them.
import { IMAGE_CACHE_DIR, requireImage } from '../api.js';
import { ensureProbeTool } from '../guest/probe-tool.js';
import { withTeardown } from '../util/teardown.js';
import type { HostRole } from '../lab/spec.js';
import { useHostsLab } from './use.js';

export interface HostsLabReport {
  readonly hostsFile: string;
  readonly prefix: string;
  /** One line per thing done or found. */
  readonly lines: readonly string[];
}

/** Check the hosts, and put the guest image on src and dst and the probe tool on the client. */
export async function hostsLabUp(hostsFile: string): Promise<HostsLabReport> {
  const image = await requireImage();
  return withTeardown(async (td, signal) => {
    const lab = await useHostsLab(td, hostsFile, { signal });
    const lines: string[] = [...(await lab.ensureBridge(signal))];
    const serving = await lab.ensureStorage({ signal });
    if (serving) lines.push(serving);
    const put = async (role: HostRole, file: string) => lines.push(`${role} (${lab.hosts[role].where}): ${await lab.placeFile(role, file)}`);
    for (const role of ['src', 'dst'] as const) {
      await put(role, image.kernelPath);
      await put(role, image.initrdPath);
    }
    await put('client', await ensureProbeTool({ cacheDir: IMAGE_CACHE_DIR, signal }));
    return { hostsFile, prefix: lab.spec.prefix, lines };
  });
}

/** What miglab has on the hosts now: its processes, the runs holding guest slots. */
export async function hostsLabStatus(hostsFile: string): Promise<HostsLabReport> {
  return withTeardown(async (td, signal) => {
    const lab = await useHostsLab(td, hostsFile, { signal, serveStorage: false });
    const lines: string[] = [];
    const serving = await lab.storageStatus();
    if (serving) lines.push(serving);
    for (const role of ['src', 'dst', 'client'] as const) {
      const procs = await lab.processesOn(role);
      lines.push(`${role} (${lab.hosts[role].where}): ${procs.length === 0 ? 'no miglab process' : procs.map((p) => `pid ${p.pid} ${p.command.split(' ')[0]}`).join(', ')}`);
    }
    lines.push(...(await lab.bridgeStatus()));
    for (const h of lab.heldSlots()) lines.push(`slot g${h.index}: run ${h.holder.runId} (${h.alive ? 'running' : 'its miglab is gone: the next run or `lab down --hosts` cleans it'})`);
    return { hostsFile, prefix: lab.spec.prefix, lines };
  });
}

/** Take away everything miglab left on the hosts and its state for them here. */
export async function hostsLabDown(hostsFile: string, force: boolean): Promise<HostsLabReport> {
  return withTeardown(async (td, signal) => {
    const lab = await useHostsLab(td, hostsFile, { signal, serveStorage: false });
    return { hostsFile, prefix: lab.spec.prefix, lines: await lab.takeDown(force) };
  });
}
