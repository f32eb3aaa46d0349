// The client's silence in a switchover, cut into its parts (src/migrate/client-silence.ts): a
// capture on the lab switch's port to the destination runs beside the probe, and once the probe
// has stopped its longest gap is cut at QEMU's STOP and RESUME and at the frames the port saw. A
// figure on top of the run's own: a capture that cannot start or be read is noted, never fails the run.
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError } from '../../errors.js';
import { nsToMs, repliesAround, type ProbeRun } from '../../guest/probe.js';
import { startSwitchCapture, type SwitchCapture } from '../../measure/switch-capture.js';
import { clientSilence, type ClientSilence } from '../client-silence.js';
import type { Run } from '../run-state.js';

export type Capture = { readonly capture: SwitchCapture; readonly port: string } | { readonly none: string };

const CAPTURE_FILE = 'switch-dst.pcap';

/** Start the capture on the switch's port to the destination, stopped at teardown; or say why there is none. */
export async function startSilenceCapture(run: Run, guestMac: string): Promise<Capture> {
  const where = run.lab.switchPort('dst');
  if ('none' in where) return { none: where.none };
  // The run's files are its owner's only: made so before tcpdump opens it (it keeps the mode).
  const file = join(run.ctx.runDir, CAPTURE_FILE);
  const start = writeFile(file, '', { mode: 0o600 }).then(() =>
    startSwitchCapture({ host: where.host, iface: where.iface, guestMac, file, timeoutMs: 10_000, signal: run.guard.signal }),
  );
  // Its teardown is registered before anything is awaited (the caller goes on meanwhile: a run
  // that fails before awaiting this still ends the tcpdump it starts).
  const starting = start.catch(() => undefined);
  run.td.defer(`stop the capture on the switch's port ${where.iface}`, async () => (await starting)?.end());
  try {
    const capture = await start.catch(async (err: unknown) => {
      // No capture, no file: an empty one is not a pcap, and run.json would list it.
      await rm(file, { force: true });
      throw err;
    });
    return { capture, port: where.iface };
  } catch (err) {
    if (run.guard.signal.aborted) throw err;
    const why = `the capture on the switch's port ${where.iface} did not start: ${describeError(err)}`;
    run.guard.note('probe', why);
    return { none: why };
  }
}

/**
 * The client's silence that holds QEMU's RESUME, cut into its parts; `base` turns QEMU's event
 * times (ms from the migrate command) into the probe's clock (epoch ms). That silence is the
 * switchover's; it is most often also the probe's longest gap in the switchover's window (the run's
 * clientDowntimeMs), but on a busy host a later hiccup inside the window can be longer, and then
 * the run's incidents say so.
 */
export async function readClientSilence(run: Pick<Run, 'guard' | 'events'>, c: Capture, probe: Pick<ProbeRun, 'rows' | 'longestGapStartMs' | 'longestGapMs'>, base: number): Promise<ClientSilence | undefined> {
  const stop = run.events.find((e) => e.side === 'source' && e.event === 'STOP');
  const resume = run.events.find((e) => e.side === 'destination' && e.event === 'RESUME');
  const around = resume ? repliesAround(probe.rows, base + resume.tMs) : {};
  if (!stop || !resume || !around.before || !around.after) {
    // Said in the run's incidents, so that a run without the breakdown tells why.
    run.guard.note('probe', `the client's silence was not broken down: ${!stop ? 'no STOP event from the source' : !resume ? 'no RESUME event from the destination' : `the probe had no reply ${around.before ? 'after' : 'before'} QEMU's RESUME`}`);
    return undefined;
  }
  const gapStartMs = nsToMs(around.before.recvNs);
  const gapEndMs = nsToMs(around.after.recvNs);
  const at = (ms: number) => `${(ms - base).toFixed(1)} ms`;
  if (probe.longestGapStartMs !== null && probe.longestGapMs !== null && probe.longestGapStartMs !== gapStartMs) {
    run.guard.note('probe', `the probe's longest silence in the switchover's window (${probe.longestGapMs.toFixed(1)} ms from ${at(probe.longestGapStartMs)} after the migrate command) is not the one that holds QEMU's RESUME (${(gapEndMs - gapStartMs).toFixed(1)} ms from ${at(gapStartMs)}): the breakdown is of the second`);
  }
  let frames;
  let capture: ClientSilence['capture'];
  if ('none' in c) capture = c;
  else {
    frames = await c.capture.stop({ timeoutMs: 15_000, signal: run.guard.signal }).catch((err: unknown) => {
      if (run.guard.signal.aborted) throw err;
      run.guard.note('probe', `the capture on the switch's port was not read: ${describeError(err)}`);
      return undefined;
    });
    capture = frames ? { port: c.port } : { none: "the capture on the switch's port could not be read (the run's incidents say why)" };
  }
  const input = { gapStartMs, gapEndMs, stopMs: base + stop.tMs, resumeMs: base + resume.tMs, frames, capture };
  const silence = clientSilence(input);
  if (!silence) run.guard.note('probe', `the client's silence was not broken down: QEMU's RESUME (${at(input.resumeMs)}) came before its STOP (${at(input.stopMs)})`);
  return silence;
}
