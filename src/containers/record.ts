// A container run's files: run.json (schema miglab.container-run/1), rounds.csv (one row per CRIU
// command), report.md (each step explained, every figure from the run), and criu/ (CRIU's logs and
// stats files, copied from the checkpoint export). probe.csv is written by the probe itself.
import { stringify } from 'csv-stringify/sync';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExplainedCommand } from '../util/explained-command.js';
import type { ContainerRunResult, CriuStep } from './migrate.js';
import type { MemRoundsRules, Strategy } from './strategies.js';
import type { TransferMode } from './transfer.js';
import type { IterRules } from './stop-rules.js';
import { formatWorkloadSpec, type ContainerWorkload } from './workload.js';

export const CONTAINER_RUN_SCHEMA = 'miglab.container-run/1';

/** The container's files on the export, kept with the run: its sequence log and what it printed (a failure to start). */
const CONTAINER_FILES = ['seq.log', 'workload.out'];

export interface ContainerRunRequest {
  readonly workload: ContainerWorkload;
  readonly strategy: Strategy;
  readonly transfer: TransferMode;
  readonly rules: IterRules;
  readonly memRounds?: MemRoundsRules;
  readonly memoryMiB: number;
  readonly vcpus: number;
  readonly cpuModel: string;
}

export interface ContainerRunHeader {
  readonly runId: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly request: ContainerRunRequest;
  readonly imageHash: string;
  readonly lab: string;
}

/** The verdict: intact (moved, every check passed), broken (moved, a check failed) or failed (no move). */
export type ContainerVerdict = 'intact' | 'broken' | 'failed';

// bigint (Fibonacci values past 2^53) as decimal strings.
const toJson = (v: unknown) => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x), 2);

const f1 = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : x.toFixed(1));
/** A CSV cell: empty when there is no figure (never "n/a" in a number column). */
const c1 = (x: number | null | undefined) => (x === null || x === undefined ? '' : x.toFixed(1));
const mib = (b: number) => (b / 1024 / 1024).toFixed(2);

export function roundsCsv(steps: readonly CriuStep[]): string {
  return stringify(
    steps.map((s) => ({
      kind: s.kind,
      index: s.index,
      at_ms: s.atMs,
      wall_ms: s.wallMs.toFixed(1),
      criu_maxrss_kib: s.maxRssKiB,
      freezing_ms: c1(s.dump && s.dump.freezingUs / 1000),
      frozen_ms: c1(s.dump && s.dump.frozenUs / 1000),
      memdump_ms: c1(s.dump && s.dump.memdumpUs / 1000),
      memwrite_ms: c1(s.dump && s.dump.memwriteUs / 1000),
      pages_scanned: s.dump?.pagesScanned ?? '',
      pages_skipped_parent: s.dump?.pagesSkippedParent ?? '',
      pages_written: s.dump?.pagesWritten ?? '',
      restore_ms: c1(s.restore && s.restore.restoreUs / 1000),
      pages_restored: s.restore?.pagesRestored ?? '',
      image_bytes: s.imageBytes ?? '',
      soft_dirty_after: s.dirtyPolls?.at(-1)?.dirtyPages ?? '',
      decision: s.decision ?? '',
    })),
    { header: true },
  );
}

export function verdictOf(r: ContainerRunResult): ContainerVerdict {
  return r.verify.ok ? 'intact' : 'broken';
}

/** What a failed run leaves: why (with the phase it was in) and the CRIU steps it had done. */
export interface ContainerRunFailure {
  readonly failure: string;
  readonly steps: readonly CriuStep[];
}

export function runJson(h: ContainerRunHeader, r: ContainerRunResult | undefined, failed?: ContainerRunFailure): string {
  return toJson({
    schema: CONTAINER_RUN_SCHEMA,
    ...h,
    request: { ...h.request, workload: formatWorkloadSpec(h.request.workload) },
    verdict: r ? verdictOf(r) : 'failed',
    ...(failed ? { failure: failed.failure, steps: failed.steps.map(({ command, ...s }) => ({ ...s, argv: command.argv })) } : {}),
    ...(r
      ? {
          criu: { version: r.hosts.criuVersion, check: { 'chost-src': r.hosts.src.criuCheck.words, 'chost-dst': r.hosts.dst.criuCheck.words } },
          hosts: Object.fromEntries([r.hosts.src, r.hosts.dst].map((x) => [x.name, { side: x.side, ip: x.ip, bootMs: x.bootMs, slot: x.slot }])),
          serviceIp: r.hosts.serviceIp,
          figures: r.figures,
          stopReason: r.stopReason,
          steps: r.steps.map(({ command, ...s }) => ({ ...s, argv: command.argv })),
          before: r.before,
          after: r.after,
          verify: r.verify,
          probe: r.probe && (({ rows: _rows, ...rest }) => rest)(r.probe),
          workloadArgv: r.workloadCommand.argv,
        }
      : {}),
  });
}

