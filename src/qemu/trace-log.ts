// Lines of QEMU's "log" trace backend, as `-trace ... -D FILE -msg timestamp=on` writes them. The
// stamp is the host's wall clock, in one of two forms:
// - up to 10.x: `<thread id>@<seconds>.<µs>:<event> <arguments>`;
// - 11.x: `<ISO 8601 UTC time with µs>Z <event> <arguments>` (seen with 11.1.3: every trace line
//   gets -msg timestamp's own prefix instead of the backend's).
// Without timestamp=on neither stamp is written, and such lines are of no use to a reader of times.

export interface TraceLogLine {
  /** Epoch ms on the host that logged it, to the µs. */
  readonly atMs: number;
  readonly event: string;
  readonly args: string;
}

const OLD_FORM = /^\d+@(\d+)\.(\d{1,6}):(\w+)(?: (.*))?$/;
const ISO_FORM = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?Z (\w+)(?: (.*))?$/;

/** `%zu.%06zu` as epoch ms; a double holds today's epoch in ms to well under a µs. */
function epochMs(seconds: number, micros: string | undefined): number {
  return seconds * 1000 + Number((micros ?? '0').padEnd(6, '0')) / 1000;
}

/** One line, or undefined when it is not a stamped trace event. */
export function parseTraceLogLine(line: string): TraceLogLine | undefined {
  const l = line.trimEnd();
  const old = OLD_FORM.exec(l);
  if (old) return { atMs: epochMs(Number(old[1]), old[2]), event: old[3]!, args: (old[4] ?? '').trim() };
  const iso = ISO_FORM.exec(l);
  if (iso) return { atMs: epochMs(Date.parse(`${iso[1]}Z`) / 1000, iso[2]), event: iso[3]!, args: (iso[4] ?? '').trim() };
  return undefined;
}

/** Every stamped event of a trace file whose name starts with one of `prefixes`, in file order. */
export function parseTraceLog(text: string, prefixes: readonly string[]): TraceLogLine[] {
  const out: TraceLogLine[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const l = parseTraceLogLine(raw);
    if (l && prefixes.some((p) => l.event.startsWith(p))) out.push(l);
  }
  return out;
}
