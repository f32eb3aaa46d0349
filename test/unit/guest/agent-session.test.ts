// A run's agent requests over one `miglab-probe serve` (AgentClient.keepOpen): each request a line
// over an open channel instead of a command started for it. Here the real tool, built from its
// source, talks to a stand-in agent on a loopback UDP socket in this process.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TimeoutError } from '../../../src/errors.js';
import { AgentClient } from '../../../src/guest/agent-client.js';
import { ensureProbeTool } from '../../../src/guest/probe-tool.js';
import { LocalHost } from '../../../src/host/local.js';
import { pidRuns } from '../../../src/lab/proc.js';

const dir = mkdtempSync(join(tmpdir(), 'miglab-agent-session-'));
let agentSocket: Socket;
let port = 0;
const seen: string[] = [];
let toolPath = '';

beforeAll(async () => {
  toolPath = await ensureProbeTool({ cacheDir: dir, timeoutMs: 60_000 });
  // The stand-in agent: `ping T` -> `pong T 1 1`, `slow` answered after 300 ms, `quiet` never.
  agentSocket = createSocket('udp4');
  agentSocket.on('message', (msg, from) => {
    const text = msg.toString().trim();
    seen.push(text);
    const [verb, token] = text.split(' ');
    const answer = (reply: string) => agentSocket.send(`${reply}\n`, from.port, from.address);
    if (verb === 'ping') answer(`pong ${token} 1 1`);
    else if (verb === 'slow') setTimeout(() => answer('ok slow'), 300);
    else if (verb === 'bad') answer('error no such request');
  });
  await new Promise<void>((resolve) => agentSocket.bind(0, '127.0.0.1', resolve));
  port = agentSocket.address().port;
}, 90_000);
afterAll(() => {
  agentSocket.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The serving tool's pid, found by its argv (it runs under this test's process). */
async function servingPids(): Promise<number[]> {
  const r = await new LocalHost('local').run(['pgrep', '-f', '--', `miglab-probe-[0-9a-f]+ serve 127.0.0.1 ${port}$`], { reject: false });
  return r.stdout.split('\n').filter(Boolean).map(Number);
}

describe('AgentClient.keepOpen', () => {
  it('answers requests over one serving tool, refusals and timeouts as before, and close() ends it', async () => {
    const agent = new AgentClient({ host: new LocalHost('local'), guestIp: '127.0.0.1', port, toolPath });
    agent.keepOpen();
    expect((await agent.ping({ timeoutMs: 2000 })).token).toBe('c1');
    const [pid] = await servingPids();
    expect(pid).toBeGreaterThan(0);
    expect((await agent.ping({ timeoutMs: 2000 })).token).toBe('c2');
    // The same process answered both: no command started per request.
    expect(await servingPids()).toEqual([pid]);
    await expect(agent.request('bad', { timeoutMs: 2000 })).rejects.toThrow(/the guest agent refused "bad": no such request/);
    await expect(agent.request('quiet', { timeoutMs: 200 })).rejects.toBeInstanceOf(TimeoutError);
    // A request while another is in flight runs as its own command: both answered.
    const [slow, ping] = await Promise.all([agent.request('slow', { timeoutMs: 2000 }), agent.ping({ timeoutMs: 2000 })]);
    expect(slow).toBe('ok slow');
    expect(ping.token).toBe('c3');
    await agent.close();
    await agent.close();
    expect(pidRuns(pid!)).toBe(false);
    expect(await servingPids()).toEqual([]);
  }, 30_000);

  it('without keepOpen, starts no serving tool', async () => {
    const agent = new AgentClient({ host: new LocalHost('local'), guestIp: '127.0.0.1', port, toolPath });
    expect((await agent.ping({ timeoutMs: 2000 })).token).toBe('c1');
    expect(await servingPids()).toEqual([]);
  }, 30_000);
});
