// What a container batch watches while it runs: each guest's memory, swap, pressure and load, read
// through its control port once a second (a guest that stops answering is itself the signal), the
// host's own, and every line of the guests' consoles that says one is in trouble (the OOM killer,
// a panic, the agent killed). From these it decides that a guest has halted, and says how: the
// batch stops there, because a halted guest is the result the ladder looks for.
import { createInterface } from 'node:readline';
import { describeError } from '../../errors.js';
import { consoleTrouble } from '../../machine/console-trouble.js';
import { parseLoadavg, parseMeminfo, parsePressure, sampleHost, type HostSnapshot } from '../../measure/host-sampler.js';
import { startPeriodic, type Periodic } from '../../util/periodic.js';
import type { ContainerHost } from '../hosts.js';
import type { ConsoleEvent, GuestHalt, GuestName, GuestSample, HostSignals } from './types.js';

/** One sample a second: PSI's shortest average is 10 s, so a faster read shows nothing new. */
export const SAMPLE_MS = 1000;
/** A read that takes longer than this is a guest not answering (the sample says so). */
export const READ_TIMEOUT_MS = 5000;
/**
 * A guest that has not answered for this long has halted. Under TCG a guest busy with hundreds of
 * CRIU processes still answers within seconds (each read is one short program), so a minute of
 * silence is not slowness.
 */
export const HALT_SILENCE_MS = 60_000;

const FILES = ['/proc/meminfo', '/proc/pressure/memory', '/proc/pressure/cpu', '/proc/pressure/io', '/proc/loadavg'] as const;

/**
 * One program reads every file, each line prefixed by its file's name: one round trip and one
 * exec per sample (under TCG each fork and exec costs the busy guest tens of milliseconds).
 */
export function guestSignalsArgv(): string[] {
  return ['grep', '-H', '', ...FILES];
}

const mib = (kib: number) => Math.round((kib / 1024) * 10) / 10;

/** The figures of one read of FILES; a part the guest could not give is left out, not zeroed. */
export function parseGuestSignals(text: string, at: { atMs: number; guest: GuestName; rttMs: number }): GuestSample {
  // "FILE:line": the paths hold no colon, so the first one ends the name.
  const lines = new Map<string, string[]>();
  for (const l of text.split('\n')) {
    const colon = l.indexOf(':');
    if (colon > 0) lines.set(l.slice(0, colon), [...(lines.get(l.slice(0, colon)) ?? []), l.slice(colon + 1)]);
  }
  const part = (f: (typeof FILES)[number]) => (lines.get(f) ?? []).join('\n');
  const tryParse = <T>(f: () => T): T | undefined => {
    try {
      return f();
    } catch {
      return undefined;
    }
  };
  const mem = tryParse(() => parseMeminfo(part('/proc/meminfo')));
  const pm = tryParse(() => parsePressure(part('/proc/pressure/memory')));
  const pc = tryParse(() => parsePressure(part('/proc/pressure/cpu')));
  const pio = tryParse(() => parsePressure(part('/proc/pressure/io')));
  const load = tryParse(() => parseLoadavg(part('/proc/loadavg')));
  return {
    ...at,
    ...(mem && { memAvailableMiB: mib(mem.memAvailableKiB), memTotalMiB: mib(mem.memTotalKiB), swapTotalMiB: mib(mem.swapTotalKiB), swapFreeMiB: mib(mem.swapFreeKiB) }),
    ...(pm && { psiMemSome10: pm.some.avg10, ...(pm.full && { psiMemFull10: pm.full.avg10 }) }),
    ...(pc && { psiCpuSome10: pc.some.avg10 }),
    ...(pio && { psiIoSome10: pio.some.avg10 }),
    ...(load && { load1: load.load1, tasks: load.threads }),
  };
}

export interface BatchWatch {
  readonly guestSamples: GuestSample[];
  readonly hostSamples: HostSignals[];
  readonly consoleEvents: ConsoleEvent[];
  /** The first halt seen, if any. */
  halt(): GuestHalt | undefined;
  /** The latest answered sample of a guest. */
  latest(guest: GuestName): GuestSample | undefined;
  stop(): Promise<void>;
}

export interface WatchOptions {
  readonly guests: readonly ContainerHost[];
  /** The batch's start (Date.now()): every atMs counts from it. */
  readonly t0: number;
  /** Told once, at the first halt: the batch aborts what it is doing in that guest. */
  readonly onHalt: (h: GuestHalt) => void;
  readonly progress: (line: string) => void;
}

