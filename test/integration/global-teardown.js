// The suite checks that nothing is left behind: no namespace, link, QEMU, NFS server or state
// that was not there before the suite started.
import { readFileSync, rmSync } from 'node:fs';
import { SNAPSHOT_FILE } from './global-setup.js';
import { diffLeftovers, snapshotLeftovers } from './leftovers.js';

export default async function globalTeardown() {
  const before = JSON.parse(readFileSync(SNAPSHOT_FILE, 'utf8'));
  rmSync(SNAPSHOT_FILE, { force: true });
  // Processes stopped a moment ago may still be exiting.
  let extra = [];
  for (let i = 0; i < 20; i++) {
    extra = diffLeftovers(before, await snapshotLeftovers());
    if (extra.length === 0) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`integration tests left these behind: ${extra.join(', ')}`);
}
