// Where miglab's own files are (package.json, vm-images/, src/lab's scripts). Found by walking up
// from this module, not by a fixed number of '..': the same code runs from src/ (tests), dist/
// (tsc) and dist/bundle/ (esbuild's chunks, which is what bin/miglab.js loads).
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MiglabError } from '../errors.js';

/** The repository root: the nearest ancestor of this module with package.json and vm-images/. */
export function findRepoDir(from = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'vm-images'))) return dir;
    if (dirname(dir) === dir) throw new MiglabError('INTERNAL', `cannot find the miglab repository above ${from}`);
  }
}

export const REPO_ROOT = findRepoDir();
