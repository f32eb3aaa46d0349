// COLO fault tolerance as a user runs it (`miglab colo`) on the suite's shared lab: QEMU 11.1
// (fetched by `make qemu-builds`) brings a guest into lock-step on src and dst, the primary's QEMU
// is killed, the secondary fails over, and the guest goes on there: the same boot, its heartbeat
// going on from the primary's, every disk record it wrote through block replication in place, the
// client answered again. A build that cannot do COLO here is refused by what QEMU itself did.
import { describe, expect, it } from '@jest/globals';
import { execa } from 'execa';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { IMAGE_CACHE_DIR, REPO_ROOT } from '../../src/api.js';
import type { ColoRecord } from '../../src/colo/record.js';
import { cachedBuilds, qemuCacheDir } from '../../src/qemu/fetch.js';
import { sharedLabLeftovers, sharedLabPrefix, useSharedLab } from '../support/shared-lab.js';

const fx = useSharedLab('colo');
const MIGLAB = resolve(REPO_ROOT, 'bin', 'miglab.js');

function results(name: string): string {
  const d = join(fx.runDir, name);
  mkdirSync(d, { recursive: true });
  return d;
}

async function colo(name: string, ...args: string[]) {
  const r = await execa('node', [MIGLAB, 'colo', '--prefix', sharedLabPrefix(), '--json', '--quiet', '--results', results(name), ...args], { reject: false, env: { FORCE_COLOR: '0' } });
  return { ...r, record: r.stdout.trim().startsWith('{') ? (JSON.parse(r.stdout) as ColoRecord) : undefined };
}

beforeAll(async () => {
  const cached = await cachedBuilds(qemuCacheDir(IMAGE_CACHE_DIR));
  for (const series of ['10.0', '11.1']) if (!cached.some((b) => b.series === series)) throw new Error(`QEMU ${series} is not cached: run \`make qemu-builds\` (make integration does) before this suite`);
});

