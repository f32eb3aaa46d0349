// results/README.md documents a container run's files from src/results/readme.ts; record.ts writes
// them. These hold the two together: run.json as record.ts writes it (a whole run, a mem-rounds run
// and a failed one) must parse, strictly, with the documented schema, and rounds.csv's header must
// be the documented columns, in order. A field or column added to record.ts without its line in the
// README fails here.
import { roundsCsv, runJson } from '../../../src/containers/record.js';
import { CONTAINER_ROUNDS_COLUMNS, ContainerRunDocSchema, fieldDocs, renderResultsReadme, undocumentedFields } from '../../../src/results/readme.js';
import { figures, header, intact, steps } from '../../support/container-run.js';

const parse = (text: string) => ContainerRunDocSchema.safeParse(JSON.parse(text));
const problems = (r: ReturnType<typeof parse>) => (r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));

describe('the container run in results/README.md', () => {
  it('documents every field of run.json', () => {
    expect(undocumentedFields(ContainerRunDocSchema)).toEqual([]);
    const byPath = new Map(fieldDocs(ContainerRunDocSchema).map((f) => [f.path, f]));
    expect(byPath.get('figures.criuFrozenMs')).toMatchObject({ type: 'number or null', unit: 'ms' });
    expect(byPath.get('figures.clientDowntimeMs')?.meaning).toMatch(/probe/);
    expect(byPath.get('steps[].dump.frozenUs')?.unit).toBe('µs');
    expect(byPath.get('request.memoryMiB')?.unit).toBe('MiB');
  });

  it('describes what record.ts writes for an intact run, field for field', () => {
    expect(problems(parse(runJson(header, intact)))).toEqual([]);
  });

  it('describes a mem-rounds run by page server (its soft-dirty count, its rules) and a failed run', () => {
    const memRounds = {
      ...intact,
      steps: [{ ...steps[0]!, dirtyPolls: [{ atMs: 900, dirtyPages: 5943 }] }, ...steps.slice(1)],
      figures: { ...figures, transfer: 'page-server' as const, pageServerWaitMs: 341, metaCopyMs: 109, clientDowntimeMs: null },
    };
    const h = { ...header, request: { ...header.request, strategy: 'mem-rounds' as const, transfer: 'page-server' as const, memRounds: { plateauPct: 10, budgetPages: 1024, maxRounds: 8 } } };
    expect(problems(parse(runJson(h, memRounds)))).toEqual([]);
    expect(problems(parse(runJson(header, undefined, { failure: 'CRIU cannot run in chost-dst: Does not look good.', steps: steps.slice(0, 1) })))).toEqual([]);
  });

  it('catches a field that is not documented', () => {
    const run = JSON.parse(runJson(header, intact)) as Record<string, unknown>;
    const extra = parse(JSON.stringify({ ...run, figures: { ...(run.figures as object), newFigureMs: 1 } }));
    expect(problems(extra).join('\n')).toMatch(/newFigureMs/);
  });

  it('lists rounds.csv\'s columns as its header has them', () => {
    const head = roundsCsv(steps).split('\n')[0]!.split(',');
    expect(CONTAINER_ROUNDS_COLUMNS.map((c) => c.key)).toEqual(head);
  });

  it('has the section, its files and its tables', () => {
    const doc = renderResultsReadme();
    for (const heading of ['## A container run: `results/<run-id>/` (`miglab containers migrate`)', '### run.json (container)', '### rounds.csv']) expect(doc).toContain(heading);
    expect(doc).toContain('| `figures.criuFrozenMs` | number or null | ms |');
    expect(doc).toContain('| `criu/STEP/` |');
  });
});
