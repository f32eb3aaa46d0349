// The lab switch's view of a switchover: tcpdump on the switch's port toward the destination host,
// kept to the guest's own frames (`ether host MAC`). What crosses that port is what the client's
// silence is made of after QEMU's RESUME: QEMU's self-announce (RARP frames sent with the guest's
// MAC as their source, from which the switch learns the guest's new port), the guest's own first
// frames from the destination, and the client's requests the switch then forwards there.
//
// The capture is written as a pcap file in the run folder (a person can open it in Wireshark) and
// read back with `tcpdump -r -tt -n -e` once the run is checked: the kernel stamps each frame with
// this machine's wall clock, the clock QEMU stamps its STOP and RESUME with and the probe's
// replies are on (the embedded lab is one machine). A bounded number of frames (-c) is kept, so a
// long run cannot fill the disk; the port sees the guest's frames only once it has moved there.
import { MiglabError } from '../errors.js';
import type { Host, HostProcess } from '../host/host.js';
import { interruptAndWait } from '../host/interrupt.js';
import { withDeadline, type WaitOptions } from '../util/deadline.js';

/** One frame on the port: to the guest (the switch forwarded it there) or from it. */
export interface SwitchFrame {
  /** Epoch ms, to the µs, as the kernel stamped it on capture. */
  readonly tMs: number;
  readonly direction: 'from-guest' | 'to-guest';
  /** rarp: QEMU's self-announce; arp: the guest's own announce or a lookup; ipv4: traffic. */
  readonly kind: 'rarp' | 'arp' | 'ipv4' | 'other';
}

/** Frames past this many are not kept (about 90 bytes each in the file): the first second after the move is what counts. */
export const MAX_CAPTURED_FRAMES = 20000;
/** Only the Ethernet and IP headers are needed. */
const SNAPLEN_BYTES = 96;

/** tcpdump's argv for the capture: the port, the guest's frames only, to `file`, written as they come. */
export function captureArgv(iface: string, guestMac: string, file: string): string[] {
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(guestMac)) throw new MiglabError('INTERNAL', `not a MAC address: ${guestMac}`);
  // --immediate-mode: each frame handed over as it comes (libpcap otherwise waits for a block of
  // them or a second, and SIGINT drops the block: the first run's capture lost every frame after
  // RESUME); -U: written at once; -Z root: tcpdump keeps root and so can write the run folder (it
  // would switch to user tcpdump otherwise).
  return ['tcpdump', '-i', iface, '-n', '--immediate-mode', '-U', '-Z', 'root', '-s', String(SNAPLEN_BYTES), '-c', String(MAX_CAPTURED_FRAMES), '-w', file, 'ether', 'host', guestMac];
}

const LINE_RE = /^(\d+)\.(\d{6}) ([0-9a-f:]{17}) > ([0-9a-f:]{17}), ethertype [^(]*\(0x([0-9a-f]{4})\)/;
const KINDS: Readonly<Record<string, SwitchFrame['kind']>> = { '8035': 'rarp', '0806': 'arp', '0800': 'ipv4' };

/**
 * Parse `tcpdump -r FILE -tt -n -e` lines into frames of the guest (others are skipped). Pure.
 * The direction is read from the MACs: a frame the switch floods out of this port from another
 * host's guest with the same MAC would read as from-guest; the caller only looks at frames after
 * the source stopped the guest (client-silence.ts).
 */
export function parseCapturedFrames(text: string, guestMac: string): SwitchFrame[] {
  const mac = guestMac.toLowerCase();
  const frames: SwitchFrame[] = [];
  for (const line of text.split('\n')) {
    const m = LINE_RE.exec(line);
    if (!m) continue;
    const [, sec, usec, from, to, type] = m;
    const direction = from === mac ? 'from-guest' : to === mac ? 'to-guest' : undefined;
    if (!direction) continue;
    frames.push({ tMs: Number(sec) * 1000 + Number(usec) / 1000, direction, kind: KINDS[type!] ?? 'other' });
  }
  return frames;
}

export interface SwitchCapture {
  readonly pid: number;
  readonly file: string;
  /** End tcpdump (SIGINT: it closes the file), without reading it: teardown's part. Safe to call twice. */
  end(opts?: Partial<WaitOptions>): Promise<void>;
  /** End tcpdump and read the frames back. Safe to call twice. */
  stop(opts?: Partial<WaitOptions>): Promise<SwitchFrame[]>;
}

export interface StartCaptureOptions extends WaitOptions {
  /** The host holding the switch (its namespace) and the port to watch. */
  readonly host: Host;
  readonly iface: string;
  readonly guestMac: string;
  /** The pcap file (named .pcap: Debian's AppArmor profile for tcpdump writes only such files). */
  readonly file: string;
}

/** Start the capture and wait until tcpdump listens (it says so on stderr), so no frame after this is missed. */
export async function startSwitchCapture(o: StartCaptureOptions): Promise<SwitchCapture> {
  const argv = captureArgv(o.iface, o.guestMac, o.file);
  const proc: HostProcess = o.host.spawn(argv);
  let stderr = '';
  const listening = new Promise<void>((resolve, reject) => {
    proc.stderr.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
      if (stderr.includes('listening on')) resolve();
    });
    void proc.exited.then((e) => reject(new MiglabError('COMMAND_FAILED', `tcpdump on the switch's port ${o.iface} exited ${e.signal ?? `with code ${e.exitCode}`} before listening: ${stderr.trim().split('\n').slice(-1)[0] ?? ''}`)));
  });
  await withDeadline(`starting tcpdump on the switch's port ${o.iface}`, listening, { timeoutMs: o.timeoutMs, signal: o.signal }).catch(async (err: unknown) => {
    await proc.stop(500);
    throw err;
  });
  let ending: Promise<void> | undefined;
  const end = (opts: Partial<WaitOptions> = {}): Promise<void> => {
    // It may have ended by itself (its -c frames seen): then there is nothing to signal. One that
    // could not be interrupted was stopped instead (SIGTERM also makes tcpdump close its file).
    ending ??= interruptAndWait(o.host, proc, 'tcpdump', opts).then(() => undefined);
    return ending;
  };
  let stopping: Promise<SwitchFrame[]> | undefined;
  const stop = (opts: Partial<WaitOptions> = {}): Promise<SwitchFrame[]> => {
    stopping ??= (async () => {
      await end(opts);
      const r = await o.host.run(['tcpdump', '-r', o.file, '-tt', '-n', '-e'], { timeoutMs: opts.timeoutMs ?? 10_000, signal: opts.signal });
      return parseCapturedFrames(r.stdout, o.guestMac);
    })();
    return stopping;
  };
  return { pid: proc.pid, file: o.file, end, stop };
}
