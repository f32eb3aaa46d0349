// `miglab colo`: a guest in COLO lock-step on the lab's two hosts, the primary killed, failover on
// the secondary, and what it cost (src/colo/run.ts). Options are checked before anything starts.
import { rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import chalk from 'chalk';
import * as api from '../api.js';
import { checkResultsDir } from '../report/results-dir.js';
import { resolveBuild } from '../qemu/pair.js';
import { fetchSeries, qemuCacheDir } from '../qemu/fetch.js';
import { LocalHost } from '../host/local.js';
import { parseQemuChoice } from '../qemu/build.js';
import { asOption, prefixFromArgs, wholeNumberFromArgs } from '../cli/options.js';
import { EXIT } from '../cli/exit.js';
import type { CommandIo } from '../cli/io.js';
import { makePrivateDir } from '../util/private.js';
import { UsageError } from '../errors.js';
import { fmtKiB } from '../report/markdown.js';
import { withTeardown } from '../util/teardown.js';
import { runColo } from './run.js';
import { coloSettingsFromArgs, intervalsFromArgs } from './options.js';
import { runColoSeries } from './series.js';
import type { ColoRecord } from './record.js';

export async function coloCommand(a: Record<string, unknown>, io: CommandIo): Promise<number> {
  const settings = coloSettingsFromArgs(a);
  const intervals = intervalsFromArgs(a);
  const repeat = wholeNumberFromArgs(a, 'repeat', 1, 100);
  const qemu = String(a.qemu);
  const choice = asOption('--qemu', qemu, () => parseQemuChoice(qemu));
  const prefix = prefixFromArgs(a);
  const where: api.LabChoice = { lab: { prefix }, hosts: a.hosts === undefined ? undefined : String(a.hosts) };
  // The link is cut on the embedded lab's switch; a real host's link could be miglab's own SSH.
  if (settings.failure === 'link' && where.hosts !== undefined) {
    throw new UsageError("--failure link cuts a host's link on the embedded lab's switch, and is not available with --hosts (on a real host it could cut miglab's own SSH connection)", 'use --failure kill, or run on the embedded lab (without --hosts)');
  }
  const root = await checkResultsDir(String(a.results));
  const image = await api.preflightFor(where);
  // A named build is fetched (or found in the cache) before anything starts: one the archives do
  // not have is refused in one line, no lab brought up for nothing.
  if (choice.kind === 'series' && where.hosts === undefined) await fetchSeries(new LocalHost(), choice.series, { cacheDir: qemuCacheDir(api.IMAGE_CACHE_DIR), signal: io.signal, log: (line) => io.progress?.('qemu', line) });
  if (intervals.length > 1 || repeat > 1) {
    const dir = join(root, api.newRunId('colo-series'));
    const series = await withTeardown(async (td, signal) => {
      const lab = await api.useLab(td, where, signal);
      const build = await resolveBuild(lab.hosts.src, qemu, { cacheDir: qemuCacheDir(api.IMAGE_CACHE_DIR), signal, log: (line) => io.progress?.('qemu', line) });
      io.progress?.('colo', `series -> ${dir}`);
      return runColoSeries({ lab, image, build, cacheDir: api.IMAGE_CACHE_DIR, signal, progress: io.progress }, settings, intervals, repeat, dir);
    }, io.signal);
    for (const r of series.rows) {
      io.out(`${String(r.checkpointMs).padStart(6)} ms  ${r.failedOver}/${r.runs} failed over; ${r.checkpointsPerS ?? 'n/a'} checkpoints/s, paused ${r.pausedSharePct ?? 'n/a'} %; RTT ${r.rttColoMs ?? 'n/a'} ms (without ${r.rttWithoutMs ?? 'n/a'}); iperf3 ${r.iperfColoMbps ?? 'n/a'} Mbit/s (without ${r.iperfWithoutMbps ?? 'n/a'}); client silent ${r.clientSilenceMs ?? 'n/a'} ms at failover`);
    }
    io.out(`  report  ${series.markdownPath}`);
    io.json?.(series);
    return series.runs.every((r) => r.verdict === 'failed-over') ? EXIT.done : EXIT.failed;
  }
  const rec: ColoRecord = await withTeardown(async (td, signal) => {
    const lab = await api.useLab(td, where, signal);
    const build = await resolveBuild(lab.hosts.src, qemu, { cacheDir: qemuCacheDir(api.IMAGE_CACHE_DIR), signal, log: (line) => io.progress?.('qemu', line) });
    const runId = api.newRunId('colo');
    const runDir = join(root, runId);
    await makePrivateDir(runDir);
    io.progress?.('colo', `run ${runId} -> ${runDir}`);
    // Refused before it started: no run, so no folder (rmdir removes only an empty one).
    return runColo({ lab, image, build, runId, runDir, cacheDir: api.IMAGE_CACHE_DIR, td, signal, progress: io.progress }, settings).catch(async (err: unknown) => {
      await rmdir(runDir).catch(() => undefined);
      throw err;
    });
  }, io.signal);
  io.out(summary(rec, join(root, rec.runId)));
  io.json?.(rec);
  return rec.verdict === 'failed-over' ? EXIT.done : rec.verdict === 'interrupted' ? EXIT.sigint : EXIT.failed;
}

function summary(r: ColoRecord, dir: string): string {
  const o = r.outputs;
  const c = o.checkpoints;
  const head = r.verdict === 'failed-over' ? chalk.green.bold('failed over') : chalk.red.bold(r.verdict);
  const lines = [`${head}${r.failure ? `: ${r.failure}` : ''}`];
  if (c) lines.push(`  lock-step   ${c.count} checkpoints in ${(c.lockStepMs / 1000).toFixed(1)} s (${c.forced} forced by miscompares), guest paused ${c.pauseMs.median ?? 'n/a'} ms median per checkpoint${o.streams?.checkpointMeanBytes === undefined ? "" : `, ${fmtKiB(o.streams.checkpointMeanBytes, 0)} each on the wire (mean)`}`);
  if (o.probeInLockStep && o.probeAfter) lines.push(`  round trip  ${o.probeInLockStep.rttMs.median ?? 'n/a'} ms through colo-compare, ${o.probeAfter.rttMs.median ?? 'n/a'} ms without COLO (median)`);
  if (o.iperfInLockStep && o.iperfWithoutColo) lines.push(`  iperf3      ${o.iperfInLockStep.mbps} Mbit/s into the guest through colo-compare, ${o.iperfWithoutColo.mbps} Mbit/s without COLO`);
  if (o.serviceBackAfterKillMs !== undefined) lines.push(`  failover    client silent ${o.clientSilenceMs ?? 'n/a'} ms, answered ${o.serviceBackAfterKillMs} ms after the primary was lost; the secondary paused ${o.failover?.pausedMs ?? "n/a"} ms around the failover (QEMU STOP -> RESUME)`);
  if (o.guestAfter) lines.push(`  guest       ${o.sameBoot ? 'same boot' : 'NOT the same boot'} (${o.guestAfter.bootId}); disk ${o.disk ? `${o.disk.records} records, ${o.disk.bad} bad, ${o.disk.gaps} gaps` : 'not checked'}`);
  lines.push(`  report      ${join(dir, 'report.md')}`);
  return lines.join('\n');
}
