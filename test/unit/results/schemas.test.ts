// The result files as a contract: real saved files (made by real `miglab migrate`, `sweep` and
// `batch` runs on this machine kind, kept in test/fixtures/results) read back through their
// schemas without losing a field, write and read again unchanged, and files of another version
// are migrated or refused with one line naming the file, its version and what to do.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BATCH_CONTRACT } from '../../../src/results/batch.js';
import { parseResult, readResult, readResultIn, resultJson, ResultsFormatError } from '../../../src/results/contract.js';
import { HOMEWORK_CONTRACT, HOMEWORK_SCHEMA } from '../../../src/results/homework.js';
import { RUN_CONTRACT } from '../../../src/results/run.js';
import { SWEEP_CONTRACT } from '../../../src/results/sweep.js';
import { readRunReport, readSweepFile } from '../../../src/sweep/results.js';

const FIX = join(process.cwd(), 'test/fixtures/results');
const raw = (f: string) => JSON.parse(readFileSync(join(FIX, f), 'utf8')) as Record<string, unknown>;
/** JSON's view of a value: what a file would hold (undefined fields gone). */
const asJson = (v: unknown) => JSON.parse(JSON.stringify(v)) as unknown;

const tmp = mkdtempSync(join(tmpdir(), 'miglab-results-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.each([
  ['run-idle.json', RUN_CONTRACT],
  ['run-dirty.json', RUN_CONTRACT],
  ['run-postcopy.json', RUN_CONTRACT],
  ['sweep-cmp-a/sweep.json', SWEEP_CONTRACT],
  ['sweep-cmp-a/mem256/rep2/run.json', RUN_CONTRACT],
  ['batch.json', BATCH_CONTRACT],
  ['homework.json', HOMEWORK_CONTRACT],
] as const)('%s', (file, contract) => {
  it('is read through its schema without losing a field', () => {
    const r = raw(file);
    const parsed = parseResult(contract as typeof RUN_CONTRACT, r, file);
    // zod drops keys a schema does not name: equality says the schema covers the whole file.
    expect(asJson(parsed)).toEqual(r);
  });

  it('round-trips: written by the writer and read again, the same figures to their precision', () => {
    const parsed = parseResult(contract as typeof RUN_CONTRACT, raw(file), file);
    const again = parseResult(contract as typeof RUN_CONTRACT, JSON.parse(resultJson(parsed)), file);
    expect(asJson(again)).toEqual(JSON.parse(resultJson(parsed)));
    // Every number in the written file is the read one rounded, never a different figure.
    expect(JSON.stringify(again).length).toBeLessThanOrEqual(JSON.stringify(parsed).length);
  });
});

describe('a real run.json', () => {
  it('has typed outputs: QEMU figures, the three downtimes, the heartbeat and each side after', () => {
    const r = parseResult(RUN_CONTRACT, raw('run-dirty.json'), 'run-dirty.json');
    expect(r.verdict).toBe('completed');
    expect(r.outputs.downtimeMs).toBe(25);
    expect(r.outputs.eventDowntimeMs).toBeGreaterThan(0);
    expect(r.outputs.clientDowntimeMs).toBeGreaterThanOrEqual(r.outputs.downtimeMs! - r.outputs.clientProbe!.resolutionMs);
    expect(r.outputs.integrity).toMatchObject({ checked: 'memory', ok: true, pages: 8192 });
    expect(r.outputs.after?.destination).toMatchObject({ process: 'running', heartbeat: 'continuing' });
    expect(r.outputs.figureSources).toEqual({ totalTimeMs: 'qemu', downtimeMs: 'qemu' });
  });

  it('is written without float noise: times to 0.1 ms, throughput to 0.1 Mbit/s', () => {
    const r = raw('run-idle.json') as { passes: { tMs: number; mbps?: number }[] };
    // As saved before this change: QEMU's event stamps and rates with every float digit.
    expect(r.passes.some((p) => String(p.tMs).length > 10)).toBe(true);
    const written = JSON.parse(resultJson(parseResult(RUN_CONTRACT, r, 'run-idle.json'))) as typeof r;
    for (const p of written.passes) {
      expect(p.tMs).toBe(Math.round(p.tMs * 10) / 10);
      if (p.mbps !== undefined) expect(p.mbps).toBe(Math.round(p.mbps * 10) / 10);
    }
    expect(written.passes[0]!.tMs).toBe(117.7);
  });
});