/** Watch both guests and the host until stop(). */
export function startBatchWatch(o: WatchOptions): BatchWatch {
  const guestSamples: GuestSample[] = [];
  const hostSamples: HostSignals[] = [];
  const consoleEvents: ConsoleEvent[] = [];
  const latest = new Map<GuestName, GuestSample>();
  let halted: GuestHalt | undefined;
  // After stop() the guests are taken down on purpose: their QEMUs exiting is no halt.
  let stopped = false;
  const now = () => Date.now() - o.t0;
  const declare = (h: GuestHalt) => {
    if (halted || stopped) return;
    halted = h;
    o.progress(`${h.guest} halted (${h.how}) at ${(h.atMs / 1000).toFixed(1)} s: ${h.detail}`);
    o.onHalt(h);
  };

  const loops: Periodic<unknown>[] = [];
  const cleanups: (() => void)[] = [];
  for (const g of o.guests) {
    const guest = g.name as GuestName;
    let lastAnswer = now();
    // QEMU gone: nothing in the guest can answer again.
    void g.vm.process.exited.then((e) => declare({ guest, atMs: now(), how: 'qemu-exited', detail: `QEMU ${e.signal ? `was killed by ${e.signal}` : `exited with code ${e.exitCode}`}` }));
    // Every console line, not only the first trouble (HeartbeatLog keeps one): a batch may see dozens of OOM kills.
    const rl = createInterface({ input: g.vm.process.stdout, crlfDelay: Infinity });
    rl.on('line', (line) => {
      const t = consoleTrouble(line);
      if (!t) return;
      consoleEvents.push({ guest, kind: t.kind, line: t.line, atMs: now() });
      if (t.kind === 'panic') declare({ guest, atMs: now(), how: 'kernel-panic', detail: t.line });
      if (t.kind === 'agent-exit') declare({ guest, atMs: now(), how: 'agent-killed', detail: `${t.line}: the guest's agent (its control port) is gone` });
    });
    cleanups.push(() => rl.close());
    loops.push(
      startPeriodic<GuestSample>({
        what: `sampling ${guest}`,
        intervalMs: SAMPLE_MS,
        start: async () => async (signal) => {
          const asked = now();
          const r = await g.ctl.exec(guestSignalsArgv(), { reject: false, timeoutMs: READ_TIMEOUT_MS, signal }).catch(() => undefined);
          if (signal.aborted) return undefined;
          // grep exits 2 when one file is missing (a kernel without PSI): what it read still counts.
          if (!r || r.stdout === '') {
            const silent = now() - lastAnswer;
            if (silent >= HALT_SILENCE_MS) declare({ guest, atMs: now(), how: 'no-answer', detail: `its control port has not answered for ${(silent / 1000).toFixed(0)} s` });
            return { atMs: asked, guest, rttMs: null };
          }
          lastAnswer = now();
          const s = parseGuestSignals(r.stdout, { atMs: asked, guest, rttMs: now() - asked });
          latest.set(guest, s);
          return s;
        },
        onSample: (s) => guestSamples.push(s),
      }),
    );
  }
  loops.push(
    startPeriodic<HostSignals>({
      what: 'sampling the host',
      intervalMs: SAMPLE_MS,
      start: async () => {
        let previous: HostSnapshot | undefined;
        return async (signal) => {
          const { sample, snapshot } = await sampleHost({ previous, signal });
          previous = snapshot;
          return {
            atMs: now(),
            cpuBusyPct: sample.cpus.find((c) => c.cpu === 'cpu')?.busyPct ?? null,
            memAvailableMiB: mib(sample.memory.memAvailableKiB),
            psiMemSome10: sample.pressure.memory?.some.avg10 ?? null,
            psiCpuSome10: sample.pressure.cpu?.some.avg10 ?? null,
            load1: sample.loadavg.load1,
          };
        };
      },
      onSample: (s) => hostSamples.push(s),
      onFailure: (err) => o.progress(`host sampling stopped: ${describeError(err)}`),
    }),
  );
  return {
    guestSamples,
    hostSamples,
    consoleEvents,
    halt: () => halted,
    latest: (g) => latest.get(g),
    async stop() {
      stopped = true;
      for (const c of cleanups) c();
      // A sampling loop's failure is in its samples' gap; it must not fail the batch's record.
      await Promise.all(loops.map((l) => l.stop().catch(() => undefined)));
    },
  };
}
