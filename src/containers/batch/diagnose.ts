// The verdict of a container batch: when a guest halted (which step N, how far into it, how many
// containers had moved before), how (the halt's kind, the OOM killer's victims, CRIU's failures in
// its own words) and why (the guests' memory and pressure, CRIU's memory times how many ran at
// once against what the guest had, dumps slowing as they share a vCPU). Pure: reads only the
// steps, the samples and the request, and every sentence carries the figures it rests on, or says
// which figure the record lacks.
import { consoleTrouble } from '../../machine/console-trouble.js';
import { finite, max, median } from '../../stats/index.js';
import type { BatchStep, BatchVerdict, ConsoleEvent, ContainerBatchRequest, ContainerMove, CriuCommandOutcome, GuestHalt, GuestName, GuestSample, HostSignals } from './types.js';

const GUESTS: readonly GuestName[] = ['chost-src', 'chost-dst'];

/** CRIU error lines quoted in the verdict, most frequent first. */
const TOP_ERRORS = 3;
/** Console lines quoted in the evidence; the rest are counted. */
const CONSOLE_LINES = 5;

// ---- formatting: one way of writing each unit in the verdict and the report ----

/** A whole number with thousands separators: 12,345. */
function whole(v: number): string {
  return v.toLocaleString('en-US', { maximumFractionDigits: 0 });
}
export const ms = (v: number) => `${whole(v)} ms`;
export const mib = (v: number) => `${whole(v)} MiB`;
/** A time on the batch's clock (ms from its start), in seconds to 0.1. */
export const secs = (atMs: number) => `${(atMs / 1000).toFixed(1)} s`;
const pct = (v: number) => `${v.toFixed(1)} %`;
/** A figure as the guest gave it (load 3.41), without float noise. */
const plain = (v: number) => String(Number(v.toFixed(2)));

// ---- what a step holds ----

function stepEndMs(step: BatchStep): number {
  return step.startMs + step.durationMs;
}

/** Where, on the step's clock, a command that never returned stopped counting: the halt, else the step's end. */
function openEndMs(step: BatchStep): number {
  return step.halt ? Math.min(step.durationMs, step.halt.atMs - step.startMs) : step.durationMs;
}

export function dumpsOf(step: BatchStep): CriuCommandOutcome[] {
  return step.moves.flatMap((m) => (m.dump ? [m.dump] : []));
}

function restoresOf(step: BatchStep): CriuCommandOutcome[] {
  return step.moves.flatMap((m) => (m.restore ? [m.restore] : []));
}

/** The most commands running at one moment, from their start and wall times (still running at `openEnd` when they never returned). */
export function maxAtOnce(cmds: readonly CriuCommandOutcome[], openEnd: number): number {
  // Ends sort before starts at the same instant: one command following another is not two at once.
  const edges = cmds.flatMap((c) => [
    { t: c.startMs, d: 1 },
    { t: c.wallMs === null ? Math.max(openEnd, c.startMs) : c.startMs + c.wallMs, d: -1 },
  ]);
  edges.sort((a, b) => a.t - b.t || a.d - b.d);
  let now = 0;
  let most = 0;
  for (const e of edges) most = Math.max(most, (now += e.d));
  return most;
}

export function dumpsAtOnce(step: BatchStep): number {
  return maxAtOnce(dumpsOf(step), openEndMs(step));
}

export function restoresAtOnce(step: BatchStep): number {
  return maxAtOnce(restoresOf(step), openEndMs(step));
}

export function wallsOf(cmds: readonly CriuCommandOutcome[]): number[] {
  return finite(cmds.map((c) => c.wallMs));
}

export function notAttempted(step: BatchStep): number {
  return step.moves.filter((m) => m.outcome === 'not-attempted').length;
}

/** The last move of each migrated container: checked and broken, or never checked. */
const finalMigrated = (step: BatchStep) => step.moves.filter((m) => m.outcome === 'migrated');
const brokenMoves = (step: BatchStep): number => finalMigrated(step).filter((m) => m.check && !m.check.ok).length;
const uncheckedMoves = (step: BatchStep): number => finalMigrated(step).filter((m) => !m.check).length;

/** Moves whose dump or restore was still running when the step stopped. */
export function cutShortMoves(step: BatchStep): number {
  return step.moves.filter((m) => m.outcome === 'cut-short').length;
}

/** Samples of `guest` taken while the step ran. */
export function stepSamples(step: BatchStep, samples: readonly GuestSample[], guest: GuestName): GuestSample[] {
  return samples.filter((s) => s.guest === guest && s.atMs >= step.startMs && s.atMs <= stepEndMs(step));
}

