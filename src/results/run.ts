// run.json, schema miglab.run/2: every input and output of one migration run, as a zod schema
// whose output type is the run report itself (src/migrate/report.ts re-exports the types). Each
// field says what it means and, for a figure, its unit; results/README.md is generated from here.
// A figure QEMU did not give is absent, never 0.
import { z } from 'zod';
import { FaultObjectSchema } from '../fault/spec.js';
import { LabSpecSchema, ShapingSchema } from '../lab/spec.js';
import { ACCELS, MachineSpecSchema } from '../machine/spec.js';
import { ScenarioSchema } from '../migrate/scenario.js';
import type { ResultContract } from './contract.js';
import { arr, bitsPerS, bytes, bytesPerS, count, epochMs, kibps, mbps, mib, mibps, ms, pages, pagesPerS, pct, seconds, text } from './fields.js';

/** Version 2: verdicts stalled and interrupted; figures QEMU did not give are absent, never 0. */
export const RUN_SCHEMA = 'miglab.run/2';

const side = z.enum(['source', 'destination']);

export const SampleSchema = z
  .object({
    tMs: ms('Since the migrate command was sent'),
    status: text("QEMU's migration status (setup, active, completed, failed, cancelled...)"),
    transferredBytes: bytes('RAM sent so far').optional(),
    remainingBytes: bytes('RAM still to send').optional(),
    totalBytes: bytes("The guest's RAM as QEMU counts it").optional(),
    mbps: mbps("QEMU's current migration throughput").optional(),
    dirtyPagesRate: pagesPerS('Pages the guest dirties per second, as QEMU estimates it (absent until the second dirty sync: QEMU reports 0 before it has measured)').optional(),
    dirtySyncCount: count('Dirty-bitmap syncs so far (pre-copy passes)').optional(),
    expectedDowntimeMs: ms("QEMU's estimate of the downtime if it switched over now").optional(),
    cpuThrottlePercent: pct('Guest CPU throttling by auto-converge').optional(),
  })
  .describe('One query-migrate (QMP) or info migrate (HMP) sample.');


export const PassSchema = z
  .object({
    pass: count('Pass number (QEMU counts from 1)'),
    tMs: ms('When the pass began, since the migrate command'),
    source: z.enum(['event', 'dirty-sync-count']).describe('Seen as a MIGRATION_PASS event, or as a change of dirty-sync-count between samples'),
    transferredBytes: bytes('RAM sent when the pass began (nearest sample at or after it)').optional(),
    remainingBytes: bytes('RAM still to send when the pass began').optional(),
    dirtyPagesRate: pagesPerS('Pages dirtied per second, as QEMU estimated it then').optional(),
    mbps: mbps("QEMU's throughput then").optional(),
    expectedDowntimeMs: ms("QEMU's expected downtime then").optional(),
  })
  .describe('One pre-copy pass.');

export const EventRecordSchema = z.object({
  tMs: ms("Since the migrate command (QEMU's own event timestamp, on miglab's clock: the host's measured offset removed)"),
  side: side.describe('Which QEMU sent it'),
  event: text('QMP event name (MIGRATION, MIGRATION_PASS, STOP, RESUME...)'),
  data: z.record(z.string(), z.unknown()).optional().describe("The event's data, as QEMU sent it (QEMU's own shape per event)"),
});

export const VERDICTS = ['completed', 'did-not-converge', 'stalled', 'failed', 'interrupted'] as const;
export const VerdictSchema = z
  .enum(VERDICTS)
  .describe(
    'completed: QEMU completed and every check after it passed; did-not-converge: bytes moved but pre-copy had not converged by the deadline (cancelled); stalled: no byte moved for the stall limit (cancelled); failed: QEMU failed the migration, or a check or a watcher failed the run; interrupted: Ctrl-C or SIGTERM',
  );

const RamStatsSchema = z.object({
  transferredBytes: bytes('RAM sent').optional(),
  totalBytes: bytes("The guest's RAM").optional(),
  remainingBytes: bytes('RAM left to send').optional(),
  duplicatePages: pages('Zero pages, sent as a marker').optional(),
  normalPages: pages('Pages sent whole').optional(),
  normalBytes: bytes('Bytes of pages sent whole').optional(),
  dirtyPagesRate: pagesPerS('Pages dirtied per second, as QEMU estimates it').optional(),
  mbps: mbps("QEMU's throughput").optional(),
  dirtySyncCount: count('Dirty-bitmap syncs').optional(),
  postcopyRequests: count('Pages the destination asked for in post-copy').optional(),
  pageSizeBytes: bytes('Target page size').optional(),
  multifdBytes: bytes('Sent over multifd channels').optional(),
  precopyBytes: bytes('Sent in pre-copy').optional(),
  downtimeBytes: bytes('Sent while the guest was stopped').optional(),
  postcopyBytes: bytes('Sent in post-copy').optional(),
  pagesPerSecond: pagesPerS('Pages sent per second').optional(),
});

