// Reading back what csv-stringify wrote, in tests: one line's cells (a cell that holds a comma or a
// quote is quoted, its quotes doubled).
export function csvCells(line: string): string[] {
  const out: string[] = [];
  const re = /(?:^|,)("(?:[^"]|"")*"|[^,]*)/g;
  for (let m = re.exec(line); m && m.index < line.length; m = re.exec(line)) {
    out.push(m[1]!.startsWith('"') ? m[1]!.slice(1, -1).replace(/""/g, '"') : m[1]!);
    if (re.lastIndex === m.index) re.lastIndex++;
  }
  return out;
}
