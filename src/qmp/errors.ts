// The QMP error tree, one small branch of miglab's MiglabError: "could not connect"
// (QmpConnectError), "QEMU refused the command" (QmpCommandError) and "the conversation broke"
// (QmpDisconnectedError, QmpProtocolError). Timeouts use the shared TimeoutError.
import { MiglabError } from '../errors.js';

export class QmpConnectError extends MiglabError {
  readonly path: string;
  constructor(path: string, reason: string, cause?: unknown) {
    super('QMP_CONNECT', `cannot connect to QMP socket ${path}: ${reason}`, { cause, context: { path } });
    this.name = 'QmpConnectError';
    this.path = path;
  }
}

/** QEMU's `{"error": {"class", "desc"}}` reply, with what was sent to get it. */
export class QmpCommandError extends MiglabError {
  readonly command: string;
  readonly args: Readonly<Record<string, unknown>> | undefined;
  readonly reply: unknown;
  /** QEMU's error class: GenericError, CommandNotFound, DeviceNotFound, ... */
  readonly errorClass: string;
  readonly desc: string;
  constructor(command: string, args: Record<string, unknown> | undefined, reply: { error: { class: string; desc: string } }) {
    super('QMP_COMMAND', `QEMU refused ${command}: ${reply.error.desc} (${reply.error.class})`, {
      context: { command, args, errorClass: reply.error.class },
    });
    this.name = 'QmpCommandError';
    this.command = command;
    this.args = args;
    this.reply = reply;
    this.errorClass = reply.error.class;
    this.desc = reply.error.desc;
  }
}

/** The connection ended while something was waiting on it. */
export class QmpDisconnectedError extends MiglabError {
  readonly path: string;
  readonly command: string | undefined;
  constructor(path: string, command?: string, cause?: unknown) {
    const what = command === undefined ? 'QMP connection' : `QMP command ${command}`;
    super('QMP_DISCONNECTED', `${what}: connection to ${path} was lost`, { cause, context: { path, command } });
    this.name = 'QmpDisconnectedError';
    this.path = path;
    this.command = command;
  }
}

/** QEMU sent something that is not a QMP message; the raw bytes are kept. */
export class QmpProtocolError extends MiglabError {
  readonly raw: string;
  constructor(path: string, problem: string, raw: string, cause?: unknown) {
    super('QMP_DISCONNECTED', `QMP protocol error on ${path}: ${problem}: ${raw.slice(0, 200)}`, { cause, context: { path } });
    this.name = 'QmpProtocolError';
    this.raw = raw;
  }
}