describe('miglab colo', () => {
  it('keeps the guest in lock-step, fails over when the primary is killed, and the guest carries on on the secondary', async () => {
    const r = await colo('failover', '--lockstep', '6', '--interval', '1000', '--disk-rate', '64', '--iperf', '2');
    const rec = r.record!;
    expect({ exit: r.exitCode, verdict: rec.verdict, failure: rec.failure }).toEqual({ exit: 0, verdict: 'failed-over', failure: undefined });
    const o = rec.outputs;
    expect(rec.inputs.qemu.version).toMatch(/^11\.1\./);
    // Lock-step, as QEMU's trace counted it: checkpoints that paused the primary's guest, each
    // client answer through colo-compare forcing one (the two guests' answers differ).
    const c = o.checkpoints!;
    expect(c.count).toBeGreaterThanOrEqual(3);
    expect(c.pauseMs.median).toBeGreaterThan(0);
    expect(c.miscompares).toBeGreaterThan(0);
    expect(c.forced).toBeGreaterThan(0);
    expect(o.probeInLockStep!.received).toBeGreaterThan(0);
    // What the connections carried, by the kernel's count: checkpoints over the migration
    // connection (with its replies back), the guest's disk writes over NBD, the probe mirrored.
    const w = o.streams!;
    expect(w.checkpoints).toBeGreaterThan(0);
    expect(w.checkpointMeanBytes).toBeGreaterThan(4096);
    expect(w.migration!.bytesFromSecondary).toBeGreaterThan(0);
    expect(w.nbd!.bytesToSecondary).toBeGreaterThan(0);
    expect(w.mirror!.bytesToSecondary).toBeGreaterThan(0);
    // The failover: COLO says it was one, the guest is the same boot with its heartbeat going on.
    expect(o.failover!.status).toMatchObject({ mode: 'none', 'last-mode': 'secondary', reason: 'request' });
    expect(o.sameBoot).toBe(true);
    expect(o.guestAfter!.bootId).toBe(o.guestBefore!.bootId);
    const hb = o.heartbeat!;
    expect(hb.secondaryFirst!.bootId).toBe(hb.primaryLast!.bootId);
    // The secondary resumes from the last checkpoint, at most one period (10 beats of 100 ms) back.
    expect(hb.secondaryFirst!.seq).toBeGreaterThanOrEqual(hb.primaryLast!.seq - 10);
    // The client: silent around the kill, then answered by the secondary, without COLO's delay.
    expect(o.serviceBackAfterKillMs).toBeGreaterThan(0);
    expect(o.clientSilenceMs).toBeGreaterThan(0);
    expect(o.probeAfter!.received).toBeGreaterThan(0);
    expect(o.probeAfter!.rttMs.median!).toBeLessThan(o.probeInLockStep!.rttMs.median!);
    // TCP into the guest moves through colo-compare, and faster on the same guest without COLO.
    expect(o.iperfInLockStep!.mbps).toBeGreaterThan(0);
    expect(o.iperfWithoutColo!.mbps).toBeGreaterThan(o.iperfInLockStep!.mbps);
    // Every record the guest wrote, through the primary's replication, is on the secondary's disk.
    expect(o.disk!.records).toBeGreaterThan(0);
    expect({ bad: o.disk!.bad, gaps: o.disk!.gaps }).toEqual({ bad: 0, gaps: 0 });
    // What ran is kept and explained: the comparator really compares (no vnet header on the taps).
    expect(rec.inputs.commands.primary!.argv.join(' ')).toContain('vnet_hdr=off');
    expect(rec.steps.map((s) => s.command.split(' ')[0])).toContain('x-colo-lost-heartbeat');
    const dir = join(results('failover'), rec.runId);
    for (const f of ['colo.json', 'report.md', 'primary.colo.trace', 'secondary.colo.trace', 'probe.csv']) expect(existsSync(join(dir, f))).toBe(true);
    expect(readFileSync(join(dir, 'report.md'), 'utf8')).toMatch(/## Failover/);
    expect(await sharedLabLeftovers()).toEqual([]);
  }, 180_000);

  it("fails over when the primary's host is cut off the network, its QEMU still running, and stops that QEMU once the secondary serves", async () => {
    const r = await colo('link', '--failure', 'link', '--lockstep', '3', '--iperf', '0');
    const rec = r.record!;
    expect({ exit: r.exitCode, verdict: rec.verdict, failure: rec.failure }).toEqual({ exit: 0, verdict: 'failed-over', failure: undefined });
    expect(rec.inputs.failure).toBe('link');
    const o = rec.outputs;
    expect(o.sameBoot).toBe(true);
    expect({ bad: o.disk!.bad, gaps: o.disk!.gaps }).toEqual({ bad: 0, gaps: 0 });
    expect(o.serviceBackAfterKillMs).toBeGreaterThan(0);
    // The secondary left COLO on the failover command, as QEMU says. Its COLO_EXIT event's reason
    // races (secondary_vm_do_failover shuts the stream down before it marks the failover
    // completed, so the incoming thread can report "error"); query-colo-status, asked after the
    // failover, reads the completed state.
    expect(o.failover!.status).toMatchObject({ mode: 'none', 'last-mode': 'secondary', reason: 'request' });
    expect(o.coloExits).toContainEqual(expect.objectContaining({ side: 'secondary', mode: 'secondary' }));
    // The lab's link is plugged back in, and nothing is left behind.
    expect((await execa('ip', ['-n', `${sharedLabPrefix()}-sw`, 'link', 'show', 'sw-src'])).stdout).not.toMatch(/state DOWN/);
    expect(await sharedLabLeftovers()).toEqual([]);
  }, 180_000);

  it("says why a build cannot do COLO, from what QEMU did: 10.0.2 ends the first copy as a plain migration", async () => {
    const r = await colo('qemu-10', '--qemu', '10.0', '--lockstep', '3');
    expect(r.exitCode).toBe(1);
    expect(r.record!.verdict).toBe('failed');
    expect(r.record!.failure).toMatch(/^QEMU 10\.0\.2 ended the first copy as a plain migration \(query-migrate: "completed"\).*use --qemu 11\.1$/);
    expect(await sharedLabLeftovers()).toEqual([]);
  }, 120_000);

  it('refuses bad input in one line before anything starts', async () => {
    const r = await execa('node', [MIGLAB, 'colo', '--prefix', sharedLabPrefix(), '--interval', '5'], { reject: false, env: { FORCE_COLOR: '0' } });
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/--interval.*too small/);
    // A link is cut only on the embedded lab's switch: refused with --hosts before any host is asked.
    const link = await execa('node', [MIGLAB, 'colo', '--hosts', join(fx.runDir, 'hosts.yaml'), '--failure', 'link'], { reject: false, env: { FORCE_COLOR: '0' } });
    expect({ exit: link.exitCode, lines: link.stderr.trim().split('\n').length }).toEqual({ exit: 2, lines: 1 });
    expect(link.stderr).toMatch(/--failure link .* not available with --hosts.*use --failure kill/);
  });
});