const XbzrleSchema = z.object({
  cacheSizeBytes: bytes('XBZRLE cache size').optional(),
  transferredBytes: bytes('Sent XBZRLE-encoded').optional(),
  pages: pages('Pages sent XBZRLE-encoded').optional(),
  cacheMissPages: pages('Cache misses').optional(),
  cacheMissRate: count('Share of cache misses (0-1)').optional(),
  encodingRate: count('Encoding rate, as QEMU computes it').optional(),
  overflow: count('Encoding overflows').optional(),
});

export const MigrationInfoSchema = z
  .object({
    status: text("QEMU's migration status"),
    totalTimeMs: ms('From the migrate command to completion, as QEMU measured it').optional(),
    downtimeMs: ms('Downtime, as QEMU measured it').optional(),
    expectedDowntimeMs: ms("QEMU's expected downtime").optional(),
    setupTimeMs: ms('Setup time').optional(),
    ram: RamStatsSchema.optional().describe('RAM figures'),
    xbzrle: XbzrleSchema.optional().describe('XBZRLE cache figures (with the xbzrle capability)'),
    cpuThrottlePercent: pct('Guest CPU throttling by auto-converge').optional(),
    blockedReasons: z.array(z.string()).optional().describe('Why an outgoing migration is blocked, when QEMU says so'),
    errorDesc: text("QEMU's description of a failure").optional(),
  })
  .describe("QEMU's migration record (query-migrate or info migrate), units in the names.");

const HeartbeatSchema = z
  .object({
    sourceLastSeq: count("Sequence number of the guest's last heartbeat on the source").optional(),
    destinationFirstSeq: count('Sequence number of its first heartbeat on the destination').optional(),
    sameBoot: z.boolean().describe('Both sides show the same guest boot id'),
    continuous: z.boolean().describe("The destination's sequence continues the source's: no reset, nothing replayed"),
    missingBeats: count('Beats the guest printed that neither console showed'),
    guestGapMs: ms('Guest-clock gap between the last beat on the source and the first on the destination').optional(),
    hostGapMs: ms('Host-clock gap between reading those two beats').optional(),
  })
  .describe("Continuity of the guest's heartbeat across the switchover");

const nullableMs = (d: string) => ms(d).nullable();
const ProbeSchema = z
  .object({
    sent: count('Probes sent'),
    received: count('Replies received'),
    lost: count('Probes with no reply'),
    intervalMs: ms('Nominal probe interval'),
    resolutionMs: ms('A silence shorter than this cannot be seen'),
    longestGapMs: nullableMs('Longest gap between consecutive replies (null with fewer than two replies)'),
    longestGapStartMs: epochMs('The reply before the longest gap').nullable(),
    longestGapEndMs: epochMs('The reply after the longest gap').nullable(),
    lostAroundGap: count('Probes sent within the gap that got no reply'),
    rttP50Ms: nullableMs('Median round trip'),
    rttP99Ms: nullableMs('99th percentile round trip'),
    rttMaxMs: nullableMs('Longest round trip'),
    guestGapMs: nullableMs("Largest gap in the guest's monotonic clock between consecutive replies (its view of the stall)"),
    firstSentMs: epochMs('First probe sent').nullable(),
    lastSentMs: epochMs('Last probe sent').nullable(),
    silentAtEndMs: nullableMs('From the last reply to the last probe sent, when every probe in that time went unanswered: the client had not heard the guest again when probing stopped (null: it had)').optional(),
    unansweredAtEnd: count('Probes sent after the last reply, none answered').optional(),
  })
  .describe("The client-side UDP probe's figures (probe.csv has every probe)");

const IperfIntervalSchema = z.object({
  startS: seconds('Interval start, since iperf3 began'),
  endS: seconds('Interval end'),
  bitsPerSecond: bitsPerS('Throughput in the interval'),
  bytes: bytes('Bytes in the interval'),
  retransmits: count('TCP retransmits').optional(),
  jitterMs: ms('UDP jitter').optional(),
  lostPackets: count('UDP packets lost').optional(),
  packets: count('UDP packets').optional(),
  lostPercent: pct('UDP loss').optional(),
});


const IperfResultSchema = z
  .object({
    protocol: z.enum(['TCP', 'UDP']).describe('Transport'),
    reverse: z.boolean().describe('The server sent (iperf3 -R)'),
    streams: count('Parallel streams'),
    durationS: seconds('Requested duration'),
    version: text('iperf3 version').optional(),
    intervals: arr(IperfIntervalSchema).describe('Intervals as the client saw them'),
    summary: z
      .object({
        sentBps: bitsPerS('As the sender counted'),
        receivedBps: bitsPerS('What arrived: the throughput to report'),
        sentBytes: bytes('Sent'),
        receivedBytes: bytes('Received'),
        retransmits: count('TCP retransmits').optional(),
        jitterMs: ms('UDP jitter').optional(),
        lostPercent: pct('UDP loss').optional(),
      })
      .describe("iperf3's totals"),
    cpuUtilizationPct: z.object({ local: pct('iperf3 client CPU'), remote: pct('iperf3 server CPU') }).optional().describe("iperf3's CPU use"),
    error: text("iperf3's own error message").optional(),
  })
  .describe("iperf3's result (the net workload)");

