// The lab's public API: a two-host lab (src, dst, client in network namespaces on one machine,
// joined by a switch namespace) with an NFS export of the guests' disks. See docs/lab.md.
export { bridgeMac, labUp } from './up.js';
export type { LabUpOptions } from './up.js';
export { attachLab, labDown, runsInProgress } from './down.js';
export type { LabDownReport, LabLocation } from './down.js';
export { listNetns } from './handle.js';
export { THIS_MACHINE } from './machine.js';
export type { LabMachine } from './machine.js';
export type { ClockOffset, Lab, LabHost, LabNfs, NfsServerState, SlotLease, StepOptions } from './handle.js';
export type { RecordedProcess } from './procs.js';
export { applyLabFirewall, checkFirewall, firewallRuleset } from './firewall.js';
export type { FirewallStatus } from './firewall.js';
export { describeListener, listListeners } from './listeners.js';
export type { Listener } from './listeners.js';
export { formatLabStatus, labStatus } from './status.js';
export type { LabStatus, LinkStatus, NamespaceStatus, PingStatus } from './status.js';
export { REQUIRED_PACKAGES, REQUIRED_PROGRAMS, checkLabDependencies, checkRoot } from './deps.js';
export {
  DEFAULT_PREFIX,
  DEFAULT_STATE_ROOT,
  DEFAULT_SUBNET,
  LabSpecSchema,
  ShapingSchema,
  labNames,
  labPaths,
  parseLabSpec,
  parseShaping,
  guestIp,
  guestMac,
} from './spec.js';
export type { GuestHostRole, HostRole, LabNames, LabPaths, LabSpec, LabSpecInput, Shaping, ShapingInput } from './spec.js';
