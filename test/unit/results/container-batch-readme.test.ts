// results/README.md documents a container batch's folder from src/results/readme.ts; the batch's
// record.ts and report.ts write it. These hold the two together: batch.json as record.ts writes it
// (the record, JSON.stringify'd) must parse, strictly, with the documented schema, for a ladder
// that halted, a scheduled step with its plan and a retry, and a batch that failed before any
// step; and moves.csv's and samples.csv's headers must be the documented columns, in order. A
// field or column added to the record without its line in the README fails here.
import { diagnoseBatch } from '../../../src/containers/batch/diagnose.js';
import { movesCsv, samplesCsv } from '../../../src/containers/batch/report.js';
import type { BatchStep, ContainerBatchRecord } from '../../../src/containers/batch/types.js';
import {
  CONTAINER_BATCH_FOLDER_FILES,
  CONTAINER_BATCH_MOVES_COLUMNS,
  CONTAINER_BATCH_SAMPLES_COLUMNS,
  ContainerBatchDocSchema,
  fieldDocs,
  renderResultsReadme,
  undocumentedFields,
} from '../../../src/results/readme.js';
import { cmd, GUEST_SAMPLES, HOST_SAMPLES, record, REQUEST, STEPS } from '../containers/batch/batch-fixture.js';

/** batch.json as record.ts writes it: the record through JSON. */
const batchJson = (r: ContainerBatchRecord) => JSON.stringify(r, null, 2);
const parse = (text: string) => ContainerBatchDocSchema.safeParse(JSON.parse(text));
const problems = (r: ReturnType<typeof parse>) => (r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));

const halted = record({ verdict: diagnoseBatch(STEPS, GUEST_SAMPLES, HOST_SAMPLES, REQUEST) });

/** A scheduled step: its plan, a dump retried alone (attempt 2), a container left for want of room. */
const SCHEDULED: BatchStep = {
  count: 3,
  mode: 'scheduled',
  startMs: 0,
  durationMs: 9000,
  startContainersMs: 400,
  moves: [
    { index: 0, attempt: 1, outcome: 'migrated', dump: cmd({ startMs: 500, maxRssKiB: 6900 }), frozenMs: 410, restore: cmd({ startMs: 1600, maxRssKiB: 6500 }), check: { ok: true, detail: 'running on chost-dst, log whole and growing' } },
    { index: 1, attempt: 1, outcome: 'dump-failed', dump: cmd({ startMs: 2000, exitCode: 1, error: 'Message reply from daemon is trimmed' }), frozenMs: null },
    { index: 1, attempt: 2, outcome: 'migrated', dump: cmd({ startMs: 5000 }), frozenMs: 380, restore: cmd({ startMs: 6000 }), check: { ok: false, detail: 'its log did not grow on chost-dst' } },
    { index: 2, attempt: 1, outcome: 'not-attempted' },
  ],
  plan: { atOnce: 1, admit: 2, reasons: ['measured on c0, moved alone: criu dump 6.7 MiB, criu restore 6.3 MiB', 'one dump per vCPU'] },
  migrated: 2,
  dumpFailures: 1,
  restoreFailures: 0,
  intact: 1,
  console: [],
  stoppedEarly: '1 containers left on chost-src: chost-dst has no room for them (the plan)',
};

