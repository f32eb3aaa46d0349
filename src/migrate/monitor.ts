// One migration driver interface over both monitors, so the engine does not care whether the
// user asked for QMP (`migrate`, `query-migrate`) or the homework's HMP (`migrate -d`,
// `info migrate`). Both return the same MigrationInfo record.
import type { HmpClient } from '../hmp/client.js';
import type { MigrationInfo } from '../migration/info.js';
import { TLS_CREDS_ID } from '../machine/argv.js';
import type { QmpClient } from '../qmp/client.js';
import { MiB } from '../util/units.js';
import type { CapabilityName, MigrationParameters, MonitorKind } from './scenario.js';

const CALL = { timeoutMs: 10000 };

export interface MigrationDriver {
  readonly kind: MonitorKind;
  /** Every command sent, literally, in order (for the report's explanation of the commands). */
  readonly sent: string[];
  setParameters(p: MigrationParameters): Promise<void>;
  setCapabilities(caps: Partial<Record<CapabilityName | 'events', boolean>>): Promise<void>;
  /** Encrypt the migration stream with the TLS credentials QEMU was started with (LaunchPlan.tls). */
  setTls(p: TlsParameters): Promise<void>;
  /** Start the migration; returns the literal command sent. */
  start(uri: string): Promise<string>;
  info(): Promise<MigrationInfo>;
  cancel(): Promise<void>;
  startPostcopy(): Promise<void>;
  /** Post-copy only: shut the migration's sockets so QEMU pauses it (QEMU: migrate-pause). */
  pause(): Promise<void>;
  /** Resume a paused post-copy over a new connection to `uri` (QEMU: migrate with resume); returns the command sent. */
  resume(uri: string): Promise<string>;
}

/** QEMU's parameter names and values for miglab's unit-named parameters. */
export function qmpParameters(p: MigrationParameters): Record<string, number> {
  const out: Record<string, number> = {};
  if (p.maxBandwidthMiBps !== undefined) out['max-bandwidth'] = Math.round(p.maxBandwidthMiBps * MiB);
  if (p.maxPostcopyBandwidthMiBps !== undefined) out['max-postcopy-bandwidth'] = Math.round(p.maxPostcopyBandwidthMiBps * MiB);
  if (p.downtimeLimitMs !== undefined) out['downtime-limit'] = p.downtimeLimitMs;
  if (p.multifdChannels !== undefined) out['multifd-channels'] = p.multifdChannels;
  if (p.xbzrleCacheMiB !== undefined) out['xbzrle-cache-size'] = p.xbzrleCacheMiB * MiB;
  return out;
}

/**
 * The TLS side of the migration parameters. Both sides name their tls-creds-x509 object; only the
 * source names the host it expects on the destination's certificate. Without `tls-creds` on a
 * side, that side speaks plain TCP and a TLS peer refuses the stream.
 */
export interface TlsParameters {
  /** The id of the tls-creds-x509 object (QEMU: tls-creds). */
  readonly tlsCreds: string;
  /** Source only: the name the destination's certificate must carry (QEMU: tls-hostname). */
  readonly tlsHostname?: string;
}

/**
 * What each side needs for a TLS migration to `dstAddress` (the address in the migration URI,
 * which the lab's server certificate carries as its subject alternative name). QEMU would take
 * the host from the URI by itself; it is set anyway, so the report shows what was checked.
 */
export function tlsParameters(role: 'source' | 'destination', dstAddress: string): TlsParameters {
  return role === 'source' ? { tlsCreds: TLS_CREDS_ID, tlsHostname: dstAddress } : { tlsCreds: TLS_CREDS_ID };
}

/** QEMU's names for the TLS parameters (QMP migrate-set-parameters). */
export function qmpTlsParameters(p: TlsParameters): Record<string, string> {
  return p.tlsHostname === undefined ? { 'tls-creds': p.tlsCreds } : { 'tls-creds': p.tlsCreds, 'tls-hostname': p.tlsHostname };
}

export class QmpMigrationDriver implements MigrationDriver {
  readonly kind = 'qmp' as const;
  readonly sent: string[] = [];
  constructor(private readonly qmpClient: QmpClient) {}

