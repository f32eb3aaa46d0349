// Where the labels of vertical markers go (pass boundaries, the switchover, a batch's steps), so
// that none prints over another or is crossed by another marker's rule. Pure: the charts know the
// plot's width and x domain, so each label's pixel extent can be worked out before vega draws it.
//
// Labels sit above the plot in rows. A rule runs from the plot up to its own label's row, so a
// label is crossed by no rule as long as every marker under its text has a lower row: each label
// goes on the lowest row above those of the markers beneath it and clear of the labels already
// in that row (a staircase where markers crowd together).

/** Horizontal room a label may take beyond the plot's right edge (the chart's padding, a right axis). */
export const LABEL_OVERHANG_PX = 40;
/** Height of a row of labels (10 px text and its gap). */
export const LABEL_ROW_PX = 13;
const GAP_PX = 4;
/** Distance between a rule and its label's text. */
export const LABEL_DX_PX = 3;

/**
 * Width of `text` in DejaVu Sans at `fontPx`, slightly over-estimated (DejaVu's widest lowercase
 * letters but m and w are about 0.62 em; m and w about 1 em) so that estimated labels never collide.
 */
export function textWidthPx(text: string, fontPx: number, bold = false): number {
  let em = 0;
  for (const ch of text) em += ch === ' ' ? 0.32 : /[mwMW]/.test(ch) ? 1 : /[A-Z]/.test(ch) ? 0.72 : /[0-9]/.test(ch) ? 0.64 : /[il.,:;()'|!]/.test(ch) ? 0.36 : 0.62;
  return Math.ceil(em * fontPx * (bold ? 1.12 : 1));
}

export interface LabelInput {
  readonly x: number;
  readonly label: string;
  readonly bold?: boolean;
}

export interface PlacedLabel {
  /** 0 is the row just above the plot. */
  readonly row: number;
  /** `left`: the text runs right from its rule; `right`: it runs left (near the plot's right edge). */
  readonly align: 'left' | 'right';
  /** Pixel extent of the text, from the plot's left edge. */
  readonly fromPx: number;
  readonly toPx: number;
  /** The rule's pixel position. */
  readonly atPx: number;
}

export interface LabelFrame {
  /** The x scale's domain (the plot shows exactly this range). */
  readonly lo: number;
  readonly hi: number;
  readonly widthPx: number;
  readonly fontPx: number;
}

/** Rows and alignment for each marker label, in the order given. */
export function placeLabels(markers: readonly LabelInput[], f: LabelFrame): PlacedLabel[] {
  const span = f.hi - f.lo;
  const box = (atPx: number, w: number, align: 'left' | 'right') => (align === 'left' ? { atPx, w, align, fromPx: atPx, toPx: atPx + w } : { atPx, w, align, fromPx: atPx - w, toPx: atPx });
  const boxes = markers.map((m) => {
    const atPx = span > 0 ? ((m.x - f.lo) / span) * f.widthPx : 0;
    const w = LABEL_DX_PX + textWidthPx(m.label, f.fontPx, m.bold);
    return box(atPx, w, atPx + w > f.widthPx + LABEL_OVERHANG_PX && atPx - w >= 0 ? 'right' : 'left');
  });
  // i must sit above j when j's rule runs under i's text: a rule on the side the text runs to,
  // up to its end (and a rule at the very same place, once per pair).
  const under = (i: number, j: number) => {
    if (i === j) return false;
    const a = boxes[i]!;
    const at = boxes[j]!.atPx;
    if (at === a.atPx) return j < i;
    return a.align === 'left' ? at > a.atPx && at <= a.toPx + GAP_PX : at < a.atPx && at >= a.fromPx - GAP_PX;
  };
  const rows: (number | undefined)[] = markers.map(() => undefined);
  const left = new Set(markers.map((_, i) => i));
  while (left.size > 0) {
    // Place a label whose markers beneath are all placed.
    const ready = [...left].filter((i) => [...left].every((j) => !under(i, j)));
    if (ready.length === 0) {
      // A cycle: a label running left over a rule whose label runs right over it. Neither can go
      // above the other, so the right-most left-running label runs right instead (past the plot's
      // edge: the figure grows to hold it). Labels that all run right form no cycle.
      const flip = [...left].filter((i) => boxes[i]!.align === 'right').sort((a, b) => boxes[b]!.atPx - boxes[a]!.atPx)[0];
      if (flip !== undefined) {
        boxes[flip] = box(boxes[flip]!.atPx, boxes[flip]!.w, 'left');
        continue;
      }
    }
    const i = (ready.length > 0 ? ready : [...left]).sort((a, b) => boxes[a]!.atPx - boxes[b]!.atPx)[0]!;
    left.delete(i);
    const placed = rows.map((r, j) => ({ r, j })).filter((p): p is { r: number; j: number } => p.r !== undefined);
    let row = Math.max(-1, ...placed.filter((p) => under(i, p.j)).map((p) => p.r)) + 1;
    const clash = (r: number) => placed.some((p) => p.r === r && boxes[p.j]!.fromPx < boxes[i]!.toPx + GAP_PX && boxes[i]!.fromPx < boxes[p.j]!.toPx + GAP_PX);
    while (clash(row)) row++;
    rows[i] = row;
  }
  return boxes.map(({ w: _w, ...b }, i) => ({ ...b, row: rows[i]! }));
}
