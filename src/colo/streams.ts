// What COLO's four streams carried while the pair was in lock-step, read from the kernel's TCP
// counters on the primary's host (`ss -ti`: bytes_acked, bytes_received). QEMU gives no size for a
// checkpoint (query-migrate says only "colo"; the secondary's colo_flush_ram_cache_begin counts
// pages in its own cache, about the same whatever the guest does), but every byte of every
// checkpoint goes over the one migration connection: the bytes it carried in a window, over the
// checkpoints the trace counted in the same window, is the mean size of a checkpoint, RAM and
// device state together, as the wire saw it.
// The primary's side of each stream (ports: run.ts):
// - migration: the primary connected to the secondary's -incoming port; acked = checkpoints,
//   received = the secondary's replies on the return path;
// - nbd: the primary's quorum child writing into the secondary's replication export;
// - mirror: the primary listens, the secondary connects; acked = the client's packets copied;
// - compare: the primary listens; received = the secondary's guest's output, to be compared.
import type { Host } from '../host/host.js';
import type { ColoRecordFile } from '../results/colo.js';
import type { PrimaryTrace } from './trace.js';

export type StreamName = 'migration' | 'nbd' | 'mirror' | 'compare';

/** A stream's counters at one moment, in bytes, as the primary's side of the connection has them. */
export interface StreamCounters {
  /** Bytes the primary sent that the other side acknowledged (retransmits counted once). */
  readonly acked: number;
  readonly received: number;
}

export type StreamSample = { readonly atMs: number } & Partial<Record<StreamName, StreamCounters>>;

/** Which side of the connection the primary's port is on: `dport` (it connected) or `sport` (it listens). */
export type StreamPorts = Record<StreamName, { readonly port: number; readonly primaryIs: 'client' | 'server' }>;

const FIELD = /\b(bytes_acked|bytes_received):(\d+)/g;

/**
 * The counters of each stream from `ss -tinH state established` output (two lines per socket:
 * "Recv-Q Send-Q Local:Port Peer:Port", then the indented TCP info). A stream with no
 * connection is absent; two connections on one stream (a reconnect) are summed.
 */
export function parseStreamCounters(text: string, ports: StreamPorts): Partial<Record<StreamName, StreamCounters>> {
  const out: Partial<Record<StreamName, { acked: number; received: number }>> = {};
  let current: StreamName | undefined;
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    if (!/^\s/.test(line)) {
      const [, , local, peer] = line.trim().split(/\s+/);
      const portOf = (a: string | undefined) => Number(a?.slice(a.lastIndexOf(':') + 1));
      current = (Object.keys(ports) as StreamName[]).find((n) => (ports[n].primaryIs === 'client' ? portOf(peer) : portOf(local)) === ports[n].port);
      continue;
    }
    if (!current) continue;
    const acc = (out[current] ??= { acked: 0, received: 0 });
    for (const [, key, value] of line.matchAll(FIELD)) {
      if (key === 'bytes_acked') acc.acked += Number(value);
      else acc.received += Number(value);
    }
    current = undefined;
  }
  return out;
}

/** The counters of the primary's COLO connections now. */
export async function sampleStreams(host: Host, ports: StreamPorts, opts: { signal?: AbortSignal } = {}): Promise<StreamSample> {
  const filter = Object.values(ports).flatMap((p, i) => [...(i > 0 ? ['or'] : []), p.primaryIs === 'client' ? 'dport' : 'sport', '=', `:${p.port}`]);
  const asked = Date.now();
  const r = await host.run(['ss', '-tinH', 'state', 'established', '(', ...filter, ')'], { timeoutMs: 5000, signal: opts.signal });
  // Read somewhere between asking and the answer (over SSH, a round trip apart): taken as halfway.
  return { atMs: Math.round((asked + Date.now()) / 2), ...parseStreamCounters(r.stdout, ports) };
}

export interface StreamTraffic {
  readonly bytesToSecondary: number;
  readonly bytesFromSecondary: number;
  readonly mbpsToSecondary: number;
}

/** What each stream carried between two samples, and at what rate; a stream absent from either sample is left out. */
export function streamTraffic(from: StreamSample, to: StreamSample): Partial<Record<StreamName, StreamTraffic>> {
  const seconds = (to.atMs - from.atMs) / 1000;
  const out: Partial<Record<StreamName, StreamTraffic>> = {};
  for (const n of ['migration', 'nbd', 'mirror', 'compare'] as const) {
    const a = from[n];
    const b = to[n];
    // A counter that went back is a new connection (a reconnect): the window says nothing of it.
    if (!a || !b || b.acked < a.acked || b.received < a.received || seconds <= 0) continue;
    const sent = b.acked - a.acked;
    out[n] = { bytesToSecondary: sent, bytesFromSecondary: b.received - a.received, mbpsToSecondary: Math.round((sent * 8) / seconds / 1e5) / 10 };
  }
  return out;
}

/** The window as colo.json holds it. */
export type Streams = NonNullable<ColoRecordFile['outputs']['streams']>;

/** What the streams carried between two samples of their counters. */
export function streamWindow(from: StreamSample, to: StreamSample): Streams {
  return { fromMs: from.atMs, toMs: to.atMs, ...streamTraffic(from, to) };
}

/** The checkpoints the trace counted in the streams' window, and the migration stream's bytes over them. */
export function withCheckpointSize(w: Streams, trace: PrimaryTrace): Streams {
  const n = trace.checkpoints.filter((c) => c.atMs >= w.fromMs && c.atMs <= w.toMs).length;
  return { ...w, checkpoints: n, checkpointMeanBytes: n > 0 && w.migration ? Math.round(w.migration.bytesToSecondary / n) : undefined };
}
