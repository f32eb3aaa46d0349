// Saved results that real runs wrote (test/fixtures/results/), laid out as the folders miglab
// writes, for tests of what reads them back (compare, plot, the run report).
import { cpSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

export const RESULT_FIXTURES = join(process.cwd(), 'test/fixtures/results');

/** A run folder under `root` holding the fixture `name` (run-idle.json...) as its run.json. */
export function fixtureRunDir(root: string, name: string): string {
  const dir = join(root, name.replace('.json', ''));
  mkdirSync(dir, { recursive: true });
  cpSync(join(RESULT_FIXTURES, name), join(dir, 'run.json'));
  return dir;
}