function stepHostSamples(step: BatchStep, samples: readonly HostSignals[]): HostSignals[] {
  return samples.filter((s) => s.atMs >= step.startMs && s.atMs <= stepEndMs(step));
}

/** The sample where `f` is highest, and that value; undefined when no sample has it. */
function peakOf<T>(xs: readonly T[], f: (x: T) => number | null | undefined): { value: number; at: T } | undefined {
  let best: { value: number; at: T } | undefined;
  for (const x of xs) {
    const v = f(x);
    if (typeof v === 'number' && Number.isFinite(v) && (!best || v > best.value)) best = { value: v, at: x };
  }
  return best;
}

/** The sample with the least MemAvailable. */
export function memoryLow(samples: readonly GuestSample[]): { value: number; at: GuestSample } | undefined {
  const low = peakOf(samples, (s) => (s.memAvailableMiB === undefined ? undefined : -s.memAvailableMiB));
  return low && { value: -low.value, at: low.at };
}

/** The sample where a pressure figure peaked. */
export function pressurePeak(samples: readonly GuestSample[], field: 'psiMemSome10' | 'psiMemFull10' | 'psiCpuSome10' | 'psiIoSome10'): { value: number; at: GuestSample } | undefined {
  return peakOf(samples, (s) => s[field]);
}

/** What `guest` had when the step began: its last reading at or before the start, else its first during the step. */
function memoryAtStart(step: BatchStep, samples: readonly GuestSample[], guest: GuestName): GuestSample | undefined {
  const read = samples.filter((s) => s.guest === guest && s.memAvailableMiB !== undefined);
  return read.filter((s) => s.atMs <= step.startMs).at(-1) ?? read.find((s) => s.atMs <= stepEndMs(step) && s.atMs > step.startMs);
}

/** The OOM killer's victims in these console lines, by process name, most killed first. */
export function oomKills(events: readonly ConsoleEvent[]): { process: string; count: number; guest: GuestName }[] {
  const byKey = new Map<string, { process: string; count: number; guest: GuestName }>();
  for (const e of events) {
    if (e.kind !== 'oom') continue;
    const t = consoleTrouble(e.line);
    // The engine kept the line as an OOM kill; a line the parser no longer reads still counts.
    const process = t?.kind === 'oom' ? t.process : 'an unnamed process';
    const key = `${e.guest}\0${process}`;
    const cur = byKey.get(key) ?? { process, count: 0, guest: e.guest };
    byKey.set(key, { ...cur, count: cur.count + 1 });
  }
  return [...byKey.values()].sort((a, b) => b.count - a.count);
}

export function oomKillCount(step: BatchStep): number {
  return step.console.filter((e) => e.kind === 'oom').length;
}

/** "criu x37, miglab-agent x1 on chost-src". */
function victimsText(kills: ReturnType<typeof oomKills>): string {
  return GUESTS.flatMap((g) => {
    const mine = kills.filter((k) => k.guest === g);
    return mine.length === 0 ? [] : [`${mine.map((k) => `"${k.process}" x${k.count}`).join(', ')} on ${g}`];
  }).join('; ');
}

// ---- CRIU's own words ----

/**
 * The lines of a CRIU error (the agent joins the last lines of its log with " | "), without
 * CRIU's time stamp, so the same error of two containers reads the same.
 */
function errorLines(error: string): string[] {
  return error
    .split(/\s\|\s|\n/)
    .map((l) => l.replace(/^\(\s*[\d.]+\)\s*/, '').trim())
    .filter((l) => l !== '');
}

/** Numbers that differ from container to container (pids, paths under /proc) as one key; a source line (file.c:123) is kept. */
const errorKey = (line: string) => line.replace(/(?<![:\w.])\d+/g, '#');

/** The most frequent CRIU error lines of these commands, each quoted as first seen, with how often its kind occurred. */
export function criuErrorLines(cmds: readonly (CriuCommandOutcome | undefined)[], top = TOP_ERRORS): { line: string; count: number }[] {
  const byKey = new Map<string, { line: string; count: number }>();
  for (const c of cmds) {
    // One count per command: a line its log repeats is still one failure.
    const lines = new Map(errorLines(c?.error ?? '').map((l) => [errorKey(l), l]));
    for (const [key, line] of lines) byKey.set(key, { line: byKey.get(key)?.line ?? line, count: (byKey.get(key)?.count ?? 0) + 1 });
  }
  return [...byKey.values()].sort((a, b) => b.count - a.count).slice(0, top);
}

