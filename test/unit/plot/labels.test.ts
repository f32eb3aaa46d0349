// Marker labels a person can read: no label prints over another, and no marker's rule runs
// through another marker's label (rules reach up to their own label's row only).
import { LABEL_DX_PX, placeLabels, textWidthPx, type LabelInput, type PlacedLabel } from '../../../src/plot/labels.js';

const frame = { lo: -1.6, hi: 7.8, widthPx: 640, fontPx: 10 };

/** Every way two placed labels can spoil each other, as readable strings (empty when none). */
function problems(markers: readonly LabelInput[], placed: readonly PlacedLabel[]): string[] {
  const out: string[] = [];
  placed.forEach((a, i) =>
    placed.forEach((b, j) => {
      if (i === j) return;
      if (i < j && a.row === b.row && a.fromPx < b.toPx && b.fromPx < a.toPx) out.push(`"${markers[i]!.label}" overlaps "${markers[j]!.label}"`);
      // b's rule reaches up to row b.row: it crosses a's text when it lies under it and a is not higher.
      const textFrom = a.align === 'left' ? a.atPx + LABEL_DX_PX : a.fromPx;
      const textTo = a.align === 'left' ? a.toPx : a.atPx - LABEL_DX_PX;
      if (b.atPx > textFrom && b.atPx < textTo && b.row >= a.row) out.push(`the rule of "${markers[j]!.label}" crosses "${markers[i]!.label}"`);
    }),
  );
  return out;
}

describe('placeLabels', () => {
  it('stairs the crowded labels of a real migration (passes, switchover, resume within 0.1 s)', () => {
    // The marks of a homework run: pass 3, the switchover and the resume 5 px apart.
    const markers = [
      { x: 0.21, label: 'pass 1' },
      { x: 3.41, label: 'pass 2' },
      { x: 3.82, label: 'pass 3' },
      { x: 3.9, label: 'switchover (source stops)', bold: true },
      { x: 3.95, label: 'resumed on destination', bold: true },
    ];
    const placed = placeLabels(markers, frame);
    expect(problems(markers, placed)).toEqual([]);
    // A lone label stays on the first row; the crowd climbs no higher than it has to.
    expect(placed[0]!.row).toBe(0);
    expect(Math.max(...placed.map((p) => p.row))).toBeLessThanOrEqual(4);
  });

  it('turns a label near the right edge to run left, inside the figure', () => {
    const placed = placeLabels([{ x: 7.7, label: 'resumed on destination' }], frame);
    expect(placed[0]!.align).toBe('right');
    expect(placed[0]!.toPx).toBeLessThanOrEqual(640);
  });

  it('keeps labels of markers far apart on one row', () => {
    const markers = [0, 2, 4, 6].map((x) => ({ x, label: `pass ${x}` }));
    expect(placeLabels(markers, frame).map((p) => p.row)).toEqual([0, 0, 0, 0]);
  });

  it.each([1, 2, 3, 4, 5])('leaves no overlap or crossing among many random markers (seed %i)', (seed) => {
    let state = seed;
    const rand = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const markers = Array.from({ length: 14 }, (_, i) => ({ x: frame.lo + rand() * (frame.hi - frame.lo), label: i % 4 === 0 ? `stall: psi-cpu ${i}` : `N=${i} parallel`, bold: i % 4 === 0 }));
    expect(problems(markers, placeLabels(markers, frame))).toEqual([]);
  });

  it('over-estimates text width rather than under (DejaVu Sans 10 px: "switchover" is about 56 px)', () => {
    expect(textWidthPx('switchover', 10)).toBeGreaterThanOrEqual(56);
    expect(textWidthPx('switchover', 10)).toBeLessThan(80);
  });
});
