// The lab for real: namespaces, bridges, veths, taps, the NFS server, shaping, refusal of a
// second `up`, a complete `down`, and a failure half-way that leaves nothing. Needs root. Uses
// its own prefix (`mlt`) so it never meets a lab the user has up.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { execa } from 'execa';
import { z } from 'zod';
import { MiglabError } from '../../src/errors.js';
import { LocalHost } from '../../src/host/local.js';
import { useLab } from '../../src/api.js';
import { attachLab, bridgeMac, labDown, labStatus, labUp, listNetns, type Lab } from '../../src/lab/index.js';
import { Teardown } from '../../src/util/teardown.js';
import { labPaths } from '../../src/lab/spec.js';
import { readLabState } from '../../src/lab/state.js';
import { pollUntil } from '../../src/util/deadline.js';

// Its own lab (own state root): bringing a lab up and down is what it tests.
const PREFIX = 'mlt';
const STATE_ROOT = '/run/miglab';
const NAMESPACES = ['mlt-sw', 'mlt-src', 'mlt-dst', 'mlt-cli'];
const local = new LocalHost();

jest.setTimeout(30_000);

async function rootLinks(): Promise<string[]> {
  const r = await local.run(['ip', '-o', 'link', 'show']);
  return r.stdout.split('\n').map((l) => l.split(':')[1]?.trim().split('@')[0] ?? '');
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    // ESRCH: gone, which is what the caller checks for.
    return false;
  }
}

async function labNamespacesLeft(): Promise<string[]> {
  return (await listNetns()).filter((ns) => NAMESPACES.includes(ns));
}

const IperfSchema = z.object({ end: z.object({ sum_received: z.object({ bits_per_second: z.number() }) }) });

/** TCP throughput src -> dst over the switch, in Mbit/s, measured by iperf3 for `seconds`. */
async function iperfMbit(lab: Lab, seconds: number): Promise<number> {
  const dst = lab.hosts.dst;
  const server = dst.host.spawn(['iperf3', '-s', '-1', '-B', dst.ip, '-p', '5201']);
  try {
    await pollUntil(
      'iperf3 server to listen',
      async () => ((await dst.host.run(['ss', '-Hltn', 'sport', '=', ':5201'])).stdout.includes('5201') ? true : undefined),
      { timeoutMs: 5000, intervalMs: 20 },
    );
    const r = await lab.hosts.src.host.run(['iperf3', '-c', dst.ip, '-p', '5201', '-t', String(seconds), '-J'], { timeoutMs: (seconds + 10) * 1000 });
    return IperfSchema.parse(JSON.parse(r.stdout)).end.sum_received.bits_per_second / 1e6;
  } finally {
    await server.stop(1000);
  }
}

