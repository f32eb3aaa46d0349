// A run's figures drawn ahead of its end. Drawing them after the run (vega's layout, resvg) cost a
// `miglab migrate` about 0.4 s; on the event loop during the run's cleanup it only moved that time
// into the cleanup (interleaved runs, issue 13). So a drawing thread is started once the migration
// has ended (it loads vega and resvg while the checks after the migration wait on the guest) and
// draws the figures from the record so far once the run has concluded, on the other core, while
// the run stops its QEMUs. Not sooner: loaded as the run started, the modules cost the run's end
// more (0.76 of the time against 0.63, on the event loop), likely V8 dropping their compiled code
// meanwhile; and a thread loading them during the migration would take CPU from the QEMUs measured.
import type { MigrationHooks } from '../migrate/engine.js';
import { DrawingThread } from '../plot/drawing-thread.js';
import { asSaved } from '../results/contract.js';
import { RUN_CONTRACT } from '../results/run.js';
import { drawRunFiguresEarly, preloadFigures, type DrawnAhead, type EarlyFigures } from './run-report.js';

export class FiguresAhead implements DrawnAhead {
  /** Started once the migration has ended; it also draws any figure the final record changed. */
  thread: DrawingThread | undefined;
  /** The figures drawn from the concluded run's record, for renderRunReport to keep or redraw. */
  early: Promise<EarlyFigures> | undefined;

  constructor(private readonly dir: string) {}

  /** The run's hooks with these steps added; a caller's own hooks still run, after these start. */
  hooks(own: MigrationHooks | undefined): MigrationHooks {
    return {
      ...own,
      afterMigrate: async (final) => {
        this.thread ??= DrawingThread.start();
        // Run from source (the tests) there is no compiled thread: the modules load here instead.
        if (!this.thread) preloadFigures();
        await own?.afterMigrate?.(final);
      },
      afterConclude: async (p) => {
        const soFar = this.thread ? asSaved(RUN_CONTRACT.schema, await p.report()) : undefined;
        if (this.thread && soFar) {
          this.early = drawRunFiguresEarly(this.dir, soFar, this.thread);
          // Its failure is found again when the record's figures are drawn (renderRunReport).
          this.early.catch(() => undefined);
        }
        await own?.afterConclude?.(p);
      },
    };
  }

  /** Once the run's files are written (or could not be): nothing still draws, no thread is left. */
  async close(): Promise<void> {
    await this.early?.catch(() => undefined);
    await this.thread?.close();
  }
}
