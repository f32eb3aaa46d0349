// What a person types to migrate a held guest pair by hand (`miglab guests up`): the shell line
// that opens the source's monitor, then the monitor commands, one per line, each pasteable as it
// is. Pure: built from where the guests are (how to run a program at the source host, its
// monitors, the destination's URI), so the text printed, the README and the homework report
// cannot drift from what works. The shell lines are rendered from argv arrays; they are shown,
// never run by miglab.
import { shellCommand } from '../host/shell-quote.js';

/** Where a held pair is: enough to reach the source's monitors and name the destination. */
export interface ByHandPlace {
  /**
   * The argv that runs a program on the source host, where its monitors listen: `ip netns exec
   * mlab-src` (the embedded lab's namespace), or `ssh -t root@SRC` (a host of a hosts file).
   */
  readonly atSource: readonly string[];
  /**
   * Whether the source host is this machine (the embedded lab's namespace): then the person's QMP
   * socket is a file here, which socat reaches from any namespace, and the terminal must be
   * root's. Else the socket is on the source host and reached through `atSource`.
   */
  readonly onThisMachine: boolean;
  /** The source's HMP on telnet 127.0.0.1:PORT on the source host. */
  readonly hmpPort: number;
  /** The destination QEMU's -incoming address, e.g. tcp:10.77.0.2:4444. */
  readonly uri: string;
  /** The source's QMP socket for a person; absent: QMP by hand is not offered. */
  readonly personQmpSocket?: string;
  /** What names the lab to `guests down`: ['--prefix', PREFIX] or ['--hosts', FILE]. */
  readonly lab: readonly string[];
}

/** What a lab says of where its source host is (Lab.byHandPlace). */
export type HandPlace = Pick<ByHandPlace, 'atSource' | 'onThisMachine' | 'lab'>;

/** One way to drive the migration: a shell command that opens a monitor, then what to type in it. */
export interface MonitorSteps {
  /** The command that opens the monitor, as an argv (run as root on this machine). */
  readonly open: readonly string[];
  /** The lines to type once it is open, one command per line. */
  readonly type: readonly string[];
}

export interface ByHandSteps {
  readonly hmp: MonitorSteps;
  readonly qmp?: MonitorSteps;
  /** Ends the held guests from another terminal. */
  readonly end: readonly string[];
}

export function byHandSteps(p: ByHandPlace): ByHandSteps {
  return {
    hmp: { open: [...p.atSource, 'telnet', '127.0.0.1', String(p.hmpPort)], type: hmpMigrateLines(p.uri) },
    // A unix socket is a file: on this machine socat reaches it from any namespace.
    qmp: p.personQmpSocket ? { open: [...(p.onThisMachine ? [] : p.atSource), 'socat', '-', `UNIX-CONNECT:${p.personQmpSocket}`], type: qmpMigrateLines(p.uri) } : undefined,
    end: ['miglab', 'guests', 'down', ...p.lab],
  };
}

/** The embedded lab's place: the source is the namespace `srcNetns` of this machine. */
export function embeddedPlace(srcNetns: string, prefix: string): HandPlace {
  return { atSource: ['ip', 'netns', 'exec', srcNetns], onThisMachine: true, lab: ['--prefix', prefix] };
}

/** The homework's two HMP commands: start the migration in the background, then look at it. */
export function hmpMigrateLines(uri: string): string[] {
  return [`migrate -d ${uri}`, 'info migrate'];
}

/** The same over QMP: the capabilities handshake QMP requires first, then migrate and query-migrate. */
export function qmpMigrateLines(uri: string): string[] {
  return [JSON.stringify({ execute: 'qmp_capabilities' }), JSON.stringify({ execute: 'migrate', arguments: { uri } }), JSON.stringify({ execute: 'query-migrate' })];
}

/**
 * The instructions `guests up` prints. Every command stands alone on its line with nothing
 * around it, so each can be copied and pasted as it is; the prose lines say where to paste.
 */
export function formatByHand(p: ByHandPlace, holdMs: number): string {
  const s = byHandSteps(p);
  const lines = [
    `The guests are ready: the source runs, the destination waits on ${p.uri}. Migrate it yourself.`,
    p.onThisMachine ? "In another root terminal, open the source's human monitor (HMP):" : "In another terminal, open the source's human monitor (HMP) on the source host, over SSH as the hosts file logs in:",
    '',
    shellCommand(s.hmp.open),
    '',
    'then type at the (qemu) prompt, one line at a time (info migrate again to follow it; Ctrl-] then quit leaves telnet):',
    '',
    ...s.hmp.type,
    '',
  ];
  if (s.qmp) {
    lines.push('Or over QMP, the JSON monitor (one line at a time, qmp_capabilities first):', '', shellCommand(s.qmp.open), '', ...s.qmp.type, '');
  }
  lines.push(
    `miglab watches the migration over its own QMP and records it when it ends (results/<run-id>/), then keeps the guests for \`info migrate\` until you end it with`,
    '',
    shellCommand(s.end),
    '',
    `or Ctrl-C here. It ends by itself if no migration has begun within ${formatMinutes(holdMs)}, or ${formatMinutes(holdMs)} after the migration ended.`,
  );
  return lines.join('\n');
}

function formatMinutes(ms: number): string {
  return ms % 60000 === 0 ? `${ms / 60000} min` : `${Math.round(ms / 1000)} s`;
}