  /** Send a command and keep it, literally, for the report. */
  private send(command: string, args?: Record<string, unknown>): Promise<unknown> {
    this.sent.push(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }));
    return this.qmpClient.execute(command, args, CALL);
  }

  async setParameters(p: MigrationParameters): Promise<void> {
    const args = qmpParameters(p);
    if (Object.keys(args).length > 0) await this.send('migrate-set-parameters', args);
  }
  async setTls(p: TlsParameters): Promise<void> {
    await this.send('migrate-set-parameters', qmpTlsParameters(p));
  }
  async setCapabilities(caps: Partial<Record<string, boolean>>): Promise<void> {
    const list = Object.entries(caps).map(([capability, state]) => ({ capability, state: !!state }));
    if (list.length > 0) await this.send('migrate-set-capabilities', { capabilities: list });
  }
  async start(uri: string): Promise<string> {
    await this.send('migrate', { uri });
    return this.sent[this.sent.length - 1]!;
  }
  async info(): Promise<MigrationInfo> {
    return this.qmpClient.migrationInfo(CALL);
  }
  async cancel(): Promise<void> {
    await this.send('migrate_cancel');
  }
  async startPostcopy(): Promise<void> {
    await this.send('migrate-start-postcopy');
  }
  async pause(): Promise<void> {
    await this.send('migrate-pause');
  }
  async resume(uri: string): Promise<string> {
    await this.send('migrate', { uri, resume: true });
    return this.sent[this.sent.length - 1]!;
  }
  /** Destination only, started with `-incoming defer`: listen on `uri` now (QEMU: migrate-incoming). */
  async listen(uri: string): Promise<void> {
    await this.send('migrate-incoming', { uri });
  }
  /** Destination only: listen on `uri` for the source's resumed post-copy (QEMU: migrate-recover). */
  async recover(uri: string): Promise<void> {
    await this.send('migrate-recover', { uri });
  }
}

/** HMP takes sizes with a unit suffix; plain numbers for the rest. */
export function hmpParameterCommands(p: MigrationParameters): string[] {
  const cmds: string[] = [];
  if (p.maxBandwidthMiBps !== undefined) cmds.push(`migrate_set_parameter max-bandwidth ${Math.round(p.maxBandwidthMiBps * 1024)}K`);
  if (p.maxPostcopyBandwidthMiBps !== undefined) cmds.push(`migrate_set_parameter max-postcopy-bandwidth ${Math.round(p.maxPostcopyBandwidthMiBps * 1024)}K`);
  if (p.downtimeLimitMs !== undefined) cmds.push(`migrate_set_parameter downtime-limit ${p.downtimeLimitMs}`);
  if (p.multifdChannels !== undefined) cmds.push(`migrate_set_parameter multifd-channels ${p.multifdChannels}`);
  if (p.xbzrleCacheMiB !== undefined) cmds.push(`migrate_set_parameter xbzrle-cache-size ${p.xbzrleCacheMiB}M`);
  return cmds;
}

/** The same as HMP lines: `migrate_set_parameter` takes string parameters as they are. */
export function hmpTlsParameterCommands(p: TlsParameters): string[] {
  return Object.entries(qmpTlsParameters(p)).map(([name, value]) => `migrate_set_parameter ${name} ${value}`);
}

export class HmpMigrationDriver implements MigrationDriver {
  readonly kind = 'hmp' as const;
  readonly sent: string[] = [];
  constructor(private readonly hmpClient: HmpClient) {}

  /** Send a line (an error from QEMU throws) and keep it for the report. */
  private send(line: string): Promise<string> {
    this.sent.push(line);
    return this.hmpClient.run(line, CALL);
  }

  async setParameters(p: MigrationParameters): Promise<void> {
    for (const cmd of hmpParameterCommands(p)) await this.send(cmd);
  }
  async setTls(p: TlsParameters): Promise<void> {
    for (const cmd of hmpTlsParameterCommands(p)) await this.send(cmd);
  }
  async setCapabilities(caps: Partial<Record<string, boolean>>): Promise<void> {
    for (const [name, on] of Object.entries(caps)) await this.send(`migrate_set_capability ${name} ${on ? 'on' : 'off'}`);
  }
  async start(uri: string): Promise<string> {
    const line = `migrate -d ${uri}`;
    await this.send(line);
    return line;
  }
  info(): Promise<MigrationInfo> {
    return this.hmpClient.infoMigrate(CALL);
  }
  async cancel(): Promise<void> {
    await this.send('migrate_cancel');
  }
  async startPostcopy(): Promise<void> {
    await this.send('migrate_start_postcopy');
  }
  async pause(): Promise<void> {
    await this.send('migrate_pause');
  }
  async resume(uri: string): Promise<string> {
    const line = `migrate -d -r ${uri}`;
    await this.send(line);
    return line;
  }
}
