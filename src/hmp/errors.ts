// Errors of the human monitor: the monitor could not be reached or broke (HmpError), or QEMU
// printed an error for a command (HmpCommandError, which keeps the line sent and the output).
import { MiglabError } from '../errors.js';

export class HmpError extends MiglabError {
  readonly monitor: string;
  constructor(monitor: string, problem: string, cause?: unknown) {
    super('HMP', `HMP monitor ${monitor}: ${problem}`, { cause, context: { monitor } });
    this.name = 'HmpError';
    this.monitor = monitor;
  }
}

export class HmpCommandError extends MiglabError {
  readonly monitor: string;
  readonly commandLine: string;
  readonly output: string;
  constructor(monitor: string, commandLine: string, output: string) {
    super('HMP', `QEMU refused HMP command "${commandLine}": ${output.trim().split('\n')[0] ?? ''}`, {
      context: { monitor, commandLine, output },
    });
    this.name = 'HmpCommandError';
    this.monitor = monitor;
    this.commandLine = commandLine;
    this.output = output;
  }
}
