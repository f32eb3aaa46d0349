// What a miglab run could leave on the machine: network namespaces, links, processes of the
// programs it starts, and its state directory. Snapshots are compared before/after the suite.
// Plain JavaScript: jest loads global setup/teardown without the TypeScript transform's mapper.
import { execa } from 'execa';
import { existsSync, readdirSync } from 'node:fs';

const PROGRAMS = ['qemu-system-x86_64', 'ganesha.nfsd', 'rpcbind', 'iperf3', 'perf', 'miglab-probe', 'sshd', 'socat'];
const STATE_ROOT = '/run/miglab';

/** @returns {Promise<{netns: string[], links: string[], processes: string[], stateFiles: string[]}>} */
export async function snapshotLeftovers() {
  const netns = (await execa('ip', ['netns', 'list'], { reject: false })).stdout
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter(Boolean);
  const links = (await execa('ip', ['-o', 'link', 'show'], { reject: false })).stdout
    .split('\n')
    .map((l) => (l.split(':')[1] ?? '').trim().split('@')[0])
    .filter(Boolean);
  const ps = await execa('ps', ['-eo', 'pid=,comm='], { reject: false });
  // comm is cut to 15 characters: match on the start of each program name.
  const processes = ps.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(([, comm]) => comm && PROGRAMS.some((p) => p.startsWith(comm)))
    .map(([pid, comm]) => `${comm}[${pid}]`);
  const stateFiles = existsSync(STATE_ROOT) ? readdirSync(STATE_ROOT).map((f) => `${STATE_ROOT}/${f}`) : [];
  return { netns, links, processes, stateFiles };
}

export function diffLeftovers(before, after) {
  const extra = [];
  for (const key of ['netns', 'links', 'processes', 'stateFiles']) {
    for (const item of after[key]) if (!before[key].includes(item)) extra.push(`${key}:${item}`);
  }
  return extra;
}
