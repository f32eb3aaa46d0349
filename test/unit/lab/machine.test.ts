// Bring-up, take-down and attach of the embedded lab, on a machine that only records what it is
// asked (test/support/fake-host.ts): the exact commands `lab up` runs and undoes, what `lab down`
// removes for a recorded state (and what it leaves alone), and that an attached lab's hosts run
// in its namespaces. The lab's state files are real files in a temporary state root. The lab
// itself, on this machine, is test/integration/lab.test.ts.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attachLab, labDown } from '../../../src/lab/down.js';
import { labUp } from '../../../src/lab/up.js';
import { labStatus } from '../../../src/lab/status.js';
import { parseLabSpec } from '../../../src/lab/spec.js';
import { readLabState, writeLabState, type LabState } from '../../../src/lab/state.js';
import { FakeHost, fakeMachine, type RunAnswer } from '../../support/fake-host.js';

const NS = ['mlf-sw', 'mlf-src', 'mlf-dst', 'mlf-cli'];
let root: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'miglab-machine-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** A machine whose `ip netns list` shows `namespaces`, and which answers the rest with `more`. */
function machineWith(namespaces: readonly string[], more: (argv: readonly string[]) => RunAnswer | undefined = () => undefined) {
  const host = new FakeHost('fake', {
    run: (argv) => (argv.join(' ') === 'ip netns list' ? { stdout: namespaces.map((n, i) => `${n} (id: ${i})`).join('\n') } : more(argv)),
  });
  return { host, machine: fakeMachine(host) };
}

/** The state `lab up` records, for a lab whose NFS server is long gone. */
function upState(stateRoot: string): LabState {
  const spec = parseLabSpec({ prefix: 'mlf', stateRoot });
  const labDir = join(stateRoot, 'mlf');
  return {
    version: 1,
    phase: 'up',
    spec,
    createdAt: '2026-01-01T00:00:00.000Z',
    ownerPid: 1,
    ephemeral: false,
    labDir,
    stateRootCreated: false,
    netns: NS,
    exportDir: join(labDir, 'export'),
    exportDirCreated: true,
    // A pid that is not running with this start time: nothing to stop.
    nfs: { server: { pid: 4_000_001, startTime: 1 }, serverIp: '10.77.0.1', configFile: 'x', logFile: 'y', ganeshaLogFile: 'z' },
  };
}

