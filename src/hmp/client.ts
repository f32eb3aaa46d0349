// The human monitor client: command lines in, clean text out, plus the few helpers miglab uses
// (`migrate -d`, `info migrate` parsed into the same MigrationInfo QMP gives, parameter and
// capability setters). The transport (unix socket, any stream, telnet) is chosen at connect.
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { WaitOptions } from '../util/deadline.js';
import type { MigrationInfo } from '../migration/info.js';
import { cleanOutput, looksLikeHmpError } from './clean.js';
import { HmpCommandError } from './errors.js';
import { parseInfoMigrate } from './info-migrate.js';
import { PromptStreamTransport, TelnetTransport, type HmpTransport, type UnixOpenOptions } from './transport.js';

export interface HmpClientOptions extends UnixOpenOptions {
  /** Deadline for commands called without their own; default 30 s. */
  readonly commandTimeoutMs?: number;
}

type CallOptions = Partial<WaitOptions>;

/**
 * Parameters whose HMP value is a size where a bare number means MiB (QEMU parses them with
 * qemu_strtosz_MiB); miglab passes numbers as bytes, so they get an explicit "B".
 */
const SIZE_PARAMETERS = new Set(['max-bandwidth', 'max-postcopy-bandwidth', 'avail-switchover-bandwidth', 'xbzrle-cache-size']);

export class HmpClient {
  private readonly commandTimeoutMs: number;

  constructor(
    readonly transport: HmpTransport,
    opts: HmpClientOptions = {},
  ) {
    this.commandTimeoutMs = opts.commandTimeoutMs ?? 30_000;
  }

  /** `-monitor unix:PATH,server=on,wait=off`; retries until QEMU has created the socket (reached through `open` when given). */
  static async connectUnix(path: string, opts: WaitOptions & HmpClientOptions): Promise<HmpClient> {
    return new HmpClient(await PromptStreamTransport.connectUnix(path, opts), opts);
  }

  /** Any open byte stream to a monitor (e.g. stdio of a forwarder run inside a netns). */
  static async connectStream(stream: Duplex, description: string, opts: WaitOptions & HmpClientOptions): Promise<HmpClient> {
    return new HmpClient(await PromptStreamTransport.open(stream, description, opts), opts);
  }

  /** `-monitor telnet:HOST:PORT,server=on,wait=off`, or an already connected `sock`. */
  static async connectTelnet(
    opts: WaitOptions & HmpClientOptions & { host?: string; port: number; sock?: Socket },
  ): Promise<HmpClient> {
    return new HmpClient(await TelnetTransport.connect(opts), opts);
  }

  get description(): string {
    return this.transport.description;
  }

  /** QEMU's greeting line, e.g. "QEMU 7.2.22 monitor - type 'help' for more information". */
  get banner(): string {
    return this.transport.banner;
  }

  /** Run a command line; resolves with its output, without echo, prompt or escape codes. */
  async command(line: string, opts: CallOptions = {}): Promise<string> {
    const raw = await this.transport.exec(line, { timeoutMs: opts.timeoutMs ?? this.commandTimeoutMs, signal: opts.signal });
    return cleanOutput(raw, line);
  }

  /** Like command(), but QEMU printing an error ("Error: ...", "unknown command") rejects. */
  async run(line: string, opts: CallOptions = {}): Promise<string> {
    const out = await this.command(line, opts);
    if (looksLikeHmpError(out)) throw new HmpCommandError(this.description, line, out);
    return out;
  }

  /** `info migrate`, parsed. */
  async infoMigrate(opts: CallOptions = {}): Promise<MigrationInfo> {
    return parseInfoMigrate(await this.run('info migrate', opts));
  }

  /**
   * Start an outgoing migration with the literal `migrate -d URI` (detached: the monitor answers
   * at once). Resolves with the command line sent.
   */
  async migrate(uri: string, opts: CallOptions & { detach?: boolean } = {}): Promise<string> {
    const line = opts.detach === false ? `migrate ${uri}` : `migrate -d ${uri}`;
    await this.run(line, opts);
    return line;
  }

  async migrateCancel(opts: CallOptions = {}): Promise<void> {
    await this.run('migrate_cancel', opts);
  }

  /**
   * `migrate_set_parameter NAME VALUE` with QEMU's parameter names. Numbers for size
   * parameters (max-bandwidth, xbzrle-cache-size, ...) are bytes; booleans become on/off.
   */
  async migrateSetParameter(name: string, value: string | number | boolean, opts: CallOptions = {}): Promise<string> {
    const text = typeof value === 'boolean' ? (value ? 'on' : 'off') : typeof value === 'number' && SIZE_PARAMETERS.has(name) ? `${value}B` : String(value);
    const line = `migrate_set_parameter ${name} ${text}`;
    await this.run(line, opts);
    return line;
  }

  async migrateSetCapability(name: string, enabled: boolean, opts: CallOptions = {}): Promise<string> {
    const line = `migrate_set_capability ${name} ${enabled ? 'on' : 'off'}`;
    await this.run(line, opts);
    return line;
  }

  /** Close the monitor connection. Idempotent. */
  close(): Promise<void> {
    return this.transport.close();
  }
}
