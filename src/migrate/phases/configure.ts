// Configure (recorded as part of the `prepare` phase): QEMU's version, the events of both sides
// recorded from now on, the migration driver over the scenario's monitor, then capabilities on
// both sides, parameters (and TLS) where each side needs them, and what the source then says is
// in force: the report records what QEMU took, not only what was asked.
import { HmpClient } from '../../hmp/client.js';
import type { Vm } from '../../machine/vm.js';
import { eventTimeMs } from '../../qmp/types.js';
import type { Teardown } from '../../util/teardown.js';
import { measureOffsets, sideOffsetMs } from '../clocks.js';
import { HmpMigrationDriver, QmpMigrationDriver, tlsParameters, type MigrationDriver } from '../monitor.js';
import { CALL, type Run } from '../run-state.js';
import type { Booted } from './boot.js';
import { scenarioCapabilities } from '../scenario.js';
import { startPolicy, type PolicyRun } from '../../switchover/policies.js';
import { formatPolicy, initialDowntimeLimitMs, parsePolicy } from '../../switchover/spec.js';

/** Both sides are set up for the migration. */
export interface Configured {
  /** The source's driver over the scenario's monitor: it starts, samples and cancels the migration. */
  readonly driver: MigrationDriver;
  /** The destination's, over QMP (capabilities, migrate-incoming, a post-copy's recovery); its commands are recorded too. */
  readonly dstDriver: QmpMigrationDriver;
  readonly qemu: { readonly version: string; readonly package?: string };
  /** The switchover policy, started: the migration loop feeds it every sample. */
  readonly policy: PolicyRun;
  /** query-migrate-parameters on the source after set-up. */
  readonly parametersInForce: Record<string, unknown>;
  /** query-migrate-capabilities on the source after set-up. */
  readonly capabilitiesInForce: Record<string, boolean>;
}

export type ConfigureRun = Pick<Run, 'scenario' | 'guard' | 'td' | 'events' | 'faults' | 'record' | 'sourceCompletedAtMs' | 'out'> & { readonly lab: Pick<Run['lab'], 'clockOffset'> };

export async function configure(run: ConfigureRun, booted: Booted): Promise<Configured> {
  const { scenario, guard, td } = run;
  const { src, dst } = booted;
  // Both sides say what they are: with two builds (a cross-version migration) they differ.
  const [v, dv] = await Promise.all([src.qmp.queryVersion({ ...CALL, signal: guard.signal }), dst.qmp.queryVersion({ ...CALL, signal: guard.signal })]);
  const qemu = { version: `${v.major}.${v.minor}.${v.micro}`, package: v.package || undefined };
  run.record.qemu = { ...run.record.qemu, ...qemu, destination: { version: `${dv.major}.${dv.minor}.${dv.micro}`, package: dv.package || undefined } };
  // Before any event: their times are corrected with the hosts' clock offsets.
  const clocks = await measureOffsets(run.lab, guard.signal);
  run.out.clocks = { method: clocks.method, before: clocks.offsets };
  recordEvents(run, booted);

  const driver: MigrationDriver = scenario.monitor === 'qmp' ? new QmpMigrationDriver(src.qmp) : new HmpMigrationDriver(await connectHmp(src, td, guard.signal));
  const dstDriver = new QmpMigrationDriver(dst.qmp);
  // Live lists: a set-up step QEMU refuses still leaves what was sent before it in the record.
  run.record.monitorCommands = driver.sent;
  run.record.destinationMonitorCommands = dstDriver.sent;
  // `events` makes QEMU send MIGRATION and MIGRATION_PASS; capabilities such as multifd and
  // postcopy-ram must be set on both sides.
  const caps = { events: true, ...scenarioCapabilities(scenario) };
  await driver.setCapabilities(caps);
  await dstDriver.setCapabilities(caps);
  await driver.setParameters(scenario.parameters);
  if (scenario.parameters.multifdChannels !== undefined) await dstDriver.setParameters({ multifdChannels: scenario.parameters.multifdChannels });
  if (scenario.tls) {
    await driver.setTls(tlsParameters('source', booted.slot.dstAddress));
    await dstDriver.setTls(tlsParameters('destination', booted.slot.dstAddress));
  }
  // A destination started with -incoming defer listens only now, its capabilities set.
  if (dst.plan.incomingDeferred) await dstDriver.listen(booted.slot.uri);
  const policySpec = parsePolicy(scenario.switchover);
  const first = initialDowntimeLimitMs(policySpec);
  if (first !== undefined) await driver.setParameters({ downtimeLimitMs: first });
  const inForce = await readInForce(run, src);
  // The policy starts from the downtime-limit QEMU says is in force (its 300 ms unless set).
  const limit = inForce.parametersInForce['downtime-limit'];
  const policy = startPolicy(policySpec, { memoryMiB: scenario.guest.memoryMiB, downtimeLimitMs: typeof limit === 'number' ? limit : 300 });
  run.out.switchover = { policy: formatPolicy(policySpec), decisions: [] };
  return { driver, dstDriver, qemu, policy, ...inForce };
}

/** What the source says is in force now (recorded as the run's): parameters and capabilities. */
export async function readInForce(run: Pick<Run, 'guard' | 'record'>, src: Vm): Promise<Pick<Configured, 'parametersInForce' | 'capabilitiesInForce'>> {
  const parametersInForce = await src.qmp.queryMigrateParameters({ ...CALL, signal: run.guard.signal });
  run.record.parametersInForce = parametersInForce;
  const capabilitiesInForce = await src.qmp.queryMigrateCapabilities({ ...CALL, signal: run.guard.signal });
  run.record.capabilitiesInForce = capabilitiesInForce;
  return { parametersInForce, capabilitiesInForce };
}

/**
 * Record events on both sides, timed from the migrate command (QEMU stamps each event when it
 * happens; Node may read a burst of them later). The source's tell the faults where it is.
 */
function recordEvents(run: ConfigureRun, { src, dst }: Booted): void {
  const { guard } = run;
  for (const [side, vm] of [['source', src], ['destination', dst]] as const) {
    vm.qmp.onEvent((e) => {
      const tMs = guard.migrateSentAt ? eventTimeMs(e) - sideOffsetMs(run.out.clocks?.before, side) - guard.migrateSentAt : 0;
      run.events.push({ tMs, side, event: e.event, data: e.data });
      if (side !== 'source') return;
      if (e.event === 'MIGRATION') {
        const status = String((e.data as { status?: unknown }).status);
        if (status === 'completed') run.sourceCompletedAtMs ??= tMs;
        run.faults.observe({ tMs, status });
      }
      if (e.event === 'MIGRATION_PASS') run.faults.observe({ tMs, pass: Number((e.data as { pass?: unknown }).pass) });
    });
  }
}

async function connectHmp(vm: Vm, td: Teardown, signal?: AbortSignal): Promise<HmpClient> {
  const path = vm.plan.hmpSocket!;
  const hmp = await HmpClient.connectUnix(path, { timeoutMs: 10000, signal, open: () => vm.host.connectUnix(path) });
  td.defer(`close HMP of ${vm.label}`, () => hmp.close());
  return hmp;
}
