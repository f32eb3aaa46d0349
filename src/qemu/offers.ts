// What a QEMU build offers for migration, asked from QEMU itself with no guest at all (-machine
// none, QMP on stdin): the capabilities (query-migrate-capabilities) and parameters
// (query-migrate-parameters) it knows. Never decided from the version number: Debian patches,
// and capabilities come and go (compress was removed in 9.1, mapped-ram came in 9.0).
import { MiglabError } from '../errors.js';
import type { Host } from '../host/host.js';
import { oncePerKey } from '../host/once-per-host.js';
import { rememberedFact } from '../host/program-facts.js';
import { buildArgv, buildKey, versionOf, type QemuBuild } from './build.js';

export interface MigrationOffers {
  readonly capabilities: readonly string[];
  readonly parameters: readonly string[];
  /** The build's vmstate_downtime_* trace points it can enable (QEMU 8.2 on; none on 7.2). */
  readonly downtimeTracePoints: readonly string[];
}

/** The trace point every downtime breakdown needs (src/qemu/downtime-trace.ts). */
export const DOWNTIME_CHECKPOINT = 'vmstate_downtime_checkpoint';

const ASK = [
  '{"execute":"qmp_capabilities"}',
  '{"execute":"query-migrate-capabilities","id":"caps"}',
  '{"execute":"query-migrate-parameters","id":"params"}',
  '{"execute":"trace-event-get-state","arguments":{"name":"vmstate_downtime_*"},"id":"trace"}',
  '{"execute":"quit"}',
  '',
].join('\n');

/** QMP's replies on stdout, one JSON object a line: the answers by id. */
export function parseOffers(stdout: string): MigrationOffers | undefined {
  let capabilities: string[] | undefined;
  let parameters: string[] | undefined;
  let downtimeTracePoints: string[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.trim().startsWith('{')) continue;
    let msg: { id?: string; return?: unknown };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      continue;
    }
    if (msg.id === 'caps' && Array.isArray(msg.return)) capabilities = (msg.return as { capability: string }[]).map((c) => c.capability);
    if (msg.id === 'params' && msg.return && typeof msg.return === 'object') parameters = Object.keys(msg.return);
    // "unavailable": compiled out (statically disabled), cannot be enabled. A build with only a nop
    // or dtrace backend still says "disabled" and writes nothing to -D: its run has no breakdown.
    if (msg.id === 'trace' && Array.isArray(msg.return)) downtimeTracePoints = (msg.return as { name: string; state: string }[]).filter((e) => e.state !== 'unavailable').map((e) => e.name);
  }
  return capabilities && parameters ? { capabilities, parameters, downtimeTracePoints } : undefined;
}

/** The build's offers on `host`, asked once per program file on this machine, per build and process elsewhere (about 0.2 s: QEMU starts with no machine and quits). */
export const migrationOffers = oncePerKey(
  (host: Host, build: QemuBuild) => buildKey(host, build),
  (host: Host, build: QemuBuild): Promise<MigrationOffers> =>
    // Named for what is asked (ASK): a change of the questions must not read older answers.
    rememberedFact('qemu-migration-offers-v2', host, build.binary, async () => {
      const r = await host.run(buildArgv(build, '-machine', 'none', '-nodefaults', '-display', 'none', '-S', '-qmp', 'stdio'), { input: ASK, timeoutMs: 20000, reject: false });
      const offers = parseOffers(r.stdout);
      if (!offers) throw new MiglabError('MISSING_DEPENDENCY', `QEMU ${versionOf(build)} (${build.binary}) did not say what it offers for migration: ${r.stderr.trim().split('\n').at(-1) || `exit ${r.exitCode}`}`);
      return offers;
    }),
);

/** What a run asks for that a build does not offer (QEMU's names). */
export function missingOffers(offers: MigrationOffers, want: { readonly capabilities: readonly string[]; readonly parameters: readonly string[] }): { capabilities: string[]; parameters: string[] } {
  return { capabilities: want.capabilities.filter((c) => !offers.capabilities.includes(c)), parameters: want.parameters.filter((p) => !offers.parameters.includes(p)) };
}
