// Warm starts keep QEMU's own migration stream of a booted guest in the cache and stream it back
// into a QEMU started with -incoming defer. The QEMU side is a fake here, on real unix sockets:
// what QEMU would send is written through the socket miglab listens on, and what miglab streams
// back is read from the socket "QEMU" listens on, byte for byte.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalHost } from '../../../src/host/local.js';
import type { Vm } from '../../../src/machine/vm.js';
import { findWarmState, forgetWarmState, loadWarmState, saveWarmState, warmKey } from '../../../src/machine/warm-start.js';
import { checkWarmStart, warmConfig, type WarmRun } from '../../../src/migrate/phases/warm.js';
import { parseMachineSpec } from '../../../src/machine/spec.js';

let cache: string;
beforeEach(() => {
  cache = mkdtempSync(join(tmpdir(), 'miglab-warm-'));
});
afterEach(() => rmSync(cache, { recursive: true, force: true }));

const STATE = randomBytes(256 * 1024 + 17);

/** A source QEMU as saveWarmState uses it: `migrate unix:PATH` connects there and sends STATE. */
function savingVm(status: 'completed' | 'failed' = 'completed'): Vm {
  let sent: Promise<void> | undefined;
  return {
    console: { last: { seq: 7, bootId: 'b00t', monoNs: 1, hostMs: 1 } },
    qmp: {
      migrate: async (uri: string) => {
        const path = uri.replace(/^unix:/, '');
        sent = new Promise<void>((resolve, reject) => {
          const s = connect(path, () => s.end(STATE, () => resolve()));
          s.on('error', reject);
        });
      },
      migrationInfo: async () => {
        await sent;
        return { status, errorDesc: status === 'failed' ? 'Unable to write to socket' : undefined };
      },
    },
  } as unknown as Vm;
}

describe('saving and finding a warm state', () => {
  it('keys a configuration by its content, not the order of its fields', () => {
    expect(warmKey({ a: 1, b: [2] })).toBe(warmKey({ b: [2], a: 1 }));
    expect(warmKey({ a: 1, b: [2] })).not.toBe(warmKey({ a: 1, b: [3] }));
    expect(warmKey({ a: 1 })).toMatch(/^[0-9a-f]{16}$/);
  });

  it('keeps what QEMU sent, with the guest it holds, and finds it by its key', async () => {
    const state = await saveWarmState(savingVm(), { cacheDir: cache, key: 'k1', config: { image: 'img1' }, timeoutMs: 5000 });
    expect(readFileSync(state.path).equals(STATE)).toBe(true);
    expect(state.meta).toMatchObject({ key: 'k1', bytes: STATE.length, bootId: 'b00t', seq: 7, config: { image: 'img1' } });
    expect(await findWarmState(cache, 'k1')).toEqual(state);
    expect(await findWarmState(cache, 'k2')).toBeUndefined();
    // Nothing else is left in the cache: no socket folder, no partial file.
    expect(readdirNames(join(cache, 'warm'))).toEqual([state.meta.file, 'k1.json'].sort());
    expect(state.meta.file).toMatch(/^k1\.[0-9a-f]{8}\.state$/);
  });

  it('keeps nothing when QEMU says the save failed', async () => {
    await expect(saveWarmState(savingVm('failed'), { cacheDir: cache, key: 'k1', config: {}, timeoutMs: 5000 })).rejects.toThrow(/QEMU says failed \(Unable to write to socket\)/);
    expect(readdirNames(join(cache, 'warm'))).toEqual([]);
    expect(await findWarmState(cache, 'k1')).toBeUndefined();
  });

  it('does not use a state whose file is not the size recorded, or whose record is unreadable', async () => {
    const state = await saveWarmState(savingVm(), { cacheDir: cache, key: 'k1', config: {}, timeoutMs: 5000 });
    writeFileSync(state.path, STATE.subarray(0, 1000));
    expect(await findWarmState(cache, 'k1')).toBeUndefined();
    writeFileSync(join(cache, 'warm', 'k1.json'), '{');
    expect(await findWarmState(cache, 'k1')).toBeUndefined();
  });

  it('keeps one consistent state per key when saved again, and forgets it on request', async () => {
    const first = await saveWarmState(savingVm(), { cacheDir: cache, key: 'k1', config: {}, timeoutMs: 5000 });
    const second = await saveWarmState(savingVm(), { cacheDir: cache, key: 'k1', config: {}, timeoutMs: 5000 });
    expect(second.meta.file).not.toBe(first.meta.file);
    // The record names the newer file; the older one is gone.
    expect(await findWarmState(cache, 'k1')).toEqual(second);
    expect(readdirNames(join(cache, 'warm'))).toEqual([second.meta.file, 'k1.json'].sort());
    await saveWarmState(savingVm(), { cacheDir: cache, key: 'k2', config: {}, timeoutMs: 5000 });
    await forgetWarmState(cache, 'k1');
    expect(await findWarmState(cache, 'k1')).toBeUndefined();
    expect(await findWarmState(cache, 'k2')).toBeDefined();
  });
});