/** What the client's silence was made of, from this run's figures: CRIU's frozen time is only its first part. */
export function downtimeSentence(r: ContainerRunResult): string {
  const f = r.figures;
  if (f.clientDowntimeMs === null) return 'The client never heard the container again, so this run has no client downtime.';
  const parts = [`the dump ${f1(f.dumpWallMs)} ms (CRIU's frozen time ${f1(f.criuFrozenMs)} ms of it)`, `the hand-over ${f1(f.handoverMs)} ms`, `the restore ${f1(f.restoreWallMs)} ms`];
  const largest = [
    ['the dump', f.dumpWallMs],
    ['the hand-over', f.handoverMs],
    ['the restore', f.restoreWallMs],
  ].sort((a, b) => (b[1] as number) - (a[1] as number))[0]![0];
  return `The client heard nothing for ${f1(f.clientDowntimeMs)} ms: ${parts.join(', ')}, then the first reply from chost-dst. The largest part was ${largest}${f.preDumpRounds > 0 ? `; pre-dump rounds shorten the dump but leave the restore ${f.preDumpRounds + 1} image layers to read` : ''}.`;
}

function explained(c: ExplainedCommand): string[] {
  return ['```', c.argv.join(' '), '```', ...c.explained.map((g) => `- \`${g.args.join(' ')}\`: ${g.why}`)];
}

