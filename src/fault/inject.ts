// Carries out one fault on the lab of a running migration and says how to undo it. Every action
// goes to something the run or its lab started, by pid (with its start time) or by name inside the
// lab's own namespaces: a QEMU of this run, the switch port of the destination host, a table of
// our own in the destination's nftables, the lab's NFS server, the guest's agent.
import type { AgentClient } from '../guest/agent-client.js';
import type { Lab } from '../lab/index.js';
import { deleteNftTable, loadNftRuleset } from '../lab/firewall.js';
import type { Vm } from '../machine/vm.js';
import type { FaultSpec } from './spec.js';

export interface FaultTargets {
  readonly lab: Lab;
  readonly src: Vm;
  readonly dst: Vm;
  /** guest-oom: the guest's agent (reached from the lab's client host). */
  readonly agent: AgentClient;
}

export interface Injected {
  /** What was done, in words, for the record. */
  readonly detail: string;
  /** How a fault that lasts is taken back (SIGCONT, link up, NFS server restarted). */
  readonly undo?: { readonly what: string; readonly run: () => Promise<void> };
}

const STEP = { timeoutMs: 10000 };

/** The nftables table link-loss adds in the destination's namespace (never one of anybody else's). */
export const LOSS_TABLE = 'miglab-fault';

/**
 * Packet loss at the destination host without sch_netem (absent from some kernels, this
 * machine's among them): nftables drops a random share of every packet the destination's own
 * stack receives or sends (the migration stream and its NFS traffic). Bridged guest traffic
 * does not pass these hooks.
 */
export function lossRuleset(percent: number): string {
  // numgen yields 0..99; dropping values below a whole percentage gives that loss.
  const below = Math.max(1, Math.min(100, Math.round(percent)));
  return [
    `table inet ${LOSS_TABLE} {`,
    `  chain input { type filter hook input priority -10; policy accept; numgen random mod 100 < ${below} drop; }`,
    `  chain output { type filter hook output priority -10; policy accept; numgen random mod 100 < ${below} drop; }`,
    '}',
    '',
  ].join('\n');
}

export async function injectFault(f: FaultSpec, t: FaultTargets): Promise<Injected> {
  switch (f.kind) {
    case 'kill-dst':
    case 'kill-src': {
      const vm = f.kind === 'kill-src' ? t.src : t.dst;
      await vm.process.sendSignal('SIGKILL');
      return { detail: `SIGKILL to QEMU ${vm.label} (pid ${vm.process.pid})` };
    }
    case 'freeze-dst':
    case 'freeze-src': {
      const vm = f.kind === 'freeze-src' ? t.src : t.dst;
      await vm.process.sendSignal('SIGSTOP');
      return {
        detail: `SIGSTOP to QEMU ${vm.label} (pid ${vm.process.pid})`,
        undo: { what: `SIGCONT to QEMU ${vm.label} (pid ${vm.process.pid})`, run: () => vm.process.sendSignal('SIGCONT') },
      };
    }
    case 'link-down': {
      await t.lab.setUplink('dst', false, STEP);
      return {
        detail: `the destination host's link to the switch set down (${t.lab.names.switchPort.dst} in ${t.lab.names.switchNs})`,
        undo: { what: "the destination host's link set up again", run: () => t.lab.setUplink('dst', true, STEP) },
      };
    }
    case 'link-loss': {
      const host = t.lab.hosts.dst.host;
      await loadNftRuleset(host, lossRuleset(f.lossPercent!), `the link-loss fault's table (inet ${LOSS_TABLE})`, STEP);
      return {
        detail: `${f.lossPercent} % of the destination host's packets dropped (nftables table inet ${LOSS_TABLE} in ${t.lab.hosts.dst.netns ?? t.lab.hosts.dst.where})`,
        undo: { what: `nftables table inet ${LOSS_TABLE} removed`, run: () => deleteNftTable(host, LOSS_TABLE, STEP) },
      };
    }
    case 'nfs-down': {
      const pid = await t.lab.signalNfsServer('SIGKILL');
      return {
        detail: `SIGKILL to the lab's NFS server (ganesha and rpcbind, process group ${pid})`,
        undo: { what: "the lab's NFS server started again", run: () => t.lab.restartNfsServer(STEP) },
      };
    }
    case 'nfs-freeze': {
      const pid = await t.lab.signalNfsServer('SIGSTOP');
      return {
        detail: `SIGSTOP to the lab's NFS server (process group ${pid})`,
        undo: { what: `SIGCONT to the lab's NFS server (process group ${pid})`, run: async () => void (await t.lab.signalNfsServer('SIGCONT')) },
      };
    }
    case 'guest-oom':
      await t.agent.startOom(STEP);
      return { detail: "the guest agent allocates memory until the guest's OOM killer ends it" };
  }
}

