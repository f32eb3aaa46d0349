import { CRIU_CHECK_MAYBE, criuCheckVerdict, parseCriuCheck, parseCriuFeature } from '../../../src/containers/criu-check.js';

// Outputs as criu 3.17.1 prints them (criu/cr-check.c, criu/log.h): pr_msg lines bare, pr_err with
// "Error (file:line): ", pr_warn with "Warn  (file:line): ".
const GOOD = { text: 'Looks good.\n', exitCode: 0 };
const SOCK_DIAG_MISSING = {
  text: [
    'The sock diag infrastructure is incomplete.',
    'Make sure you have:',
    ' 1. *_DIAG kernel config options turned on;',
    ' 2. *_diag.ko modules loaded (if compiled as modules).',
    'Warn  (criu/cr-check.c:1388): Does not look good.',
    '',
  ].join('\n'),
  exitCode: 1,
};
const MAYBE = {
  text: 'Warn  (criu/cr-check.c:1160): compat_cr is not supported. Requires kernel >= v4.12\nLooks good but some kernel features are missing\nwhich, depending on your process tree, may cause\ndump or restore failure.\n',
  exitCode: 1,
};
const DIRTY_OK = { text: 'mem_dirty_track is supported\n', exitCode: 0 };
const UFFD_MISSING = { text: 'Error (criu/cr-check.c:1221): Non-cooperative UFFD is not supported\n', exitCode: 1 };

describe('parseCriuCheck', () => {
  it('reads "Looks good." as category 1 passed', () => {
    expect(parseCriuCheck(GOOD)).toEqual({ sentence: 'good', words: 'Looks good.', ok: true, lines: [] });
  });

  it('reads a category-1 failure, keeping criu\'s reasons and dropping its log prefix only from the sentence', () => {
    const r = parseCriuCheck(SOCK_DIAG_MISSING);
    expect(r).toMatchObject({ sentence: 'bad', words: 'Does not look good.', ok: false });
    expect(r.lines[0]).toBe('The sock diag infrastructure is incomplete.');
    expect(r.lines).toHaveLength(4);
  });

  it('joins the three-line "Looks good but ..." into one sentence; category 1 passed despite the exit code', () => {
    const r = parseCriuCheck(MAYBE);
    expect(r.sentence).toBe('maybe');
    expect(r.words).toBe(CRIU_CHECK_MAYBE);
    expect(r.words).toBe('Looks good but some kernel features are missing which, depending on your process tree, may cause dump or restore failure.');
    expect(r.ok).toBe(true);
    expect(r.lines).toEqual(['Warn  (criu/cr-check.c:1160): compat_cr is not supported. Requires kernel >= v4.12']);
  });

  it('drops -v3 timestamps and blank lines', () => {
    const r = parseCriuCheck({ text: '(00.012345) Warn  (criu/cr-check.c:1388): Does not look good.\r\n\n' });
    expect(r.sentence).toBe('bad');
    expect(parseCriuCheck({ text: '(00.000100) some info\nLooks good.' }).lines).toEqual(['some info']);
  });

  it('is not ok without a sentence, or when "Looks good." comes with a failing exit code', () => {
    expect(parseCriuCheck({ text: 'Error (criu/util.c:780): You need to be root to run this command\n', exitCode: 1 })).toMatchObject({ sentence: 'none', words: '', ok: false });
    expect(parseCriuCheck({ text: 'Looks good.', exitCode: 139 }).ok).toBe(false);
    expect(criuCheckVerdict({ text: 'Looks good.', exitCode: 139 }).summary).toBe('criu check: "Looks good." (exit code 139 and no other line)');
    expect(parseCriuCheck({ text: '' }).ok).toBe(false);
  });
});

