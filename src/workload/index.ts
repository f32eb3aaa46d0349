// Guest workloads: the spec (plain data, compact CLI form, derived names) and its execution
// through the guest agent, with the integrity checks that follow a migration.
export {
  DIRTY_PATTERNS,
  formatWorkload,
  parseWorkload,
  workloadName,
  WorkloadObjectSchema,
  WorkloadSpecSchema,
  type DirtyPatternName,
  type DirtyWorkload,
  type DiskWorkload,
  type NetWorkload,
  type WorkloadKind,
  type WorkloadSpec,
} from './spec.js';
export {
  netBitsPerS,
  qemuImgCheck,
  startWorkload,
  stopWorkload,
  verifyIntegrity,
  workloadStatus,
  type IntegrityResult,
  type QemuImgCheck,
  type WorkloadOptions,
  type WorkloadStatus,
} from './run.js';
