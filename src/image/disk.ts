// The guest's second drive: an empty qcow2 data disk, created on whichever host will run QEMU.
import { MissingDependencyError, UsageError } from '../errors.js';
import type { Host } from '../host/host.js';
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

/** `qemu-img create -f qcow2 PATH <sizeMiB>M` on `host`. Refuses to replace a file unless told. */
export async function createDataDisk(host: Host, path: string, sizeMiB: number, opts: DataDiskOptions = {}): Promise<string> {
  if (!Number.isInteger(sizeMiB) || sizeMiB < 1) {
    throw new UsageError(`invalid data disk size ${sizeMiB} MiB`, 'give a whole number of MiB, at least 1');
  }
  if (!path.startsWith('/')) throw new UsageError(`data disk path "${path}" is not absolute`);
  if (!(await host.which('qemu-img'))) throw new MissingDependencyError(`qemu-img on ${host.name}`, 'apt-get install -y qemu-utils');
  if (!opts.overwrite) {
    const exists = await host.run(['test', '-e', path], { reject: false, signal: opts.signal });
    if (exists.exitCode === 0) throw new UsageError(`data disk ${path} exists already on ${host.name}`, 'remove it or pass overwrite');
  }
  await host.run(qemuImgCreateCommand(path, sizeMiB).argv, {
    signal: opts.signal,
    timeoutMs: opts.timeoutMs ?? 30_000,
  });
  // The guest's disk may hold anything the guest wrote: readable by its owner only (QEMU and the
  // NFS server run as root; libnfs connects as uid 0 and the export does not squash root).
  await host.run(['chmod', '600', path], { signal: opts.signal, timeoutMs: 10_000 });
  return path;
}