describe('parseCriuFeature', () => {
  it('finds "NAME is supported" and keeps criu\'s reason when it is not', () => {
    expect(parseCriuFeature('mem_dirty_track', DIRTY_OK)).toEqual({ name: 'mem_dirty_track', supported: true, lines: [] });
    expect(parseCriuFeature('uffd-noncoop', UFFD_MISSING)).toEqual({
      name: 'uffd-noncoop',
      supported: false,
      lines: ['Error (criu/cr-check.c:1221): Non-cooperative UFFD is not supported'],
    });
    // A warning, not an error, is what a missing soft-dirty tracker prints.
    const warn = parseCriuFeature('mem_dirty_track', { text: 'Warn  (criu/cr-check.c:813): Dirty tracking is OFF. Memory snapshot will not work.\n', exitCode: 1 });
    expect(warn.supported).toBe(false);
  });

  it('does not take another feature\'s line, an unknown feature or a failing exit code as support', () => {
    expect(parseCriuFeature('uffd', DIRTY_OK).supported).toBe(false);
    expect(parseCriuFeature('uffd', { text: 'uffd-noncoop is supported' }).supported).toBe(false);
    expect(parseCriuFeature('bogus', { text: 'Error (criu/cr-check.c:1642): Unknown feature bogus\n', exitCode: 1 }).supported).toBe(false);
    expect(parseCriuFeature('uffd', { text: 'uffd is supported\n', exitCode: 1 }).supported).toBe(false);
  });
});

describe('criuCheckVerdict', () => {
  it('passes the gate with criu\'s sentence and every feature supported', () => {
    const v = criuCheckVerdict(GOOD, { mem_dirty_track: DIRTY_OK, 'uffd-noncoop': { text: 'uffd-noncoop is supported\n', exitCode: 0 } });
    expect(v).toEqual({
      ok: true,
      words: 'Looks good.',
      missing: [],
      features: { mem_dirty_track: true, 'uffd-noncoop': true },
      errors: [],
      summary: 'criu check: "Looks good."; mem_dirty_track, uffd-noncoop supported',
    });
  });

  it('fails on a category-1 failure and says why in criu\'s words', () => {
    const v = criuCheckVerdict(SOCK_DIAG_MISSING, { mem_dirty_track: DIRTY_OK });
    expect(v.ok).toBe(false);
    expect(v.words).toBe('Does not look good.');
    expect(v.missing).toEqual([]);
    expect(v.errors).toContain('The sock diag infrastructure is incomplete.');
    expect(v.summary).toBe('criu check: "Does not look good." (The sock diag infrastructure is incomplete.)');
  });

  it('fails when a required feature is missing, naming it and criu\'s reason', () => {
    const v = criuCheckVerdict(GOOD, { mem_dirty_track: DIRTY_OK, 'uffd-noncoop': UFFD_MISSING });
    expect(v.ok).toBe(false);
    expect(v.missing).toEqual(['uffd-noncoop']);
    expect(v.features).toEqual({ mem_dirty_track: true, 'uffd-noncoop': false });
    expect(v.errors).toEqual(['uffd-noncoop: Error (criu/cr-check.c:1221): Non-cooperative UFFD is not supported']);
    expect(v.summary).toBe('criu check: "Looks good." but uffd-noncoop is not supported (uffd-noncoop: Error (criu/cr-check.c:1221): Non-cooperative UFFD is not supported)');
  });

  it('prefers criu\'s Error line over earlier warnings when it explains a run with no sentence', () => {
    const v = criuCheckVerdict({ text: 'Warn  (criu/kerndat.c:1): something minor\nError (criu/util.c:780): You need to be root to run this command\n', exitCode: 1 });
    expect(v.ok).toBe(false);
    expect(v.summary).toBe('criu check gave no verdict: Error (criu/util.c:780): You need to be root to run this command');
    expect(criuCheckVerdict({ text: '', exitCode: 127 }).summary).toBe('criu check gave no verdict: exit code 127 and no other line');
  });

  it('says so when a missing feature printed nothing', () => {
    const v = criuCheckVerdict(GOOD, { uffd: { text: '', exitCode: 1 } });
    expect(v.errors).toEqual(['uffd: criu printed nothing']);
    expect(v.summary).toMatch(/uffd is not supported \(uffd: criu printed nothing\)$/);
  });
});
