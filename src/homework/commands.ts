// Section: every command the run really used, argument by argument. The QEMU, qemu-img and NFS
// explanations come from the same builders that produced the argv that ran; monitor commands
// are explained from the literal lines sent.
import { MiglabError } from '../errors.js';
import { readFile } from 'node:fs/promises';
import { qemuImgCreateCommand } from '../image/disk.js';
import type { Lab } from '../lab/index.js';
import { labNfsParams, nfsServerCommand } from '../lab/nfs.js';
import type { ExplainedCommand } from '../util/explained-command.js';
import type { RunReport } from '../migrate/report.js';
import { byHandSteps } from '../guests/instructions.js';
import type { CommandExplanation } from '../results/homework.js';

// The shapes homework.json records (src/results/homework.ts).
export type { CommandExplanation };

const HMP_EXPLAIN: ReadonlyArray<[RegExp, (m: RegExpExecArray) => string]> = [
  [/^migrate_set_capability (\S+) (on|off)$/, (m) => `turn the ${m[1]} migration capability ${m[2]}${m[1] === 'events' ? ': QEMU then reports MIGRATION and MIGRATION_PASS events, which time each pre-copy pass' : ''}`],
  [/^migrate_set_parameter max-bandwidth (\S+)$/, (m) => `cap the migration stream at ${m[1]} per second (QEMU's default is 128 MiB/s); a lower cap makes pre-copy last longer`],
  [/^migrate_set_parameter downtime-limit (\S+)$/, (m) => `the longest pause (${m[1]} ms) QEMU may take for the final stop-and-copy; pre-copy continues until the rest fits in it`],
  [/^migrate_set_parameter (\S+) (\S+)$/, (m) => `set the migration parameter ${m[1]} to ${m[2]}`],
  [/^migrate -d (tcp:([^:]+):(\d+))$/, (m) => `start the live migration to the destination QEMU listening on ${m[2]} port ${m[3]} (its -incoming ${m[1]}); -d detaches, so the monitor returns at once while pre-copy runs`],
  [/^migrate_start_postcopy$/, () => 'switch to post-copy: the guest runs on the destination at once, which fetches the pages it still lacks from the source'],
  [/^migrate_pause$/, () => 'pause a post-copy migration (its connection shut): both sides wait in postcopy-paused until it is resumed'],
  [/^migrate -d -r (tcp:([^:]+):(\d+))$/, (m) => `resume a paused post-copy over a new connection to ${m[2]} port ${m[3]}, where the destination listens again (migrate-recover ${m[1]})`],
  [/^info migrate$/, () => 'show the migration status and statistics: total time, downtime, transferred and remaining RAM, throughput, dirty pages rate'],
  [/^migrate_cancel$/, () => 'stop the migration; the source keeps running'],
];

const QMP_EXPLAIN: Record<string, string> = {
  'migrate-set-capabilities': 'turn migration capabilities on or off (events: report MIGRATION and MIGRATION_PASS)',
  'migrate-set-parameters': 'set migration parameters (max-bandwidth in bytes/s, downtime-limit in ms, ...)',
  migrate: 'start the live migration to the destination URI',
  'migrate-start-postcopy': 'switch to post-copy: the guest runs on the destination at once, which fetches the pages it still lacks from the source',
  'migrate-pause': 'pause a post-copy migration (its connection shut): the side waits in postcopy-paused until it is resumed',
  'migrate-recover': 'on the destination: listen again at this URI for the source resuming a paused post-copy',
  'migrate-incoming': 'on a destination started with -incoming defer: start listening at this URI, its capabilities set',
  migrate_cancel: 'stop the migration; the source keeps running',
  'query-migrate': 'status and statistics of the migration',
};

export function explainMonitorLine(line: string): string {
  if (line.startsWith('{')) {
    const { execute: cmd, arguments: args } = JSON.parse(line) as { execute: string; arguments?: { resume?: boolean } };
    if (cmd === 'migrate' && args?.resume) return 'resume a paused post-copy over a new connection to the URI, where the destination listens again (migrate-recover)';
    return QMP_EXPLAIN[cmd] ?? `QMP command ${cmd}`;
  }
  for (const [re, explain] of HMP_EXPLAIN) {
    const m = re.exec(line);
    if (m) return explain(m);
  }
  return 'a human monitor command';
}

