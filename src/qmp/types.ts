// Plain data QEMU sends over QMP, as miglab keeps it.

/** QEMU's own clock at the time of an event. */
export interface QmpTimestamp {
  readonly seconds: number;
  readonly microseconds: number;
}

export interface QmpEvent {
  readonly event: string;
  readonly data: Readonly<Record<string, unknown>>;
  readonly timestamp: QmpTimestamp;
}

/** QEMU's event time in milliseconds since the epoch. */
export function eventTimeMs(e: QmpEvent): number {
  return e.timestamp.seconds * 1000 + e.timestamp.microseconds / 1000;
}

export interface QemuVersion {
  readonly major: number;
  readonly minor: number;
  readonly micro: number;
  /** Distribution suffix, e.g. "Debian 1:7.2+dfsg-7+deb12u18". */
  readonly package: string;
}

export interface QmpGreeting {
  readonly version: QemuVersion;
  readonly capabilities: readonly string[];
}

export interface QmpStatus {
  readonly running: boolean;
  /** RunState: running, paused, inmigrate, postmigrate, finish-migrate, shutdown, ... */
  readonly status: string;
  readonly singlestep?: boolean;
}

export type QmpState = 'idle' | 'connecting' | 'running' | 'disconnecting' | 'closed';
