// Integration tests boot real QEMU in a real lab: they need root and the system packages that
// `make deps` installs. Refuse early and plainly otherwise, record what exists before the suite
// so the teardown can prove nothing was left behind, then bring up the suite's shared lab
// (shared-lab.js): one bring-up for every file that can share it, instead of one per file.
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { snapshotLeftovers } from './leftovers.js';
import { SHARED_LAB_PREFIX, labCommand } from './shared-lab.js';

export const SNAPSHOT_FILE = join(tmpdir(), `miglab-leftovers-${process.pid}.json`);

export default async function globalSetup() {
  if (process.getuid?.() !== 0) throw new Error('integration tests need root (namespaces, bridges, taps); run them with sudo');
  // A suite that was killed may have left its shared lab: it is this suite's to remove.
  await labCommand('down', '--force');
  writeFileSync(SNAPSHOT_FILE, JSON.stringify(await snapshotLeftovers()));
  const up = await labCommand('up');
  if (up.exitCode !== 0) throw new Error(`could not bring up the suite's shared lab ${SHARED_LAB_PREFIX}: ${(up.stderr || up.stdout).trim()}`);
  // The test files learn its prefix here (test/support/shared-lab.ts): jest runs them after this.
  process.env.MIGLAB_SHARED_LAB = SHARED_LAB_PREFIX;
}