const WorkloadStatusSchema = z
  .object({
    kind: z.enum(['idle', 'dirty', 'cpu', 'disk', 'net']).describe('The workload'),
    running: z.boolean().describe('Still running in the guest'),
    achievedMiBps: mibps('dirty: pages written x 4 KiB over the guest time since start; disk: bytes on disk over time').optional(),
    targetMiBps: mibps('The rate asked for').optional(),
    pagesWritten: pages('dirty: pages written').optional(),
    opsPerS: count('cpu: xorshift64* steps per second since start').optional(),
    ops: count('cpu: steps so far').optional(),
    diskSeq: count('disk: sequence number of the last record on disk (-1 before the first)').optional(),
    diskRecords: count('disk: records written').optional(),
    achievedKiBps: kibps('disk: achieved write rate').optional(),
    targetKiBps: kibps('disk: the rate asked for').optional(),
    diskFull: z.boolean().optional().describe('disk: the writer reached the end of the disk and stopped'),
    diskError: text('disk: the writer stopped on this I/O error').optional(),
    net: IperfResultSchema.optional(),
    netBps: bitsPerS('net: throughput once its client ended').optional(),
  })
  .describe("The guest workload's own figures");


const IntegritySchema = z
  .object({
    checked: z.enum(['memory', 'disk', 'none']).describe("What was checked: the dirty workload's pages, the disk workload's records, or nothing"),
    ok: z.boolean().describe('Everything checked held what was last written'),
    detail: text('One line for reports and failure messages'),
    pages: pages('Pages checked').optional(),
    badPages: pages('Pages that did not hold their last write').optional(),
    firstBadPage: count('Index of the first bad page').optional(),
    records: count('Disk records checked').optional(),
    badRecords: count('Records that failed their checksum').optional(),
    firstBadRecord: count('Index of the first bad record').optional(),
    gaps: count('Gaps in the record sequence').optional(),
    lastSeq: count('Sequence number of the last record').optional(),
    backwards: count('Good records stamped earlier (guest clock) than the one before').optional(),
  })
  .describe("Memory or disk integrity, checked in the guest");

const FigureSourceSchema = z.enum(['qemu', 'events', 'missing']).describe("qemu: QEMU's query-migrate; events: QEMU's event stamps; missing: the figure is absent");

const StallSchema = z
  .object({
    sinceMs: ms('Since the migrate command, when the transferred counter last changed'),
    forMs: ms('How long no byte moved'),
    transferredBytes: bytes('RAM sent when it stopped moving'),
    status: text('Migration status then'),
    samples: count('Samples that showed no progress'),
  })
  .describe('No byte moved for the stall limit: the evidence');

export const FaultRecordSchema = z
  .object({
    fault: text('The fault in its compact form, e.g. freeze-dst:5s@pass:2'),
    spec: FaultObjectSchema.describe('The fault as validated'),
    fired: z.boolean().describe('Whether it fired'),
    firedAtMs: ms('Since the migrate command').optional(),
    trigger: text('What the run saw that made it due').optional(),
    detail: text('What was done').optional(),
    undoneAtMs: ms('When it was undone, since the migrate command').optional(),
    undo: text('What undid it').optional(),
    error: text('The injection or its undo failed').optional(),
    notFired: text('Why it never fired').optional(),
  })
  .describe('One injected fault');

const SideAfterSchema = z
  .object({
    process: z.enum(['running', 'exited', 'not-started']).describe('The QEMU process: alive, gone, or never started'),
    status: text("QEMU's run state (query-status): running, postmigrate, inmigrate, paused...").optional(),
    unanswered: text('The process ran but its monitor did not answer: why').optional(),
    exit: z.object({ exitCode: z.number().nullable().describe('Exit code'), signal: z.string().nullable().describe('Signal that ended it') }).optional().describe('How it exited'),
    migrationStatus: text("Source only, when the run ended before QEMU reached a final status: query-migrate's status then").optional(),
    heartbeat: z.enum(['continuing', 'silent', 'not-expected']).optional().describe("Whether the guest's heartbeat went on on this side"),
  })
  .describe('One side after the run, before miglab stopped anything');

const IncidentSchema = z.object({
  tMs: ms('Since the migrate command (negative: before it)'),
  atMs: epochMs('When'),
  source: text('Which watcher: qemu-exit, console, nfs, lab, results, stall, migration, fault'),
  what: text('What it saw'),
});

const ClockOffsetsSchema = z
  .object({
    sourceOffsetMs: ms("The source host's clock minus miglab's"),
    destinationOffsetMs: ms("The destination host's clock minus miglab's"),
    clientOffsetMs: ms("The client host's clock minus miglab's (the probe's times are on it)"),
    uncertaintyMs: ms('The largest of the measurements\' uncertainties (half the best SSH round trip)'),
  })
  .describe("Clock offsets of the lab's hosts, measured at one moment");

