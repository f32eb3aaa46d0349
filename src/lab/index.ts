// The lab's public API: a two-host lab (src, dst, client in network namespaces on one machine,
// joined by a switch namespace) with an NFS export of the guests' disks. See docs/lab.md.
export { attachLab, bridgeMac, labDown, labUp, listNetns, withLab } from './lab.js';
export type { Lab, LabDownReport, LabHost, LabLocation, LabNfs, LabUpOptions, StepOptions } from './lab.js';
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
