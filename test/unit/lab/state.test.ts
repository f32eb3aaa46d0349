// The lab state file: written and read back unchanged, refused clearly when corrupt; and the
// /proc parsing that makes `lab down` kill only the exact NFS server process it started.
import { describe, expect, it, afterAll } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isOwnedAlive, parseProcStat, procStartTime } from '../../../src/lab/proc.js';
import { parseLabSpec } from '../../../src/lab/spec.js';
import { readLabState, updateLabState, writeLabState, type LabState } from '../../../src/lab/state.js';
import { parseIpAddrJson } from '../../../src/lab/status.js';

const dir = mkdtempSync(join(tmpdir(), 'miglab-state-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const state: LabState = {
  version: 1,
  phase: 'up',
  spec: parseLabSpec({ prefix: 'mlt', shaping: { bandwidthMbit: 50 } }),
  createdAt: '2026-01-01T00:00:00.000Z',
  ownerPid: 1234,
  ephemeral: false,
  labDir: '/run/miglab/mlt',
  stateRootCreated: true,
  netns: ['mlt-sw', 'mlt-src', 'mlt-dst', 'mlt-cli'],
  exportDir: '/run/miglab/mlt/export',
  exportDirCreated: true,
  shaping: { bandwidthMbit: 50 },
  nfs: {
    server: { pid: 4321, startTime: 987654 },
    serverIp: '10.77.0.1',
    configFile: '/run/miglab/mlt/nfs/ganesha.conf',
    logFile: '/run/miglab/mlt/nfs/server.log',
    ganeshaLogFile: '/run/miglab/mlt/nfs/ganesha.log',
  },
};

describe('lab state file', () => {
  it('round-trips', () => {
    const file = join(dir, 'sub', 'lab.json');
    writeLabState(file, state);
    expect(readLabState(file)).toEqual(state);
  });

  it('is absent without error when there is no lab', () => {
    expect(readLabState(join(dir, 'none.json'))).toBeUndefined();
  });

  it('updates in place', () => {
    const file = join(dir, 'upd.json');
    writeLabState(file, state);
    updateLabState(file, (s) => ({ ...s, shaping: { bandwidthMbit: 10, delayMs: 5 } }));
    expect(readLabState(file)?.shaping).toEqual({ bandwidthMbit: 10, delayMs: 5 });
  });

  it('refuses corrupt or foreign files with LAB_STATE', () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{not json');
    expect(() => readLabState(bad)).toThrow(expect.objectContaining({ code: 'LAB_STATE' }));
    writeFileSync(bad, JSON.stringify({ ...state, version: 2 }));
    expect(() => readLabState(bad)).toThrow(/not one this miglab understands/);
  });
});

describe('process identity', () => {
  it('parses /proc/PID/stat even when the name holds spaces and parentheses', () => {
    const text = '4321 (nfs (server).sh) S 1 4321 4321 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 2437120 200 18446744073709551615';
    expect(parseProcStat(text)).toEqual({ state: 'S', startTime: 987654, ppid: 1 });
    expect(parseProcStat('garbage')).toBeUndefined();
  });

  it('knows this process, and that a recorded pid with another start time is not it', () => {
    const startTime = procStartTime(process.pid)!;
    expect(startTime).toBeGreaterThan(0);
    expect(isOwnedAlive({ pid: process.pid, startTime })).toBe(true);
    expect(isOwnedAlive({ pid: process.pid, startTime: startTime + 1 })).toBe(false);
  });
});

describe('parseIpAddrJson', () => {
  it('keeps link state, bridge and IPv4 addresses', () => {
    const json = JSON.stringify([
      { ifname: 'lo', operstate: 'UNKNOWN', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] },
      { ifname: 'up0', operstate: 'UP', master: 'br0', addr_info: [] },
      { ifname: 'br0', operstate: 'UP', addr_info: [{ family: 'inet', local: '10.77.0.1', prefixlen: 24 }, { family: 'inet6', local: 'fe80::1', prefixlen: 64 }] },
    ]);
    expect(parseIpAddrJson(json)).toEqual([
      { name: 'lo', state: 'UNKNOWN', addresses: ['127.0.0.1/8'] },
      { name: 'up0', state: 'UP', master: 'br0', addresses: [] },
      { name: 'br0', state: 'UP', addresses: ['10.77.0.1/24'] },
    ]);
  });
});

describe('lab down and a lab another miglab is using', () => {
  it('refuses to take down a lab a running miglab brought up for its own run, unless forced', async () => {
    const { labDown } = await import('../../../src/lab/down.js');
    const { spawn } = await import('node:child_process');
    const owner = spawn('sleep', ['30']);
    try {
      const root = mkdtempSync(join(tmpdir(), 'miglab-owned-'));
      const startTime = procStartTime(owner.pid!)!;
      writeLabState(join(root, 'mlo', 'lab.json'), { ...state, spec: parseLabSpec({ prefix: 'mlo', stateRoot: root }), ownerPid: owner.pid!, ownerStartTime: startTime, ephemeral: true, netns: [] });
      await expect(labDown('mlo', { stateRoot: root, timeoutMs: 1000 })).rejects.toThrow(/brought up by a running miglab \(pid \d+\) for its own run.*--force/);
      rmSync(root, { recursive: true, force: true });
    } finally {
      owner.kill();
    }
  });
});