function failedDumps(moves: readonly ContainerMove[]): (CriuCommandOutcome | undefined)[] {
  return moves.filter((m) => m.outcome === 'dump-failed').map((m) => m.dump);
}

function failedRestores(moves: readonly ContainerMove[]): (CriuCommandOutcome | undefined)[] {
  return moves.filter((m) => m.outcome === 'restore-failed').map((m) => m.restore);
}

function killedBy9(cmds: readonly CriuCommandOutcome[]): number {
  return cmds.filter((c) => c.signal === 9).length;
}

// ---- lines of evidence ----

export function guestSampleLine(s: GuestSample): string {
  if (s.rttMs === null) return `${s.guest} at ${secs(s.atMs)}: no answer on the control port`;
  const swap = s.swapTotalMiB !== undefined && s.swapFreeMiB !== undefined ? (s.swapTotalMiB === 0 ? 'no swap' : `swap used ${mib(s.swapTotalMiB - s.swapFreeMiB)} of ${mib(s.swapTotalMiB)}`) : undefined;
  const parts = [
    s.memAvailableMiB === undefined ? undefined : `MemAvailable ${mib(s.memAvailableMiB)}${s.memTotalMiB === undefined ? '' : ` of ${mib(s.memTotalMiB)}`}`,
    swap,
    s.psiMemSome10 === undefined ? undefined : `PSI memory some ${pct(s.psiMemSome10)}`,
    s.psiMemFull10 === undefined ? undefined : `full ${pct(s.psiMemFull10)}`,
    s.psiCpuSome10 === undefined ? undefined : `PSI cpu some ${pct(s.psiCpuSome10)}`,
    s.psiIoSome10 === undefined ? undefined : `PSI io some ${pct(s.psiIoSome10)}`,
    s.load1 === undefined ? undefined : `load1 ${plain(s.load1)}`,
    s.tasks === undefined ? undefined : `${whole(s.tasks)} tasks`,
    `control port round trip ${ms(s.rttMs)}`,
  ];
  return `${s.guest} at ${secs(s.atMs)}: ${parts.filter((p) => p !== undefined).join(', ')}`;
}

function hostSampleLine(s: HostSignals): string {
  const parts = [
    s.cpuBusyPct === null ? undefined : `CPU busy ${pct(s.cpuBusyPct)}`,
    s.memAvailableMiB === null ? undefined : `MemAvailable ${mib(s.memAvailableMiB)}`,
    s.psiMemSome10 === null ? undefined : `PSI memory some ${pct(s.psiMemSome10)}`,
    s.psiCpuSome10 === null ? undefined : `PSI cpu some ${pct(s.psiCpuSome10)}`,
    s.load1 === null ? undefined : `load1 ${plain(s.load1)}`,
  ].filter((p) => p !== undefined);
  return `host at ${secs(s.atMs)}: ${parts.length > 0 ? parts.join(', ') : 'nothing read'}`;
}

// ---- when ----

/** The step a guest halted in: the first, since the ladder stops there. */
function haltStep(steps: readonly BatchStep[]): BatchStep | undefined {
  return steps.find((s) => s.halt !== undefined);
}

/** The step the explanation is about: the halt's, else the largest with a failure, else the largest. */
function focusStep(steps: readonly BatchStep[]): BatchStep | undefined {
  const failed = steps.filter((s) => s.dumpFailures + s.restoreFailures > 0 || oomKillCount(s) > 0);
  return haltStep(steps) ?? largest(failed) ?? largest(steps);
}

function largest(steps: readonly BatchStep[]): BatchStep | undefined {
  return steps.reduce<BatchStep | undefined>((a, s) => (a === undefined || s.count >= a.count ? s : a), undefined);
}

/** `intact` of the largest step that ended without a halt; 0 when every step halted or none ran. */
export function bestIntactOf(steps: readonly BatchStep[]): number {
  // The most, not the largest step's: a larger step that stopped early may have checked none.
  return Math.max(0, ...steps.filter((s) => !s.halt).map((s) => s.intact));
}

/** What the halt step had done before the halt: dumps returned and containers restored. */
function doneBeforeHalt(step: BatchStep, halt: GuestHalt): { dumped: number; restored: number } {
  const by = halt.atMs - step.startMs;
  const ended = (c: CriuCommandOutcome | undefined) => c !== undefined && c.wallMs !== null && c.startMs + c.wallMs <= by;
  return {
    dumped: step.moves.filter((m) => ended(m.dump) && m.dump!.exitCode === 0).length,
    restored: step.moves.filter((m) => m.outcome === 'migrated' && ended(m.restore)).length,
  };
}

