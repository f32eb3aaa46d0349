// COLO's streams as the kernel counts them (src/colo/streams.ts): `ss -ti` read on real loopback
// connections that carried a known number of bytes, the parse of its two-line output, the window
// between two samples, and a checkpoint's mean size from the window and the trace.
import { describe, expect, it } from '@jest/globals';
import { createServer, connect, Socket, type Server } from 'node:net';
import { once } from 'node:events';
import { LocalHost } from '../../../src/host/local.js';
import { parseStreamCounters, sampleStreams, streamTraffic, withCheckpointSize, type StreamPorts } from '../../../src/colo/streams.js';
import type { PrimaryTrace } from '../../../src/colo/trace.js';

// `ss -tinH state established '( dport = :4700 or sport = :4702 )'` on a primary's host, as iproute2 6.1 prints it.
const SS = [
  '0      0      10.77.0.1:41234 10.77.0.2:4700',
  '\t cubic wscale:7,7 rto:204 rtt:0.3/0.1 mss:1448 cwnd:10 bytes_sent:39424000 bytes_acked:39423655 bytes_received:733 segs_out:3 segs_in:6',
  '0      0      10.77.0.1:4702 10.77.0.2:50418',
  '\t cubic wscale:7,7 rto:204 rtt:0.2/0.1 mss:1448 cwnd:10 bytes_sent:3949 bytes_acked:3950 bytes_received:0 segs_out:64',
  '',
].join('\n');

const PORTS: StreamPorts = {
  migration: { port: 4700, primaryIs: 'client' },
  nbd: { port: 4701, primaryIs: 'client' },
  mirror: { port: 4702, primaryIs: 'server' },
  compare: { port: 4703, primaryIs: 'server' },
};

describe('COLO stream counters', () => {
  it("reads each stream's acked and received bytes from ss's two lines per socket, by the primary's side of the port", () => {
    expect(parseStreamCounters(SS, PORTS)).toEqual({ migration: { acked: 39423655, received: 733 }, mirror: { acked: 3950, received: 0 } });
  });

  it('takes a port on the wrong side for another connection (the primary listens on mirror, so a peer port 4702 is not it)', () => {
    const swapped: StreamPorts = { ...PORTS, mirror: { port: 4702, primaryIs: 'client' } };
    expect(parseStreamCounters(SS, swapped).mirror).toBeUndefined();
  });

  it('counts what each stream carried between two samples, and leaves out a stream that reconnected or was missing', () => {
    const from = { atMs: 1000, migration: { acked: 1000, received: 10 }, nbd: { acked: 500, received: 0 }, mirror: { acked: 900, received: 0 } };
    const to = { atMs: 3000, migration: { acked: 2_501_000, received: 34 }, nbd: { acked: 100, received: 0 }, compare: { acked: 0, received: 77 } };
    expect(streamTraffic(from, to)).toEqual({ migration: { bytesToSecondary: 2_500_000, bytesFromSecondary: 24, mbpsToSecondary: 10 } });
  });

  it("gives a checkpoint's mean size from the checkpoints the trace counted inside the window only", () => {
    const trace: PrimaryTrace = { readyAtMs: 0, miscompares: [], checkpoints: [500, 1500, 2000, 2500, 3500].map((atMs) => ({ atMs, forced: false })) };
    const w = { fromMs: 1000, toMs: 3000, migration: { bytesToSecondary: 3_000_000, bytesFromSecondary: 36, mbpsToSecondary: 12 } };
    expect(withCheckpointSize(w, trace)).toMatchObject({ checkpoints: 3, checkpointMeanBytes: 1_000_000 });
    expect(withCheckpointSize({ fromMs: 1000, toMs: 3000 }, trace)).toMatchObject({ checkpoints: 3, checkpointMeanBytes: undefined });
  });
});

describe('COLO stream counters on real connections', () => {
  const open: (Server | Socket)[] = [];
  afterEach(() => {
    for (const o of open.splice(0)) {
      if (o instanceof Socket) o.destroy();
      else o.close();
    }
  });

  async function pair(): Promise<{ port: number; client: Socket; server: Socket }> {
    const srv = createServer();
    open.push(srv);
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const port = (srv.address() as { port: number }).port;
    const accepted = once(srv, 'connection');
    const client = connect(port, '127.0.0.1');
    open.push(client);
    const [server] = (await accepted) as [Socket];
    open.push(server);
    return { port, client, server };
  }

  async function carry(from: Socket, to: Socket, bytes: number): Promise<void> {
    let got = 0;
    const all = new Promise<void>((resolve) => to.on('data', (d: Buffer) => (got += d.length) >= bytes && resolve()));
    from.write(Buffer.alloc(bytes, 1));
    await all;
  }

  it('reads what the kernel counted on a connection the primary made and one it accepted', async () => {
    const mig = await pair();
    const mir = await pair();
    const ports: StreamPorts = { ...PORTS, migration: { port: mig.port, primaryIs: 'client' }, mirror: { port: mir.port, primaryIs: 'server' } };
    const host = new LocalHost();
    const before = await sampleStreams(host, ports);
    await carry(mig.client, mig.server, 300_000);
    await carry(mig.server, mig.client, 12);
    await carry(mir.server, mir.client, 4_000);
    // The peer's ACKs arrive after the data: wait until the kernel has counted them all.
    let after = await sampleStreams(host, ports);
    for (let i = 0; i < 50 && ((after.migration?.acked ?? 0) - (before.migration?.acked ?? 0) < 300_000 || (after.mirror?.acked ?? 0) - (before.mirror?.acked ?? 0) < 4_000); i++) {
      await new Promise((r) => setTimeout(r, 20));
      after = await sampleStreams(host, ports);
    }
    const t = streamTraffic(before, after);
    expect(t.migration).toMatchObject({ bytesToSecondary: 300_000, bytesFromSecondary: 12 });
    expect(t.mirror).toMatchObject({ bytesToSecondary: 4_000, bytesFromSecondary: 0 });
    expect(t.nbd).toBeUndefined();
  });
});
