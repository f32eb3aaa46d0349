// The lab's NFS server (nfs-ganesha + rpcbind inside the src namespace): write its config, start
// nfs-server.sh detached so the server outlives the miglab process that ran `lab up`, record it
// by pid + start time, and wait until the export answers from the dst namespace.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MiglabError } from '../errors.js';
import type { Host } from '../host/host.js';
import type { ExplainedCommand } from '../util/explained-command.js';
import { pollUntil, type WaitOptions } from '../util/deadline.js';
import { ganeshaConfig, nfsUrl } from './ganesha.js';
import { roleIp, type LabPaths, type LabSpec } from './spec.js';
import { isOwnedAlive, procStartTime, type OwnedProcess } from './proc.js';
import { commandText } from '../host/local.js';
import { REPO_ROOT } from '../util/repo.js';

const SCRIPT_NAME = 'nfs-server.sh';

/** src/lab/nfs-server.sh: a shell script, so tsc does not copy it to dist/; every build runs it from src/. */
export function nfsServerScript(): string {
  const script = join(REPO_ROOT, 'src', 'lab', SCRIPT_NAME);
  if (!existsSync(script)) throw new MiglabError('INTERNAL', `${SCRIPT_NAME} is missing (looked for ${script})`);
  return script;
}

export interface NfsServerParams {
  readonly serverIp: string;
  readonly subnet: string;
  readonly labDir: string;
  readonly nfsDir: string;
  readonly exportDir: string;
  /** The checkpoint export's directory (guests mount it; see ganesha.ts). */
  readonly ckptDir: string;
  /** The addresses of the hosts whose QEMUs open the disks (src and dst). */
  readonly diskClients: readonly string[];
}

/** The embedded lab's NFS server parameters, from its spec and paths (one place: up, restart, the homework's commands). */
export function labNfsParams(spec: LabSpec, paths: LabPaths, serverIp: string, exportDir = paths.exportDir): NfsServerParams {
  return {
    serverIp,
    subnet: spec.subnet,
    labDir: paths.labDir,
    nfsDir: paths.nfsDir,
    exportDir,
    ckptDir: paths.ckptDir,
    diskClients: [roleIp(spec, 'src'), roleIp(spec, 'dst')],
  };
}

export interface NfsServerFiles {
  readonly configFile: string;
  readonly logFile: string;
  readonly ganeshaLogFile: string;
}

export function nfsServerFiles(nfsDir: string): NfsServerFiles {
  return { configFile: join(nfsDir, 'ganesha.conf'), logFile: join(nfsDir, 'server.log'), ganeshaLogFile: join(nfsDir, 'ganesha.log') };
}

/** The command that starts the NFS server, with the purpose of each argument (for reports). */
export function nfsServerCommand(srcNetns: string, p: NfsServerParams): ExplainedCommand {
  const files = nfsServerFiles(p.nfsDir);
  const explained = [
    { args: ['ip', 'netns', 'exec', srcNetns], why: `run inside the source host's network namespace (${srcNetns}), so the server listens on the lab network only` },
    {
      args: ['sh', nfsServerScript()],
      why: "miglab's NFS wrapper: mounts a private /run (so rpcbind never meets the machine's own), starts rpcbind -f -h SERVER_IP with its TCP sockets bound by socket-activate.pl (rpcbind alone would listen on 0.0.0.0:111 and [::]:111), then ganesha.nfsd -F -f CONF, and stops both on TERM",
    },
    { args: [p.serverIp], why: 'the address rpcbind and ganesha bind to: the source host on the lab bridge (nothing listens on a wildcard address)' },
    { args: [files.configFile], why: "ganesha's config: NFSv3+v4 over TCP, fixed ports (2049, mountd 20048), the disks' export read-write for src and dst only, and the checkpoint export (NFSv4 only) for the lab subnet" },
    { args: [files.ganeshaLogFile], why: "ganesha's log file" },
    { args: [p.labDir], why: "the lab's state directory, kept visible under the private /run" },
    { args: [p.exportDir], why: 'the exported directory holding the guests\' qcow2 disks; QEMU opens them as nfs://SERVER_IP/EXPORT/FILE' },
  ];
  return { argv: explained.flatMap((g) => g.args), explained };
}