describe('versions', () => {
  const write = (name: string, value: unknown) => {
    const f = join(tmp, name);
    writeFileSync(f, typeof value === 'string' ? value : JSON.stringify(value));
    return f;
  };

  it('refuses a miglab.run/1 file, naming the file, its version and what to do', async () => {
    const f = write('old.json', { ...raw('run-idle.json'), schema: 'miglab.run/1' });
    const err = await readResult(RUN_CONTRACT, f).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResultsFormatError);
    expect((err as Error).message).toContain(f);
    expect((err as Error).message).toMatch(/schema miglab\.run\/1 cannot be read by this miglab \(it reads miglab\.run\/2\).*run the scenario again/);
    expect((err as Error).message).not.toContain('\n');
  });

  it('says a newer version needs a newer miglab', async () => {
    const f = write('newer.json', { ...raw('run-idle.json'), schema: 'miglab.run/3' });
    await expect(readResult(RUN_CONTRACT, f)).rejects.toThrow(/schema miglab\.run\/3 is not one this miglab reads.*update miglab/);
  });

  it('refuses a file that is not a miglab result, or another kind of result', async () => {
    await expect(readResult(RUN_CONTRACT, write('plain.json', { hello: 1 }))).rejects.toThrow(/not a miglab run\.json \(no "schema" field\)/);
    await expect(readResult(RUN_CONTRACT, write('sweep-as-run.json', raw('sweep-cmp-a/sweep.json')))).rejects.toThrow(/schema miglab\.sweep\/1 is not one this miglab reads.*not a miglab run\.json/);
  });

  it('names the first field that does not match, and a file cut short', async () => {
    const r = raw('run-idle.json') as { outputs: Record<string, unknown> };
    const f = write('damaged.json', { ...r, outputs: { ...r.outputs, downtimeMs: 'fast' } });
    await expect(readResult(RUN_CONTRACT, f)).rejects.toThrow(/does not match miglab\.run\/2 at outputs\.downtimeMs: .*number/);
    const cut = write('cut.json', readFileSync(join(FIX, 'run-idle.json'), 'utf8').slice(0, 500));
    await expect(readResult(RUN_CONTRACT, cut)).rejects.toThrow(/is not complete JSON .*cut short/);
  });

  it('reads a homework.json written before it had a version (migrated to miglab.homework/1)', async () => {
    const { schema: _schema, ...legacy } = raw('homework.json');
    const f = write('homework.json', legacy);
    const read = await readResult(HOMEWORK_CONTRACT, f);
    expect(read.schema).toBe(HOMEWORK_SCHEMA);
    expect(read.during.report.verdict).toBe('completed');
    expect(read.accel.find((r) => r.accel === 'kvm')?.available).toBe(false);
  });

  it('a batch folder and a homework folder are read through their schemas (for re-rendering their reports)', async () => {
    const dir = join(tmp, 'batch-x');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'batch.json'), JSON.stringify(raw('batch.json')));
    const batch = await readResultIn(BATCH_CONTRACT, dir);
    expect(batch.stop.kind).toBe('stall');
    expect(batch.diagnoses[0]?.saturation.resource).toBe('cpu');
    await expect(readResultIn(HOMEWORK_CONTRACT, dir)).rejects.toThrow(/homework\.json/);
  });

  it('sweep resume and plot read run.json and sweep.json through the schemas', async () => {
    const dir = join(FIX, 'sweep-cmp-a');
    expect((await readSweepFile(dir))?.counts).toEqual({ total: 4, ran: 4, skipped: 0, errors: 0, pending: 0 });
    expect((await readRunReport(join(dir, 'mem128', 'rep1')))?.verdict).toBe('completed');
    // An interrupted repetition counts as not done (it runs again), as before.
    const run = join(tmp, 'interrupted');
    rmSync(run, { recursive: true, force: true });
    mkdirSync(run);
    writeFileSync(join(run, 'run.json'), JSON.stringify({ ...raw('run-idle.json'), verdict: 'interrupted', ok: false }));
    expect(await readRunReport(run)).toBeUndefined();
    // So does one whose run.json was cut short (its writer killed): it runs again too.
    writeFileSync(join(run, 'run.json'), JSON.stringify(raw('run-idle.json')).slice(0, 500));
    expect(await readRunReport(run)).toBeUndefined();
    writeFileSync(join(run, 'run.json'), JSON.stringify({ ...raw('run-idle.json'), schema: 'miglab.run/1' }));
    await expect(readRunReport(run)).rejects.toThrow(/interrupted\/run\.json: schema miglab\.run\/1/);
  });
});
