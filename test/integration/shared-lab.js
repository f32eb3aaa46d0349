// The integration suite's one shared embedded lab, brought up by global-setup.js and taken down by
// global-teardown.js through the miglab command (dist/, built by `make test` before the suite), as
// a user brings up a lab to share between runs. Files reach it by this prefix (test/support/
// shared-lab.ts). Plain JavaScript: jest loads global setup/teardown without the TypeScript transform.
import { execa } from 'execa';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SHARED_LAB_PREFIX = 'mlshr';

const MIGLAB = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'miglab.js');

/** `miglab lab ARGS --prefix mlshr`; the result, never thrown. */
export function labCommand(...args) {
  return execa('node', [MIGLAB, 'lab', ...args, '--prefix', SHARED_LAB_PREFIX], { reject: false, timeout: 120_000 });
}