function ladderText(steps: readonly BatchStep[]): string {
  return `N=${steps.map((s) => s.count).join(', ')}`;
}

function bestText(steps: readonly BatchStep[]): string {
  const best = largest(steps.filter((s) => !s.halt));
  return best ? `The largest step with no halt was N=${best.count}: ${best.intact} of ${best.count} containers migrated intact.` : 'No step ended without a halt, so none counts as the best.';
}

function earlierText(earlier: readonly BatchStep[]): string {
  if (earlier.length === 0) return 'it was the first step, so no container had moved before it';
  const moved = earlier.reduce((a, s) => a + s.migrated, 0);
  return `the steps before it had migrated ${moved} containers (${earlier.map((s) => `N=${s.count}: ${s.migrated}`).join(', ')})`;
}

function whenHalted(steps: readonly BatchStep[], step: BatchStep, halt: GuestHalt): string {
  const i = steps.indexOf(step);
  const done = doneBeforeHalt(step, halt);
  return [
    `${halt.guest} halted during N=${step.count} (step ${i + 1} of ${steps.length}, ${step.mode}), ${secs(halt.atMs - step.startMs)} into the step (${secs(halt.atMs)} into the batch);`,
    `${earlierText(steps.slice(0, i))}.`,
    `Within N=${step.count}, ${done.dumped} dumps had succeeded on chost-src and ${done.restored} containers had been restored on chost-dst before the halt.`,
    bestText(steps),
  ].join(' ');
}

function whenNoHalt(steps: readonly BatchStep[]): string {
  if (steps.length === 0) return 'No step ran, so no guest halted and nothing was migrated.';
  const top = largest(steps)!;
  const firstFailure = steps.find((s) => s.dumpFailures + s.restoreFailures > 0);
  const early = steps.filter((s) => s.stoppedEarly !== undefined);
  return [
    `No guest halted up to N=${top.count} (${steps.length} steps, ${ladderText(steps)}, ${top.mode}).`,
    firstFailure ? `Failures began at N=${firstFailure.count} (${firstFailure.dumpFailures} dump failures, ${firstFailure.restoreFailures} restore failures).` : 'No dump or restore failed in any step.',
    steps.some((s) => stepFailures(s).length > 0) ? failuresPerStep(steps) : undefined,
    ...early.map((s) => `N=${s.count} stopped early: ${s.stoppedEarly}.`),
    bestText(steps),
  ]
    .filter((p) => p !== undefined)
    .join(' ');
}

// ---- how ----

const HALT_KIND: Readonly<Record<GuestHalt['how'], (g: GuestName) => string>> = {
  'qemu-exited': (g) => `the QEMU process running ${g} exited`,
  'no-answer': (g) => `${g} stopped answering on its control port`,
  'kernel-panic': (g) => `${g}'s kernel panicked`,
  'agent-killed': (g) => `${g}'s guest agent was killed`,
};

function haltText(halt: GuestHalt): string {
  return `It halted this way (${halt.how}): ${HALT_KIND[halt.how](halt.guest)}, seen at ${secs(halt.atMs)}: ${halt.detail}.`;
}

function oomText(step: BatchStep): string {
  const kills = oomKills(step.console);
  if (kills.length === 0) return `No OOM kill reached the guests' consoles during N=${step.count}.`;
  return `The OOM killer killed ${kills.reduce((a, k) => a + k.count, 0)} processes during N=${step.count}: ${victimsText(kills)}.`;
}

/** What went wrong in a step, each kind counted; empty when nothing did. */
function stepFailures(step: BatchStep): string[] {
  return [
    step.dumpFailures > 0 ? `${step.dumpFailures} dump failures` : undefined,
    step.restoreFailures > 0 ? `${step.restoreFailures} restore failures` : undefined,
    oomKillCount(step) > 0 ? `${oomKillCount(step)} OOM kills` : undefined,
    cutShortMoves(step) > 0 ? `${cutShortMoves(step)} cut short (their dump or restore still running when the step stopped)` : undefined,
    notAttempted(step) > 0 ? `${notAttempted(step)} not attempted` : undefined,
    // Checked and found broken, apart from never checked (the step stopped first, or its check could not run).
    brokenMoves(step) > 0 ? `${brokenMoves(step)} migrated but not intact` : undefined,
    uncheckedMoves(step) > 0 ? `${uncheckedMoves(step)} migrated but never checked (the step stopped before the check, or the check could not run)` : undefined,
  ].filter((p) => p !== undefined);
}

