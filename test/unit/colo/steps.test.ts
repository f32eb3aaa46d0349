// The QMP steps of a COLO pair against a fake QEMU on a real socket: what is sent in which order,
// the capabilities set as QEMU itself asks (return-path only when it says x-colo needs it), lock-step
// awaited and a plain or failed migration said in QEMU's words, the failover's pause from its events.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QmpClient } from '../../../src/qmp/client.js';
import { awaitLockStep, failOver, prepareSecondary, setColoCapabilities, startPrimary, StepLog } from '../../../src/colo/steps.js';
import { eventTimeMs, type QmpEvent } from '../../../src/qmp/types.js';
import { FakeQmpServer, type Handler, type QmpRequest } from '../../support/fake-qmp.js';

let dir: string;
let fake: FakeQmpServer | undefined;
let client: QmpClient | undefined;
const W = { timeoutMs: 2000 };
const addr = { secondaryIp: '10.77.0.2', nbdPort: 4701, migrationPort: 4700 };

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'miglab-colo-'));
});
afterEach(async () => {
  await client?.close();
  await fake?.close();
  client = fake = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** Commands the steps send that answer {} unless a test says otherwise. */
const PLAIN = ['migrate-set-capabilities', 'nbd-server-start', 'nbd-server-add', 'human-monitor-command', 'x-blockdev-change', 'migrate-set-parameters', 'migrate', 'nbd-server-stop', 'x-colo-lost-heartbeat', 'object-del', 'chardev-remove'];

async function connect(handlers: Record<string, Handler>): Promise<{ sent: QmpRequest[] }> {
  const ok: Record<string, Handler> = Object.fromEntries(PLAIN.map((c) => [c, () => ({ return: {} })]));
  fake = await FakeQmpServer.start(join(dir, 'q.sock'), { handlers: { ...ok, ...handlers } });
  client = await QmpClient.connect(join(dir, 'q.sock'), W);
  return { sent: fake.received };
}

const needsReturnPath = (r: QmpRequest) => {
  const caps = (r.arguments?.capabilities as { capability: string }[]).map((c) => c.capability);
  return caps.includes('return-path') ? { return: {} } : { error: { class: 'GenericError', desc: "Capability 'x-colo' requires capability 'return-path'" } };
};

describe('setColoCapabilities', () => {
  it('sets x-colo alone where QEMU takes it (10.0: return-path would break COLO there)', async () => {
    const { sent } = await connect({});
    const log = new StepLog();
    expect(await setColoCapabilities(log, 'primary', client!, W)).toEqual(['x-colo']);
    expect(sent.filter((r) => r.execute === 'migrate-set-capabilities')).toHaveLength(1);
  });

  it('adds return-path when QEMU says x-colo needs it (11.x), the refusal kept in the log', async () => {
    await connect({ 'migrate-set-capabilities': needsReturnPath });
    const log = new StepLog();
    expect(await setColoCapabilities(log, 'secondary', client!, W)).toEqual(['return-path', 'x-colo']);
    expect(log.steps.map((s) => s.error)).toEqual([expect.stringMatching(/requires capability 'return-path'/), undefined]);
  });

  it("passes on any other refusal in QEMU's words", async () => {
    await connect({ 'migrate-set-capabilities': () => ({ error: { class: 'GenericError', desc: "Capability 'x-colo' is not supported" } }) });
    await expect(setColoCapabilities(new StepLog(), 'primary', client!, W)).rejects.toThrow(/x-colo' is not supported/);
  });
});

describe('the start of lock-step', () => {
  it('prepares the secondary, then the primary, in the documented order, each step explained', async () => {
    const { sent } = await connect({ 'migrate-set-capabilities': needsReturnPath });
    const log = new StepLog();
    await prepareSecondary(log, client!, addr, W);
    await startPrimary(log, client!, addr, 100, W);
    expect(sent.map((r) => r.execute).filter((c) => c !== 'qmp_capabilities')).toEqual([
      'migrate-set-capabilities',
      'migrate-set-capabilities',
      'nbd-server-start',
      'nbd-server-add',
      'human-monitor-command',
      'x-blockdev-change',
      'migrate-set-capabilities',
      'migrate-set-capabilities',
      'migrate-set-parameters',
      'migrate',
    ]);
    expect(sent.find((r) => r.execute === 'nbd-server-start')!.arguments).toEqual({ addr: { type: 'inet', data: { host: '10.77.0.2', port: '4701' } } });
    expect(sent.find((r) => r.execute === 'human-monitor-command')!.arguments!['command-line']).toBe(
      'drive_add -n buddy driver=replication,mode=primary,file.driver=nbd,file.host=10.77.0.2,file.port=4701,file.export=parent0,node-name=replication0',
    );
    expect(sent.find((r) => r.execute === 'migrate-set-parameters')!.arguments).toEqual({ 'x-checkpoint-delay': 100 });
    expect(sent.find((r) => r.execute === 'migrate')!.arguments).toEqual({ uri: 'tcp:10.77.0.2:4700' });
    for (const s of log.steps) expect(s.why.length).toBeGreaterThan(20);
  });

  it('waits for "colo"', async () => {
    let n = 0;
    await connect({ 'query-migrate': () => ({ return: { status: n++ < 2 ? 'active' : 'colo' } }) });
    const ls = await awaitLockStep(client!, Date.now(), { ...W, what: 'QEMU 11.1.3' });
    expect(n).toBe(3);
    expect(ls.afterMs).toBeGreaterThanOrEqual(0);
  });

  it('says when the first copy ended as a plain migration (10.0.2), or failed, in QEMU\'s words', async () => {
    await connect({ 'query-migrate': () => ({ return: { status: 'completed' } }) });
    await expect(awaitLockStep(client!, Date.now(), { ...W, what: 'QEMU 10.0.2' })).rejects.toThrow(/^QEMU 10\.0\.2 ended the first copy as a plain migration .*use --qemu 11\.1$/);
    await client!.close();
    await fake!.close();
    await connect({ 'query-migrate': () => ({ return: { status: 'failed', 'error-desc': 'Received invalid message 0x0000 length 0x0000' } }) });
    await expect(awaitLockStep(client!, Date.now(), { ...W, what: 'QEMU 10.0.13' })).rejects.toThrow('QEMU 10.0.13 did not enter COLO: query-migrate says failed: Received invalid message 0x0000 length 0x0000');
  });
});

describe('failOver', () => {
  it('takes the secondary out of COLO, removes its filters and connections, and times its pause from the events', async () => {
    const { sent } = await connect({
      'x-colo-lost-heartbeat': () => {
        const now = Date.now();
        fake!.emit('STOP', {}, { seconds: Math.floor(now / 1000), microseconds: (now % 1000) * 1000 });
        fake!.emit('RESUME', {}, { seconds: Math.floor((now + 7) / 1000), microseconds: ((now + 7) % 1000) * 1000 });
        return { return: {} };
      },
      'query-colo-status': () => ({ return: { mode: 'none', 'last-mode': 'secondary', reason: 'request' } }),
    });
    const events: QmpEvent[] = [];
    const off = client!.onEvent((e) => void events.push(e));
    const fo = await failOver(new StepLog(), client!, { runStateTimes: () => events.map((e) => ({ event: e.event, atMs: eventTimeMs(e) })) }, W);
    off();
    expect(sent.map((r) => [r.execute, r.arguments?.id]).filter(([c]) => c !== 'qmp_capabilities')).toEqual([
      ['nbd-server-stop', undefined],
      ['x-colo-lost-heartbeat', undefined],
      ['object-del', 'f2'],
      ['object-del', 'f1'],
      ['chardev-remove', 'red1'],
      ['chardev-remove', 'red0'],
      ['query-colo-status', undefined],
    ]);
    expect(fo.resumeAtMs! - fo.stopAtMs!).toBeCloseTo(7, 0);
    expect(fo.status).toEqual({ mode: 'none', 'last-mode': 'secondary', reason: 'request' });
  });
});