const ClocksSchema = z
  .object({
    method: z
      .enum(['one-clock', 'ssh-round-trip'])
      .describe("one-clock: the lab's hosts are namespaces of this machine, so QEMU's timestamps share miglab's clock; ssh-round-trip: each host's offset measured over SSH (Cristian's method, best of 5 round trips)"),
    before: ClockOffsetsSchema.describe('Measured before the migration; QEMU event times are corrected with these'),
    after: ClockOffsetsSchema.optional().describe('Measured after the migration: how far the clocks drifted meanwhile'),
  })
  .describe("The hosts' clocks against miglab's, which the events' times and STOP->RESUME depend on");

const DeviceShareSchema = z.object({
  device: text("QEMU's section id (idstr), with #instance when there are several"),
  type: z.enum(['iterable', 'non-iterable']).describe('iterable: RAM and other state sent in passes; non-iterable: device state sent only at the switchover'),
  ms: ms('Time to save it (source) or load it (destination) during the switchover'),
});

const DowntimeTraceSchema = z
  .object({
    phases: arr(
      z.object({
        from: text('The checkpoint it starts at (QEMU\'s name)'),
        to: text('The checkpoint it ends at'),
        side: z.enum(['source', 'destination', 'both']).describe('Which QEMU it happens on (both: from one host\'s checkpoint to the other\'s)'),
        ms: ms('Its length'),
        what: text('What QEMU does in it, in words'),
      }),
    ).describe('The switchover, checkpoint to checkpoint, from the source stopping the guest to the destination starting it'),
    totalMs: ms('From src-downtime-start to the destination\'s vm-started: the downtime as the trace points see it').optional(),
    sourceDevices: arr(DeviceShareSchema).describe('Each section the source saved in the switchover, slowest first'),
    destinationDevices: arr(DeviceShareSchema).describe('Each section the destination loaded, slowest first'),
    sourceSaveMs: ms('All the source\'s saves together'),
    destinationLoadMs: ms('All the destination\'s loads together'),
  })
  .describe("Where the switchover's downtime went, from QEMU's vmstate_downtime_* trace points (QEMU 8.2 on, both sides; the hosts' clock offset removed)");

const ClientSilenceSchema = z
  .object({
    totalMs: ms("The probe's silence that holds the destination's RESUME (the last reply before it to the first after), which the segments add up to; most often clientDowntimeMs, and when a longer hiccup came later in its window the run's incidents say so"),
    segments: arr(
      z.object({
        key: z.enum(['beforeStop', 'paused', 'announce', 'guestFirst', 'reply']).describe('Which stretch'),
        label: text('It in words'),
        ms: ms('Its length'),
      }),
    ).describe("The silence cut at the moments inside it, in order: the probe's last answer to the source's STOP, QEMU's pause (STOP to RESUME), RESUME to QEMU's first announce at the switch, to the guest's first frame of its own from the destination, to the probe's first answer. A moment not seen leaves its stretch to the next one"),
    moments: z
      .object({
        lastReplyMs: ms("The probe's last answer before the gap (negative: before STOP; after it when the probe read an answer late: the pause stretch then starts there)"),
        resumeMs: ms("The destination's RESUME"),
        announceMs: ms("QEMU's first RARP (self-announce) seen at the switch's port to the destination: the switch learns the guest's new port from it").optional(),
        announces: count('RARPs the capture saw from RESUME to its end (QEMU\'s announce rounds, as far as seen)'),
        capturedAfterResumeMs: ms('How long after RESUME the capture went on (its last frame)').optional(),
        forwardedMs: ms('The first frame the switch forwarded to the guest through its new port').optional(),
        guestFirstMs: ms("The guest's first frame of its own (not QEMU's RARP) from the destination").optional(),
        firstReplyMs: ms("The probe's first answer after the gap"),
      })
      .describe("Each moment in ms from the source's STOP"),
    capture: z
      .union([z.object({ port: text("The switch's port the frames were captured on (switch-dst.pcap)") }), z.object({ none: text('Why no frames were captured') })])
      .describe('Where the frames came from'),
  })
  .describe("Where the client's silence went (src/migrate/client-silence.ts): on the embedded lab from a capture on the switch's port to the destination, QEMU's events and the probe, all on one clock");

const PostcopyRecoverySchema = z.object({
  trigger: text('Why it was needed: no byte moving in post-copy, or QEMU pausing it itself (with its error)'),
  atMs: ms('When post-copy stopped moving, or QEMU paused it (since the migrate command): the recovery window counts from here'),
  pausedAtMs: ms('When both sides were postcopy-paused').optional(),
  attempts: arr(z.object({ atMs: ms('When the resume was sent'), outcome: text('What came of it') })).describe('Each migrate resume sent to the source'),
  recoveredAtMs: ms('When the source was back in postcopy-active (or completed)').optional(),
  ok: z.boolean().describe('Post-copy ran again'),
  detail: text('How it went, or why it did not'),
});