export async function explainCommands(report: RunReport, lab: Lab): Promise<{ commands: CommandExplanation[]; ganeshaConfig?: string }> {
  const i = report.inputs;
  // The machine is absent only from a run that failed before booting: there is nothing to explain.
  if (!i.machine) throw new MiglabError('MIGRATION_FAILED', `the homework's migration (${report.runId}) failed before its guest was made: ${report.failure ?? report.verdict}`);
  const diskPath = lab.nfs.path(`${report.runId}-${i.machine.name}.qcow2`);
  const nfsParams = labNfsParams(lab.spec, lab.paths, lab.nfs.serverIp, lab.nfs.exportDir);
  const monitor: ExplainedCommand = {
    argv: [...i.monitorCommands, 'info migrate'],
    explained: [...i.monitorCommands, 'info migrate'].map((l) => ({ args: [l], why: explainMonitorLine(l) })),
  };
  const telnetPort = i.scenario.hmpTelnetPort;
  // The NFS server is miglab's on the embedded lab (it started it, and says how); on hosts from a
  // hosts file it is the user's own.
  const servesNfs = lab.nfsServerState().state !== 'none';
  const commands: CommandExplanation[] = [
    ...(servesNfs ? [{ title: 'The NFS server (shared storage for the guest disk)', where: `${lab.hosts.src.where} (source host)`, command: nfsServerCommand(lab.names.ns.src, nfsParams) }] : []),
    { title: 'The qcow2 data disk', where: `the NFS export directory (${lab.nfs.exportDir} on ${lab.nfs.host.name})`, command: qemuImgCreateCommand(diskPath, i.scenario.guest.diskSizeMiB) },
    { title: 'Source QEMU', where: `${lab.hosts.src.where} (source host)`, command: i.commands.source },
    { title: 'Destination QEMU (waits for the migration)', where: `${lab.hosts.dst.where} (destination host)`, command: i.commands.destination },
    ...(i.destinationMonitorCommands?.length
      ? [
          {
            title: "The destination's QMP monitor",
            where: `${lab.hosts.dst.where} (destination host)`,
            command: { argv: [...i.destinationMonitorCommands], explained: i.destinationMonitorCommands.map((l) => ({ args: [l], why: explainMonitorLine(l) })) },
          },
        ]
      : []),
  ];
  // By hand is `miglab guests up`, on either lab: the lab says how a person reaches its source host.
  if (telnetPort) {
    // This run's QEMUs are gone; `miglab guests up` holds a new pair that a person migrates.
    const place = lab.byHandPlace();
    const steps = byHandSteps({ ...place, hmpPort: telnetPort, uri: i.migrationUri });
    const argv = steps.hmp.open;
    const reach = place.atSource.length;
    commands.push({
      title: "Reaching the source's monitor by hand",
      where: place.onThisMachine ? 'a root shell on this machine, while `miglab guests up` holds a guest pair' : 'a shell on this machine (ssh logs in to the source host), while `miglab guests up` holds a guest pair',
      note:
        `The QEMUs of this run stopped when it ended. To type the homework's commands yourself, first run \`miglab guests up --hmp-port ${telnetPort} ${place.lab.join(' ')}\` ` +
        'in one terminal: it boots the source and the waiting destination, prints the exact lines for its pair (with the defaults, the ones below), ' +
        'records the migration you drive like any run, and `miglab guests down` ends it. Then, in another terminal:',
      command: {
        argv,
        explained: [
          { args: argv.slice(0, reach), why: place.onThisMachine ? 'enter the source host, where the monitor listens' : 'log in to the source host as the hosts file says (its port, key and proxy), with a terminal for telnet' },
          { args: argv.slice(reach), why: `telnet to the human monitor on 127.0.0.1:${telnetPort} (bound to loopback ${place.onThisMachine ? 'inside the namespace' : 'on the source host'}, never a wildcard)` },
        ],
      },
    });
    commands.push({
      title: 'At the (qemu) prompt, one line at a time',
      where: "the source's human monitor (HMP), reached as above",
      perLine: true,
      command: { argv: steps.hmp.type, explained: steps.hmp.type.map((l) => ({ args: [l], why: explainMonitorLine(l) })) },
    });
  }
  // The migration is miglab's to start except by hand, where these only set it up (the person's own lines are not seen).
  const ran = i.startedBy === 'hand' ? 'Monitor commands miglab sent (the migration itself was started by hand)' : 'Monitor commands that ran the migration';
  const where = i.scenario.monitor === 'hmp' ? "the source's human monitor (HMP)" : "the source's QMP monitor";
  commands.push({ title: ran, where, perLine: true, command: monitor });
  if (!servesNfs) return { commands };
  const ganeshaConfig = await readFile(`${lab.paths.nfsDir}/ganesha.conf`, 'utf8').catch(() => '(the NFS config was not readable)');
  return { commands, ganeshaConfig };
}
