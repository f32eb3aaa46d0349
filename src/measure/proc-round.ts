// Everything one sample needs from a host's /proc, read in ONE command. Over SSH each command is
// a channel and a round trip: reading a sample's files one command each took 310-570 ms a tick
// (measured on the SSH test hosts, 2 QEMUs), which a 500 ms sampling interval cannot keep; one
// `sh -c` that prints every file behind a marker line, parsed here, takes one round trip. The same
// round also finds the processes to follow (pgrep) and reads link counters (ip), so a tick costs
// the host one command whatever it samples.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Host } from '../host/host.js';
import { MeasureError, excerpt } from './errors.js';
import { parseIpLinkStats, type LinkCounters, type ProcReader } from './host-sampler.js';

/** What one round reads. */
export interface ProcRoundRequest {
  /** Files read whole (absent from the answer when they do not exist). */
  readonly files: readonly string[];
  /**
   * An extended regex of command lines (pgrep -f): each matching process's cmdline, stat and
   * status are read, and its open files counted, in the same round.
   */
  readonly processes?: string;
  /** Links of the host's own namespace whose counters are read (`ip -s -j link show dev DEV`). */
  readonly links?: readonly string[];
}

/** What one round found. Paths are as asked (`/proc/PID/stat` for a process found). */
export interface ProcRound {
  /** performance.now() before the command was sent and after its answer came back. */
  readonly startMono: number;
  readonly endMono: number;
  readonly files: ReadonlyMap<string, string>;
  /** Entries of /proc/PID/fd for each process found. */
  readonly counts: ReadonlyMap<string, number>;
  /** The processes that matched `processes`, whose files are in `files`. */
  readonly pids: readonly number[];
  readonly links: ReadonlyMap<string, LinkCounters>;
  /** Why a link's counters could not be read, by link. */
  readonly linkErrors: ReadonlyMap<string, string>;
}

// $1: the marker; $2: the pgrep regex ('' for none); $3: how many files follow; then the files,
// then the links. Every item is a header line `\n<marker> <kind> <name>\n`, its text, and a
// trailer `\n<marker> rc <status>\n`: the added newlines delimit the text exactly, whatever it
// holds (a cmdline has NULs, a file may lack a final newline).
const ROUND_SCRIPT = [
  'm=$1 pat=$2 n=$3; shift 3',
  'item() { printf \'\\n%s %s %s\\n\' "$m" "$1" "$2"; }',
  'rc() { printf \'\\n%s rc %s\\n\' "$m" "$1"; }',
  'file() { item f "$1"; cat -- "$1" 2>/dev/null; rc $?; }',
  'count() { item n "$1"; [ -d "$1" ] || { rc 1; return; }; set -- "$1"/*; if [ -e "$1" ] || [ -L "$1" ]; then echo $#; else echo 0; fi; rc 0; }',
  'i=0; while [ $i -lt "$n" ]; do file "$1"; shift; i=$((i+1)); done',
  'if [ -n "$pat" ]; then',
  '  item p pids; pids=$(pgrep -f -- "$pat"); echo "$pids"; rc 0',
  '  for p in $pids; do file /proc/$p/cmdline; file /proc/$p/stat; file /proc/$p/status; count /proc/$p/fd; done',
  'fi',
  'for dev in "$@"; do item l "$dev"; ip -s -j link show dev "$dev" 2>&1; rc $?; done',
].join('\n');

/** The argv of one round; `marker` must not occur in what the files hold (a random one is used). */
export function procRoundArgv(req: ProcRoundRequest, marker: string): string[] {
  return ['sh', '-c', ROUND_SCRIPT, 'miglab-proc-round', marker, req.processes ?? '', String(req.files.length), ...req.files, ...(req.links ?? [])];
}

/** Parse a round's output (pure). Timing is the caller's. */
export function parseProcRound(out: string, marker: string): Omit<ProcRound, 'startMono' | 'endMono'> {
  const files = new Map<string, string>();
  const counts = new Map<string, number>();
  const links = new Map<string, LinkCounters>();
  const linkErrors = new Map<string, string>();
  let pids: number[] = [];
  const parts = out.split(`\n${marker} `);
  if (parts[0] !== '') throw new MeasureError('proc', `a /proc round began with "${excerpt(parts[0]!)}", not its marker`);
  for (let i = 1; i + 1 < parts.length; i += 2) {
    const head = parts[i]!;
    const nl = head.indexOf('\n');
    const [kind, ...rest] = head.slice(0, nl < 0 ? head.length : nl).split(' ');
    const name = rest.join(' ');
    const text = nl < 0 ? '' : head.slice(nl + 1);
    const trailer = /^rc (\d+)\n?$/.exec(parts[i + 1]!);
    if (!trailer) throw new MeasureError('proc', `a /proc round's item ${kind} ${name} has no status line`);
    const ok = trailer[1] === '0';
    if (kind === 'f' && ok) files.set(name, text);
    else if (kind === 'n' && ok) counts.set(name, Number(text.trim()));
    else if (kind === 'p') pids = text.split(/\s+/).filter(Boolean).map(Number);
    else if (kind === 'l') {
      if (!ok) {
        linkErrors.set(name, excerpt(text.trim()) || `ip exited ${trailer[1]}`);
        continue;
      }
      const c = parseIpLinkStats(text).get(name);
      if (c) links.set(name, c);
      else linkErrors.set(name, `no link ${name}`);
    }
  }
  return { files, counts, pids, links, linkErrors };
}

/** One round on `host`: one command, one round trip. */
export async function readProcRound(host: Host, req: ProcRoundRequest, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<ProcRound> {
  const marker = `miglab-${randomBytes(8).toString('hex')}`;
  const startMono = performance.now();
  const r = await host.run(procRoundArgv(req, marker), { timeoutMs: opts.timeoutMs, signal: opts.signal });
  const endMono = performance.now();
  // run() trims the last newline: the final trailer's, which the parser does not need.
  return { startMono, endMono, ...parseProcRound(r.stdout, marker) };
}

/** The round's files as sampleHost reads them; asking for a file the round did not read is a bug. */
export function roundReader(round: Pick<ProcRound, 'files' | 'counts'>, asked: ReadonlySet<string>): ProcReader {
  const check = (path: string) => {
    if (!asked.has(path)) throw new MeasureError('proc', `${path} was not read in this round (a sampler asked for a file it did not plan)`);
  };
  return {
    readText: async (path) => {
      check(path);
      return round.files.get(path);
    },
    countEntries: async (path) => {
      check(path);
      return round.counts.get(path);
    },
  };
}