const PostcopySchema = z
  .object({
    startedAtMs: ms('When miglab asked for post-copy (migrate-start-postcopy; since the migrate command)').optional(),
    enteredAtMs: ms("When QEMU was first seen in post-copy (a sample's status): from here the guest is the destination's").optional(),
    preempt: z.boolean().describe('postcopy-preempt was on: pages the destination faults on go on a channel of their own, ahead of the background stream'),
    requests: count('Pages the destination asked the source for: its vCPUs faulted on them (postcopy-requests)').optional(),
    bytes: bytes('Sent in post-copy (postcopy-bytes)').optional(),
    blocktimeMs: ms("Time every vCPU of the destination waited for a page at once (QEMU's postcopy-blocktime)").optional(),
    vcpuBlocktimeMs: arr(ms("A vCPU's total time waiting for pages")).optional().describe('Each vCPU\'s (postcopy-vcpu-blocktime)'),
    recoveries: arr(PostcopyRecoverySchema).describe('Each time a broken post-copy was paused and recovered (or given up: the guest lost)'),
  })
  .describe('Post-copy, when miglab asked for it or QEMU entered it: the faults the source served, the time vCPUs waited, and recoveries');

const SwitchoverDecisionSchema = z.object({
  tMs: ms('When, since the migrate command'),
  pass: count("QEMU's dirty-sync-count then (pass k begins with sync k)").optional(),
  action: z.enum(['keep', 'set-downtime-limit', 'start-postcopy']).describe('What the policy did: keep going, set downtime-limit, or start post-copy'),
  downtimeLimitMs: ms('The downtime-limit set').optional(),
  why: text('Why, with the figures in words'),
  remainingBytes: bytes("RAM left to send as the pass began: the sample's figure plus what was sent since the pass's MIGRATION_PASS event (the sample's own figure when the event had not come)").optional(),
  sendBytesPerS: bytesPerS("QEMU's send rate over its last iteration (its mbps)").optional(),
  dirtyBytesPerS: bytesPerS("QEMU's measured dirty rate (its pages per second times the 4 KiB page)").optional(),
  expectedDowntimeMs: ms("QEMU's expected downtime then").optional(),
  cpuThrottlePercent: pct("auto-converge's vCPU throttle then").optional(),
});

export const RunOutputsSchema = z
  .object({
    final: MigrationInfoSchema.optional().describe("QEMU's last migration record"),
    status: text("QEMU's migration status at the end: completed, failed or cancelled; a post-copy given up (the guest lost) ends in a postcopy-* status").optional(),
    totalTimeMs: ms('Total migration time (figureSources says from where)').optional(),
    downtimeMs: ms("QEMU's downtime (figureSources says from where)").optional(),
    setupTimeMs: ms('Setup time').optional(),
    transferredBytes: bytes('RAM sent').optional(),
    totalBytes: bytes("The guest's RAM").optional(),
    remainingBytes: bytes('RAM left to send at the end').optional(),
    throughputMbps: mbps("QEMU's last throughput figure").optional(),
    averageThroughputMiBps: mibps('Transferred bytes over total time').optional(),
    dirtySyncCount: count('Dirty-bitmap syncs (pre-copy passes)').optional(),
    duplicatePages: pages('Zero pages').optional(),
    migrateSentAtMs: epochMs('When the migrate command was sent: t=0 of timeline, passes and events').optional(),
    normalPages: pages('Pages sent whole').optional(),
    destinationStatus: text("The destination's run state after the migration").optional(),
    sourceStatusAfter: text("The source's run state after the migration").optional(),
    heartbeat: HeartbeatSchema.optional(),
    eventDowntimeMs: ms("From the source's STOP event to the destination's RESUME event (QEMU's timestamps, the hosts' clock offsets removed: clocks)").optional(),
    eventDowntimeUncorrectedMs: ms('STOP->RESUME as the two hosts\' own clocks stamped it, before the offset correction (only where the hosts have clocks of their own)').optional(),
    clocks: ClocksSchema.optional(),
    clientDowntimeMs: ms("Downtime as a client of the guest feels it: the longest silence of the UDP probe from the source's STOP to 2 s after the destination's RESUME").optional(),
    clientProbe: ProbeSchema.optional(),
    clientSilence: ClientSilenceSchema.optional(),
    workloadBefore: WorkloadStatusSchema.optional().describe("The workload's figures just before the migration"),
    workloadAfter: WorkloadStatusSchema.optional().describe("The workload's figures at its end"),
    integrity: IntegritySchema.optional(),
    qemuImgCheck: z
      .object({ ok: z.boolean().describe('Clean'), exitCode: z.number().describe("qemu-img's exit code"), meaning: text('What that exit code means') })
      .optional()
      .describe('qemu-img check of the shared qcow2 after both QEMUs exited'),
    start: z
      .object({
        kind: z.enum(['cold', 'warm']).describe('cold: the source booted its kernel; warm: it loaded the saved state of an already booted guest'),
        key: text('Warm: the saved state\'s key (vm-images/cache/warm/KEY.state: one per guest configuration)').optional(),
        madeNow: z.boolean().optional().describe('Warm: the state did not exist yet and was made by this run (a cold boot, then saved) before the source loaded it'),
        saveMs: ms('Warm, made now: saving the booted guest').optional(),
        loadMs: ms('Warm: loading the state until QEMU ran the guest').optional(),
        stateBytes: bytes('Warm: the saved state\'s size').optional(),
      })
      .optional()
      .describe("How the source's guest started (guest.start)"),
    relaunched: arr(z.object({ side: side.describe('Which QEMU'), where: text('Where it hung (from /proc and gdb)') }))
      .optional()
      .describe('QEMUs that hung while starting and were launched once more'),
    figureSources: z
      .object({ totalTimeMs: FigureSourceSchema, downtimeMs: FigureSourceSchema })
      .optional()
      .describe(
        "Where totalTimeMs and downtimeMs came from: qemu, events (QEMU's own MIGRATION and STOP/RESUME event stamps, used when its completed record still lacked them after figureRequeries extra queries: QEMU flips to completed a moment before it computes them) or missing",
      ),
    figureRequeries: count('Extra query-migrate calls before QEMU had filled in a completed migration\'s figures').optional(),
    lastActive: SampleSchema.optional().describe('The last sample while the migration still ran: what a cancelled run had left, at what dirty rate'),
    stall: StallSchema.optional(),
    faults: arr(FaultRecordSchema).optional().describe('The faults the run injected'),
    after: z.object({ source: SideAfterSchema, destination: SideAfterSchema }).optional().describe('Each side just after the migration ended'),
    integrityCheckedOn: side.optional().describe('Where integrity was checked: the destination after a switchover, else the source'),
    guestTrouble: z
      .object({ side: side.describe('Which console said it'), kind: text('oom, panic, crash, initramfs, agent-exit...'), lines: arr(z.string()).describe('The line that said so, and the lines before it') })
      .optional()
      .describe("The guest's console reported an OOM kill, a kernel panic or crash, or its agent exiting"),
    incidents: arr(IncidentSchema).optional().describe("What the run's watchers saw, in order"),
    teardownProblems: arr(z.string()).optional().describe('Undo steps that failed while the run cleaned up'),
    leftovers: arr(z.string()).optional().describe('What the run started and found still there after cleaning up (the aim is none)'),
    interruptedBy: text('The signal that interrupted the run').optional(),
    qemuCpuMs: z
      .object({ source: ms('CPU time (user + system) of the source QEMU').optional(), destination: ms('Of the destination QEMU').optional() })
      .optional()
      .describe('CPU time each QEMU used from the migrate command to the migration\'s end'),
    reclaimed: arr(z.string()).optional().describe('What a killed miglab had left in the run\'s guest slot, cleaned before this run took it'),
    slot: count("The lab's guest slot the run used (its tap, IP, MAC and port offset)").optional(),
    postcopy: PostcopySchema.optional(),
    downtimeTrace: DowntimeTraceSchema.optional(),
    switchover: z
      .object({
        policy: text('The switchover policy, every parameter spelt out (--switchover)'),
        decisions: arr(SwitchoverDecisionSchema).describe('Every decision the policy took, in order: one at the start of each pre-copy pass, and at each of its own steps'),
      })
      .optional()
      .describe('How the switchover was decided (src/switchover/); absent from records made before policies existed'),
  })
  .describe('What the run measured');

