// nfs-ganesha's configuration for the lab's NFS server (VFS FSAL, NFSv3 + v4 over TCP), as pure
// text from a few parameters so it can be unit-tested. The server itself is started by
// src/lab/nfs.ts through nfs-server.sh inside the src namespace.

export interface GaneshaConfigParams {
  /** The address ganesha binds to (the src host's lab address). */
  readonly serverIp: string;
  /** Clients allowed: the hosts whose QEMUs open the disks, e.g. "10.77.0.1, 10.77.0.2". */
  readonly clients: string;
  /** The exported directory (guest disks). */
  readonly exportDir: string;
  /** NFSv4 recovery state lives here (inside the lab's state directory). */
  readonly recoveryRoot: string;
  /** A second export that guests mount (container hosts share their checkpoint images on it). */
  readonly checkpoints?: { readonly dir: string; readonly clients: string };
}

/** NFSv3 clients (libnfs, QEMU) use the real path: nfs://SERVER/EXPORT_DIR/file. */
export const PSEUDO_PATH = '/export';
export const EXPORT_ID = 77;
/** The checkpoint export: guests mount SERVER:/ckpt over NFSv4.1. */
export const CKPT_PSEUDO_PATH = '/ckpt';
export const CKPT_EXPORT_ID = 78;

export function ganeshaConfig(p: GaneshaConfigParams): string {
  // Fixed ports: the namespace is the lab's own, and fixed ports make firewall rules and
  // packet captures readable. NLM/RQUOTA are off (QEMU does not lock over NFS), and the
  // grace period is off so the server is usable at once.
  return `# Written by miglab for the lab's NFS server; regenerated on every \`lab up\`.
NFS_CORE_PARAM {
  Bind_Addr = ${p.serverIp};
  Protocols = 3, 4;
  NFS_Port = 2049;
  MNT_Port = 20048;
  NLM_Port = 32803;
  Rquota_Port = 875;
  Enable_RQUOTA = false;
  Enable_NLM = false;
}

NFSv4 {
  RecoveryBackend = fs;
  RecoveryRoot = ${p.recoveryRoot};
  Graceless = true;
}

EXPORT {
  Export_Id = ${EXPORT_ID};
  Path = ${p.exportDir};
  Pseudo = ${PSEUDO_PATH};
  Access_Type = RW;
  Squash = No_Root_Squash;
  Protocols = 3, 4;
  Transports = TCP;
  SecType = sys;
  FSAL { Name = VFS; }
  CLIENT { Clients = ${p.clients}; Access_Type = RW; }
}
${p.checkpoints ? checkpointExport(p.checkpoints) : ''}`;
}

// Guests reach it with NFSv4 alone (port 2049: the firewall lets them reach nothing else), so it has
// no mountd path; it is a directory of its own, so a guest never sees the disks of the VM runs.
function checkpointExport(c: NonNullable<GaneshaConfigParams['checkpoints']>): string {
  return `
EXPORT {
  Export_Id = ${CKPT_EXPORT_ID};
  Path = ${c.dir};
  Pseudo = ${CKPT_PSEUDO_PATH};
  Access_Type = RW;
  Squash = No_Root_Squash;
  Protocols = 4;
  Transports = TCP;
  SecType = sys;
  FSAL { Name = VFS; }
  CLIENT { Clients = ${c.clients}; Access_Type = RW; }
}
`;
}

/** The URL QEMU and libnfs use for `fileName` in the export (NFSv3: the real path). */
export function nfsUrl(serverIp: string, exportDir: string, fileName?: string): string {
  return `nfs://${serverIp}${exportDir}${fileName === undefined ? '' : `/${fileName}`}`;
}
