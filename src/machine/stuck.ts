// Where a QEMU that does not answer is stuck, from /proc and (when installed) gdb: the one clue
// to a launch that hangs. Reads only; the caller decides what to do with the process.
import { readdir, readFile, readlink, stat as statPath } from 'node:fs/promises';
import { execa } from 'execa';
import { parseProcStat } from '../lab/proc.js';

/**
 * `comm`, state and kernel wait channel of a live process, its threads and what its file
 * descriptors point at, from /proc (each part "?" if unreadable). The open files show how far
 * QEMU got (tap, NFS connection, monitor sockets) when a launch hangs.
 */
export async function whereStuck(pid: number, qmpSocket: string): Promise<string> {
  const read = (f: string) => readFile(`/proc/${pid}/${f}`, 'utf8').then((t) => t.trim(), () => '?');
  const [comm, wchan, stat] = await Promise.all([read('comm'), read('wchan'), read('stat')]);
  const state = parseProcStat(stat)?.state ?? '?';
  const threads = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  const threadInfo = await Promise.all(
    threads.map(async (tid) => `${await read(`task/${tid}/comm`)}:${(await read(`task/${tid}/wchan`)) || 'running'}`),
  );
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  // A TCP socket is shown with its addresses and state (the NFS mount it waits on, say).
  const tcp = tcpByInode(await read('net/tcp'));
  const fdInfo = await Promise.all(
    fds.map(async (fd) => {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '?');
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      return `${fd}->${(inode && tcp.get(inode)) || target}`;
    }),
  );
  // Whether QEMU sees its monitor socket (through its own root) and has it listening.
  const seen = await statPath(`/proc/${pid}/root${qmpSocket}`).then(() => 'exists', (e: NodeJS.ErrnoException) => e.code ?? 'unreadable');
  const listening = (await read('net/unix')).split('\n').some((l) => l.endsWith(` ${qmpSocket}`));
  const stacks = await userStacks(pid);
  return `pid ${pid} is still running as "${comm}" (state ${state}, waiting in ${wchan || 'user space'}); QMP socket as QEMU sees it: ${seen}, ${listening ? 'listening' : 'not listening'}; threads ${threadInfo.join(' ')}; fds ${fdInfo.join(' ')}${stacks ? `; stacks ${stacks}` : ''}`;
}

const TCP_STATES = ['', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'CLOSING'];

/** `/proc/PID/net/tcp` as socket inode -> "tcp 10.77.0.2:601->10.77.0.1:2049 SYN_SENT". */
export function tcpByInode(table: string): Map<string, string> {
  const addr = (hex: string) => {
    const [ip, port] = hex.split(':') as [string, string];
    const octets = [0, 2, 4, 6].map((i) => parseInt(ip.slice(i, i + 2), 16)).reverse();
    return `${octets.join('.')}:${parseInt(port, 16)}`;
  };
  const out = new Map<string, string>();
  for (const line of table.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    out.set(f[9]!, `tcp ${addr(f[1]!)}->${addr(f[2]!)} ${TCP_STATES[parseInt(f[3]!, 16)] ?? f[3]}`);
  }
  return out;
}

/**
 * Each thread's user-space call chain, innermost first, from gdb when the machine has it (a
 * diagnostic only: empty when gdb is missing or does not answer within its deadline).
 */
async function userStacks(pid: number): Promise<string> {
  const r = await execa('gdb', ['-p', String(pid), '-batch', '-nx', '-ex', 'thread apply all bt 12'], { reject: false, timeout: 20000 });
  if (r.failed && !r.stdout) return '';
  const threads: string[] = [];
  for (const line of r.stdout.split('\n')) {
    const t = /^Thread \d+ .*"([^"]*)"/.exec(line);
    if (t) threads.push(`[${t[1]}]`);
    const f = /^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+)/.exec(line);
    if (f && threads.length > 0) threads[threads.length - 1] += ` ${f[1]}`;
  }
  return threads.join(' ');
}
