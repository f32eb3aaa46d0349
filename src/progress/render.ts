// Shows progress (src/progress/progress.ts) on a stream, the CLI's stderr. On a terminal the live
// figures share one line, rewritten in place (fitted to the terminal's width so it never wraps:
// the least useful fields are left out first, a deadline never), and
// every other output (a note, a result line on stdout) first clears it and then draws it again;
// Ctrl-C, SIGTERM and the end clear it. Elsewhere (a log file, a pipe) each live figure becomes a
// plain timestamped line when it changes notably (a new pass, a new status, the next run) and
// otherwise every few seconds, so a log stays readable. Small enough to hold here rather than
// pull in a terminal library; the few escape codes it writes are ECMA-48's CR and EL.
import { fieldsText, fitFigures, liveParts } from './format.js';
import type { LiveStatus, LiveTopic, LiveUpdate, Progress } from './progress.js';

/** The stream progress goes to: stderr, or a fake in tests. */
export interface ProgressStream {
  write(text: string): unknown;
  /** Terminal width, when the stream is a terminal. */
  readonly columns?: number;
}

export interface RendererOptions {
  readonly stream: ProgressStream;
  /** Rewrite one live line in place (the stream is a terminal); otherwise plain lines. */
  readonly inPlace: boolean;
  readonly now?: () => number;
  /** Plain lines: the longest a live figure goes without a line (default 5 s). */
  readonly plainEveryMs?: number;
  /** How often time-based figures (time left, elapsed) are refreshed (default 1 s). */
  readonly tickMs?: number;
  /** Styles a note's time stamp and phase (the CLI colours them on a terminal). */
  readonly style?: { readonly stamp: (s: string) => string; readonly phase: (s: string) => string };
  /** Clear the live line on SIGINT/SIGTERM (the CLI; tests leave the process's signals alone). */
  readonly watchSignals?: boolean;
}

/** The least time between two draws of the live line: a batch's guests each update it every 100 ms. */
const MIN_DRAW_MS = 100;
const CLEAR_LINE = '\r\x1b[K';
const TOPIC_ORDER: readonly LiveTopic[] = ['sweep', 'settle', 'run'];

interface Entry {
  readonly scope?: string;
  readonly topic: LiveTopic;
  status: LiveStatus;
  printed?: LiveStatus;
  printedAt: number;
}

export class ProgressRenderer {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;
  private readonly plainEveryMs: number;
  private readonly tickMs: number;
  /** Text of the live line as drawn ('' when none is on screen). */
  private shown = '';
  private lastDrawAt = 0;
  private drawTimer: NodeJS.Timeout | undefined;
  private ticker: NodeJS.Timeout | undefined;
  /** After Ctrl-C or stop(): notes only, no live line any more. */
  private ended = false;
  private readonly onSignal = (sig: NodeJS.Signals) => this.signalled(sig);
  private readonly onExit = () => this.clear();
  private hooked = false;

  constructor(private readonly o: RendererOptions) {
    this.now = o.now ?? Date.now;
    this.plainEveryMs = o.plainEveryMs ?? 5000;
    this.tickMs = o.tickMs ?? 1000;
  }

  /** The Progress to hand to the API: notes and live figures both come here. */
  get progress(): Progress {
    return Object.assign((phase: string, detail?: string) => this.note(phase, detail), { live: (u: LiveUpdate) => this.update(u) });
  }

  /** A line that stays. */
  note(phase: string, detail?: string): void {
    this.around(() => this.o.stream.write(`${this.noteLine(phase, detail)}\n`));
  }

  /** Run `write` (output of another kind, e.g. a result line on stdout) with the live line out of its way. */
  around(write: () => void): void {
    const had = this.shown !== '';
    this.clear();
    write();
    if (had) this.draw();
  }

  update(u: LiveUpdate): void {
    if (this.ended) return;
    const key = `${u.scope ?? ''}\u0000${u.topic}`;
    if (!u.status) {
      this.entries.delete(key);
      if (this.entries.size > 0) {
        if (this.o.inPlace) this.drawSoon();
        return;
      }
      // Nothing going on any more: the line goes at once, not at the next draw.
      this.stopTicker();
      clearTimeout(this.drawTimer);
      this.drawTimer = undefined;
      this.clear();
      this.unhook();
      return;
    }
    const entry = this.entries.get(key);
    if (entry) entry.status = u.status;
    else this.entries.set(key, { scope: u.scope, topic: u.topic, status: u.status, printedAt: 0 });
    this.startTicker();
    if (this.o.inPlace) this.drawSoon();
    else this.printPlain(false);
  }