describe('lab up on a machine', () => {
  it('builds namespaces, switch and uplinks in order, and undoes every one when a later step fails', async () => {
    const stateRoot = join(root, 'state');
    // The firewall of src does not load (as on a kernel without nftables): bring-up stops there.
    const { host, machine } = machineWith([], (argv) => (argv.join(' ') === 'ip netns exec mlf-src nft -f -' ? { exitCode: 1, stderr: 'Error: Could not process rule: No such file or directory' } : undefined));
    const err = await labUp({ prefix: 'mlf', stateRoot }, { timeoutMs: 10_000, machine }).catch((e: unknown) => e);
    expect(String(err)).toMatch(/could not load the lab's firewall .* on src: Error: Could not process rule.*modprobe nf_tables/);

    const ran = host.ran.map((a) => a.join(' ')).filter((c) => !c.startsWith('test -e'));
    const mac = (n: number) => `02:6d:6c:62:00:0${n}`;
    const bridge = (n: number, name: string) => `ip link add name ${name} address ${mac(n)} type bridge stp_state 0 forward_delay 0`;
    const inNs = (ns: string, cmd: string) => `ip netns exec ${ns} ${cmd}`;
    const uplink = (ns: string, port: string) => `ip link add name up0 netns ${ns} type veth peer name ${port} netns mlf-sw`;
    expect(ran).toEqual([
      'ip netns list',
      ...NS.flatMap((ns) => [`ip netns add ${ns}`, `ip -n ${ns} link set dev lo up`]),
      inNs('mlf-sw', bridge(0, 'br-sw')),
      inNs('mlf-sw', 'ip link set dev br-sw up'),
      uplink('mlf-src', 'sw-src'),
      inNs('mlf-sw', 'ip link set dev sw-src master br-sw up'),
      inNs('mlf-src', bridge(1, 'br0')),
      inNs('mlf-src', 'ip link set dev up0 master br0 up'),
      inNs('mlf-src', 'ip addr add 10.77.0.1/24 dev br0'),
      inNs('mlf-src', 'ip link set dev br0 up'),
      uplink('mlf-dst', 'sw-dst'),
      inNs('mlf-sw', 'ip link set dev sw-dst master br-sw up'),
      inNs('mlf-dst', bridge(2, 'br0')),
      inNs('mlf-dst', 'ip link set dev up0 master br0 up'),
      inNs('mlf-dst', 'ip addr add 10.77.0.2/24 dev br0'),
      inNs('mlf-dst', 'ip link set dev br0 up'),
      uplink('mlf-cli', 'sw-cli'),
      inNs('mlf-sw', 'ip link set dev sw-cli master br-sw up'),
      inNs('mlf-cli', 'ip addr add 10.77.0.3/24 dev up0'),
      inNs('mlf-cli', 'ip link set dev up0 up'),
      inNs('mlf-src', 'nft -f -'),
      // The undo: namespaces deleted last-made first (their links, bridges and tables go with them).
      ...[...NS].reverse().map((ns) => `ip netns del ${ns}`),
    ]);
    expect(host.spawned).toEqual([]);
    // The state root it made, and everything in it, is gone.
    expect(existsSync(stateRoot)).toBe(false);
  });

  it('refuses a prefix whose namespaces exist without a state file, and touches nothing', async () => {
    const { host, machine } = machineWith(['mlf-dst']);
    await expect(labUp({ prefix: 'mlf', stateRoot: root }, { timeoutMs: 10_000, machine })).rejects.toThrow(/mlf-dst already exist but no miglab state records them.*ip netns del NAME/);
    expect(host.ran.map((a) => a.join(' ')).filter((c) => !c.startsWith('test -e'))).toEqual(['ip netns list']);
  });
});

describe('lab down on a machine', () => {
  it('deletes the namespaces the state lists (those that exist), then the state directory', async () => {
    const state = upState(root);
    writeLabState(join(state.labDir, 'lab.json'), state);
    // mlf-cli is gone already; the others have nothing running in them.
    const { host, machine } = machineWith(['mlf-sw', 'mlf-src', 'mlf-dst']);
    const report = await labDown('mlf', { stateRoot: root, timeoutMs: 5000, machine });
    expect(host.ran.map((a) => a.join(' '))).toEqual([
      'ip netns list',
      ...['mlf-dst', 'mlf-src', 'mlf-sw'].flatMap((ns) => [`ip netns pids ${ns}`, `ip netns del ${ns}`]),
    ]);
    expect(report.removed).toEqual(['namespace mlf-dst', 'namespace mlf-src', 'namespace mlf-sw', `state directory ${state.labDir}`]);
    expect(report.foreign).toEqual([]);
    expect(existsSync(state.labDir)).toBe(false);
  });

  it("ends miglab's own commands in a namespace, names anything else and leaves it alone", async () => {
    const state = upState(root);
    writeLabState(join(state.labDir, 'lab.json'), state);
    // A child of this (miglab) process, as an agent request or `ip` would be, and init, which is nobody's.
    const mine = spawn('sleep', ['30']);
    const exited = new Promise((resolve) => mine.once('exit', (_code, signal) => resolve(signal)));
    try {
      const { machine } = machineWith(['mlf-src'], (argv) => (argv.join(' ') === 'ip netns pids mlf-src' ? { stdout: `${mine.pid}\n1\n` } : undefined));
      const report = await labDown('mlf', { stateRoot: root, timeoutMs: 5000, machine });
      expect(report.removed).toContain(`sleep (pid ${mine.pid}, a command of miglab pid ${process.pid}) in mlf-src`);
      expect(await exited).toBe('SIGTERM');
      const init = readFileSync('/proc/1/comm', 'utf8').trim();
      expect(report.foreign).toEqual([`${init} (pid 1) in mlf-src`]);
      expect(report.message).toMatch(/left alone, not started by miglab: .*\(pid 1\) in mlf-src/);
    } finally {
      mine.kill('SIGKILL');
    }
  });

  it('keeps the state file, marked going-down, when a namespace cannot be deleted, so down can be retried', async () => {
    const state = upState(root);
    const file = join(state.labDir, 'lab.json');
    writeLabState(file, state);
    const { machine } = machineWith(NS, (argv) => (argv.join(' ') === 'ip netns del mlf-src' ? { exitCode: 1, stderr: 'Cannot remove namespace file: Device or resource busy' } : undefined));
    await expect(labDown('mlf', { stateRoot: root, timeoutMs: 5000, machine })).rejects.toThrow(
      /lab "mlf" is only partly down \(state kept in .*lab\.json; retry `miglab lab down`\): namespace mlf-src: on fake: `ip netns del mlf-src` exited 1: Cannot remove namespace file/,
    );
    expect(readLabState(file)?.phase).toBe('going-down');
  });
});

describe('a lab attached on a machine', () => {
  it('runs its hosts in the namespaces, its NFS export on the machine, its switch in the switch namespace', async () => {
    const state = upState(root);
    writeLabState(join(state.labDir, 'lab.json'), state);
    // No tap-g0 yet: `ip link show` fails for it.
    const { host, machine } = machineWith(NS, (argv) => (argv.join(' ').endsWith('ip link show dev tap-g0') ? { exitCode: 1, stderr: 'Device "tap-g0" does not exist.' } : undefined));
    const lab = (await attachLab('mlf', { stateRoot: root, machine }))!;
    expect(lab.nfs.host).toBe(host);
    host.ran.length = 0;
    await lab.addTap('dst', 'tap-g0');
    await lab.setUplink('src', false);
    expect(host.ran.map((a) => a.join(' '))).toEqual([
      'ip netns exec mlf-dst ip link show dev tap-g0',
      'ip netns exec mlf-dst ip tuntap add dev tap-g0 mode tap',
      'ip netns exec mlf-dst ip link set dev tap-g0 master br0 up',
      'ip netns exec mlf-sw ip link set dev sw-src down',
    ]);
  });

  it('refuses a lab that lost a namespace, naming it and the fix', async () => {
    const state = upState(root);
    writeLabState(join(state.labDir, 'lab.json'), state);
    const { machine } = machineWith(['mlf-sw', 'mlf-src', 'mlf-cli']);
    await expect(attachLab('mlf', { stateRoot: root, machine })).rejects.toThrow(/the lab "mlf" is broken: namespace\(s\) mlf-dst are gone; run `miglab lab down --prefix mlf`/);
  });

  it('lab status reads each namespace through the machine and reports one that is missing', async () => {
    const state = upState(root);
    writeLabState(join(state.labDir, 'lab.json'), state);
    const { host, machine } = machineWith(['mlf-sw', 'mlf-src', 'mlf-dst'], (argv) => (argv.at(-1) === 'show' && argv.includes('addr') ? { stdout: '[]' } : undefined));
    const status = await labStatus('mlf', { stateRoot: root, machine });
    expect(status.problems).toContain('namespace mlf-cli is missing');
    const ran = host.ran.map((a) => a.join(' '));
    for (const ns of ['mlf-sw', 'mlf-src', 'mlf-dst']) expect(ran).toContain(`ip netns exec ${ns} ip -j addr show`);
    expect(ran.some((c) => c.includes('mlf-cli'))).toBe(false);
  });
});
