// Links' byte counters read without a command per read: one small perl process in the links'
// namespace answers each line it is sent with the counters of its links, read from sysfs (which
// `ip netns exec` mounts for the namespace it enters). `ip -s link` per read costs a fork and an
// exec: at a 10 ms interval that took 87 % of a CPU on the project's machine, a line to this
// reader 5 % (bench runs' sampling cost).
import { MiglabError } from '../errors.js';
import type { Host } from '../host/host.js';
import type { LineSession } from '../host/line-session.js';
import type { LinkCounters } from './host-sampler.js';

/** The files read for each link, in the order of the answer's fields. */
const FILES = [
  'operstate',
  'statistics/rx_bytes',
  'statistics/tx_bytes',
  'statistics/rx_packets',
  'statistics/tx_packets',
  'statistics/rx_dropped',
  'statistics/tx_dropped',
  'statistics/rx_errors',
  'statistics/tx_errors',
] as const;

// One answer line per input line: `DEV=operstate,rx_bytes,...` for each link, space-separated;
// `DEV=-` for a link whose files are gone. $| = 1: each answer leaves at once.
const PROGRAM = `$| = 1; my @f = qw(${FILES.join(' ')});
while (<STDIN>) {
  my @o;
  for my $d (@ARGV) {
    my @v;
    for my $f (@f) { if (open(my $h, '<', "/sys/class/net/$d/$f")) { my $x = <$h>; chomp $x; push @v, $x } else { @v = (); last } }
    push @o, @v ? "$d=" . join(',', @v) : "$d=-";
  }
  print join(' ', @o), "\\n";
}`;

const DEV_RE = /^[\w.-]{1,15}$/;

export function linkReaderArgv(devs: readonly string[]): string[] {
  for (const d of devs) if (!DEV_RE.test(d)) throw new MiglabError('INTERNAL', `not a link name: "${d}"`);
  return ['perl', '-e', PROGRAM, ...devs];
}

/** One answer: each link's counters, or why there are none. Pure. */
export function parseLinkReaderLine(line: string, devs: readonly string[]): Map<string, LinkCounters | string> {
  const out = new Map<string, LinkCounters | string>();
  const fields = new Map(
    line
      .trim()
      .split(' ')
      .filter(Boolean)
      .map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)] as const),
  );
  for (const dev of devs) {
    const v = fields.get(dev);
    if (v === undefined || v === '-') {
      out.set(dev, v === '-' ? 'no such link' : `not in the reader's answer "${line.slice(0, 120)}"`);
      continue;
    }
    const [operstate, ...nums] = v.split(',');
    const n = nums.map(Number);
    // Every counter a whole number: an empty field (a file read empty) is no figure, not a 0.
    if (n.length !== FILES.length - 1 || !nums.every((x) => /^\d+$/.test(x))) {
      out.set(dev, `unreadable counters "${v}"`);
      continue;
    }
    out.set(dev, {
      dev,
      operstate: (operstate ?? 'unknown').toUpperCase(),
      rxBytes: n[0]!,
      txBytes: n[1]!,
      rxPackets: n[2]!,
      txPackets: n[3]!,
      rxDropped: n[4]!,
      txDropped: n[5]!,
      rxErrors: n[6]!,
      txErrors: n[7]!,
    });
  }
  return out;
}

export interface LinkReader {
  read(opts?: { readonly timeoutMs?: number }): Promise<Map<string, LinkCounters | string>>;
  /** End the reader (its stdin closes: it exits). */
  close(): Promise<void>;
}

/** Start the reader for `devs` on `host` (a namespace: its sysfs shows that namespace's links). */
export async function openLinkReader(host: Host, devs: readonly string[]): Promise<LinkReader> {
  const session: LineSession = await host.converse(linkReaderArgv(devs));
  const what = `the link reader for ${devs.join(', ')} on ${host.name}`;
  return {
    read: async (opts) => {
      // The session names itself by the whole perl program: said shortly here.
      const line = await session.ask('', opts).catch((err: unknown) => {
        const last = (err instanceof Error ? err.message : String(err)).trim().split('\n').at(-1) ?? '';
        throw new MiglabError('COMMAND_FAILED', `${what} did not answer (${last.slice(-160)}): is its namespace still there?`, { cause: err });
      });
      return parseLinkReaderLine(line, devs);
    },
    close: () => session.close(),
  };
}
