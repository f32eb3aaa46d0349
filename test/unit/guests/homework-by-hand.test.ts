// The homework report's "by hand" part gives what works: `miglab guests up` first (the run's own
// QEMUs are gone), then the telnet line and the monitor commands one per line, the very lines
// `guests up` prints; the commands that ran are listed one per line too, never as one shell line.
import { describe, expect, it } from '@jest/globals';
import { byHandSteps, embeddedPlace } from '../../../src/guests/instructions.js';
import { explainCommands } from '../../../src/homework/commands.js';
import type { Lab } from '../../../src/lab/index.js';
import type { RunReport } from '../../../src/migrate/report.js';

const lab = {
  spec: { prefix: 'mlab', subnet: '10.77.0.0/24' },
  names: { ns: { src: 'mlab-src', dst: 'mlab-dst', client: 'mlab-client' } },
  hosts: { src: { netns: 'mlab-src', where: 'namespace mlab-src' }, dst: { netns: 'mlab-dst', where: 'namespace mlab-dst' } },
  nfs: { serverIp: '10.77.0.1', exportDir: '/run/miglab/mlab/export', path: (f: string) => `/run/miglab/mlab/export/${f}`, host: { name: 'local' } },
  paths: { labDir: '/run/miglab/mlab', nfsDir: '/nonexistent/miglab-test-nfs' },
  nfsServerState: () => ({ state: 'running', pid: 1 }),
  byHandPlace: () => embeddedPlace('mlab-src', 'mlab'),
} as unknown as Lab;

/** The same lab's shape for hosts from a hosts file: no namespaces, the user's own NFS server. */
const hostsLab = {
  ...lab,
  hosts: { src: { where: 'root@192.168.122.11' }, dst: { where: 'root@192.168.122.12' } },
  nfs: { ...lab.nfs, exportDir: '/srv/miglab', path: (f: string) => `/srv/miglab/${f}`, host: { name: 'root@192.168.122.11' } },
  nfsServerState: () => ({ state: 'none' }),
  byHandPlace: () => ({ atSource: ['ssh', '-t', '-i', '/root/.ssh/id_ed25519', 'root@192.168.122.11'], onThisMachine: false, lab: ['--hosts', '/home/me/hosts.yaml'] }),
} as unknown as Lab;

const report = {
  runId: 'r1',
  inputs: {
    machine: { name: 'g0' },
    scenario: { hmpTelnetPort: 4445, guest: { diskSizeMiB: 256 } },
    migrationUri: 'tcp:10.77.0.2:4444',
    monitorCommands: ['migrate_set_capability events on', 'migrate_set_parameter max-bandwidth 49152K', 'migrate -d tcp:10.77.0.2:4444'],
    commands: { source: { argv: ['qemu-system-x86_64'], explained: [] }, destination: { argv: ['qemu-system-x86_64'], explained: [] } },
  },
} as unknown as RunReport;

describe("the homework report's commands by hand", () => {
  it('point at guests up and give its telnet line, then the HMP lines one per line', async () => {
    const { commands } = await explainCommands(report, lab);
    const reach = commands.find((c) => c.title === "Reaching the source's monitor by hand")!;
    expect(reach.note).toMatch(/miglab guests up --hmp-port 4445 --prefix mlab/);
    const steps = byHandSteps({ ...embeddedPlace('mlab-src', 'mlab'), hmpPort: 4445, uri: 'tcp:10.77.0.2:4444' });
    expect(reach.command.argv).toEqual(steps.hmp.open);
    expect(reach.perLine).toBeFalsy();
    const prompt = commands.find((c) => c.title.startsWith('At the (qemu) prompt'))!;
    expect(prompt.perLine).toBe(true);
    expect(prompt.command.argv).toEqual(['migrate -d tcp:10.77.0.2:4444', 'info migrate']);
  });

  it('list the monitor commands that ran one per line, as typed', async () => {
    const { commands } = await explainCommands(report, lab);
    const ran = commands.find((c) => c.title === 'Monitor commands that ran the migration')!;
    expect(ran.perLine).toBe(true);
    expect(ran.command.argv).toEqual([...report.inputs.monitorCommands, 'info migrate']);
  });

  it('on hosts from a hosts file: each command where it ran, no NFS server of miglab, guests up over ssh', async () => {
    const { commands, ganeshaConfig } = await explainCommands(report, hostsLab);
    expect(commands.map((c) => c.where).slice(0, 3)).toEqual([
      'the NFS export directory (/srv/miglab on root@192.168.122.11)',
      'root@192.168.122.11 (source host)',
      'root@192.168.122.12 (destination host)',
    ]);
    expect(commands.some((c) => /NFS server/.test(c.title))).toBe(false);
    expect(ganeshaConfig).toBeUndefined();
    // By hand: guests up names the hosts file, and the person logs in to the source host to reach its monitor.
    const reach = commands.find((c) => c.title === "Reaching the source's monitor by hand")!;
    expect(reach.note).toMatch(/miglab guests up --hmp-port 4445 --hosts \/home\/me\/hosts\.yaml/);
    expect(reach.command.argv).toEqual(['ssh', '-t', '-i', '/root/.ssh/id_ed25519', 'root@192.168.122.11', 'telnet', '127.0.0.1', '4445']);
    expect(reach.command.explained.map((e) => e.args)).toEqual([['ssh', '-t', '-i', '/root/.ssh/id_ed25519', 'root@192.168.122.11'], ['telnet', '127.0.0.1', '4445']]);
    expect(commands.find((c) => c.title.startsWith('At the (qemu) prompt'))!.command.argv).toEqual(['migrate -d tcp:10.77.0.2:4444', 'info migrate']);
  });
});
