// Checks made before anything is started: root, QEMU and its NFS block driver, free ports.
// Each failure is one line naming the problem and the command that fixes it.
import { MissingDependencyError, UsageError } from './errors.js';
import type { Host } from './host/host.js';

export const NFS_BLOCK_DRIVER_PATHS = ['/usr/lib/x86_64-linux-gnu/qemu/block-nfs.so', '/usr/lib64/qemu/block-nfs.so', '/usr/lib/qemu/block-nfs.so'];

/** QEMU, qemu-img and QEMU's nfs:// block driver on `host` (the local machine, a namespace, or a host over SSH). */
export async function checkQemu(host: Host): Promise<void> {
  // Named only when it is not this machine: "QEMU (qemu-system-x86_64) on root@10.0.0.1".
  const on = host.name === 'local' ? '' : ` on ${host.name}`;
  if (!(await host.which('qemu-system-x86_64'))) throw new MissingDependencyError(`QEMU (qemu-system-x86_64)${on}`, 'apt-get install -y qemu-system-x86');
  if (!(await host.which('qemu-img'))) throw new MissingDependencyError(`qemu-img${on}`, 'apt-get install -y qemu-utils');
  const driver = await host.run(['sh', '-c', 'for p; do [ -e "$p" ] && exit 0; done; exit 1', 'sh', ...NFS_BLOCK_DRIVER_PATHS], { reject: false, timeoutMs: 10_000 });
  if (driver.exitCode !== 0) throw new MissingDependencyError(`QEMU's nfs:// block driver (block-nfs.so)${on}`, 'apt-get install -y qemu-block-extra');
}

/** TCP ports something already listens on, as seen from `host` (e.g. inside a namespace). */
export async function listeningPorts(host: Host): Promise<Set<number>> {
  const r = await host.run(['ss', '-Htln'], { reject: false });
  const ports = new Set<number>();
  for (const line of r.stdout.split('\n')) {
    const local = line.trim().split(/\s+/)[3];
    const port = Number(local?.slice(local.lastIndexOf(':') + 1));
    if (Number.isInteger(port) && port > 0) ports.add(port);
  }
  return ports;
}

export async function checkPortFree(host: Host, port: number, what: string): Promise<void> {
  if ((await listeningPorts(host)).has(port)) {
    throw new UsageError(`${what} port ${port} is already in use on ${host.name}`, `choose another with --${what === 'migration' ? 'port' : 'hmp-port'}`);
  }
}