export function reportMarkdown(h: ContainerRunHeader, r: ContainerRunResult): string {
  const fig = r.figures;
  const verdict = verdictOf(r);
  const w = formatWorkloadSpec(h.request.workload);
  const lines = [
    `# Container migration ${h.runId}: ${verdict}`,
    '',
    `A \`${w}\` container moved from chost-src to chost-dst with CRIU ${r.hosts.criuVersion} (${h.request.strategy}, images by ${h.request.transfer === 'nfs' ? 'the NFS export' : 'page server'}), on lab ${h.lab}; ${h.startedAt} to ${h.finishedAt}.`,
    '',
    '## The two container hosts',
    '',
    `Two guests of the chost image ${h.imageHash} (${h.request.memoryMiB} MiB, ${h.request.vcpus} vCPU, CPU model ${h.request.cpuModel} on both: CRIU refuses to restore a dump taken on a CPU with features the other lacks), each mounting the lab's checkpoint export at /ckpt over NFSv4.1.`,
    '',
    '| host | lab host | address | control port answered after | criu check |',
    '|---|---|---|---|---|',
    ...[r.hosts.src, r.hosts.dst].map((x) => `| ${x.name} | ${x.side} | ${x.ip} | ${x.bootMs} ms | ${x.criuCheck.words} |`),
    '',
    `The container's service address ${r.hosts.serviceIp} moves with it: added on chost-src before it starts, removed there after the dump, added on chost-dst before the restore and announced by a gratuitous ARP after it.`,
    '',
    '## The container',
    '',
    'Started by the guest agent as PID 1 of a new PID namespace (so its PIDs never clash on the other guest), with its sequence log on the shared export:',
    '',
    ...explained(r.workloadCommand),
    '',
    '## What CRIU did',
    '',
    h.request.strategy === 'lazy'
      ? `lazy: \`criu dump --lazy-pages\` wrote every image but the memory and then served the pages from chost-src; on chost-dst \`criu lazy-pages\` (a userfaultfd daemon) and \`criu restore --lazy-pages\` brought the tree back without its memory, each page fetched when first touched and the rest in the background. The container ran on chost-dst while its memory was still arriving (${f1(r.figures.lazyTransferMs)} ms after the restore began, the last page had gone); CRIU's frozen time on the source covers that whole transfer, so it is not the container's pause.`
      : h.request.strategy === 'mem-rounds'
      ? `mem-rounds: right after each pre-dump the container's soft-dirty pages were counted once (the pages changed since, which a final dump then would carry; the count only grows until the next pre-dump clears it); the final dump followed when that change fitted the budget of ${h.request.memRounds?.budgetPages ?? '?'} pages, or stopped shrinking (fell by no more than ${h.request.memRounds?.plateauPct ?? '?'}% against the round before), or the rounds ran out. It ended: ${r.stopReason}.`
      : h.request.strategy === 'iterative'
      ? `Pre-dump rounds while the container ran on (each writes only pages changed since the last, tracked by the kernel's soft-dirty bits), then a final dump of what changed since the last round. Rounds stopped: ${r.stopReason}.`
      : 'One dump: the container was frozen, all of its memory and state written to the export, and killed; then restored on chost-dst.',
    '',
    '| step | at (ms) | wall (ms) | frozen (ms) | pages written | images (MiB) | restore (ms) | rules |',
    '|---|---|---|---|---|---|---|---|',
    ...r.steps.map(
      (s) =>
        `| ${s.kind === 'restore' ? 'restore' : `${s.kind} ${s.index}`} | ${s.atMs} | ${s.wallMs.toFixed(0)} | ${f1(s.dump && s.dump.frozenUs / 1000)} | ${s.dump?.pagesWritten ?? ''} | ${s.imageBytes === undefined ? '' : mib(s.imageBytes)} | ${f1(s.restore && s.restore.restoreUs / 1000)} | ${s.decision ?? ''} |`,
    ),
    '',
    '## Downtime and time',
    '',
    '| figure | value | from |',
    '|---|---|---|',
    h.request.strategy === 'lazy'
      ? "| frozen time of the final dump | not measured | CRIU 3.17.1 writes a lazy dump's stats-dump with zeros and a frozen time longer than the run, so none of it is taken; the source's tree stays frozen until its last page has gone (the lazy page transfer below) |"
      : fig.criuFrozenRejected
      ? `| frozen time of the final dump | not measured | ${fig.criuFrozenRejected} |`
      : `| frozen time of the final dump | ${f1(fig.criuFrozenMs)} ms | CRIU's stats-dump (freeze to tree killed, page writing included; transfer and restore come on top) |`,
    ...(fig.preDumpRounds > 0 ? [`| frozen time, all rounds | ${f1(fig.criuFrozenTotalMs)} ms | sum over stats-dump of every round (P.Haul's figure) |`] : []),
    `| dump command | ${f1(fig.dumpWallMs)} ms | the agent's timing of \`criu dump\` |`,
    ...(fig.transfer === 'page-server'
      ? [`| page servers finishing | ${f1(fig.pageServerWaitMs)} ms | after each dump, until chost-dst's page server had written the pages and exited (summed) |`]
      : []),
    `| hand-over | ${f1(fig.handoverMs)} ms | address moved, the source's NFS client flushed${fig.transfer === 'page-server' ? `, the other images copied next to the pages (${f1(fig.metaCopyMs)} ms)` : ''} |`,
    `| restore command | ${f1(fig.restoreWallMs)} ms | the agent's timing of \`criu restore\` (CRIU's own: ${f1(fig.criuRestoreMs)} ms) |`,
    `| client downtime | ${fig.clientDowntimeMs === null ? 'not measured: the client never heard the container again' : `${f1(fig.clientDowntimeMs)} ms`} | longest silence of the 1 kHz UDP probe at the service address |`,
    ...(fig.lazyTransferMs !== null
      ? [`| lazy page transfer | ${f1(fig.lazyTransferMs)} ms${fig.lazyPages === null ? '' : `, ${fig.lazyPages} pages`} | from the restore's start until chost-src had sent its last page (the container needed chost-src until then); pages from the lazy-pages log on chost-dst |`]
      : []),
    `| total | ${fig.totalMs} ms | first CRIU command to the first reply from chost-dst |`,
    `| images | ${mib(fig.imageBytes)} MiB | bytes CRIU wrote, all steps (${fig.transfer === 'nfs' ? 'on the export' : "the pages in chost-dst's memory, the rest on the export"}) |`,
    '',
    downtimeSentence(r),
    '',
    '## Is it the same container?',
    '',
    `Last state on chost-src before the dump: n=${r.before.n}, v=${r.before.v}, h=${r.before.h}. First state on chost-dst: n=${r.after.n}, v=${r.after.v}, h=${r.after.h}.`,
    '',
    '| check | result | detail |',
    '|---|---|---|',
    ...r.verify.checks.map((c) => `| ${c.name} | ${c.ok ? 'pass' : 'FAIL'} | ${c.detail} |`),
    '',
    '## The commands, each argument explained',
    '',
    ...r.steps.flatMap((s) => [`### ${s.kind} ${s.index} (on ${s.kind === 'restore' ? 'chost-dst' : 'chost-src'})`, '', ...explained(s.command), '']),
    'Files: run.json, rounds.csv (one row per CRIU command), probe.csv (every probe), plots/ (downtime-parts, pages-per-step), criu/ (CRIU\'s logs and stats per step).',
    '',
  ];
  return lines.join('\n');
}

