// tcpConnectFrom runs the real miglab-probe (built into a temporary cache) on this machine against
// loopback: a listening port is open, a closed one refused, and what the tool prints comes back typed.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Host, RunOptions, RunResult } from '../../../src/host/host.js';
import { LocalHost } from '../../../src/host/local.js';
import { runOnlyHost } from '../../support/fake-host.js';
import { ensureProbeTool } from '../../../src/guest/probe-tool.js';
import { tcpConnectFrom } from '../../../src/guest/tcp-connect.js';

const dir = mkdtempSync(join(tmpdir(), 'miglab-tcp-connect-'));
let tool: string;
let server: Server;
let openPort: number;
let closedPort: number;

async function listen(): Promise<Server> {
  const s = createServer((c) => c.destroy());
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return s;
}

beforeAll(async () => {
  tool = await ensureProbeTool({ cacheDir: dir, timeoutMs: 60_000 });
  server = await listen();
  openPort = (server.address() as { port: number }).port;
  // A port that was free a moment ago: closing the server leaves nothing listening there.
  const other = await listen();
  closedPort = (other.address() as { port: number }).port;
  await new Promise((resolve) => other.close(resolve));
}, 60_000);

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

/** A host that records the argv it was given and answers like the tool would. */
function fakeHost(answer: Partial<RunResult>): Host & { argv?: readonly string[] } {
  const h: Host & { argv?: readonly string[] } = runOnlyHost('fake', async (argv: readonly string[], _opts?: RunOptions): Promise<RunResult> => {
    h.argv = argv;
    return { argv, exitCode: 0, stdout: '', stderr: '', durationMs: 1, ...answer };
  });
  return h;
}

describe('tcpConnectFrom', () => {
  const local = new LocalHost();

  it('says open for a listening port and refused for a closed one', async () => {
    const open = await tcpConnectFrom(local, tool, '127.0.0.1', openPort, { timeoutMs: 2000 });
    expect(open.result).toBe('open');
    expect(open.elapsedMs).toBeLessThan(2000);
    expect(await tcpConnectFrom(local, tool, '127.0.0.1', closedPort, { timeoutMs: 2000 })).toMatchObject({ result: 'refused' });
  });

  it('runs the tool as an argv and reads its one line', async () => {
    const h = fakeHost({ stdout: 'timeout 1500.2' });
    expect(await tcpConnectFrom(h, '/t/miglab-probe', '10.77.0.2', 4444, { timeoutMs: 1500 })).toEqual({ result: 'timeout', elapsedMs: 1500.2 });
    expect(h.argv).toEqual(['/t/miglab-probe', 'connect', '10.77.0.2', '4444', '1500']);
  });

  it('turns a failing tool and bad input into clear errors', async () => {
    await expect(tcpConnectFrom(fakeHost({ exitCode: 1, stderr: 'miglab-probe: connect to 10.77.0.2:4444: Permission denied' }), '/t/p', '10.77.0.2', 4444, { timeoutMs: 100 })).rejects.toThrow(
      /exited 1: miglab-probe: connect to 10\.77\.0\.2:4444: Permission denied/,
    );
    await expect(tcpConnectFrom(fakeHost({ stdout: 'maybe 1' }), '/t/p', '10.77.0.2', 4444, { timeoutMs: 100 })).rejects.toThrow(/miglab-probe connect/);
    await expect(tcpConnectFrom(local, tool, 'dst', 4444, { timeoutMs: 100 })).rejects.toThrow(/IPv4 address, not "dst"/);
    await expect(tcpConnectFrom(local, tool, '10.77.0.2', 0, { timeoutMs: 100 })).rejects.toThrow(/1 to 65535, not 0/);
    await expect(tcpConnectFrom(local, tool, '10.77.0.2', 4444, { timeoutMs: 0 })).rejects.toThrow(/timeout is 1 to 600000 ms, not 0/);
  });
});