/** Write the config and start the server in the namespace `srcNetns` (the embedded lab's source host). Returns at once. */
export async function startNfsServer(srcNetns: string, p: NfsServerParams): Promise<OwnedProcess & NfsServerFiles> {
  const files = nfsServerFiles(p.nfsDir);
  const recoveryRoot = join(p.nfsDir, 'recov');
  mkdirSync(recoveryRoot, { recursive: true });
  writeFileSync(
    files.configFile,
    ganeshaConfig({ serverIp: p.serverIp, clients: p.diskClients.join(', '), exportDir: p.exportDir, recoveryRoot, checkpoints: { dir: p.ckptDir, clients: p.subnet } }),
  );
  const argv = nfsServerCommand(srcNetns, p).argv;
  const log = openSync(files.logFile, 'a');
  try {
    // Detached: its own session and process group (so stopping the group stops rpcbind and
    // ganesha too), and not killed when this miglab process exits: `lab down` stops it.
    const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', log, log] });
    try {
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
    } catch (err) {
      throw new MiglabError('COMMAND_FAILED', `could not start the NFS server (\`${commandText(argv)}\`)`, { cause: err });
    }
    // Later errors (a failed kill) are handled where the server is stopped, by pid.
    child.on('error', () => undefined);
    child.unref();
    if (child.pid === undefined) throw new MiglabError('INTERNAL', 'the NFS server started without a pid');
    const startTime = procStartTime(child.pid);
    if (startTime === undefined) {
      throw new MiglabError('COMMAND_FAILED', `the NFS server exited at once: ${logTail(files)}`, { context: { argv } });
    }
    return { pid: child.pid, startTime, ...files };
  } finally {
    closeSync(log);
  }
}

/** The last lines of the server's logs, for error messages (ganesha's harmless noise left out). */
export function logTail(files: Pick<NfsServerFiles, 'logFile' | 'ganeshaLogFile'>, lines = 6): string {
  const read = (f: string) => {
    try {
      return readFileSync(f, 'utf8');
    } catch {
      // Not written yet: nothing to show from it.
      return '';
    }
  };
  return serverLogTail(read(files.logFile), read(files.ganeshaLogFile), lines);
}

/** From the texts of nfs-server.sh's log and ganesha's: its last telling lines, joined with " | ". */
export function serverLogTail(serverLog: string, ganeshaLog: string, lines = 6): string {
  const noise = /dbus|krb|kerberos|gssapi|GSS/i;
  const all = [...serverLog.split('\n'), ...ganeshaLog.split('\n').filter((l) => /CRIT|FATAL|MAJ|EVENT.*(Cannot|fail)/i.test(l))]
    .filter((l) => l.trim() && !noise.test(l));
  return all.slice(-lines).join(' | ') || '(no log output)';
}

/** Wait until `nfs-ls` of the export works from `clientHost`; fail at once if the server dies. */
export async function waitNfsReady(
  clientHost: Host,
  server: OwnedProcess & NfsServerFiles,
  serverIp: string,
  exportDir: string,
  opts: WaitOptions,
): Promise<void> {
  const url = nfsUrl(serverIp, exportDir);
  let last = '';
  try {
    await pollUntil(
      `the NFS export ${url} to answer`,
      async () => {
        if (!isOwnedAlive(server)) {
          throw new MiglabError('COMMAND_FAILED', `the NFS server stopped while starting: ${logTail(server)}`, { context: { url } });
        }
        const r = await clientHost.run(['nfs-ls', url], { reject: false, timeoutMs: Math.min(3000, opts.timeoutMs), signal: opts.signal });
        last = (r.stderr || r.stdout).trim();
        return r.exitCode === 0 ? true : undefined;
      },
      { ...opts, intervalMs: 100 },
    );
  } catch (err) {
    if (err instanceof MiglabError && err.code === 'TIMEOUT') {
      throw new MiglabError('TIMEOUT', `${err.message}; last nfs-ls said: ${last || '(nothing)'}; server log: ${logTail(server)}`, { cause: err });
    }
    throw err;
  }
}
