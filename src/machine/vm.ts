// A running QEMU that this object owns (after QEMU's machine.py): launch reports the exit code,
// command line and log tail when QEMU dies early; shutdown asks politely with `quit`, waits with
// a deadline, then kills; it may be called twice. The monitor sockets are removed afterwards.
import { readdir, readFile, readlink, rm, stat as statPath } from 'node:fs/promises';
import { execa } from 'execa';
import { MiglabError } from '../errors.js';
import { parseProcStat } from '../lab/proc.js';
import type { ExitInfo, Host, HostProcess } from '../host/host.js';
import { QmpClient } from '../qmp/client.js';
import { Transcript } from '../qmp/transcript.js';
import { withDeadline, type WaitOptions } from '../util/deadline.js';
import type { Teardown } from '../util/teardown.js';
import { buildQemuCommand, type ExplainedCommand, type LaunchPlan } from './argv.js';
import { HeartbeatLog } from './heartbeat.js';
import type { MachineSpec } from './spec.js';

export class VmLaunchError extends MiglabError {
  /** QEMU was still running without answering on its monitor (stopped since), not dead. */
  readonly hung: boolean;
  constructor(what: string, argv: readonly string[], exit: ExitInfo | undefined, logTail: string, cause?: unknown) {
    const how = exit ? (exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.exitCode}`) : 'did not start';
    const lastLine = logTail.trim().split('\n').filter(Boolean).slice(-1)[0];
    super('VM_LAUNCH', `QEMU for ${what} ${how}${lastLine ? `: ${lastLine}` : ''}`, {
      cause,
      context: { argv, exit, logTail },
    });
    this.name = 'VmLaunchError';
    this.hung = exit === undefined;
  }
}

/**
 * `comm`, state and kernel wait channel of a live process, its threads and what its file
 * descriptors point at, from /proc (each part "?" if unreadable). The open files show how far
 * QEMU got (tap, NFS connection, monitor sockets) when a launch hangs.
 */
async function whereStuck(pid: number, qmpSocket: string): Promise<string> {
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

export interface VmLaunchOptions extends WaitOptions {
  readonly host: Host;
  readonly spec: MachineSpec;
  readonly plan: LaunchPlan;
  /** Files of this VM go here: `<label>.serial.log`, `<label>.qmp.jsonl`. */
  readonly runDir: string;
  /** A short label for files and messages, e.g. "src" or "dst". */
  readonly label: string;
  readonly teardown: Teardown;
}

export class Vm {
  readonly label: string;
  readonly spec: MachineSpec;
  readonly command: ExplainedCommand;
  readonly process: HostProcess;
  readonly console: HeartbeatLog;
  readonly plan: LaunchPlan;
  private qmpClient: QmpClient | undefined;
  private stopping: Promise<ExitInfo> | undefined;

  private constructor(label: string, spec: MachineSpec, plan: LaunchPlan, command: ExplainedCommand, proc: HostProcess) {
    this.label = label;
    this.spec = spec;
    this.plan = plan;
    this.command = command;
    this.process = proc;
    this.console = new HeartbeatLog(proc.stdout);
  }

  get qmp(): QmpClient {
    if (!this.qmpClient) throw new MiglabError('INTERNAL', `QMP of ${this.label} is not connected`);
    return this.qmpClient;
  }

  static async launch(opts: VmLaunchOptions): Promise<Vm> {
    const command = buildQemuCommand(opts.spec, opts.plan);
    const proc = opts.host.spawn(command.argv, { logFile: `${opts.runDir}/${opts.label}.serial.log` });
    const vm = new Vm(opts.label, opts.spec, opts.plan, command, proc);
    opts.teardown.defer(`stop QEMU ${opts.label} (pid ${proc.pid})`, () => vm.shutdown().then(() => undefined));
    const what = `${opts.spec.name} (${opts.label})`;
    const died = proc.exited.then((exit) => {
      throw new VmLaunchError(what, command.argv, exit, proc.tail());
    });
    try {
      const transcript = new Transcript(`${opts.runDir}/${opts.label}.qmp.jsonl`);
      vm.qmpClient = await Promise.race([
        QmpClient.connect(opts.plan.qmpSocket, { timeoutMs: opts.timeoutMs, signal: opts.signal, transcript }),
        died,
      ]);
    } catch (err) {
      if (err instanceof VmLaunchError) throw err;
      // Give QEMU a moment to print why it could not open its monitor before we kill it.
      const exit = await withDeadline('QEMU exit', proc.exited, { timeoutMs: 300 }).catch(() => undefined);
      // Still running without a monitor: say where it is stuck (which program, which kernel wait),
      // the one clue to a launch that hangs.
      const where = exit ? '' : await whereStuck(proc.pid, opts.plan.qmpSocket);
      // A QEMU that never answered is of no use: stop it now, so a relaunch can take its tap.
      if (!exit) await vm.shutdown({ timeoutMs: 1000 });
      throw new VmLaunchError(what, command.argv, exit, where || proc.tail(), err);
    } finally {
      died.catch(() => undefined); // the race is over; the rejection is handled above
    }
    return vm;
  }

  /** Ask QEMU to quit, wait up to `timeoutMs`, then kill it. Safe to call more than once. */
  shutdown(opts: { timeoutMs?: number } = {}): Promise<ExitInfo> {
    this.stopping ??= (async () => {
      const timeoutMs = opts.timeoutMs ?? 5000;
      if (!this.process.hasExited && this.qmpClient) {
        await this.qmpClient.quit({ timeoutMs: Math.min(2000, timeoutMs) }).catch(() => undefined);
      }
      let exit = await withDeadline(`QEMU ${this.label} exit`, this.process.exited, { timeoutMs }).catch(() => undefined);
      exit ??= await this.process.stop(1000);
      await this.qmpClient?.close();
      for (const sock of [this.plan.qmpSocket, this.plan.hmpSocket]) if (sock) await rm(sock, { force: true });
      return exit;
    })();
    return this.stopping;
  }
}