  /** Remove the live line from the screen (it comes back with the next update). */
  clear(): void {
    if (this.shown === '') return;
    this.o.stream.write(CLEAR_LINE);
    this.shown = '';
  }

  /** The end: clear the line, stop timers and let go of the process's signals. */
  stop(): void {
    this.ended = true;
    this.entries.clear();
    this.stopTicker();
    clearTimeout(this.drawTimer);
    this.drawTimer = undefined;
    this.clear();
    this.unhook();
  }

  private noteLine(phase: string, detail?: string): string {
    const stamp = new Date(this.now()).toISOString().slice(11, 23);
    const style = this.o.style;
    return `${style ? style.stamp(stamp) : stamp} ${style ? style.phase(phase.padEnd(8)) : phase.padEnd(8)} ${detail ?? ''}`.trimEnd();
  }

  private sorted(): Entry[] {
    const rank = (e: Entry) => TOPIC_ORDER.indexOf(e.topic);
    return [...this.entries.values()].sort((a, b) => rank(a) - rank(b) || (a.scope ?? '').localeCompare(b.scope ?? '', 'en', { numeric: true }));
  }

  /** The live line, at most `width` columns: the least important fields are left out first. */
  private liveText(width: number): string {
    const now = this.now();
    return fitFigures(
      this.sorted().map((e) => {
        const p = liveParts(e.status, now);
        return { title: `${e.scope ? `${e.scope} ` : ''}${p.label}`, fields: p.fields };
      }),
      width,
    );
  }

  private drawSoon(): void {
    if (this.drawTimer) return;
    const wait = this.lastDrawAt + MIN_DRAW_MS - this.now();
    if (wait <= 0) this.draw();
    else this.drawTimer = setTimeout(() => {
      this.drawTimer = undefined;
      this.draw();
    }, wait);
  }

  private draw(): void {
    if (!this.o.inPlace || this.ended) return;
    this.lastDrawAt = this.now();
    // One column is left free: a line that fills the last column makes some terminals wrap.
    const text = this.entries.size === 0 ? '' : this.liveText((this.o.stream.columns || 80) - 1);
    if (text === this.shown) return;
    this.o.stream.write(`${CLEAR_LINE}${text}`);
    this.shown = text;
    if (text !== '') this.hook();
    else this.unhook();
  }

  /** Plain lines: each figure that changed notably, or has not been printed for a while. */
  private printPlain(timed: boolean): void {
    const now = this.now();
    for (const e of this.sorted()) {
      const due = now - e.printedAt >= this.plainEveryMs;
      if (!(notable(e.printed, e.status) || (timed && due))) continue;
      const p = liveParts(e.status, now);
      this.o.stream.write(`${this.noteLine(`${e.scope ? `${e.scope} ` : ''}${p.label}`, fieldsText(p.fields))}\n`);
      e.printed = e.status;
      e.printedAt = now;
    }
  }

  private startTicker(): void {
    if (this.ticker) return;
    this.ticker = setInterval(() => (this.o.inPlace ? this.draw() : this.printPlain(true)), this.tickMs);
    // Progress never keeps the process alive.
    this.ticker.unref();
  }

  private stopTicker(): void {
    clearInterval(this.ticker);
    this.ticker = undefined;
  }

  private hook(): void {
    if (this.hooked || !this.o.watchSignals) return;
    this.hooked = true;
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
    process.on('exit', this.onExit);
  }

  private unhook(): void {
    if (!this.hooked) return;
    this.hooked = false;
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    process.off('exit', this.onExit);
  }

  /**
   * Ctrl-C or SIGTERM while the line is up: clear it, and show notes only from now on (the run
   * stops and says so). If nothing else listens for the signal, the process would have died of
   * it: let go and raise it again, so it still does.
   */
  private signalled(sig: NodeJS.Signals): void {
    this.clear();
    this.ended = true;
    this.stopTicker();
    this.unhook();
    if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
  }
}

/** Whether a plain line is due because the figure changed in a way a reader of the log wants to see. */
function notable(before: LiveStatus | undefined, now: LiveStatus): boolean {
  if (!before || before.kind !== now.kind) return true;
  switch (now.kind) {
    case 'migration':
      return before.kind === 'migration' && (before.status !== now.status || before.pass !== now.pass);
    case 'boot':
      return before.kind === 'boot' && before.stage !== now.stage;
    case 'sweep':
      return before.kind === 'sweep' && before.run !== now.run;
    case 'settle':
      return false;
  }
}
