// The machine an embedded lab is built on: the host that runs commands in its root namespace
// (`ip netns add`, `ip link add ... netns`), and the host that is one of its network namespaces.
// Bring-up, take-down, attach, status and the lab's handle run every command through one of these,
// so a unit test can give them a host that records argv (test/support/fake-host.ts) and check what
// they would do to a machine without touching one. The lab's state files, /proc and /run/netns are
// still read where miglab runs: an embedded lab is always on miglab's own machine.
import type { Host } from '../host/host.js';
import { LocalHost, NetnsHost } from '../host/local.js';

export interface LabMachine {
  /** Runs commands in the machine's root namespace. */
  readonly host: Host;
  /** A host that is network namespace `netns` of the machine (`name` in messages). */
  netns(name: string, netns: string): Host;
}

/** This machine: the default for every embedded lab, built here and nowhere else. */
export const THIS_MACHINE: LabMachine = {
  host: new LocalHost('local'),
  netns: (name, netns) => new NetnsHost(name, netns),
};
