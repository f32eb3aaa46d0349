// The suite takes its shared lab down, then checks that nothing is left behind: no namespace,
// link, QEMU, NFS server or state that was not there before the suite started. The shared lab
// goes down without --force first: a file that left a run, a guest slot or a process on it is a
// failure of the suite, named here (and the lab is then forced down so nothing stays).
import { readFileSync, rmSync } from 'node:fs';
import { SNAPSHOT_FILE } from './global-setup.js';
import { diffLeftovers, snapshotLeftovers } from './leftovers.js';
import { SHARED_LAB_PREFIX, labCommand } from './shared-lab.js';

export default async function globalTeardown() {
  const problems = [];
  const down = await labCommand('down');
  if (down.exitCode !== 0) {
    problems.push(`the shared lab ${SHARED_LAB_PREFIX} was not left free: ${(down.stderr || down.stdout).trim()}`);
    const forced = await labCommand('down', '--force');
    if (forced.exitCode !== 0) problems.push(`and could not be forced down: ${(forced.stderr || forced.stdout).trim()}`);
  }
  const before = JSON.parse(readFileSync(SNAPSHOT_FILE, 'utf8'));
  rmSync(SNAPSHOT_FILE, { force: true });
  // Processes stopped a moment ago may still be exiting.
  let extra = [];
  for (let i = 0; i < 20; i++) {
    extra = diffLeftovers(before, await snapshotLeftovers());
    if (extra.length === 0) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  if (extra.length > 0) problems.push(`integration tests left these behind: ${extra.join(', ')}`);
  if (problems.length > 0) throw new Error(problems.join('; '));
}
