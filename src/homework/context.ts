// What every homework section shares: the lab, the image, the accelerator verdict, the output
// directory, and a way to boot one benchmark guest on the source host and talk to its agent
// from the client host. Each guest is stopped and removed when its section is done with it.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentClient } from '../guest/agent-client.js';
import type { ImageInfo } from '../image/build.js';
import type { Lab } from '../lab/index.js';
import type { AccelDecision } from '../machine/accel.js';
import type { ResolvedAccel } from '../machine/argv.js';
import { startSingleGuest } from '../machine/lab-guest.js';
import { parseMachineSpec, type DiskInterface, type NicModel } from '../machine/spec.js';
import type { Vm } from '../machine/vm.js';
import { Teardown } from '../util/teardown.js';
import type { Progress } from '../progress/progress.js';
import type { HomeworkSpec } from './spec.js';

export interface HomeworkContext {
  readonly lab: Lab;
  readonly image: ImageInfo;
  readonly accel: AccelDecision;
  readonly spec: HomeworkSpec;
  readonly dir: string;
  readonly runId: string;
  readonly cacheDir: string;
  readonly probeTool: string;
  readonly signal: AbortSignal;
  readonly progress: Progress;
}

export interface GuestOptions {
  readonly accel: ResolvedAccel;
  readonly nicModel?: NicModel;
  readonly diskInterface?: DiskInterface;
  readonly iperfServer?: boolean;
  readonly memoryMiB?: number;
  /** Distinguishes this guest's files in the output directory. */
  readonly label: string;
}

export interface BenchGuest {
  readonly vm: Vm;
  readonly agent: AgentClient;
  readonly ip: string;
}

const BOOT_TIMEOUT_MS = 90000;

/** Boot one guest on the source host, run `body`, and always stop and remove it. */
export async function withGuest<T>(ctx: HomeworkContext, o: GuestOptions, body: (g: BenchGuest) => Promise<T>): Promise<T> {
  const td = new Teardown();
  try {
    // A guest slot of its own, as every run on a lab takes: another run on the lab never shares
    // its address, MAC or tap.
    const slot = await ctx.lab.acquireSlot({ preferred: 0, runId: `${ctx.runId}-${o.label}`, signal: ctx.signal });
    td.defer(`release guest slot g${slot.index}`, () => slot.release());
    const lab = slot.lab;
    const spec = parseMachineSpec({
      name: `hw${slot.index}`,
      accel: o.accel,
      cpuModel: o.accel === 'kvm' ? 'host' : 'qemu64',
      memoryMiB: o.memoryMiB ?? ctx.spec.memoryMiB,
      nicModel: o.nicModel ?? 'virtio-net-pci',
      diskInterface: o.diskInterface ?? 'virtio',
      mac: lab.guestMac(slot.index),
      ip: `${lab.guestIp(slot.index)}/${lab.prefixLength}`,
      iperfServer: o.iperfServer ?? false,
    });
    const guestDir = join(ctx.dir, 'guests', o.label);
    await mkdir(guestDir, { recursive: true });
    const vm = await startSingleGuest({
      lab,
      media: ctx.image,
      spec,
      accel: o.accel,
      runDir: guestDir,
      teardown: td,
      diskFile: `${ctx.runId}-${o.label}.qcow2`,
      diskSizeMiB: Math.max(64, ctx.spec.diskBenchMiB * 2),
      timeoutMs: BOOT_TIMEOUT_MS,
      signal: ctx.signal,
    });
    const ip = lab.guestIp(slot.index);
    const agent = new AgentClient({ host: lab.hosts.client.host, guestIp: ip, toolPath: ctx.probeTool });
    await agent.waitReachable({ timeoutMs: 30000, signal: ctx.signal });
    return await body({ vm, agent, ip });
  } finally {
    await td.run();
  }
}

/** Time a section: returns its result and its wall time. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ result: T; wallMs: number }> {
  const t = Date.now();
  const result = await fn();
  return { result, wallMs: Date.now() - t };
}