const ArgGroupSchema = z.object({ args: arr(z.string()).describe('Arguments'), why: text('Why they are there') });
const QemuBuildRecordSchema = z.object({
  choice: text('As asked for: system, a series of Debian\'s backports (10.0), or a path'),
  binary: text('The program run'),
  versionLine: text('Its --version line'),
  origin: text('Where it came from'),
  debianVersion: text('The Debian package version it was fetched as (a named series)').optional(),
});

export const ExplainedCommandSchema = z
  .object({ argv: arr(z.string()).describe('The command line as run'), explained: arr(ArgGroupSchema).describe('Each group of arguments with the reason it is there') })
  .describe('A command with each argument explained');

const HostFactsSchema = z
  .object({
    kernel: text('Host kernel release'),
    cpuModel: text('Host CPU model'),
    cpus: count('Host CPUs'),
    memTotalMiB: mib('Host RAM'),
    nodeVersion: text("Node.js version (miglab's own machine)"),
    machine: text("Which host these facts are of: the lab's source host (\"src\" on the embedded lab, user@address on hosts from a hosts file)").optional(),
  })
  .describe("The host the run ran on (the lab's source host)");

const AccelDecisionSchema = z
  .object({
    requested: z.enum(ACCELS).describe('--accel as given'),
    used: z.enum(['kvm', 'tcg']).describe('The accelerator used'),
    kvmUsable: z.boolean().optional().describe('Whether KVM was found usable (absent when not probed)'),
    reason: text("Why this accelerator: the probe's finding in plain words"),
    probedAt: text('When KVM was probed (ISO 8601)').optional(),
    probeMs: ms('How long the probe took').optional(),
  })
  .describe('The accelerator decision and why');

