// Exit statuses are written down once (src/cli/exit.ts): README's table and `--help` show that list,
// and a batch that stopped because the host stalled does not look like a clean one to a script.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { BATCH_STOP_EXIT } from '../../../src/batch/cli.js';
import { EXIT, EXIT_STATUSES, exitEpilogue } from '../../../src/cli/exit.js';

function readmeExitTable(): Array<{ status: string; meaning: string }> {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  const section = /^## Exit statuses\n([\s\S]*?)^## /m.exec(readme)?.[1];
  if (!section) throw new Error('README has no "Exit statuses" section');
  return section
    .split('\n')
    .filter((l) => /^\| [\d, ]+ \|/.test(l))
    .map((l) => {
      const [, status, meaning] = /^\| (.*?) \| (.*) \|$/.exec(l)!;
      return { status: status!, meaning: meaning! };
    });
}

describe('exit statuses', () => {
  it("README's table is the list in src/cli/exit.ts", () => {
    expect(readmeExitTable()).toEqual(EXIT_STATUSES.map((s) => ({ ...s })));
  });

  it('--help ends with every status, wrapped to the width given', () => {
    const text = exitEpilogue(80);
    for (const s of EXIT_STATUSES) expect(text).toMatch(new RegExp(`^  ${s.status}\\s`, 'm'));
    expect(text.split('\n').every((l) => l.length <= 80)).toBe(true);
    expect(text).not.toMatch(/`/);
  });

  it('tells a stalled batch from a clean one, and each stop from the others', () => {
    expect(BATCH_STOP_EXIT.finished).toBe(0);
    expect(BATCH_STOP_EXIT.stall).toBe(EXIT.stalled);
    expect(new Set(Object.values(BATCH_STOP_EXIT)).size).toBe(Object.keys(BATCH_STOP_EXIT).length);
    const documented = EXIT_STATUSES.flatMap((s) => s.status.split(', ').map(Number));
    for (const code of Object.values(BATCH_STOP_EXIT)) expect(documented).toContain(code);
  });
});
