// A worker thread that draws charts, so that a run's figures are laid out on the machine's other
// core while the run checks its guest and stops its QEMUs: on the event loop, vega's layout took
// the 0.3-0.4 s it saved from the run's end out of its cleanup instead (interleaved runs, issue 13).
// The thread loads vega and resvg itself as it starts (~0.4 s, on its own core too).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { MiglabError } from '../errors.js';
import type { RenderedChart, VegaLiteSpec } from './render.js';

/** What the thread is sent: one chart to write as `<outBase>.svg` and `.png`. */
export interface DrawRequest {
  readonly id: number;
  readonly spec: VegaLiteSpec;
  readonly outBase: string;
}

/** What it answers: the chart's files, or why it could not be drawn. */
export type DrawAnswer = { readonly id: number; readonly chart: RenderedChart; readonly error?: undefined } | { readonly id: number; readonly error: string; readonly chart?: undefined };

// Beside this module once compiled: dist/plot (tsc) or dist/bundle (esbuild, whose flat output
// puts draw-worker.js next to every chunk). Run from source (the unit tests) there is none.
const WORKER_FILE = fileURLToPath(new URL('./draw-worker.js', import.meta.url));

export class DrawingThread {
  private readonly pending = new Map<number, { resolve: (c: RenderedChart) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private failure: Error | undefined;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (a: DrawAnswer) => {
      const p = this.pending.get(a.id);
      this.pending.delete(a.id);
      if (a.error !== undefined) p?.reject(new MiglabError('INTERNAL', a.error));
      else p?.resolve(a.chart);
    });
    // A thread that died takes every chart it was drawing with it: each is rejected with why.
    const fail = (err: Error) => {
      this.failure ??= err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new MiglabError('INTERNAL', `the drawing thread ended (exit code ${code})`)));
  }

  /**
   * A started thread, or undefined where miglab runs from source (no compiled draw-worker.js).
   * `file`: the thread's code (tests start the bundle's from source).
   */
  static start(file = WORKER_FILE): DrawingThread | undefined {
    return existsSync(file) ? new DrawingThread(new Worker(file)) : undefined;
  }

  /** Until it ends (closed, or died: then every draw is refused with why). */
  get alive(): boolean {
    return this.failure === undefined;
  }

  /** renderChart in the thread. */
  draw(spec: VegaLiteSpec, outBase: string): Promise<RenderedChart> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, spec, outBase } satisfies DrawRequest);
    });
  }

  /** Ends the thread (charts still being drawn are rejected). Safe to call twice. */
  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
