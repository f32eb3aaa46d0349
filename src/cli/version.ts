// `miglab --version`: miglab's own version (package.json), the Node.js that runs it, and the QEMU
// it would drive, since results depend on QEMU's release as much as on miglab's.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT } from '../util/repo.js';
import type { Host } from '../host/host.js';
import { qemuRelease } from '../machine/quirks.js';

export async function versionText(host: Host): Promise<string> {
  const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
  let qemu: string;
  try {
    qemu = (await qemuRelease(host)).line;
  } catch {
    qemu = 'QEMU: not found (install it with: apt-get install -y qemu-system-x86; miglab doctor checks the rest)';
  }
  return [`miglab ${pkg.version} (Node.js ${process.versions.node})`, qemu].join('\n');
}
