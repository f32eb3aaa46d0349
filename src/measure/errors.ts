// Errors of the host-side measurement tools (perf, iperf3, /proc, ip). A tool that failed or
// printed something we cannot read is a COMMAND_FAILED MiglabError that names the tool, what it
// was doing and the raw text it printed (shortened), so a report can say why a figure is missing.
import { MiglabError } from '../errors.js';

export type MeasureTool = 'perf' | 'iperf3' | 'proc' | 'ip' | 'ss';

export class MeasureError extends MiglabError {
  readonly tool: MeasureTool;
  constructor(tool: MeasureTool, message: string, options: { cause?: unknown; context?: Record<string, unknown> } = {}) {
    super('COMMAND_FAILED', `${tool}: ${message}`, { cause: options.cause, context: { tool, ...options.context } });
    this.name = 'MeasureError';
    this.tool = tool;
  }
}

/** The first `max` characters of `text`, for error messages that quote tool output. */
export function excerpt(text: string, max = 300): string {
  const t = text.trim().replace(/\s+/g, ' ');
  return t.length > max ? `${t.slice(0, max)}...` : t;
}
