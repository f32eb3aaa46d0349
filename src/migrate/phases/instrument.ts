// Instrument (recorded as part of the `prepare` phase): the caller's afterBoot hook, the guest's
// agent (answering before anything depends on it), the workload at its rate, and the client's
// downtime probe, each stopped at teardown.
import { join } from 'node:path';
import { AgentClient } from '../../guest/agent-client.js';
import { startProbe, type ProbeHandle } from '../../guest/probe.js';
import { ensureProbeTool } from '../../guest/probe-tool.js';
import { sleep } from '../../util/deadline.js';
import { formatWorkload } from '../../workload/spec.js';
import { startWorkload, stopWorkload, WORKLOAD_SETTLE_MS, workloadStatus } from '../../workload/run.js';
import { switchedOver, timed, type Run } from '../run-state.js';
import { resultsWriteError } from '../watch.js';
import type { Booted } from './boot.js';
import { startSilenceCapture, type Capture } from './silence.js';

/** The guest is measured: its agent reached, its workload running, the probe listening. */
export interface Instrumented {
  readonly agent: AgentClient;
  /** The client's UDP probe, when the scenario asked for it. */
  readonly probe?: ProbeHandle;
  /** With the probe: the switch's view of the guest arriving at the destination, or why none. */
  readonly capture?: Capture;
}

export async function instrument(run: Run, booted: Booted): Promise<Instrumented> {
  const { ctx, scenario, guard, td, lab } = run;
  const { src, dst, slot } = booted;
  await ctx.hooks?.afterBoot?.({ src, dst, machine: slot.machine, lab, guestIp: slot.guestIp });
  // The probe tool runs on the lab's client host: put there (a no-op on the embedded lab).
  const toolPath = await lab.placeFile('client', await ensureProbeTool({ cacheDir: ctx.cacheDir, signal: guard.signal }));
  const agent = new AgentClient({ host: lab.hosts.client.host, guestIp: slot.guestIp, toolPath });
  // One serving probe for the run's requests (a line each, not a command each); ended after every
  // later teardown step that still asks the agent (they run first).
  agent.keepOpen();
  td.defer('end the guest agent session', () => agent.close());
  // The capture on the switch starts meanwhile (tcpdump takes 0.1-0.3 s to listen): awaited
  // before the turn and the probe below, so it listens before either (its own failures come back
  // as "no capture", noted).
  const capturing = scenario.clientProbe ? startSilenceCapture(run, slot.machine.mac) : undefined;
  capturing?.catch(() => undefined); // an abort meanwhile is the run's; awaited below
  const needsAgent = scenario.clientProbe || scenario.workload.kind !== 'idle' || scenario.faults.some((f) => f.kind === 'guest-oom');
  // The agent must answer before the probe starts, or its first silence is not the migration's.
  if (needsAgent) await timed(run, 'agentReachable', () => agent.waitReachable({ timeoutMs: 30000, signal: guard.signal }));
  const onLogError = resultsWriteError(guard);
  if (scenario.workload.kind !== 'idle') {
    run.progress('workload', `starting ${formatWorkload(scenario.workload)} in the guest`);
    const logFile = join(ctx.runDir, 'workload.log');
    await startWorkload(agent, scenario.workload, { signal: guard.signal, logFile, onLogError: (err) => onLogError(logFile, err) });
    td.defer('stop the guest workload', async () => {
      // Stopped already by the checks after the migration (their final status is the run's): not asked twice.
      if (run.out.workloadAfter !== undefined) return;
      // Nobody left to ask (the guest's QEMU or agent is gone, or the lab): asking would only time out.
      if (guestAgentGone(run, booted)) return;
      await stopWorkload(agent, scenario.workload);
    });
    // A window to measure the rate it achieves before the migration (it is at its rate already).
    await sleep(WORKLOAD_SETTLE_MS, guard.signal);
    run.out.workloadBefore = await workloadStatus(agent, scenario.workload, { signal: guard.signal });
  }
  // Listening before the turn and the probe, so the probe's first frames on the destination's port
  // are seen and a hand-over does not wait for tcpdump (it costs nothing while the guest is elsewhere).
  const capture = await capturing;
  // The caller's turn to migrate (a batch's slot on the link): the guest waits with its workload
  // at its rate, the probe not yet started (1000 answers a second cost a TCG guest CPU that a
  // migration in progress beside it needs).
  const turn = ctx.hooks?.beforeMigrate;
  if (turn) await timed(run, 'waitForTurn', () => turn());
  if (!scenario.clientProbe) return { agent };
  const logFile = join(ctx.runDir, 'probe.csv');
  const probe = startProbe({
    host: lab.hosts.client.host,
    guestIp: slot.guestIp,
    intervalUs: scenario.probeIntervalUs,
    // A person may take a while to type the migrate command.
    maxDurationMs: scenario.timeoutMs + 120000 + (ctx.hooks?.byHand?.waitMs ?? 0),
    toolPath,
    logFile,
    onLogError: (err) => onLogError(logFile, err),
  });
  run.held.probe = probe;
  td.defer(`stop the downtime probe (pid ${probe.pid})`, () => probe.stop().then(() => undefined));
  run.progress('probe', `UDP probe every ${scenario.probeIntervalUs / 1000} ms from ${lab.hosts.client.netns ?? lab.hosts.client.where}`);
  return { agent, probe, capture };
}

/** The guest's agent cannot answer any more: its QEMU, its kernel, itself or the lab is gone. */
function guestAgentGone(run: Run, { src, dst }: Booted): boolean {
  const holder = switchedOver(run) ? dst : src;
  return holder.process.hasExited || run.out.guestTrouble !== undefined || run.lab.stillUp() !== undefined;
}
