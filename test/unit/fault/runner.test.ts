import { describe, expect, it } from '@jest/globals';
import { FaultRunner, type FaultRecord } from '../../../src/fault/runner.js';
import { parseFault, type FaultSpec } from '../../../src/fault/spec.js';
import { Teardown } from '../../../src/util/teardown.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function runner(texts: string[], opts: { fail?: string } = {}) {
  const td = new Teardown();
  const log: string[] = [];
  const errors: FaultRecord[] = [];
  const r = new FaultRunner(
    texts.map(parseFault),
    {
      teardown: td,
      inject: async (f: FaultSpec) => {
        if (f.kind === opts.fail) throw new Error('no such thing');
        log.push(`do ${f.kind}`);
        return f.durationMs !== undefined || f.kind === 'link-down' ? { detail: `did ${f.kind}`, undo: { what: `undid ${f.kind}`, run: async () => void log.push(`undo ${f.kind}`) } } : { detail: `did ${f.kind}` };
      },
      onError: (rec) => errors.push(rec),
    },
  );
  return { r, td, log, errors };
}

describe('FaultRunner', () => {
  it('fires each fault once when due, records when and on what evidence, and undoes timed ones after their duration', async () => {
    const { r, td, log } = runner(['kill-dst@pass:2', 'freeze-dst:50ms@30ms']);
    r.observe({ tMs: 0, pass: 5 }); // not armed yet: the migration has not started
    expect(log).toEqual([]);
    const sent = Date.now();
    r.arm(sent);
    r.observe({ tMs: 10, pass: 1 });
    r.observe({ tMs: 20, pass: 2 });
    r.observe({ tMs: 25, pass: 3 });
    await sleep(150);
    await r.settle();
    expect(log).toEqual(['do kill-dst', 'do freeze-dst', 'undo freeze-dst']);
    const [kill, freeze] = r.records;
    expect(kill).toMatchObject({ fault: 'kill-dst@pass:2', fired: true, trigger: expect.stringMatching(/^when pass 2 began \(\d+ ms after migrate\)$/), detail: 'did kill-dst' });
    expect(freeze).toMatchObject({ fault: 'freeze-dst:50ms@30ms', fired: true, undo: 'undid freeze-dst' });
    expect(freeze!.firedAtMs).toBeGreaterThanOrEqual(30);
    expect(freeze!.undoneAtMs! - freeze!.firedAtMs!).toBeGreaterThanOrEqual(50);
    // The undo has run: teardown has nothing left to undo.
    expect(td.size).toBe(0);
    r.dispose();
  });

  it('undoes at teardown what is still in force, and says why unfired faults never fired', async () => {
    const { r, td, log } = runner(['link-down@0s', 'nfs-down@pass:9']);
    r.arm(Date.now());
    await sleep(20);
    await r.settle();
    r.finish('the migration completed first');
    r.dispose();
    expect(log).toEqual(['do link-down']);
    expect(await td.run()).toEqual([]);
    expect(log).toEqual(['do link-down', 'undo link-down']);
    expect(r.records[1]).toMatchObject({ fired: false, notFired: 'the migration completed first' });
    expect(r.records[0]).toMatchObject({ undo: 'undid link-down' });
  });

  it('reports an injection that fails', async () => {
    const { r, errors } = runner(['nfs-down@0s'], { fail: 'nfs-down' });
    r.arm(Date.now());
    await sleep(10);
    await r.settle();
    r.dispose();
    expect(errors).toHaveLength(1);
    expect(r.records[0]!.error).toBe('could not inject nfs-down@0s: no such thing');
  });
});
