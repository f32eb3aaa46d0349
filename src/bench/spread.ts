// How repeatable a benchmark's cases are (issue 13, item 6): per case, the coefficient of
// variation (stdev / mean) of total time and downtime over its repetitions, judged against one
// aim, and written the same way in every benchmark's JSON and Markdown. A figure that varies by
// more than the aim between repetitions cannot show a smaller difference between two cases, so a
// reader of any bench file sees first how far its medians can be trusted.
import { fmtMs, fmtPct, type MarkdownDoc } from '../report/markdown.js';
import { summarize, type Summary } from '../stats/index.js';

/** Coefficient of variation of total time and downtime under this, for idle and convergent busy runs. */
export const SPREAD_AIM_CV = 0.1;

/** One repetition as a case's spread sees it. */
export interface SpreadSample {
  /** The run ended as its case expects (a migration: completed). Others are left out and counted. */
  readonly ok: boolean;
  readonly totalTimeMs?: number;
  readonly downtimeMs?: number;
}

export type SpreadVerdict = 'met' | 'NOT met' | 'not judged' | 'not aimed';

export interface SpreadCase {
  readonly case: string;
  readonly runs: number;
  /** Runs that ended as expected; only they are summarized. */
  readonly ok: number;
  readonly totalTimeMs: Summary;
  readonly downtimeMs: Summary;
  readonly verdict: SpreadVerdict;
  /** Why a case is not judged or not aimed at; empty when it is judged. */
  readonly why?: string;
}

/**
 * The aim is about idle guests and busy ones that converge; a case the aim is not about (a fault,
 * a figure the case does not give) names why in `notAimed` and is reported but not judged. A case
 * is judged only when every repetition ended as expected (a busy case where one did not is not
 * convergent) and there are at least two.
 */
export function spreadCase(name: string, samples: readonly SpreadSample[], notAimed?: string): SpreadCase {
  const ok = samples.filter((s) => s.ok);
  const totalTimeMs = summarize(ok.map((s) => s.totalTimeMs));
  const downtimeMs = summarize(ok.map((s) => s.downtimeMs));
  const base = { case: name, runs: samples.length, ok: ok.length, totalTimeMs, downtimeMs };
  if (notAimed !== undefined) return { ...base, verdict: 'not aimed', why: notAimed };
  if (ok.length < samples.length) return { ...base, verdict: 'not judged', why: `${samples.length - ok.length} of ${samples.length} runs did not end as expected` };
  if (totalTimeMs.cv === undefined || downtimeMs.cv === undefined) return { ...base, verdict: 'not judged', why: 'fewer than two figures' };
  return { ...base, verdict: totalTimeMs.cv < SPREAD_AIM_CV && downtimeMs.cv < SPREAD_AIM_CV ? 'met' : 'NOT met' };
}

/** A coefficient of variation (a fraction) as the reports write percentages: "12.3%", or "–". */
export const fmtCv = (cv: number | undefined): string => fmtPct(cv === undefined ? undefined : cv * 100);

/** A run's report as a case's spread sees it (completed, QEMU's total time and downtime). */
export function spreadSampleOf(r: { readonly ok: boolean; readonly outputs: { readonly totalTimeMs?: number; readonly downtimeMs?: number } }): SpreadSample {
  return { ok: r.ok, totalTimeMs: r.outputs.totalTimeMs, downtimeMs: r.outputs.downtimeMs };
}

// The stdev beside the CV: a downtime of 15 ms that varies by 50 % is 7 ms of jitter, which a
// reader judges differently from 50 % of a total time.
const medianCv = (s: Summary) => (s.median === undefined ? '–' : `${fmtMs(s.median)} (CV ${fmtCv(s.cv)}${s.stdev === undefined ? '' : `, sd ${fmtMs(s.stdev)}`})`);

export interface SpreadWording {
  /** What the two figures are, where not QEMU's ("the move's total time and CRIU's frozen time"). */
  readonly figures?: string;
  /** Anything the reader needs besides (cases left out, why). */
  readonly note?: string;
}

/** The bench file's section on repeatability: one row per case, the aim in words. */
export function spreadSection(doc: MarkdownDoc, cases: readonly SpreadCase[], wording: SpreadWording = {}): MarkdownDoc {
  doc
    .heading(2, 'Spread over repetitions')
    .paragraph(
      `Coefficient of variation (stdev / mean) of ${wording.figures ?? "QEMU's total time and downtime"} over each case's runs that ended as expected (a migration completed, a container intact). Aim: both under ${fmtCv(SPREAD_AIM_CV)} for idle and convergent busy cases on an otherwise idle machine; a case where a run did not end so is not judged.${wording.note ? ` ${wording.note}` : ''}`,
    );
  if (cases.length === 0) return doc.paragraph('No case here was repeated.');
  return doc.table<SpreadCase>(
    [
      { key: 'case', title: 'case' },
      { key: 'ok', title: 'runs', format: (ok, c) => (ok === c.runs ? String(ok) : `${ok} of ${c.runs}`), align: 'right' },
      { key: 'totalTimeMs', title: 'total time, median (CV)', format: medianCv, align: 'right' },
      { key: 'downtimeMs', title: 'downtime, median (CV)', format: medianCv, align: 'right' },
      { key: 'verdict', title: 'aim', format: (v, c) => (c.why ? `${v}: ${c.why}` : v) },
    ],
    cases,
  );
}
