// Where a switchover's downtime went, read from QEMU's own trace. QEMU 8.2 added trace points for
// it: vmstate_downtime_checkpoint marks each step of the switchover on either side (the source
// stops the vCPUs, saves the last state, ...; the destination loads it and resumes), and
// vmstate_downtime_save / vmstate_downtime_load time each device's state section (downtime= in
// µs). miglab starts each QEMU with `-trace vmstate_downtime_* -D <file> -msg timestamp=on`, and the
// "log" trace backend then writes stamped lines (trace-log.ts reads both forms QEMU uses). The
// timestamps are the point: a checkpoint has no duration of its own, so only the gaps between
// checkpoints, on one side and across the two, say where the time went. The times are the host's wall
// clock (gettimeofday), hence an offset between the two hosts' clocks.
//
// Which switchover a file's lines belong to, when a file holds more than one attempt:
// - source: everything from the last src-downtime-start on (a switchover begins with it, and the
//   last one is the one that completed, if any did);
// - destination: an attempt logs its loads, then its checkpoints (QEMU logs
//   dst-precopy-loadvm-completed even when the load fails), so a load after a checkpoint begins
//   the next attempt; the kept one is the last that has a checkpoint. Loads after it (post-copy's
//   last RAM section, logged once the vCPUs already run) belong to no switchover.

import { parseTraceLog } from './trace-log.js';

/** QEMU's two kinds of state section: iterable ones (RAM) are sent as the guest runs, and their
 * last part in the switchover; non-iterable ones (devices) only in the switchover. */
export type SectionKind = 'iterable' | 'non-iterable';

export interface Checkpoint {
  readonly name: string;
  /** Epoch milliseconds on the host that logged it, to the µs. */
  readonly atMs: number;
}

/** One state section's save (source) or load (destination), as QEMU timed it. */
export interface SectionTime {
  readonly op: 'save' | 'load';
  readonly idstr: string;
  readonly instanceId: number;
  readonly type: SectionKind;
  readonly us: number;
  /** When QEMU logged it: the section's end. */
  readonly atMs: number;
}

/** One QEMU's trace file, every attempt in it, in file order. */
export interface SideTrace {
  readonly checkpoints: readonly Checkpoint[];
  readonly devices: readonly SectionTime[];
}

export type PhaseSide = 'source' | 'destination' | 'both';

/** The time between two consecutive checkpoints of the switchover, on either side. */
export interface DowntimePhase {
  readonly from: string;
  readonly to: string;
  readonly side: PhaseSide;
  readonly ms: number;
  /** What happens in it, in plain words. */
  readonly what: string;
}

export interface DeviceShare {
  /** QEMU's idstr, with `#instance` when there are several instances. */
  readonly device: string;
  readonly type: SectionKind;
  readonly ms: number;
}

export interface DowntimeBreakdown {
  readonly phases: readonly DowntimePhase[];
  /** src-downtime-start to the destination's last *-vm-started checkpoint: the guest's pause. */
  readonly totalMs?: number;
  /** Slowest first. */
  readonly sourceDevices: readonly DeviceShare[];
  readonly destinationDevices: readonly DeviceShare[];
  readonly sourceSaveMs: number;
  readonly destinationLoadMs: number;
}

const SWITCHOVER_START = 'src-downtime-start';
const VM_STARTED = /-vm-started$/;

const CHECKPOINT_ARGS = /^(\S+)$/;
const SECTION_ARGS = /^type=(iterable|non-iterable) idstr=(.+) instance_id=(\d+) downtime=(-?\d+)$/;

/**
 * What happens up to each checkpoint QEMU 8.2-10.0 logs (migration.c, savevm.c). A phase is named
 * after the checkpoint it ends at; a checkpoint not listed here gets generic words.
 */