const ImageInputsSchema = z
  .object({
    recipeVersion: z.number().describe('Version of the image recipe'),
    kernel: z
      .object({ metaPackage: text('The Debian meta package it was resolved from (linux-image-amd64)'), package: text('Debian kernel package'), version: text('Its version') })
      .describe('The guest kernel package'),
    packages: z.record(z.string(), z.string()).describe('Debian package -> version'),
    sources: z.record(z.string(), z.string()).describe('Repository file -> sha256'),
    hostFiles: z.record(z.string(), z.string()).describe('Host file copied into the image -> sha256'),
    modules: arr(z.string()).describe('Kernel modules in the initramfs'),
    agentCflags: arr(z.string()).describe("The guest agent's compiler flags"),
  })
  .describe('What the guest image was built from (its hash covers all of it)');

export const StartedBySchema = z
  .enum(['miglab', 'hand'])
  .describe(
    "Who started the migration: miglab, over scenario.monitor; or a person at one of the source's monitors (`miglab guests up`: HMP over telnet or their own QMP socket, which miglab cannot tell apart; scenario.monitor is then only the monitor miglab set up and sampled the migration over). Absent from records made before it was kept: miglab",
  );

export const RunInputsSchema = z
  .object({
    scenario: ScenarioSchema.describe('The migration scenario as validated: guest shape, workload, monitor, parameters, capabilities, tls, faults, stallAfterMs, deadline (the migrate options)'),
    machine: MachineSpecSchema.optional().describe('The guest machine spec (memory, vCPUs, CPU model, NIC, disk, accel); absent when the run failed before it was made (e.g. its port was taken)'),
    lab: LabSpecSchema.describe('The lab spec (prefix, subnet, state root, export dir, shaping)'),
    shaping: ShapingSchema.optional().describe('Shaping of the migration uplinks in force during the run (absent: unshaped)'),
    image: z
      .object({ hash: text("The guest image's hash"), kernelVersion: text('Guest kernel version'), inputs: ImageInputsSchema })
      .describe('The guest image'),
    qemu: z
      .object({
        version: text("The source QEMU's version (query-version)"),
        package: text('Its Debian package version').optional(),
        destination: z
          .object({ version: text("The destination QEMU's version (query-version)"), package: text('Its Debian package version').optional() })
          .optional()
          .describe('The destination QEMU as it reported itself (different from the source in a cross-version migration); absent from records made before it was kept'),
        builds: z
          .object({ source: QemuBuildRecordSchema.describe("The source's build"), destination: QemuBuildRecordSchema.describe("The destination's build") })
          .optional()
          .describe('Which QEMU build each side ran (--qemu, --qemu-dst); absent from records made before builds could be chosen'),
        machineType: text('The -machine both QEMUs got').optional(),
        machineTypeWhy: text('Why that machine type (auto: pc for one build, else the type both know)').optional(),
      })
      .describe('QEMU'),
    host: HostFactsSchema,
    accel: AccelDecisionSchema,
    parametersInForce: z.record(z.string(), z.unknown()).describe('query-migrate-parameters on the source after set-up, as QEMU spelled it'),
    capabilitiesInForce: z.record(z.string(), z.boolean()).describe('query-migrate-capabilities on the source after set-up'),
    commands: z.object({ source: ExplainedCommandSchema, destination: ExplainedCommandSchema }).describe('The exact QEMU command lines'),
    migrateCommand: text('The literal command that started the migration (HMP line or QMP JSON); by hand, what miglab saw of it'),
    startedBy: StartedBySchema.optional(),
    monitorCommands: arr(z.string()).describe("Every command sent to the source's monitor to set up, start and (in post-copy) pause and resume the migration, in order"),
    destinationMonitorCommands: arr(z.string())
      .optional()
      .describe("Every command sent to the destination's QMP monitor (capabilities; migrate-incoming for a destination started with -incoming defer; migrate-pause and migrate-recover in a post-copy's recovery), in order"),
    migrationUri: text('Where the source sent the migration stream (tcp:ADDRESS:PORT)'),
  })
  .describe('Every input of the run');

export const RunReportSchema = z
  .object({
    schema: z.literal(RUN_SCHEMA).describe('Version of this file\'s format'),
    runId: text('`<UTC date>-<time>-<name>-<suffix>`: the run folder\'s name'),
    name: text('Derived from the scenario (memory, workload, devices, monitor, parameters, faults)'),
    startedAt: text('ISO 8601, UTC'),
    finishedAt: text('ISO 8601, UTC'),
    wallMs: ms('The whole run, boot to cleanup'),
    ok: z.boolean().describe('QEMU completed the migration and every check after it passed'),
    verdict: VerdictSchema,
    failure: text('Why the run failed (a check, a watcher, QEMU)').optional(),
    failedIn: z
      .object({
        phase: text("The engine's phase when it failed: boot, prepare, migrate, conclude, cleanup"),
        code: text(
          'How: a miglab error code for an error (TIMEOUT, QMP_DISCONNECTED, MIGRATION_FAILED...), ABORTED (interrupted), or the check that failed: STALLED, NOT_CONVERGED, QEMU_FAILED, INTEGRITY, DESTINATION_NOT_RUNNING, HEARTBEAT, SOURCE_CHECK, DISK_CHECK',
        ),
        watcher: text("The watcher whose alarm stopped the run (qemu-exit, console, nfs, lab, results), when one did").optional(),
      })
      .optional()
      .describe('Where and how the run failed, as data for scripts (with failure)'),
    inputs: RunInputsSchema,
    outputs: RunOutputsSchema,
    phases: z.record(z.string(), ms('Duration')).describe('How long each phase took (accelerator decision, QEMU start, boot to heartbeat, migration, verification, cleanup)'),
    steps: arr(
      z.object({
        step: text('What it was: a phase (qemuStart, bootToHeartbeat, migration, verify, cleanup) or a step within or between them (slot, accel, configure, agentReachable, workload, probe, waitForTurn: a batch guest, ready, waiting for its turn on the link; teardown, leftovers...)'),
        startMs: ms('When it started, from the run\'s start'),
        ms: ms('How long it took'),
      }),
    )
      .optional()
      .describe("Where the run's wall time went, step by step in the order they started; a step may lie inside another (qemuStart within bootToHeartbeat)"),
    processMsAtStart: ms(
      'How long the miglab process had run when this run started: loading miglab, the checks made before anything starts, the lab (for the first run of a command, the cost outside the run)',
    ).optional(),
    timeline: arr(SampleSchema).describe('Every sample (also timeline.csv)'),
    passes: arr(PassSchema).describe('Every pre-copy pass (also passes.csv)'),
    events: arr(EventRecordSchema).describe('QEMU events from both sides'),
    files: z.record(z.string(), z.string()).describe('The run folder\'s files and what each holds'),
  })
  .describe('run.json: one migration run');