function stepFailuresText(step: BatchStep): string {
  const parts = stepFailures(step);
  return `N=${step.count}: ${parts.length > 0 ? parts.join(', ') : 'none'}`;
}

function failuresPerStep(steps: readonly BatchStep[]): string {
  return `Failures per step: ${steps.map(stepFailuresText).join('; ')}.`;
}

function signalText(step: BatchStep): string | undefined {
  const parts = [
    [killedBy9(dumpsOf(step)), 'criu dump'],
    [killedBy9(restoresOf(step)), 'criu restore'],
  ] as const;
  const killed = parts.filter(([n]) => n > 0).map(([n, what]) => `${n} ${what} commands`);
  return killed.length === 0 ? undefined : `At N=${step.count}, signal 9 ended ${killed.join(' and ')}.`;
}

function quoted(errors: readonly { line: string; count: number }[]): string {
  return errors.map((e) => `"${e.line}" (x${e.count})`).join(', ');
}

function criuErrorsText(steps: readonly BatchStep[]): string {
  const moves = steps.flatMap((s) => s.moves);
  const dumps = criuErrorLines(failedDumps(moves));
  const restores = criuErrorLines(failedRestores(moves));
  const parts = [
    dumps.length > 0 ? `the failed dumps' most frequent CRIU error lines: ${quoted(dumps)}` : undefined,
    restores.length > 0 ? `the failed restores': ${quoted(restores)}` : undefined,
  ].filter((p) => p !== undefined);
  const failures = steps.reduce((a, s) => a + s.dumpFailures + s.restoreFailures, 0);
  if (parts.length === 0) return failures > 0 ? 'No failed command left a CRIU error line in the record.' : '';
  return `In CRIU's words, ${parts.join('; ')}.`;
}

function howText(steps: readonly BatchStep[], focus: BatchStep | undefined): string {
  if (!focus) return 'No step ran.';
  const halt = focus.halt;
  return [
    halt ? haltText(halt) : 'No guest halted.',
    oomText(focus),
    signalText(focus),
    // Without a halt, `when` has said them already.
    halt ? failuresPerStep(steps) : undefined,
    criuErrorsText(steps),
  ]
    .filter((p) => p !== undefined && p !== '')
    .join(' ');
}

// ---- why ----

function guestMemoryText(step: BatchStep, samples: readonly GuestSample[], guest: GuestName): string {
  const inStep = stepSamples(step, samples, guest);
  const start = memoryAtStart(step, samples, guest);
  const low = memoryLow(inStep);
  if (!low) return `No MemAvailable of ${guest} was read during N=${step.count}.`;
  const from = start ? `${mib(start.memAvailableMiB!)} at the step's start (read at ${secs(start.atMs)})` : 'a figure not read at the step\'s start';
  const total = low.at.memTotalMiB === undefined ? '' : ` of ${mib(low.at.memTotalMiB)}`;
  return `During N=${step.count}, ${guest}'s MemAvailable went from ${from} to a low of ${mib(low.value)}${total} at ${secs(low.at.atMs)} (${secs(low.at.atMs - step.startMs)} into the step)${swapText(low.at)}.`;
}

function swapText(s: GuestSample): string {
  if (s.swapTotalMiB === undefined || s.swapFreeMiB === undefined) return '';
  return s.swapTotalMiB === 0 ? ', with no swap' : `, swap used ${mib(s.swapTotalMiB - s.swapFreeMiB)} of ${mib(s.swapTotalMiB)}`;
}

function guestPressureText(step: BatchStep, samples: readonly GuestSample[], guest: GuestName): string | undefined {
  const inStep = stepSamples(step, samples, guest);
  const mem = pressurePeak(inStep, 'psiMemSome10');
  const full = pressurePeak(inStep, 'psiMemFull10');
  const cpu = pressurePeak(inStep, 'psiCpuSome10');
  const io = pressurePeak(inStep, 'psiIoSome10');
  const load = peakOf(inStep, (s) => s.load1);
  const tasks = peakOf(inStep, (s) => s.tasks);
  const parts = [
    mem ? `PSI memory some peaked at ${pct(mem.value)} at ${secs(mem.at.atMs)}` : undefined,
    full ? `memory full at ${pct(full.value)} at ${secs(full.at.atMs)}` : undefined,
    cpu ? `PSI cpu some at ${pct(cpu.value)} at ${secs(cpu.at.atMs)}` : undefined,
    // io: how a stalled export shows (its tasks wait on NFS); left out while nothing waited.
    io && io.value > 0 ? `PSI io some at ${pct(io.value)} at ${secs(io.at.atMs)}` : undefined,
    load ? `load1 at ${plain(load.value)} at ${secs(load.at.atMs)}` : undefined,
    tasks ? `${whole(tasks.value)} tasks at ${secs(tasks.at.atMs)}` : undefined,
  ].filter((p) => p !== undefined);
  return parts.length === 0 ? undefined : `On ${guest}, ${parts.join(', ')}.`;
}

