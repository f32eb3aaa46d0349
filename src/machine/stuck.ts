// Where a QEMU that does not answer is stuck, from /proc and (when installed) gdb on the host that
// runs it: the one clue to a launch that hangs. Reads only; the caller decides what to do with
// the process.
import type { Host } from '../host/host.js';
import { parseProcStat } from '../lab/proc.js';

/**
 * Prints each /proc file whereStuck needs after a `@@miglab NAME` line ("?" if unreadable), in one
 * run: one round trip to a remote host. $1 is the pid, $2 the QMP socket's path.
 */
const PROC_SCRIPT = `p=/proc/$1
r() { cat "$1" 2>/dev/null || printf '?'; }
for f in comm wchan stat net/tcp net/unix; do echo "@@miglab $f"; r "$p/$f"; echo; done
echo "@@miglab threads"
for t in "$p"/task/*; do [ -d "$t" ] && echo "$(r "$t/comm"):$(r "$t/wchan")"; done
echo "@@miglab fds"
for f in "$p"/fd/*; do [ -e "$f" ] || [ -L "$f" ] && echo "\${f##*/} $(readlink "$f" || echo '?')"; done
echo "@@miglab seen"
if [ -e "$p/root$2" ]; then echo exists; elif [ -x "$p/root/" ]; then echo ENOENT; else echo unreadable; fi`;

/** The script's output as section name -> text (trimmed). */
function sections(out: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const part of out.split(/^@@miglab /m).slice(1)) {
    const nl = part.indexOf('\n');
    map.set(nl < 0 ? part.trim() : part.slice(0, nl), nl < 0 ? '' : part.slice(nl + 1).trim());
  }
  return map;
}

/**
 * `comm`, state and kernel wait channel of a live process, its threads and what its file
 * descriptors point at, from /proc (each part "?" if unreadable). The open files show how far
 * QEMU got (tap, NFS connection, monitor sockets) when a launch hangs.
 */
export async function whereStuck(host: Host, pid: number, qmpSocket: string): Promise<string> {
  const out = await host.run(['sh', '-c', PROC_SCRIPT, 'stuck', String(pid), qmpSocket], { timeoutMs: 10000, reject: false }).then(
    (r) => r.stdout,
    () => '',
  );
  const s = sections(out);
  const read = (name: string) => s.get(name) ?? '?';
  const [comm, wchan, stat] = [read('comm'), read('wchan'), read('stat')];
  const state = parseProcStat(stat)?.state ?? '?';
  const lines = (name: string) => (s.get(name) ?? '').split('\n').filter(Boolean);
  const threadInfo = lines('threads').map((t) => (t.endsWith(':') ? `${t}running` : t));
  // A TCP socket is shown with its addresses and state (the NFS mount it waits on, say).
  const tcp = tcpByInode(read('net/tcp'));
  const fdInfo = lines('fds').map((l) => {
    const [fd, target = '?'] = l.split(' ', 2) as [string, string?];
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    return `${fd}->${(inode && tcp.get(inode)) || target}`;
  });
  // Whether QEMU sees its monitor socket (through its own root) and has it listening.
  const seen = read('seen');
  const listening = read('net/unix').split('\n').some((l) => l.endsWith(` ${qmpSocket}`));
  const stacks = await userStacks(host, pid);
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
async function userStacks(host: Host, pid: number): Promise<string> {
  const r = await host.run(['gdb', '-p', String(pid), '-batch', '-nx', '-ex', 'thread apply all bt 12'], { reject: false, timeoutMs: 20000 }).catch(() => undefined);
  if (!r || (r.exitCode !== 0 && !r.stdout)) return '';
  const threads: string[] = [];
  for (const line of r.stdout.split('\n')) {
    const t = /^Thread \d+ .*"([^"]*)"/.exec(line);
    if (t) threads.push(`[${t[1]}]`);
    const f = /^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+)/.exec(line);
    if (f && threads.length > 0) threads[threads.length - 1] += ` ${f[1]}`;
  }
  return threads.join(' ');
}
