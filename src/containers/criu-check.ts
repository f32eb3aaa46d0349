// `criu check` and `criu check --feature NAME`, read into the gate a container run passes before
// anything starts: category 1 of the kernel's features must be there, and every feature the
// strategy needs. When it fails, the verdict keeps criu's own lines so the run says why in
// criu's words. Wording checked against criu v3.17.1 criu/cr-check.c cr_check() and log.h:
// - success of plain `check`: pr_msg "Looks good." (stdout);
// - a missing category-1 feature: the check's own lines, then pr_warn "Does not look good."
//   (stderr, as "Warn  (criu/cr-check.c:1388): Does not look good."), exit code 1;
// - with --extra/--all and a category-2/3 feature missing: the three lines "Looks good but some
//   kernel features are missing / which, depending on your process tree, may cause / dump or
//   restore failure." and a non-zero exit (category 1 passed);
// - `--feature NAME` that is there: pr_msg "NAME is supported"; one that is not: only the check's
//   own error or warning (e.g. "Error (criu/cr-check.c:1221): Non-cooperative UFFD is not
//   supported", "Warn  (criu/cr-check.c:813): Dirty tracking is OFF. Memory snapshot will not
//   work.") and exit code 1; criu 3.17.1 prints no "is NOT supported" line.
// At -v3 and above every log line starts with a "(SS.UUUUUU) " timestamp, which is dropped here.

/** What one criu run printed: stdout and stderr together (in any order), and its exit code if known. */
export interface CriuOutput {
  readonly text: string;
  readonly exitCode?: number;
}

export const CRIU_CHECK_GOOD = 'Looks good.';
export const CRIU_CHECK_BAD = 'Does not look good.';
/** criu prints this one on three lines (CHECK_MAYBE); the verdict joins them. */
const CRIU_CHECK_MAYBE_LINES = ['Looks good but some kernel features are missing', 'which, depending on your process tree, may cause', 'dump or restore failure.'];
export const CRIU_CHECK_MAYBE = CRIU_CHECK_MAYBE_LINES.join(' ');

export type CriuCheckSentence = 'good' | 'maybe' | 'bad' | 'none';

export interface CriuCheckResult {
  readonly sentence: CriuCheckSentence;
  /** criu's sentence on one line, or '' when it printed none (not root, a crash). */
  readonly words: string;
  /** Category 1 passed: "Looks good." or "Looks good but ..." with an exit code that agrees. */
  readonly ok: boolean;
  /** Every other line criu printed: the reasons, in its own words. */
  readonly lines: readonly string[];
}

export interface CriuFeatureResult {
  readonly name: string;
  readonly supported: boolean;
  /** What criu printed besides "NAME is supported": its reason when the feature is missing. */
  readonly lines: readonly string[];
}

export interface CriuCheckVerdict {
  /** Category 1 passed and every feature asked for is supported. */
  readonly ok: boolean;
  /** criu's own sentence, e.g. "Looks good.". */
  readonly words: string;
  /** The features asked for that are not supported. */
  readonly missing: readonly string[];
  readonly features: Readonly<Record<string, boolean>>;
  /** criu's lines that explain a failure: from `check` when category 1 failed, then from each missing feature. */
  readonly errors: readonly string[];
  /** One line for logs and errors: criu's sentence, and the first reason when not ok. */
  readonly summary: string;
}

const TIMESTAMP = /^\(\d+\.\d+\)\s+/;

/** The line that says why: criu's first "Error (file:line): ..." line, else its first line. */
function firstReason(lines: readonly string[]): string | undefined {
  return (lines.find((l) => l.startsWith('Error (')) ?? lines[0])?.trim();
}

function linesOf(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.replace(TIMESTAMP, '').trimEnd())
    .filter((l) => l.trim() !== '');
}

/** Reads the output of a plain `criu check` (or with --extra/--experimental/--all). */
export function parseCriuCheck(out: CriuOutput): CriuCheckResult {
  const all = linesOf(out.text);
  const maybeParts = CRIU_CHECK_MAYBE_LINES;
  const maybeAt = all.findIndex((_, i) => maybeParts.every((p, k) => all[i + k]?.trim() === p));
  const badAt = all.findIndex((l) => l.endsWith(CRIU_CHECK_BAD));
  const goodAt = all.findIndex((l) => l.trim() === CRIU_CHECK_GOOD);
  let sentence: CriuCheckSentence = 'none';
  let taken: number[] = [];
  // "Does not look good." wins: criu stops at the first category-1 failure and prints nothing after it.
  if (badAt >= 0) [sentence, taken] = ['bad', [badAt]];
  else if (maybeAt >= 0) [sentence, taken] = ['maybe', maybeParts.map((_, k) => maybeAt + k)];
  else if (goodAt >= 0) [sentence, taken] = ['good', [goodAt]];
  const words = { good: CRIU_CHECK_GOOD, maybe: CRIU_CHECK_MAYBE, bad: CRIU_CHECK_BAD, none: '' }[sentence];
  // "Looks good." with exit 0, or the maybe sentence (its non-zero exit is for categories 2 and 3).
  const exitAgrees = out.exitCode === undefined || sentence === 'maybe' || out.exitCode === 0;
  return {
    sentence,
    words,
    ok: (sentence === 'good' || sentence === 'maybe') && exitAgrees,
    lines: all.filter((_, i) => !taken.includes(i)),
  };
}

/** Reads the output of `criu check --feature NAME`. */
export function parseCriuFeature(name: string, out: CriuOutput): CriuFeatureResult {
  const all = linesOf(out.text);
  const said = `${name} is supported`;
  const supported = all.some((l) => l.trim() === said) && (out.exitCode === undefined || out.exitCode === 0);
  return { name, supported, lines: all.filter((l) => l.trim() !== said) };
}

/**
 * The gate: `check` is the plain `criu check` run, `features` one `criu check --feature NAME`
 * run per feature the run needs (criu 3.17.1 checks only the last --feature of a command line,
 * so each needs its own run). Every feature given is required.
 */
export function criuCheckVerdict(check: CriuOutput, features: Readonly<Record<string, CriuOutput>> = {}): CriuCheckVerdict {
  const base = parseCriuCheck(check);
  const each = Object.entries(features).map(([name, out]) => parseCriuFeature(name, out));
  const missing = each.filter((f) => !f.supported);
  const errors = [
    ...(base.ok ? [] : base.lines),
    ...missing.flatMap((f) => (f.lines.length > 0 ? f.lines.map((l) => `${f.name}: ${l}`) : [`${f.name}: criu printed nothing`])),
  ];
  const ok = base.ok && missing.length === 0;
  const words = base.words;
  let summary: string;
  if (!base.ok) {
    const why = firstReason(base.lines) ?? (check.exitCode === undefined ? 'no output' : `exit code ${check.exitCode} and no other line`);
    summary = words ? `criu check: "${words}" (${why})` : `criu check gave no verdict: ${why}`;
  } else if (missing.length > 0) {
    const first = missing[0]!;
    const why = firstReason(first.lines) ?? 'criu printed nothing';
    summary = `criu check: "${words}" but ${missing.map((f) => f.name).join(', ')} ${missing.length === 1 ? 'is' : 'are'} not supported (${first.name}: ${why})`;
  } else {
    summary = `criu check: "${words}"${each.length > 0 ? `; ${each.map((f) => f.name).join(', ')} supported` : ''}`;
  }
  return { ok, words, missing: missing.map((f) => f.name), features: Object.fromEntries(each.map((f) => [f.name, f.supported])), errors, summary };
}