/** The halted guest's silence: its last answer, and what came (or did not) after it. */
function silenceText(step: BatchStep, samples: readonly GuestSample[], halt: GuestHalt): string {
  const mine = samples.filter((s) => s.guest === halt.guest && s.atMs <= stepEndMs(step));
  const last = mine.filter((s) => s.rttMs !== null).at(-1);
  if (!last) return `No sample of ${halt.guest} was ever answered, so what it had before the halt is unknown.`;
  const unanswered = mine.filter((s) => s.rttMs === null && s.atMs > last.atMs);
  const rtt = peakOf(stepSamples(step, samples, halt.guest), (s) => s.rttMs);
  const rttText = rtt ? ` Its control port round trip peaked at ${ms(rtt.value)} at ${secs(rtt.at.atMs)}.` : '';
  if (unanswered.length === 0) return `No sample after ${secs(last.atMs)}: ${halt.guest} stopped answering (halt seen at ${secs(halt.atMs)}).${rttText}`;
  return `No answer from ${halt.guest} after ${secs(last.atMs)}: ${unanswered.length} reads from ${secs(unanswered[0]!.atMs)} to ${secs(unanswered.at(-1)!.atMs)} went unanswered.${rttText}`;
}

/** The largest peak RSS of these CRIU commands in the step, else in any step (and which), KiB. */
function peakRss(steps: readonly BatchStep[], step: BatchStep, pick: (s: BatchStep) => CriuCommandOutcome[]): { kib: number; from: number } | undefined {
  const here = max(pick(step).map((c) => c.maxRssKiB));
  if (here !== undefined) return { kib: here, from: step.count };
  const elsewhere = peakOf(steps, (s) => max(pick(s).map((c) => c.maxRssKiB)));
  return elsewhere && { kib: elsewhere.value, from: elsewhere.at.count };
}

interface Side {
  readonly kind: 'dump' | 'restore';
  readonly guest: GuestName;
  readonly pick: (s: BatchStep) => CriuCommandOutcome[];
  readonly atOnce: (s: BatchStep) => number;
}
const SIDES: readonly Side[] = [
  { kind: 'dump', guest: 'chost-src', pick: dumpsOf, atOnce: dumpsAtOnce },
  { kind: 'restore', guest: 'chost-dst', pick: restoresOf, atOnce: restoresAtOnce },
];

/** CRIU's own memory: its peak RSS times how many ran at once, against what the guest had at the step's start. */
function concurrencyCost(steps: readonly BatchStep[], step: BatchStep, samples: readonly GuestSample[], side: Side): string | undefined {
  if (side.pick(step).length === 0) return undefined;
  const atOnce = side.atOnce(step);
  const rss = peakRss(steps, step, side.pick);
  if (!rss) return `${atOnce} criu ${side.kind} commands ran at once on ${side.guest} at N=${step.count}; none in any step reported its peak RSS, so what they needed together is unknown.`;
  const start = memoryAtStart(step, samples, side.guest);
  const need = (rss.kib / 1024) * atOnce;
  const source = rss.from === step.count ? `at N=${step.count}` : `at N=${rss.from}, as none of N=${step.count}'s reported one`;
  const against = start ? `against ${side.guest}'s MemAvailable of ${mib(start.memAvailableMiB!)} at the step's start` : `(${side.guest}'s MemAvailable at the step's start was not read)`;
  const share = start && start.memAvailableMiB! > 0 ? ` (${whole((100 * need) / start.memAvailableMiB!)} % of it)` : '';
  return `One criu ${side.kind} peaked at ${mib(rss.kib / 1024)} RSS (${source}); ${atOnce} ran at once on ${side.guest} at N=${step.count}: ${atOnce} x ${mib(rss.kib / 1024)} = ${mib(need)} ${against}${share}.`;
}

/** The containers' own padding, when the workload holds some. */
function containersRssText(step: BatchStep, request: ContainerBatchRequest): string | undefined {
  if (request.rssMiB <= 0) return undefined;
  return `The ${step.count} containers themselves hold ${step.count} x ${mib(request.rssMiB)} = ${mib(step.count * request.rssMiB)} on chost-src before they are dumped.`;
}