describe('the container batch in results/README.md', () => {
  it('documents every field of batch.json, with its unit', () => {
    expect(undocumentedFields(ContainerBatchDocSchema)).toEqual([]);
    const byPath = new Map(fieldDocs(ContainerBatchDocSchema).map((f) => [f.path, f]));
    expect(byPath.get('steps[].moves[].dump.wallMs')).toMatchObject({ type: 'number or null', unit: 'ms' });
    expect(byPath.get('steps[].moves[].dump.maxRssKiB')?.unit).toBe('KiB');
    expect(byPath.get('guestSamples[].psiMemSome10')?.unit).toBe('%');
    expect(byPath.get('hostSamples[].memAvailableMiB')).toMatchObject({ type: 'number or null', unit: 'MiB' });
    expect(byPath.get('request.memoryMiB')?.unit).toBe('MiB');
    expect(byPath.get('verdict.halt.how')?.type).toBe('qemu-exited \\| no-answer \\| kernel-panic \\| agent-killed');
  });

  it('describes what record.ts writes for a ladder where a guest halted, field for field', () => {
    expect(halted.verdict.halt).toBeDefined();
    expect(problems(parse(batchJson(halted)))).toEqual([]);
  });

  it('describes a scheduled step (its plan, a retry) and a batch that failed before any step', () => {
    const scheduled = record({ request: { ...REQUEST, counts: [3], mode: 'scheduled' }, steps: [SCHEDULED], verdict: diagnoseBatch([SCHEDULED], GUEST_SAMPLES, HOST_SAMPLES, REQUEST) });
    expect(problems(parse(batchJson(scheduled)))).toEqual([]);
    const waves = { ...REQUEST, mode: 'waves' as const, waveSize: 10 };
    const failed = record({ request: waves, criuVersion: '', steps: [], guestSamples: [], hostSamples: [], verdict: diagnoseBatch([], [], [], waves), failure: 'chost-dst did not boot' });
    expect(problems(parse(batchJson(failed)))).toEqual([]);
  });

  it('catches a field that is not documented', () => {
    const r = JSON.parse(batchJson(halted)) as Record<string, unknown> & { steps: Record<string, unknown>[] };
    expect(problems(parse(JSON.stringify({ ...r, newFigureMs: 1 }))).join('\n')).toMatch(/newFigureMs/);
    const steps = [{ ...r.steps[0], moves: [{ ...(r.steps[0]!.moves as object[])[0], restoreRssMiB: 1 }] }];
    expect(problems(parse(JSON.stringify({ ...r, steps }))).join('\n')).toMatch(/restoreRssMiB/);
  });

  it("lists moves.csv's and samples.csv's columns as their headers have them", () => {
    const head = (csv: string) => csv.split('\n')[0]!.split(',');
    expect(CONTAINER_BATCH_MOVES_COLUMNS.map((c) => c.key)).toEqual(head(movesCsv(halted)));
    expect(CONTAINER_BATCH_SAMPLES_COLUMNS.map((c) => c.key)).toEqual(head(samplesCsv(halted)));
    // A batch with no move or no sample still writes the header.
    const empty = record({ steps: [], guestSamples: [], hostSamples: [], verdict: halted.verdict });
    expect(head(movesCsv(empty))).toEqual(head(movesCsv(halted)));
    expect(head(samplesCsv(empty))).toEqual(head(samplesCsv(halted)));
  });

  it('has the section, its files and its tables', () => {
    const doc = renderResultsReadme();
    for (const heading of ['## A container batch (`miglab containers batch`)', '### batch.json (container batch)', '### moves.csv', '### samples.csv (container batch)']) expect(doc).toContain(heading);
    expect(doc).toContain('`results/<batch-id>/`');
    expect(doc).toContain('| `steps[].moves[].frozenMs` | number or null | ms |');
    expect(doc).toContain('| `dump_maxrss_kib` | KiB |');
    for (const f of CONTAINER_BATCH_FOLDER_FILES) expect(doc).toContain(`| ${f.names.map((n) => `\`${n}\``).join(', ')} |`);
    for (const name of ['plots/memory.png', 'plots/pressure.png', 'plots/migrated-per-step.png', 'criu/n<N>/c<i>/', 'src.serial.log', 'dst.qmp.jsonl']) expect(CONTAINER_BATCH_FOLDER_FILES.some((f) => f.names.includes(name))).toBe(true);
    // The section sits next to the container run's.
    expect(doc.indexOf('## A container batch (')).toBeGreaterThan(doc.indexOf('## A container run:'));
    expect(doc.indexOf('## A container batch (')).toBeLessThan(doc.indexOf('## A container sweep:'));
  });
});