export type RunReport = z.output<typeof RunReportSchema>;
export type RunOutputs = z.output<typeof RunOutputsSchema>;
export type StartedBy = z.output<typeof StartedBySchema>;
export type Sample = z.output<typeof SampleSchema>;
export type PassRecord = z.output<typeof PassSchema>;
export type EventRecord = z.output<typeof EventRecordSchema>;
export type Verdict = z.output<typeof VerdictSchema>;
export type SideAfter = z.output<typeof SideAfterSchema>;
export type GuestTrouble = NonNullable<RunOutputs['guestTrouble']>;
export type HostFacts = z.output<typeof HostFactsSchema>;
export type Relaunch = NonNullable<RunOutputs['relaunched']>[number];

/**
 * The files of a run folder and what each holds: run.json's `files` describes the folder by this
 * list, and results/README.md's run file table is generated from it. A name with `*` stands for
 * several (`*.serial.log`: one per guest side).
 */
export const RUN_FOLDER_FILES: readonly { readonly names: readonly string[]; readonly what: string }[] = [
  { names: ['run.json'], what: `every input and output of the run; schema \`${RUN_SCHEMA}\` (each field described in results/README.md)` },
  { names: ['report.md', 'report.html'], what: "the run's report: verdict and failure, the three downtimes with their sources, times, RAM, throughput, the passes, what was in force, the commands (`miglab plot RUN_DIR` draws it again)" },
  {
    names: ['plots/'],
    what: "the report's figures, `remaining-ram` and `throughput` (against the guest's dirty rate) over time with the passes and the switchover marked, and `client-silence` (where the client's silence went, a stacked bar), each as PNG and SVG. `miglab migrate` draws them; a run of a sweep, a batch or the homework leaves them to `miglab plot RUN_DIR`",
  },
  { names: ['timeline.csv'], what: 'one row per `query-migrate` / `info migrate` sample' },
  { names: ['passes.csv'], what: 'one row per pre-copy pass' },
  { names: ['probe.csv'], what: 'the client-side UDP probe: one row per probe (absent when the scenario turns the probe off: `clientProbe: false`)' },
  { names: ['switch-dst.pcap'], what: "the guest's frames on the lab switch's port to the destination host (tcpdump; the first 20,000): QEMU's self-announce, the guest's first frames and the probe's from the switchover on (embedded lab, with the probe on)" },
  { names: ['*.serial.log'], what: "the guest's serial console on each side (`src`, `dst`: agent heartbeat, kernel messages) and QEMU's own messages" },
  { names: ['*.qmp.jsonl'], what: 'the QMP conversation with each QEMU (`src`, `dst`), both directions, timestamped, one JSON message a line' },
  { names: ['workload.log'], what: "the net workload's iperf3 output, when there is one" },
  { names: ['warm-save'], what: 'a warm start that made its saved state: the console and QMP conversation of the guest booted to be saved (`src.serial.log`, `src.qmp.jsonl`)' },
];

/** What the run folder's file `name` holds ('' for a file not in RUN_FOLDER_FILES). */
export function describeRunFile(name: string): string {
  const matches = (pattern: string) => (pattern.startsWith('*') ? name.endsWith(pattern.slice(1)) : name === pattern);
  return RUN_FOLDER_FILES.find((f) => f.names.some(matches))?.what ?? '';
}

export const RUN_CONTRACT: ResultContract<typeof RunReportSchema> = {
  file: 'run.json',
  current: RUN_SCHEMA,
  schema: RunReportSchema,
  refuse: {
    'miglab.run/1':
      'that version wrote 0 for figures QEMU did not give and had no stalled or interrupted verdicts, so its figures cannot be told from real zeros; run the scenario again with this miglab',
  },
};