/** Dumps slowing as more share the guest's vCPUs: the median wall time at the first step with one against the step explained. */
function dumpWallGrowth(steps: readonly BatchStep[], step: BatchStep, vcpus: number): string | undefined {
  const base = steps.find((s) => wallsOf(dumpsOf(s)).length > 0);
  if (!base) return dumpsOf(step).length > 0 ? 'No dump in any step returned a wall time, so how they slowed is unknown.' : undefined;
  const baseMedian = median(wallsOf(dumpsOf(base)))!;
  const baseText = `${ms(baseMedian)} at N=${base.count} (${dumpsAtOnce(base)} at once)`;
  const focusMedian = median(wallsOf(dumpsOf(step)));
  if (focusMedian === undefined) return `The median dump wall time was ${baseText}; no dump of N=${step.count} returned a wall time (${dumpsOf(step).length} were started).`;
  if (base === step) return `The median dump wall time was ${baseText}, with ${vcpus} vCPU on chost-src.`;
  const ratio = focusMedian / baseMedian;
  const atOnce = dumpsAtOnce(step);
  const shared = atOnce > vcpus ? `: ${atOnce} dumps at once shared chost-src's ${vcpus} vCPU` : '';
  return `The median dump wall time went from ${baseText} to ${ms(focusMedian)} at N=${step.count} (${atOnce} at once), ${ratio.toFixed(1)} times as long${shared}.`;
}

/** A step's moves in the order they ran, split in fifths: how the first fifth and the last compare. */
const TREND_MIN_MOVES = 20;

/**
 * How the moves' pace changed within a step, as its containers went from chost-src to chost-dst:
 * the median dump, restore and interval between moves in the first fifth against the last fifth.
 * A scheduled N=400 with no failure slowed from one move every 3.6 s to one every 7.9 s: its
 * restores went from 0.6 s to 6.0 s while chost-dst's CPU pressure rose to 99.5 %.
 */
function paceWithinStep(step: BatchStep): string | undefined {
  const moved = step.moves.filter((m) => m.dump?.wallMs != null && m.restore?.wallMs != null).sort((a, b) => a.dump!.startMs - b.dump!.startMs);
  if (moved.length < TREND_MIN_MOVES) return undefined;
  const fifth = Math.floor(moved.length / 5);
  const part = (xs: typeof moved) => {
    const starts = xs.map((m) => m.dump!.startMs);
    return { dump: median(xs.map((m) => m.dump!.wallMs!))!, restore: median(xs.map((m) => m.restore!.wallMs!))!, every: median(starts.slice(1).map((t, i) => t - starts[i]!))! };
  };
  const first = part(moved.slice(0, fifth));
  const last = part(moved.slice(-fifth));
  const text = (p: typeof first) => `a median dump of ${ms(p.dump)}, restore of ${ms(p.restore)}, one move every ${ms(p.every)}`;
  return `Within N=${step.count}, in the order they ran: the first ${fifth} moves took ${text(first)}; the last ${fifth}, ${text(last)} (by then chost-dst ran the ${moved.length - fifth} moved before them).`;
}

function hostText(step: BatchStep, samples: readonly HostSignals[]): string {
  const inStep = stepHostSamples(step, samples);
  if (inStep.length === 0) return `The host was not sampled during N=${step.count}.`;
  const cpu = peakOf(inStep, (s) => s.cpuBusyPct);
  const mem = peakOf(inStep, (s) => (s.memAvailableMiB === null ? null : -s.memAvailableMiB));
  const psi = peakOf(inStep, (s) => s.psiMemSome10);
  const parts = [
    cpu ? `CPU busy peaked at ${pct(cpu.value)} at ${secs(cpu.at.atMs)}` : undefined,
    mem ? `MemAvailable was lowest at ${mib(-mem.value)} at ${secs(mem.at.atMs)}` : undefined,
    psi ? `PSI memory some peaked at ${pct(psi.value)}` : undefined,
  ].filter((p) => p !== undefined);
  return `On the host during N=${step.count}: ${parts.length > 0 ? parts.join(', ') : 'no figure was read'}.`;
}

/** Guests in the order the explanation takes them: the halted one first. */
function guestOrder(halt: GuestHalt | undefined): GuestName[] {
  return halt ? [halt.guest, ...GUESTS.filter((g) => g !== halt.guest)] : [...GUESTS];
}