const LEADS_UP_TO: Readonly<Record<string, string>> = {
  'src-vm-stopped': 'the source stops the vCPUs',
  'src-iterable-saved': "the source saves the iterable state (RAM's last dirty pages)",
  'src-non-iterable-saved': "the source saves the devices' state (the non-iterable sections)",
  'src-downtime-end': 'the source finishes its part: the stream flushed, and the return path closed when there is one',
  // Whichever source checkpoint comes last before it, the wait is the link's and the load's.
  'dst-precopy-loadvm-completed': 'the last bytes cross the link and the destination loads them',
  'dst-precopy-bh-enter': "the destination's main loop gets to the resume step (a bottom half)",
  'dst-precopy-bh-announced': "the destination activates the disks and announces the guest's network cards",
  'dst-precopy-bh-vm-started': 'the destination starts the vCPUs',
  'dst-postcopy-bh-enter': "the destination's main loop gets to the resume step (a bottom half)",
  'dst-postcopy-bh-cpu-synced': 'the destination puts the vCPU registers into KVM',
  'dst-postcopy-bh-announced': "the destination announces the guest's network cards",
  'dst-postcopy-bh-cache-invalidated': 'the destination activates the disks',
  'dst-postcopy-bh-vm-started': 'the destination starts the vCPUs',
};

const round3 = (ms: number) => Math.round(ms * 1000) / 1000;

/** Reads a trace file; lines that are not a downtime trace event with its timestamp are skipped. */
export function parseDowntimeTrace(text: string): SideTrace {
  const checkpoints: Checkpoint[] = [];
  const devices: SectionTime[] = [];
  for (const { atMs, event, args } of parseTraceLog(text, ['vmstate_downtime_'])) {
    const kind = event.slice('vmstate_downtime_'.length);
    if (kind === 'checkpoint') {
      const c = CHECKPOINT_ARGS.exec(args);
      if (c) checkpoints.push({ name: c[1]!, atMs });
      continue;
    }
    const s = kind === 'save' || kind === 'load' ? SECTION_ARGS.exec(args) : null;
    if (s) devices.push({ op: kind === 'save' ? 'save' : 'load', idstr: s[2]!, instanceId: Number(s[3]), type: s[1] === 'iterable' ? 'iterable' : 'non-iterable', us: Number(s[4]), atMs });
  }
  return { checkpoints, devices };
}

function lastIndexWhere<T>(xs: readonly T[], test: (x: T) => boolean): number {
  for (let i = xs.length - 1; i >= 0; i--) if (test(xs[i]!)) return i;
  return -1;
}

/** The source's last switchover (see the top of the file), or undefined when it never began one. */
function sourceSwitchover(side: SideTrace): SideTrace | undefined {
  const start = lastIndexWhere(side.checkpoints, (c) => c.name === SWITCHOVER_START);
  if (start < 0) return undefined;
  const fromMs = side.checkpoints[start]!.atMs;
  return { checkpoints: side.checkpoints.slice(start), devices: side.devices.filter((d) => d.op === 'save' && d.atMs >= fromMs) };
}

/** The destination's last attempt that reached a checkpoint (see the top of the file). */
function destinationSwitchover(side: SideTrace): SideTrace {
  // On equal times a load sorts first: an attempt's loads precede its checkpoints.
  const loads = side.devices.filter((d) => d.op === 'load').map((load) => ({ atMs: load.atMs, load }));
  const events = [...loads, ...side.checkpoints.map((checkpoint) => ({ atMs: checkpoint.atMs, checkpoint }))].sort((a, b) => a.atMs - b.atMs);
  const attempts: { checkpoints: Checkpoint[]; devices: SectionTime[] }[] = [];
  for (const e of events) {
    let current = attempts.at(-1);
    if (!current || ('load' in e && current.checkpoints.length > 0)) attempts.push((current = { checkpoints: [], devices: [] }));
    if ('load' in e) current.devices.push(e.load);
    else current.checkpoints.push(e.checkpoint);
  }
  const kept = lastIndexWhere(attempts, (a) => a.checkpoints.length > 0);
  return attempts[kept >= 0 ? kept : attempts.length - 1] ?? { checkpoints: [], devices: [] };
}

function what(to: string): string {
  return LEADS_UP_TO[to] ?? `up to QEMU's ${to} checkpoint (miglab has no words for it yet)`;
}

function deviceShares(devices: readonly SectionTime[]): DeviceShare[] {
  return devices.map((d) => ({ device: d.instanceId > 0 ? `${d.idstr}#${d.instanceId}` : d.idstr, type: d.type, ms: round3(d.us / 1000) })).sort((a, b) => b.ms - a.ms);
}

const sumMs = (devices: readonly SectionTime[]) => round3(devices.reduce((t, d) => t + d.us, 0) / 1000);

type Placed = Checkpoint & { readonly side: 'source' | 'destination' };