/** The container's own files (its sequence log, its output) and CRIU's logs and stats of every step, from the export into the run folder. */
async function copyCriuFiles(imagesDir: string, runDir: string): Promise<void> {
  if (!existsSync(imagesDir)) return;
  for (const step of await readdir(imagesDir, { withFileTypes: true })) {
    if (step.isFile() && CONTAINER_FILES.includes(step.name)) await copyFile(join(imagesDir, step.name), join(runDir, step.name));
    if (!step.isDirectory()) continue;
    const to = join(runDir, 'criu', step.name);
    for (const f of await readdir(join(imagesDir, step.name))) {
      if (!/\.log$|^stats-/.test(f)) continue;
      await mkdir(to, { recursive: true });
      await copyFile(join(imagesDir, step.name, f), join(to, f));
    }
  }
}

/**
 * The run folder. `imagesDir` is the run's directory on the checkpoint export: CRIU's logs are
 * copied from it, for a failed run too (they say why, in CRIU's words).
 */
export async function writeContainerRun(runDir: string, h: ContainerRunHeader, imagesDir: string, r: ContainerRunResult | undefined, failed?: ContainerRunFailure): Promise<void> {
  await mkdir(runDir, { recursive: true });
  await writeFile(join(runDir, 'run.json'), `${runJson(h, r, failed)}\n`);
  await copyCriuFiles(imagesDir, runDir);
  if (!r) return;
  await writeFile(join(runDir, 'rounds.csv'), roundsCsv(r.steps));
  await writeFile(join(runDir, 'report.md'), reportMarkdown(h, r));
  await drawRunPlots(runDir, r);
}

/** The bars of plots/downtime-parts: the client's silence beside the parts it was made of. */
export function downtimeParts(r: ContainerRunResult): { part: string; ms: number }[] {
  const f = r.figures;
  const parts: { part: string; ms: number | null }[] = [
    { part: "CRIU's frozen time", ms: f.criuFrozenMs },
    { part: 'dump command', ms: f.dumpWallMs },
    { part: 'hand-over', ms: f.handoverMs },
    { part: 'restore command', ms: f.restoreWallMs },
    { part: 'client downtime', ms: f.clientDowntimeMs },
  ];
  return parts.filter((p): p is { part: string; ms: number } => p.ms !== null);
}

/** plots/: what the client's downtime was made of, and the pages each CRIU step wrote. */
async function drawRunPlots(runDir: string, r: ContainerRunResult): Promise<void> {
  // The plotting stack loads in about 0.4 s: only when a run has something to draw.
  const { barChart, renderChart } = await import('../plot/index.js');
  await renderChart(
    barChart({ title: "The client's downtime and its parts", data: downtimeParts(r), category: { field: 'part', title: '' }, value: { field: 'ms', title: 'time', unit: 'ms' } }),
    join(runDir, 'plots', 'downtime-parts'),
  );
  const pages = r.steps.filter((s) => s.dump).map((s) => ({ step: `${s.kind} ${s.index}`, pages: s.dump!.pagesWritten }));
  if (pages.length > 0) {
    await renderChart(
      barChart({ title: 'Pages written by each CRIU step', data: pages, category: { field: 'step', title: '' }, value: { field: 'pages', title: 'pages written', unit: 'pages of 4 KiB' } }),
      join(runDir, 'plots', 'pages-per-step'),
    );
  }
}