function whyText(steps: readonly BatchStep[], focus: BatchStep | undefined, guestSamples: readonly GuestSample[], hostSamples: readonly HostSignals[], request: ContainerBatchRequest): string {
  if (!focus) return 'No step ran, so there is nothing to explain.';
  const guests = guestOrder(focus.halt);
  return [
    ...guests.flatMap((g) => [guestMemoryText(focus, guestSamples, g), guestPressureText(focus, guestSamples, g)]),
    focus.halt ? silenceText(focus, guestSamples, focus.halt) : undefined,
    containersRssText(focus, request),
    ...SIDES.map((side) => concurrencyCost(steps, focus, guestSamples, side)),
    dumpWallGrowth(steps, focus, request.vcpus),
    paceWithinStep(focus),
    hostText(focus, hostSamples),
  ]
    .filter((p) => p !== undefined)
    .join(' ');
}

// ---- evidence ----

/** The guest samples worth quoting: the start, the lowest memory, the pressure peak, the last answer and the first silence. */
function guestEvidence(step: BatchStep, samples: readonly GuestSample[], guest: GuestName): string[] {
  const inStep = stepSamples(step, samples, guest);
  const answered = inStep.filter((s) => s.rttMs !== null);
  const last = answered.at(-1);
  const picks = [
    memoryAtStart(step, samples, guest),
    memoryLow(inStep)?.at,
    pressurePeak(inStep, 'psiMemSome10')?.at,
    pressurePeak(inStep, 'psiCpuSome10')?.at,
    pressurePeak(inStep, 'psiIoSome10')?.at,
    last,
    inStep.find((s) => s.rttMs === null && (!last || s.atMs > last.atMs)),
  ];
  const unique = [...new Set(picks.filter((s): s is GuestSample => s !== undefined))].sort((a, b) => a.atMs - b.atMs);
  return unique.map(guestSampleLine);
}

function consoleEvidence(step: BatchStep): string[] {
  const distinct = [...new Set(step.console.map((e) => `${e.guest} console: ${e.line}`))];
  const more = distinct.length - CONSOLE_LINES;
  return [...distinct.slice(0, CONSOLE_LINES), ...(more > 0 ? [`${more} more console lines of N=${step.count} in batch.json`] : [])];
}

function criuEvidence(steps: readonly BatchStep[]): string[] {
  const moves = steps.flatMap((s) => s.moves);
  return [
    ...criuErrorLines(failedDumps(moves)).map((e) => `criu dump (x${e.count}): ${e.line}`),
    ...criuErrorLines(failedRestores(moves)).map((e) => `criu restore (x${e.count}): ${e.line}`),
  ];
}

function hostEvidence(step: BatchStep, samples: readonly HostSignals[]): string[] {
  const inStep = stepHostSamples(step, samples);
  const picks = [peakOf(inStep, (s) => s.cpuBusyPct)?.at, peakOf(inStep, (s) => (s.memAvailableMiB === null ? null : -s.memAvailableMiB))?.at];
  return [...new Set(picks.filter((s): s is HostSignals => s !== undefined))].sort((a, b) => a.atMs - b.atMs).map(hostSampleLine);
}

function evidenceOf(steps: readonly BatchStep[], focus: BatchStep | undefined, guestSamples: readonly GuestSample[], hostSamples: readonly HostSignals[]): string[] {
  if (!focus) return [];
  return [
    ...(focus.halt ? [`halt: ${focus.halt.guest} ${focus.halt.how} at ${secs(focus.halt.atMs)}: ${focus.halt.detail}`] : []),
    ...guestOrder(focus.halt).flatMap((g) => guestEvidence(focus, guestSamples, g)),
    ...consoleEvidence(focus),
    ...criuEvidence(steps),
    ...hostEvidence(focus, hostSamples),
  ];
}

/** The batch's verdict: when a guest halted, how, and why, from the record alone. */
export function diagnoseBatch(steps: readonly BatchStep[], guestSamples: readonly GuestSample[], hostSamples: readonly HostSignals[], request: ContainerBatchRequest): BatchVerdict {
  const halted = haltStep(steps);
  const focus = focusStep(steps);
  return {
    ...(halted ? { haltedAt: halted.count, halt: halted.halt } : {}),
    bestIntact: bestIntactOf(steps),
    when: halted ? whenHalted(steps, halted, halted.halt!) : whenNoHalt(steps),
    how: howText(steps, focus),
    why: whyText(steps, focus, guestSamples, hostSamples, request),
    evidence: evidenceOf(steps, focus, guestSamples, hostSamples),
  };
}
