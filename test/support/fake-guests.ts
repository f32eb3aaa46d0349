// A pair of fake QEMUs for unit tests of the engine's phases: each is a real Vm (Vm.launch) whose
// process is a FakeProcess of a FakeHost and whose QMP monitor is a FakeQmpServer on a real unix
// socket that keeps QEMU's migration settings (what is set is what query-* answers), its run
// state, and quits as QEMU does. The guest on it is a console the test writes: ready, heartbeats.
import { join } from 'node:path';
import type { GuestLauncher } from '../../src/migrate/phases/boot.js';
import { Vm } from '../../src/machine/vm.js';
import { FakeQmpServer, type Handler, type QmpRequest } from './fake-qmp.js';
import { FakeHost, type FakeProcess } from './fake-host.js';

/** One side's QEMU as the fake QMP server keeps it. */
export class FakeQemu {
  /** QEMU 7.2's defaults for the parameters miglab reads back. */
  readonly params: Record<string, unknown> = { 'max-bandwidth': 134217728, 'downtime-limit': 300, 'multifd-channels': 2, 'xbzrle-cache-size': 67108864, 'tls-creds': '', 'tls-hostname': '' };
  readonly caps: Record<string, boolean> = { xbzrle: false, 'auto-converge': false, events: false, 'postcopy-ram': false, multifd: false };
  status: string;
  process: FakeProcess | undefined;

  private constructor(
    readonly server: FakeQmpServer,
    status: string,
  ) {
    this.status = status;
  }

  static async start(path: string, status: string): Promise<FakeQemu> {
    const server = await FakeQmpServer.start(path);
    const q = new FakeQemu(server, status);
    server
      .on('migrate-set-parameters', (req) => {
        Object.assign(q.params, req.arguments);
        return { return: {} };
      })
      .on('migrate-set-capabilities', (req) => {
        for (const c of (req.arguments?.capabilities ?? []) as { capability: string; state: boolean }[]) q.caps[c.capability] = c.state;
        return { return: {} };
      })
      .on('query-migrate-parameters', () => ({ return: { ...q.params } }))
      .on('query-migrate-capabilities', () => ({ return: Object.entries(q.caps).map(([capability, state]) => ({ capability, state })) }))
      .on('query-status', () => ({ return: { status: q.status, running: q.status === 'running', singlestep: false } }))
      .on('quit', () => {
        setTimeout(() => q.process?.exit(), 5);
        return { return: {} };
      });
    return q;
  }

  /** What the monitor was sent, command by command (qmp_capabilities left out). */
  sent(command?: string): QmpRequest[] {
    return this.server.received.filter((r) => r.execute !== 'qmp_capabilities' && (command === undefined || r.execute === command));
  }

  on(command: string, handler: Handler): this {
    this.server.on(command, handler);
    return this;
  }
}

/** The guest's heartbeat line as the agent prints it. */
export function beatLine(seq: number, bootId = 'b00t'): string {
  return `MIGLAB-HB seq=${seq} mono_ns=${seq * 100_000_000} boot=${bootId}`;
}

export class FakePair {
  /** Both QEMUs run on this host (the lab's source namespace, as far as the phases can tell). */
  readonly host: FakeHost;
  private seq = 0;
  private beating: NodeJS.Timeout | undefined;

  private constructor(
    readonly src: FakeQemu,
    readonly dst: FakeQemu,
    host: FakeHost,
  ) {
    this.host = host;
  }

  /** `qemuImgCheckExit`: what `qemu-img check` exits with after the run (0: consistent). */
  static async start(dir: string, o: { qemuImgCheckExit?: number } = {}): Promise<FakePair> {
    const host = new FakeHost('src', {
      // The test's own process stands in, so that /proc answers for the QEMUs' CPU time.
      pid: () => process.pid,
      run: (argv) => {
        // No data disk yet; and qemu-img check says what the test wants of the disk afterwards.
        if (argv[0] === 'test') return { exitCode: argv[1] === '!' ? 0 : 1 };
        if (argv[0] === 'qemu-img' && argv[1] === 'check') return { exitCode: o.qemuImgCheckExit ?? 0 };
        return undefined;
      },
    });
    return new FakePair(await FakeQemu.start(join(dir, 'src.qmp'), 'running'), await FakeQemu.start(join(dir, 'dst.qmp'), 'inmigrate'), host);
  }

  /** Launches a real Vm on the fake host against this side's fake QMP; the source's guest comes up and beats once. */
  readonly launch: GuestLauncher = async (o) => {
    const q = o.side === 'src' ? this.src : this.dst;
    const vm = await Vm.launch({
      host: this.host,
      spec: o.spec,
      plan: { role: o.role, accel: o.accel, qmpSocket: q.server.path, media: o.media, incomingUri: o.incomingUri, hmpTelnetPort: o.hmpTelnetPort },
      runDir: o.runDir,
      label: o.side,
      teardown: o.teardown,
      onLogError: o.onLogError,
      timeoutMs: o.timeoutMs,
      signal: o.signal,
    });
    q.process = this.host.spawned.find((p) => p === vm.process);
    if (o.side === 'src') {
      q.process?.print('MIGLAB-READY ip=10.77.0.100 boot=b00t');
      this.beat(q);
    }
    return vm;
  };

  /** The guest's next heartbeat, on the side that has it. */
  beat(on: FakeQemu): void {
    on.process?.print(beatLine(++this.seq));
  }

  /** Beat every `everyMs` on whichever side `holder` names, until stopped. */
  keepBeating(holder: () => FakeQemu, everyMs: number): void {
    clearInterval(this.beating);
    this.beating = setInterval(() => this.beat(holder()), everyMs);
  }

  async close(): Promise<void> {
    clearInterval(this.beating);
    for (const q of [this.src, this.dst]) {
      q.process?.exit();
      await q.server.close();
    }
  }
}
