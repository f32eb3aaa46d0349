// Integration tests boot real QEMU in a real lab: they need root and the system packages that
// `make deps` installs. Refuse early and plainly otherwise, and record what exists before the
// suite so the teardown can prove nothing was left behind.
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { snapshotLeftovers } from './leftovers.js';

export const SNAPSHOT_FILE = join(tmpdir(), `miglab-leftovers-${process.pid}.json`);

export default async function globalSetup() {
  if (process.getuid?.() !== 0) throw new Error('integration tests need root (namespaces, bridges, taps); run them with sudo');
  writeFileSync(SNAPSHOT_FILE, JSON.stringify(await snapshotLeftovers()));
}