describe('lab', () => {
  let lab: Lab | undefined;
  let linksBefore: string[] = [];

  beforeAll(async () => {
    linksBefore = await rootLinks();
  });

  afterAll(async () => {
    // Whatever a failed test left: down is harmless when nothing is up.
    await labDown(PREFIX, { timeoutMs: 20_000, stateRoot: STATE_ROOT });
  });

  test('up builds src, dst and client joined by the switch, with nothing in the root namespace', async () => {
    const started = Date.now();
    lab = await labUp({ prefix: PREFIX, stateRoot: STATE_ROOT }, { timeoutMs: 30_000 });
    const upMs = Date.now() - started;
    process.stdout.write(`lab up took ${upMs} ms\n`);

    expect((await labNamespacesLeft()).sort()).toEqual([...NAMESPACES].sort());
    expect(await rootLinks()).toEqual(linksBefore);
    expect([lab.hosts.src.ip, lab.hosts.dst.ip, lab.hosts.client.ip]).toEqual(['10.77.0.1', '10.77.0.2', '10.77.0.3']);
    expect(lab.guestIp(0)).toBe('10.77.0.100');
    expect(lab.guestMac(1)).toBe('52:54:00:77:00:01');

    for (const [from, to] of [
      ['src', 'dst'],
      ['dst', 'src'],
      ['src', 'client'],
      ['client', 'dst'],
    ] as const) {
      const r = await lab.hosts[from].host.run(['ping', '-c1', '-W1', lab.hosts[to].ip], { reject: false, timeoutMs: 5000 });
      expect({ from, to, exitCode: r.exitCode }).toEqual({ from, to, exitCode: 0 });
    }

    const status = await labStatus(PREFIX, { stateRoot: STATE_ROOT });
    expect(status.up).toBe(true);
    expect(status.problems).toEqual([]);
    expect(status.nfs).toMatchObject({ alive: true, exportAnswers: true });
  });

  test('a qcow2 made in the export directory opens over nfs:// from dst', async () => {
    if (!lab) throw new Error('the lab is not up');
    const file = lab.nfs.path('t.qcow2');
    await local.run(['qemu-img', 'create', '-f', 'qcow2', file, '64M']);
    const ls = await lab.hosts.dst.host.run(['nfs-ls', `nfs://${lab.nfs.serverIp}${lab.nfs.exportDir}`]);
    expect(ls.stdout).toContain('t.qcow2');
    const info = await lab.hosts.dst.host.run(['qemu-img', 'info', '--output=json', lab.nfs.url('t.qcow2')]);
    expect(JSON.parse(info.stdout)).toMatchObject({ format: 'qcow2', 'virtual-size': 64 * 1024 * 1024 });
    expect(lab.nfs.url('t.qcow2')).toBe(`nfs://10.77.0.1${STATE_ROOT}/${PREFIX}/export/t.qcow2`);
  });

  test('taps of the same name on src and dst, on br0, and QEMU opens one', async () => {
    if (!lab) throw new Error('the lab is not up');
    const brMac = async () => (await lab!.hosts.src.host.run(['cat', '/sys/class/net/br0/address'])).stdout.trim();
    expect(await brMac()).toBe(bridgeMac(1));
    await lab.addTap('src', 'tap0');
    // A tap with the lowest possible address joins: the server's bridge must keep its own, or
    // the other hosts' ARP caches go stale and their packets to 10.77.0.1 are dropped.
    await lab.hosts.src.host.run(['ip', 'link', 'set', 'dev', 'tap0', 'address', '02:00:00:00:00:01']);
    expect(await brMac()).toBe(bridgeMac(1));
    await lab.addTap('dst', 'tap0');
    await expect(lab.addTap('src', 'tap0')).rejects.toMatchObject({ code: 'LAB_STATE' });
    const status = await labStatus(PREFIX, { stateRoot: STATE_ROOT });
    expect(status.taps).toEqual({ src: ['tap0'], dst: ['tap0'] });
    if (await local.which('qemu-system-x86_64')) {
      const r = await lab.hosts.dst.host.run(
        ['qemu-system-x86_64', '-M', 'none', '-nodefaults', '-display', 'none', '-monitor', 'stdio', '-netdev', 'tap,id=n0,ifname=tap0,script=no,downscript=no'],
        { input: 'quit\n', timeoutMs: 10_000, reject: false },
      );
      // Only "netdev n0 has no peer" (no NIC on -M none) may be said; no "could not open".
      expect(r.exitCode).toBe(0);
      expect(r.stderr.split('\n').filter((l) => l.trim() && !l.includes('has no peer'))).toEqual([]);
    }
    await lab.removeTap('src', 'tap0');
    await lab.removeTap('dst', 'tap0');
    await lab.removeTap('dst', 'tap0'); // gone already: fine
    expect((await labStatus(PREFIX, { stateRoot: STATE_ROOT })).taps).toEqual({ src: [], dst: [] });
  });

  test('shaping to 50 Mbit/s slows src -> dst to about 50 Mbit/s, and clearing restores it', async () => {
    if (!lab) throw new Error('the lab is not up');
    const unshaped = await iperfMbit(lab, 1);
    await lab.shapeLinks({ bandwidthMbit: 50 });
    expect((await attachLab(PREFIX, { stateRoot: STATE_ROOT }))?.shaping).toEqual({ bandwidthMbit: 50 });
    const shaped = await iperfMbit(lab, 2);
    process.stdout.write(`iperf3 src->dst: unshaped ${unshaped.toFixed(0)} Mbit/s, shaped to 50: ${shaped.toFixed(1)} Mbit/s\n`);
    expect(unshaped).toBeGreaterThan(200);
    expect(shaped).toBeGreaterThan(30);
    expect(shaped).toBeLessThan(60);

    // Delay needs netem, which some kernels lack: then a clear error and the old shaping kept.
    const withDelay = lab.shapeLinks({ bandwidthMbit: 100, delayMs: 5 }).then(
      () => 'applied',
      (e: unknown) => e,
    );
    const outcome = await withDelay;
    if (outcome === 'applied') {
      expect((await labStatus(PREFIX, { stateRoot: STATE_ROOT })).shaping.src).toContain('netem');
    } else {
      expect(outcome).toMatchObject({ code: 'MISSING_DEPENDENCY' });
      expect(lab.shaping).toEqual({ bandwidthMbit: 50 });
      expect((await labStatus(PREFIX, { stateRoot: STATE_ROOT })).shaping.dst).toContain('tbf');
    }

    await lab.clearShaping();
    await lab.clearShaping(); // nothing to clear: fine
    expect(lab.shaping).toBeUndefined();
    const status = await labStatus(PREFIX, { stateRoot: STATE_ROOT });
    expect(status.shaping.src).not.toMatch(/tbf|netem/);
    await expect(lab.shapeLinks({ bandwidthMbit: 0 })).rejects.toMatchObject({ code: 'BAD_INPUT' });
    await expect(lab.shapeLinks({ lossPct: 101 })).rejects.toMatchObject({ code: 'BAD_INPUT' });
  });

  test('a second up with the same prefix is refused and leaves the lab intact', async () => {
    const err = await labUp({ prefix: PREFIX, stateRoot: STATE_ROOT }, { timeoutMs: 30_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MiglabError);
    expect(err).toMatchObject({ code: 'LAB_STATE' });
    const status = await labStatus(PREFIX, { stateRoot: STATE_ROOT });
    expect(status.up).toBe(true);
    expect(status.problems).toEqual([]);
  });

  test('useLab uses the lab that is up and leaves it up', async () => {
    const td = new Teardown();
    const l = await useLab(td, { lab: { prefix: PREFIX, stateRoot: STATE_ROOT } }, new AbortController().signal);
    expect(l.hosts.src.netns).toBe('mlt-src');
    expect(await td.run()).toEqual([]);
    expect((await labStatus(PREFIX, { stateRoot: STATE_ROOT })).up).toBe(true);
  });

  test('down removes everything it made; a second down says no lab is up', async () => {
    const state = readLabState(labPaths({ prefix: PREFIX, stateRoot: STATE_ROOT }).stateFile);
    const pid = state?.nfs?.server.pid;
    expect(pid).toBeDefined();
    const started = Date.now();
    const report = await labDown(PREFIX, { timeoutMs: 20_000, stateRoot: STATE_ROOT });
    process.stdout.write(`lab down took ${Date.now() - started} ms\n`);
    expect(report.wasUp).toBe(true);
    expect(await labNamespacesLeft()).toEqual([]);
    expect(pidAlive(pid!)).toBe(false);
    expect(existsSync(join(STATE_ROOT, PREFIX))).toBe(false);
    expect(await rootLinks()).toEqual(linksBefore);
    const ps = await execa('ps', ['-eo', 'pid=,ppid=,comm=']);
    expect(ps.stdout.split('\n').filter((l) => l.trim().split(/\s+/)[1] === String(pid))).toEqual([]);
    lab = undefined;

    const again = await labDown(PREFIX, { timeoutMs: 20_000, stateRoot: STATE_ROOT });
    expect(again).toMatchObject({ wasUp: false, message: expect.stringContaining('no lab') });
    expect(await attachLab(PREFIX, { stateRoot: STATE_ROOT })).toBeUndefined();
  });

  test('useLab with no lab up brings an ephemeral one up and takes it down with its teardown', async () => {
    const td = new Teardown();
    const l = await useLab(td, { lab: { prefix: PREFIX, stateRoot: STATE_ROOT } }, new AbortController().signal);
    const r = await l.hosts.client.host.run(['ping', '-c1', '-W1', l.hosts.dst.ip], { reject: false, timeoutMs: 5000 });
    expect(r.exitCode).toBe(0);
    expect(await td.run()).toEqual([]);
    expect(await labNamespacesLeft()).toEqual([]);
    expect(existsSync(join(STATE_ROOT, PREFIX))).toBe(false);
  });

  test('a failure half-way (export directory is a file) leaves nothing behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'miglab-lab-test-'));
    try {
      const notADir = join(dir, 'file');
      writeFileSync(notADir, 'not a directory');
      const err = await labUp({ prefix: PREFIX, stateRoot: STATE_ROOT, exportDir: notADir }, { timeoutMs: 30_000 }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'BAD_INPUT', message: expect.stringContaining('not a directory') });
      expect(await labNamespacesLeft()).toEqual([]);
      expect(existsSync(join(STATE_ROOT, PREFIX))).toBe(false);
      expect(await rootLinks()).toEqual(linksBefore);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('Ctrl-C while the NFS server starts stops it and removes everything', async () => {
    const ac = new AbortController();
    const stateFile = labPaths({ prefix: PREFIX, stateRoot: STATE_ROOT }).stateFile;
    let serverPid: number | undefined;
    const watcher = pollUntil(
      'the NFS server to be recorded',
      () => {
        const pid = existsSync(stateFile) ? readLabState(stateFile)?.nfs?.server.pid : undefined;
        if (pid !== undefined) {
          serverPid = pid;
          ac.abort(new Error('test: Ctrl-C'));
        }
        return pid;
      },
      { timeoutMs: 20_000, intervalMs: 2 },
    );
    const err = await labUp({ prefix: PREFIX, stateRoot: STATE_ROOT }, { timeoutMs: 30_000, signal: ac.signal }).catch((e: unknown) => e);
    await watcher;
    expect(err).toMatchObject({ code: 'ABORTED' });
    expect(pidAlive(serverPid!)).toBe(false);
    expect(await labNamespacesLeft()).toEqual([]);
    expect(existsSync(join(STATE_ROOT, PREFIX))).toBe(false);
  });
});
