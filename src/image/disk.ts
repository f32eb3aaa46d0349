// The guest's second drive: an empty qcow2 data disk, created on whichever host will run QEMU.
import { MissingDependencyError, UsageError } from '../errors.js';
import type { Host } from '../host/host.js';
import { CommandError } from '../host/local.js';
import { oncePerHost } from '../host/once-per-host.js';
import type { ExplainedCommand } from '../util/explained-command.js';

export interface DataDiskOptions {
  readonly overwrite?: boolean;
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
}

/** The command that creates the data disk, with the purpose of each argument (for reports). */
export function qemuImgCreateCommand(path: string, sizeMiB: number): ExplainedCommand {
  const explained = [
    { args: ['qemu-img', 'create'], why: "QEMU's image tool: create a new disk image" },
    { args: ['-q'], why: 'quiet: no progress output' },
    { args: ['-f', 'qcow2'], why: 'qcow2 format: sparse (only written clusters use space), so the shared disk is small on NFS' },
    {
      args: ['-o', 'preallocation=metadata'],
      why: "all qcow2 metadata written now, so the image never grows while the guest runs: measured here, a qcow2 that allocates clusters during a migration over QEMU's nfs:// driver comes out corrupted on the destination (records the source wrote read back bad, leaked clusters)",
    },
    { args: [path], why: 'the file, inside the directory the source host exports over NFS' },
    { args: [`${sizeMiB}M`], why: 'the virtual size the guest sees' },
  ];
  return { argv: explained.flatMap((g) => g.args), explained };
}

/** qemu-img on the host, or the error naming the package: asked once per host (a missing one is asked again next time). */
const qemuImgOn = oncePerHost(async (host) => {
  const path = await host.which('qemu-img');
  if (!path) throw new MissingDependencyError(`qemu-img on ${host.name}`, 'apt-get install -y qemu-utils');
  return path;
});

/** `qemu-img create -f qcow2 PATH <sizeMiB>M` on `host`. Refuses to replace a file unless told. */
export async function createDataDisk(host: Host, path: string, sizeMiB: number, opts: DataDiskOptions = {}): Promise<string> {
  if (!Number.isInteger(sizeMiB) || sizeMiB < 1) {
    throw new UsageError(`invalid data disk size ${sizeMiB} MiB`, 'give a whole number of MiB, at least 1');
  }
  if (!path.startsWith('/')) throw new UsageError(`data disk path "${path}" is not absolute`);
  await qemuImgOn(host);
  // One series on the host: that nothing is there yet (unless it may be replaced), the disk, and
  // its mode. The guest's disk may hold anything the guest wrote: readable by its owner only (QEMU
  // and the NFS server run as root; libnfs connects as uid 0 and the export does not squash root).
  const absent = ['test', '!', '-e', path];
  const steps = [...(opts.overwrite ? [] : [absent]), qemuImgCreateCommand(path, sizeMiB).argv, ['chmod', '600', path]];
  const rs = await host.runSeries(steps, { signal: opts.signal, timeoutMs: (opts.timeoutMs ?? 30_000) + 10_000, reject: false });
  if (!opts.overwrite && rs[0]!.exitCode !== 0) throw new UsageError(`data disk ${path} exists already on ${host.name}`, 'remove it or pass overwrite');
  const failed = rs.find((r) => r.exitCode !== 0);
  if (failed) throw new CommandError(host.name, failed);
  return path;
}