/**
 * Where the downtime went: both sides' checkpoints on one time line, from src-downtime-start to
 * the destination's last *-vm-started, and each side's sections, slowest first.
 * `destinationOffsetMs`: the destination host's clock minus the source's. A wrong offset shows as
 * destination checkpoints out of place, or outside the time line and so left out of the phases.
 */
export function downtimeBreakdown(source: SideTrace, destination: SideTrace, destinationOffsetMs = 0): DowntimeBreakdown | undefined {
  const src = sourceSwitchover(source);
  if (!src) return undefined;
  const dst = destinationSwitchover(destination);
  const startMs = src.checkpoints[0]!.atMs;
  const dstCheckpoints = dst.checkpoints.map((c): Placed => ({ name: c.name, atMs: c.atMs - destinationOffsetMs, side: 'destination' }));
  // A start before the source stopped belongs to no switchover of the source's (an older attempt, or clocks far apart).
  const started = dstCheckpoints[lastIndexWhere(dstCheckpoints, (c) => VM_STARTED.test(c.name) && c.atMs >= startMs)];
  const endMs = started?.atMs ?? Infinity;
  // Stable: on equal times the source's checkpoint comes first.
  const line = [...src.checkpoints.map((c): Placed => ({ ...c, side: 'source' })), ...dstCheckpoints].filter((c) => c.atMs >= startMs && c.atMs <= endMs).sort((a, b) => a.atMs - b.atMs);
  const phases = line.slice(1).map((to, i): DowntimePhase => {
    const from = line[i]!;
    return { from: from.name, to: to.name, side: from.side === to.side ? to.side : 'both', ms: round3(to.atMs - from.atMs), what: what(to.name) };
  });
  return {
    phases,
    totalMs: started === undefined ? undefined : round3(started.atMs - startMs),
    sourceDevices: deviceShares(src.devices),
    destinationDevices: deviceShares(dst.devices),
    sourceSaveMs: sumMs(src.devices),
    destinationLoadMs: sumMs(dst.devices),
  };
}

const cell = (text: string) => text.replace(/\|/g, '\\|');
/** Three significant digits, as run.json keeps its times (src/results/units.ts): no more precision shown than kept. */
const fmtMs = (ms: number) => String(Number(ms.toPrecision(3)));
const tableRow = (phase: string, side: string, ms: number) => `| ${cell(phase)} | ${side} | ${fmtMs(ms)} |`;

/** A device by its last idstr component (virtio-net, not 0000:00:02.0/virtio-net) unless that is ambiguous. */
function deviceLabel(d: DeviceShare, all: readonly DeviceShare[]): string {
  const short = (x: DeviceShare) => x.device.slice(x.device.lastIndexOf('/') + 1);
  const ambiguous = all.some((x) => x.device !== d.device && short(x) === short(d));
  return `\`${ambiguous ? d.device : short(d)}\`${d.type === 'iterable' ? ' (iterable)' : ''}`;
}

function devicesLine(verb: 'save' | 'load', devices: readonly DeviceShare[], totalMs: number, top: number): string {
  if (devices.length === 0) return `slowest to ${verb}: none traced`;
  const named = devices.slice(0, top).map((d) => `${deviceLabel(d, devices)} ${fmtMs(d.ms)} ms`);
  return `slowest to ${verb} (${fmtMs(totalMs)} ms in all, ${devices.length} sections): ${named.join(', ')}`;
}

/** The breakdown as Markdown for the run report: the phases table, then each side's slowest sections. */
export function breakdownLines(b: DowntimeBreakdown, topDevices = 5): string[] {
  const last = b.phases.at(-1);
  return [
    '| phase | side | ms |',
    '| --- | --- | ---: |',
    ...b.phases.map((p) => tableRow(`${p.what} (\`${p.from}\` → \`${p.to}\`)`, p.side, p.ms)),
    ...(b.totalMs === undefined || !last ? [] : [tableRow(`**total**, the guest paused (\`${SWITCHOVER_START}\` → \`${last.to}\`)`, 'both', b.totalMs)]),
    // A paragraph right under a table would be read as one more row.
    '',
    devicesLine('save', b.sourceDevices, b.sourceSaveMs, topDevices),
    '',
    devicesLine('load', b.destinationDevices, b.destinationLoadMs, topDevices),
  ];
}
