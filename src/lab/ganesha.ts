// nfs-ganesha's configuration for the lab's NFS server (VFS FSAL, NFSv3 + v4 over TCP), as pure
// text from a few parameters so it can be unit-tested. The server itself is started by
// src/lab/nfs.ts through nfs-server.sh inside the src namespace.

export interface GaneshaConfigParams {
  /** The address ganesha binds to (the src host's lab address). */
  readonly serverIp: string;
  /** Clients allowed: the lab subnet, e.g. 10.77.0.0/24. */
  readonly clients: string;
  /** The exported directory (guest disks). */
  readonly exportDir: string;
  /** NFSv4 recovery state lives here (inside the lab's state directory). */
  readonly recoveryRoot: string;
}

/** NFSv3 clients (libnfs, QEMU) use the real path: nfs://SERVER/EXPORT_DIR/file. */
export const PSEUDO_PATH = '/export';
export const EXPORT_ID = 77;

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
`;
}

/** The URL QEMU and libnfs use for `fileName` in the export (NFSv3: the real path). */
export function nfsUrl(serverIp: string, exportDir: string, fileName?: string): string {
  return `nfs://${serverIp}${exportDir}${fileName === undefined ? '' : `/${fileName}`}`;
}