describe('loading a warm state', () => {
  it('streams the whole file into the socket QEMU listens on, and waits for the guest to run', async () => {
    const state = await saveWarmState(savingVm(), { cacheDir: cache, key: 'k1', config: {}, timeoutMs: 5000 });
    const monitorDir = join(cache, 'mon');
    mkdirSync(monitorDir);
    let received = Buffer.alloc(0);
    let status = 'inmigrate';
    const asked: unknown[] = [];
    const vm = {
      host: new LocalHost(),
      plan: { qmpSocket: join(monitorDir, 'src.qmp') },
      qmp: {
        execute: async (command: string, args: { uri: string }) => {
          asked.push([command, args]);
          const server = createServer((conn) => {
            server.close();
            conn.on('data', (d: Buffer) => (received = Buffer.concat([received, d])));
            conn.on('end', () => (status = 'running'));
          });
          // QEMU opens the socket a moment after the command returns.
          setTimeout(() => server.listen(args.uri.replace(/^unix:/, '')), 30);
        },
        queryStatus: async () => ({ status, running: status === 'running' }),
      },
    } as unknown as Vm;
    await loadWarmState(vm, state, { timeoutMs: 5000 });
    expect(asked).toEqual([['migrate-incoming', { uri: `unix:${join(monitorDir, 'warm.sock')}` }]]);
    expect(received.equals(STATE)).toBe(true);
    expect(status).toBe('running');
  });

  it('says so when the QEMU does not run the guest afterwards', async () => {
    const state = await saveWarmState(savingVm(), { cacheDir: cache, key: 'k1', config: {}, timeoutMs: 5000 });
    const monitorDir = join(cache, 'mon');
    mkdirSync(monitorDir);
    let status = 'inmigrate';
    const vm = {
      host: new LocalHost(),
      plan: { qmpSocket: join(monitorDir, 'src.qmp') },
      qmp: {
        execute: async (_c: string, args: { uri: string }) => {
          const server = createServer((conn) => {
            server.close();
            conn.resume();
            conn.on('end', () => (status = 'paused'));
          });
          server.listen(args.uri.replace(/^unix:/, ''));
        },
        queryStatus: async () => ({ status, running: false }),
      },
    } as unknown as Vm;
    await expect(loadWarmState(vm, state, { timeoutMs: 5000 })).rejects.toThrow(/is paused, not running, after loading the warm state/);
  });
});

function readdirNames(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

describe('a warm start where it cannot work', () => {
  const run = (sharesLocalFiles: boolean | undefined, byHand = false) =>
    ({ scenario: { guest: { start: 'warm' } }, ctx: { hooks: byHand ? { byHand: {} } : undefined }, lab: { hosts: { src: { where: 'root@10.0.0.1', host: { sharesLocalFiles } } } } }) as unknown as WarmRun;

  it('is refused on hosts over SSH: the state is kept on this machine', () => {
    expect(() => checkWarmStart(run(undefined))).toThrow('--start warm needs the source on this machine\'s lab (its saved state is kept here), and the source is root@10.0.0.1');
    expect(() => checkWarmStart(run(true))).not.toThrow();
  });

  it('is refused by hand: QEMU reports the load as a completed migration until the next begins', () => {
    expect(() => checkWarmStart(run(true, true))).toThrow(/cannot be migrated by hand/);
  });
});

describe('the key of a saved state', () => {
  const base = parseMachineSpec({ name: 'g0', memoryMiB: 256, mac: '52:54:00:77:00:00', ip: '10.77.0.100/24' });
  const run = (diskSizeMiB = 64) =>
    ({
      scenario: { guest: { diskSizeMiB } },
      ctx: { image: { kernelPath: '/img/vmlinux', initrdPath: '/img/initrd.img', hash: 'ab'.repeat(8) } },
      lab: { hosts: { src: { host: new LocalHost() } } },
    }) as unknown as WarmRun;
  const key = async (spec = base, r = run(), accel: 'tcg' | 'kvm' = 'tcg') => warmKey(await warmConfig(r, spec, accel, undefined));

  it('is the same for the same guest, and another for anything the saved guest holds', async () => {
    expect(await key()).toBe(await key());
    // Another slot (name, MAC, address), another size, another device, another disk, KVM.
    expect(await key(parseMachineSpec({ ...base, name: 'g1', mac: '52:54:00:77:00:01', ip: '10.77.0.101/24' }))).not.toBe(await key());
    expect(await key(parseMachineSpec({ ...base, memoryMiB: 512 }))).not.toBe(await key());
    expect(await key(parseMachineSpec({ ...base, nicModel: 'e1000' }))).not.toBe(await key());
    expect(await key(base, run(128))).not.toBe(await key());
    expect(await key(base, run(), 'kvm')).not.toBe(await key());
  });
});
