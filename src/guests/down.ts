// `miglab guests down`: end the `miglab guests up` holding guests on a lab, from another terminal.
// It sends that process (named by pid and start time in the lab's guests/ records) SIGTERM, which
// makes it end as Ctrl-C would: it stops its QEMUs, probe and taps, completes its record, and takes
// down a lab it brought up itself. Should it not end within the limit, it is killed and the
// processes it had recorded in the lab are stopped by id; nothing else is ever signalled. On
// hosts from a hosts file the holder's QEMUs end with its SSH sessions when it is killed.
import { rmSync } from 'node:fs';
import { TimeoutError } from '../errors.js';
import { isOwnedAlive, stopOwnedGroup } from '../lab/proc.js';
import { ProcessRegistry } from '../lab/procs.js';
import { labPaths, parseLabSpec } from '../lab/index.js';
import { pollUntil } from '../util/deadline.js';
import { shellCommand } from '../host/shell-quote.js';
import { readHolders } from './record.js';

export interface GuestsDownOptions {
  readonly prefix: string;
  /** The hosts file whose lab it is (its prefix is the file's): named in the lines instead of the prefix. */
  readonly hostsFile?: string;
  readonly stateRoot?: string;
  /** How long a holder may take to stop everything it started (QEMU quits, qemu-img check, lab down). */
  readonly timeoutMs?: number;
}

export interface GuestsDownReport {
  /** One line per holder found: what was done. */
  readonly lines: string[];
  /** Holders that had to be killed (they did not end in time). */
  readonly killed: number;
}

export async function guestsDown(o: GuestsDownOptions): Promise<GuestsDownReport> {
  const spec = parseLabSpec({ prefix: o.prefix, ...(o.stateRoot ? { stateRoot: o.stateRoot } : {}) });
  const paths = labPaths(spec);
  const { holders, unreadable } = readHolders(paths.labDir);
  const lines: string[] = [];
  const lab = o.hostsFile === undefined ? `lab "${spec.prefix}"` : `the hosts of ${o.hostsFile}`;
  const statusLine = shellCommand(['miglab', 'lab', 'status', ...(o.hostsFile === undefined ? ['--prefix', spec.prefix] : ['--hosts', o.hostsFile])]);
  let killed = 0;
  for (const f of unreadable) rmSync(f, { force: true });
  for (const { file, record } of holders) {
    if (!isOwnedAlive(record)) {
      // A guests up killed with SIGKILL: its processes are the lab's orphans (`lab down` stops them).
      rmSync(file, { force: true });
      lines.push(`removed the record of a guests up (pid ${record.pid}) that is gone; \`${statusLine}\` names anything it left`);
      continue;
    }
    process.kill(record.pid, 'SIGTERM');
    try {
      await pollUntil(`guests up (pid ${record.pid}) to stop what it started`, () => (isOwnedAlive(record) ? undefined : true), { timeoutMs: o.timeoutMs ?? 90_000, intervalMs: 100 });
      lines.push(`ended miglab guests up (pid ${record.pid}) on ${lab}: it stopped both QEMUs and everything it had started, and wrote its record`);
    } catch (err) {
      if (!(err instanceof TimeoutError)) throw err;
      if (isOwnedAlive(record)) process.kill(record.pid, 'SIGKILL');
      killed++;
      // What it had started in the lab, by pid and start time (the lab's process records).
      const registry = new ProcessRegistry(paths.procsDir);
      const its = registry.live().filter((p) => p.owner.pid === record.pid && p.owner.startTime === record.startTime);
      const stopped: string[] = [];
      for (const p of its) if (await stopOwnedGroup(p, { timeoutMs: 10_000 })) stopped.push(`${p.what} (pid ${p.pid})`);
      rmSync(file, { force: true });
      lines.push(
        `miglab guests up (pid ${record.pid}) did not end within ${Math.round((o.timeoutMs ?? 90_000) / 1000)} s and was killed; stopped what it had started: ${stopped.join(', ') || 'nothing was left'}`,
      );
    }
  }
  if (holders.length === 0) lines.push(`no miglab guests up holds guests on ${lab}: nothing to end`);
  return { lines, killed };
}
