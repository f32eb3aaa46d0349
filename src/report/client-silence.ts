// Where the client's silence went, in a run's report and in a bench's: a table of the stretches
// and moments, and a stacked bar per run (src/migrate/client-silence.ts cuts them). Pure.
import { SILENCE_SEGMENTS, type ClientSilence } from '../migrate/client-silence.js';
import { stackedBarChart, type PlannedChart } from '../plot/charts.js';
import { fmtMs, type Column, type MarkdownDoc } from './markdown.js';

/** Under TCG the destination translates the guest's code anew: why the guest's first answer is late (README). */
const TCG_NOTE =
  "Under TCG the destination QEMU starts with no translated guest code: before the guest answers it translates the code of the interrupt, the network stack and the agent again (QEMU's translate_block trace point counted about 8,000 blocks between RESUME and the first answer; README, 'Where the client's silence goes').";

interface SegmentRow {
  readonly stretch: string;
  readonly ms: number;
}

const SEGMENT_COLUMNS: Column<SegmentRow>[] = [
  { key: 'stretch', title: 'stretch' },
  { key: 'ms', title: 'length', format: (v) => fmtMs(v as number), align: 'right' },
];

/** The run's section: the stretches, the moments behind them, and what stands behind the last one. */
export function silenceSection(doc: MarkdownDoc, s: ClientSilence | undefined, accel: string): void {
  if (!s) return;
  const m = s.moments;
  const announced = s.segments.find((g) => g.key === 'announce');
  const seen =
    'port' in s.capture
      ? `QEMU announced the guest ${m.announces} time${m.announces === 1 ? '' : 's'} in the second after RESUME${announced ? `, the first ${fmtMs(announced.ms)} after it` : ' (none seen: the switch learned the new port from the guest itself)'}; the switch forwarded the client's first request through the new port ${fmtMs(m.forwardedMs === undefined ? undefined : m.forwardedMs - m.resumeMs)} after RESUME.`
      : `No frames were captured: ${s.capture.none}.`;
  doc
    .heading(3, "Where the client's silence went")
    .paragraph(
      `The probe's longest gap (${fmtMs(s.totalMs)}) cut at the moments inside it, all on one clock: QEMU's STOP and RESUME events, frames on the lab switch's port to the destination (\`switch-dst.pcap\`), the probe's replies. ${seen}${accel === 'tcg' ? ` ${TCG_NOTE}` : ''}`,
    )
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
