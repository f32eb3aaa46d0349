// Finding miglab's processes on a host by their command line (pgrep -f, an extended regex).

/** A literal, escaped for an extended regex (outside brackets). */
export function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * A pgrep pattern for `text` that its own command line does not match: the first character in
 * brackets. pgrep leaves itself out, but not the shells that run it (SSH's wrapper names the
 * pattern in its argv too).
 */
export function selfExcludingPattern(text: string): string {
  return `[${escapeRegex(text[0]!)}]${escapeRegex(text.slice(1))}`;
}
