// A running QEMU that this object owns (after QEMU's machine.py): launch reports the exit code,
// command line and log tail when QEMU dies early; shutdown asks politely with `quit`, waits with
// a deadline, then kills; it may be called twice. The monitor sockets are removed afterwards
// (unless their directory is the caller's to remove).
// QEMU runs on a Host (this machine, one of its namespaces, or a machine over SSH); its monitors
// are reached through that host, and its serial log and QMP transcript are written here.
import { MiglabError } from '../errors.js';
import type { ExitInfo, Host, HostProcess } from '../host/host.js';
import { QmpClient } from '../qmp/client.js';
import { Transcript } from '../qmp/transcript.js';
import { withDeadline, type WaitOptions } from '../util/deadline.js';
import type { Teardown } from '../util/teardown.js';
import type { ExplainedCommand } from '../util/explained-command.js';
import { buildQemuCommand, type LaunchPlan } from './argv.js';
import { HeartbeatLog } from './heartbeat.js';
import type { MachineSpec } from './spec.js';
import { whereStuck } from './stuck.js';

/** A line of QEMU's stderr without the time -msg timestamp=on puts before it (a run tracing its downtime). */
export function withoutTimestamp(line: string): string {
  return line.replace(/^\d{4}-\d\d-\d\dT[\d:.]+Z /, '');
}

export class VmLaunchError extends MiglabError {
  /** QEMU was still running without answering on its monitor (stopped since), not dead. */
  readonly hung: boolean;
  /** The command line that failed: the run's report keeps it (run.json's inputs.commands). */
  readonly command: ExplainedCommand;
  constructor(what: string, command: ExplainedCommand, exit: ExitInfo | undefined, logTail: string, cause?: unknown) {
    const how = exit ? (exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.exitCode}`) : 'did not start';
    const lastLine = logTail.trim().split('\n').filter(Boolean).slice(-1).map(withoutTimestamp)[0];
    super('VM_LAUNCH', `QEMU for ${what} ${how}${lastLine ? `: ${lastLine}` : ''}`, {
      cause,
      context: { argv: command.argv, exit, logTail },
    });
    this.name = 'VmLaunchError';
    this.command = command;
    this.hung = exit === undefined;
  }
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
  /** A file of this VM (serial log, QMP transcript) cannot be written: the caller fails its run. */
  readonly onLogError?: (file: string, err: Error) => void;
  /**
   * The monitor sockets' directory is the caller's, removed by it whole once QEMU has stopped:
   * shutdown leaves the sockets to it (a relaunched QEMU binds over a stale one).
   */
  readonly socketsRemovedByCaller?: boolean;
}

export class Vm {
  readonly label: string;
  readonly spec: MachineSpec;
  readonly command: ExplainedCommand;
  readonly process: HostProcess;
  readonly console: HeartbeatLog;
  readonly plan: LaunchPlan;
  /** The host QEMU runs on (its monitor sockets are there). */
  readonly host: Host;
  private qmpClient: QmpClient | undefined;
  private stopping: Promise<ExitInfo> | undefined;

  private constructor(host: Host, label: string, spec: MachineSpec, plan: LaunchPlan, command: ExplainedCommand, proc: HostProcess, private readonly keepSockets = false) {
    this.host = host;
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
    const serialLog = `${opts.runDir}/${opts.label}.serial.log`;
    const proc = opts.host.spawn(command.argv, { logFile: serialLog, onLogError: (err) => opts.onLogError?.(serialLog, err) });
    const vm = new Vm(opts.host, opts.label, opts.spec, opts.plan, command, proc, opts.socketsRemovedByCaller);
    opts.teardown.defer(`stop QEMU ${opts.label} (pid ${proc.pid})`, () => vm.shutdown().then(() => undefined));
    const what = `${opts.spec.name} (${opts.label})`;
    const died = proc.exited.then((exit) => {
      throw new VmLaunchError(what, command, exit, proc.tail());
    });
    try {
      const transcriptFile = `${opts.runDir}/${opts.label}.qmp.jsonl`;
      const transcript = new Transcript(transcriptFile, (err) => opts.onLogError?.(transcriptFile, err));
      vm.qmpClient = await Promise.race([
        QmpClient.connect(opts.plan.qmpSocket, { timeoutMs: opts.timeoutMs, signal: opts.signal, transcript, open: () => opts.host.connectUnix(opts.plan.qmpSocket) }),
        died,
      ]);
    } catch (err) {
      if (err instanceof VmLaunchError) throw err;
      // Give QEMU a moment to print why it could not open its monitor before we kill it.
      const exit = await withDeadline('QEMU exit', proc.exited, { timeoutMs: 300 }).catch(() => undefined);
      // Still running without a monitor: say where it is stuck (which program, which kernel wait),
      // the one clue to a launch that hangs.
      const where = exit ? '' : await whereStuck(opts.host, proc.pid, opts.plan.qmpSocket);
      // A QEMU that never answered is of no use: stop it now, so a relaunch can take its tap.
      if (!exit) await vm.shutdown({ timeoutMs: 1000 });
      throw new VmLaunchError(what, command, exit, where || proc.tail(), err);
    } finally {
      died.catch(() => undefined); // the race is over; the rejection is handled above
    }
    return vm;
  }

  /** miglab has begun to stop this QEMU: an exit from now on is expected. */
  get stopRequested(): boolean {
    return this.stopping !== undefined;
  }

  /** Ask QEMU to quit, wait up to `timeoutMs`, then kill it. Safe to call more than once. */
  shutdown(opts: { timeoutMs?: number } = {}): Promise<ExitInfo> {
    this.stopping ??= (async () => {
      const timeoutMs = opts.timeoutMs ?? 5000;
      // A QEMU frozen with SIGSTOP (a fault, or a user) answers nothing and holds SIGTERM pending:
      // let it run again so that it can quit. Sent alongside `quit`, not before it: a frozen QEMU
      // reads the quit once it runs again, and one that is not frozen need not wait for the signal.
      const resumed = this.process.sendSignal('SIGCONT');
      if (!this.process.hasExited && this.qmpClient) {
        await this.qmpClient.quit({ timeoutMs: Math.min(2000, timeoutMs) }).catch(() => undefined);
      }
      // Its answer is not waited for: what follows waits for QEMU's exit, which a frozen QEMU
      // reaches only once the signal has landed anyway.
      void resumed.catch(() => undefined);
      let exit = await withDeadline(`QEMU ${this.label} exit`, this.process.exited, { timeoutMs }).catch(() => undefined);
      exit ??= await this.process.stop(1000);
      await this.qmpClient?.close();
      // Each socket is removed by a command of its own, all at once.
      if (!this.keepSockets) await Promise.all([this.plan.qmpSocket, this.plan.hmpSocket, this.plan.personQmpSocket].filter((s): s is string => s !== undefined).map((s) => this.host.remove(s)));
      return exit;
    })();
    return this.stopping;
  }
}
