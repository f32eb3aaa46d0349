// Section 5: fault tolerance with COLO, the homework's questions E and F answered from this run.
// The guest is put in COLO lock-step on src and dst (QEMU 11.1, fetched on first use: the only
// build that holds lock-step here), the primary's QEMU is killed and the secondary fails over
// (src/colo/run.ts). A build or lab that cannot do it makes the section say why; the homework's
// other sections stand either way.
import { join } from 'node:path';
import { describeError } from '../errors.js';
import { runColo } from '../colo/run.js';
import { COLO_DEFAULTS, COLO_QEMU } from '../colo/options.js';
import type { ColoRecord } from '../colo/record.js';
import { resolveBuild } from '../qemu/pair.js';
import { qemuCacheDir } from '../qemu/fetch.js';
import { makePrivateDir } from '../util/private.js';
import { Teardown } from '../util/teardown.js';
import type { HomeworkContext } from './context.js';
import type { FaultTolerance } from '../results/homework.js';

export type { FaultTolerance };

export async function measureFaultTolerance(ctx: HomeworkContext): Promise<FaultTolerance> {
  const c = ctx.spec.colo;
  const runDir = join(ctx.dir, 'colo');
  const td = new Teardown();
  try {
    ctx.progress('colo', `QEMU ${COLO_QEMU}: lock-step for ${c.lockStepS} s, then the primary killed`);
    let build;
    try {
      build = await resolveBuild(ctx.lab.hosts.src, COLO_QEMU, { cacheDir: qemuCacheDir(ctx.cacheDir), signal: ctx.signal, log: (line) => ctx.progress('qemu', line) });
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      return { ran: false, why: `QEMU ${COLO_QEMU}, the build COLO needs here, is not available: ${describeError(err)}` };
    }
    await makePrivateDir(runDir);
    const rec = await runColo(
      { lab: ctx.lab, image: ctx.image, build, runId: `${ctx.runId}-colo`, runDir, cacheDir: ctx.cacheDir, td, signal: ctx.signal, progress: ctx.progress },
      { ...COLO_DEFAULTS, checkpointMs: c.checkpointMs, lockStepS: c.lockStepS, iperfS: c.iperfS },
    );
    if (rec.verdict === 'interrupted') throw new Error('interrupted');
    return summarize(rec);
  } finally {
    await td.run();
  }
}

function summarize(r: ColoRecord): FaultTolerance {
  const o = r.outputs;
  const c = o.checkpoints;
  return {
    ran: true,
    verdict: r.verdict,
    why: r.failure,
    qemuVersion: r.inputs.qemu.version,
    checkpointMs: r.inputs.checkpointMs,
    lockStepS: r.inputs.lockStepS,
    firstCopyMs: o.lockStepAfterMs,
    lockStepMs: c?.lockStepMs,
    checkpoints: c?.count,
    forcedCheckpoints: c?.forced,
    miscompares: c?.miscompares,
    pauseMedianMs: c?.pauseMs.median,
    pauseP90Ms: c?.pauseMs.p90,
    pausedShare: c?.pausedShare,
    dirtyPagesMedian: c?.dirtyPages.median,
    checkpointMeanBytes: o.streams?.checkpointMeanBytes,
    checkpointStreamMbps: o.streams?.migration?.mbpsToSecondary,
    rttLockStepMs: o.probeInLockStep?.rttMs.median,
    rttWithoutColoMs: o.probeAfter?.rttMs.median,
    iperfLockStepMbps: o.iperfInLockStep?.mbps,
    iperfWithoutColoMbps: o.iperfWithoutColo?.mbps,
    clientSilenceMs: o.clientSilenceMs,
    serviceBackAfterKillMs: o.serviceBackAfterKillMs,
    failoverPauseMs: o.failover?.pausedMs,
    sameBoot: o.sameBoot,
    diskRecords: o.disk?.records,
    diskBad: o.disk?.bad,
    diskGaps: o.disk?.gaps,
  };
}
