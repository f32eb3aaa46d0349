// Where the client's silence went, in a run's report and in a bench's: a table of the stretches
// and moments, and a stacked bar per run (src/migrate/client-silence.ts cuts them). Pure.
import { SILENCE_SEGMENTS, type ClientSilence } from '../migrate/client-silence.js';
import { stackedBarChart, type PlannedChart } from '../plot/charts.js';
import { fmtMs, type Column, type MarkdownDoc } from './markdown.js';

/** Under TCG the destination translates the guest's code anew: the likely reason the guest's first answer is late (README). */
const TCG_NOTE =
  "Under TCG the destination QEMU starts with no translated guest code, so the guest's first frames after RESUME are likely late because it translates the code of the interrupt, the network stack and the agent again (one measurement, in README's 'What miglab found': about 8,000 blocks translated before the first answer; not measured in this run).";

interface SegmentRow {
  readonly stretch: string;
  readonly ms: number;
}

const SEGMENT_COLUMNS: Column<SegmentRow>[] = [
  { key: 'stretch', title: 'stretch' },
  { key: 'ms', title: 'length', format: (v) => fmtMs(v as number), align: 'right' },
];

/**
 * The run's section: the stretches, the moments behind them, and what likely stands behind the
 * last one (`postcopy`: the destination's vCPUs also waited for pages, so that note is left out).
 */
export function silenceSection(doc: MarkdownDoc, s: ClientSilence | undefined, accel: string, postcopy = false): void {
  if (!s) return;
  const m = s.moments;
  const announced = s.segments.find((g) => g.key === 'announce');
  const late = m.lastReplyMs > 0 ? ` The probe's last answer came ${fmtMs(m.lastReplyMs)} after STOP (it stamps an answer when it reads it): the pause stretch starts there.` : '';
  const seen =
    'port' in s.capture
      ? `The moments are on one clock: QEMU's STOP and RESUME events, frames on the lab switch's port to the destination (\`switch-dst.pcap\`), the probe's replies. QEMU announced the guest ${m.announces} time${m.announces === 1 ? '' : 's'} in the ${fmtMs(m.capturedAfterResumeMs)} the capture covered after RESUME${announced ? `, the first ${fmtMs(announced.ms)} after it` : ' (none seen: the switch learned the new port from the guest itself)'}; the switch forwarded the client's first request through the new port ${fmtMs(m.forwardedMs === undefined ? undefined : m.forwardedMs - m.resumeMs)} after RESUME.`
      : `No frames were captured (${s.capture.none}): QEMU's STOP and RESUME events and the probe's replies only, each host's clock offset removed.`;
  doc
    .heading(3, "Where the client's silence went")
    .paragraph(`The probe's silence that holds RESUME (${fmtMs(s.totalMs)}, from its last answer before to its first after) cut at the moments inside it. ${seen}${late}${accel === 'tcg' && !postcopy ? ` ${TCG_NOTE}` : ''}`)
    .table(
      SEGMENT_COLUMNS,
      s.segments.map((g) => ({ stretch: g.label, ms: g.ms })),
    );
}

/** One bar per run (label), stacked in the order the stretches happen. */
export function silenceChart(runs: readonly { readonly label: string; readonly silence: ClientSilence }[], name = 'client-silence'): PlannedChart | undefined {
  if (runs.length === 0) return undefined;
  const data = runs.flatMap((r) => r.silence.segments.map((g) => ({ run: r.label, stretch: g.label, ms: g.ms })));
  const title = "Where the client's silence went";
  return {
    name,
    title,
    caption:
      "The client probe's longest silence in the switchover, cut at the source's STOP, the destination's RESUME, QEMU's first self-announce at the switch, the guest's first frame of its own from the destination, and the probe's first answer; a stretch whose moment was not seen is part of the next one.",
    spec: stackedBarChart({
      title,
      data,
      category: { field: 'run', title: '' },
      segment: { field: 'stretch', title: '' },
      order: SILENCE_SEGMENTS.map((s) => s.label),
      value: { field: 'ms', title: 'Client-seen silence', unit: 'ms' },
    }),
  };
}
