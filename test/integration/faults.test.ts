// Faults, for real: each kind miglab injects, on a real lab with real 128 MiB TCG guests, must end
// the way src/fault/outcome.ts says (the destination killed or cut off: failed or cancelled, the
// source running on with its heartbeat and its dirtied memory intact; the source killed: the
// destination stops; a short outage: completed with integrity; the NFS server gone and the guest
// out of memory: failed, naming the cause at once), and leave nothing behind. Also: figures QEMU
// did not give are absent, a run that cannot keep its results stops cleanly, and a guest cannot
// reach the destination's migration port. One lab for the file.
import { execa } from 'execa';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { migrateOnLab } from '../../src/api.js';
import { judgeFaults } from '../../src/fault/outcome.js';
import { AgentClient } from '../../src/guest/agent-client.js';
import { tcpConnectFrom } from '../../src/guest/tcp-connect.js';
import { labStatus } from '../../src/lab/index.js';
import { describeListener, listListeners } from '../../src/lab/listeners.js';
import type { RunReport } from '../../src/migrate/report.js';
import { parseScenario, type ScenarioInput } from '../../src/migrate/scenario.js';
import { useTestLab } from '../support/lab-fixture.js';

// Its own lab, not the suite's shared one: its faults kill the lab's NFS server and unplug its
// links (each run restores them, checked after it), and a restore that failed must not break
// every file after this one.
const PREFIX = 'mlft';
const fx = useTestLab(PREFIX);

/**
 * A 128 MiB guest whose migration takes several seconds (8 MiB/s), so a fault lands mid-way; a
 * short stall limit keeps the stalled cases quick.
 */
function scenario(extra: Partial<ScenarioInput>): ScenarioInput {
  return { guest: { memoryMiB: 128, accel: 'tcg', diskSizeMiB: 16 }, parameters: { maxBandwidthMiBps: 8 }, timeoutMs: 40000, stallAfterMs: 6000, ...extra } as ScenarioInput;
}

async function run(extra: Partial<ScenarioInput>, dir = fx.runDir, hooks?: Parameters<typeof migrateOnLab>[0]['hooks']): Promise<RunReport> {
  const { report } = await migrateOnLab({ lab: fx.lab, image: fx.image, scenario: parseScenario(scenario(extra)), dir, hooks });
  return report;
}

/** Every fault of the run ended as it must; and the lab is healthy again for the next run. */
async function expectAsRequired(r: RunReport): Promise<void> {
  const j = judgeFaults(r);
  expect(j.length).toBeGreaterThan(0);
  for (const x of j) expect({ fault: x.fault, misses: x.misses }).toEqual({ fault: x.fault, misses: [] });
  expect(r.outputs.leftovers).toEqual([]);
  expect(r.outputs.teardownProblems).toBeUndefined();
  expect((await labStatus(PREFIX)).problems).toEqual([]);
}

describe('the destination lost', () => {
  it('killed mid-migration: failed, the source runs on with its dirtied memory intact', async () => {
    const r = await run({ workload: 'dirty:16M@4M/s,random', faults: ['kill-dst@pass:2'] });
    await expectAsRequired(r);
    expect(r.verdict).toBe('failed');
    expect(r.failure).toMatch(/QEMU reports the migration failed.*the destination QEMU .* was killed by SIGKILL \(the kill-dst@pass:2 fault\)/);
    expect(r.failedIn).toEqual({ phase: 'conclude', code: 'QEMU_FAILED' });
    expect(r.outputs.integrity).toMatchObject({ ok: true, checked: 'memory' });
    expect(r.outputs.integrityCheckedOn).toBe('source');
    expect(r.outputs.after?.source).toMatchObject({ process: 'running', status: 'running', heartbeat: 'continuing' });
    // QEMU gave no figures for a failed migration: none are made up.
    expect(r.outputs.downtimeMs).toBeUndefined();
    expect(r.outputs.figureSources).toEqual({ totalTimeMs: 'missing', downtimeMs: 'missing' });
  }, 90000);

  it('frozen past the stall limit: stalled (not "did not converge"), with the evidence; the source runs on', async () => {
    const r = await run({ faults: ['freeze-dst@1s'] });
    await expectAsRequired(r);
    expect(r.verdict).toBe('stalled');
    expect(r.outputs.stall).toMatchObject({ status: 'active' });
    expect(r.outputs.stall!.forMs).toBeGreaterThanOrEqual(6000);
    // What the cancelled migration had left, from its last active sample.
    expect(r.outputs.lastActive?.remainingBytes).toBeGreaterThan(0);
    expect(r.failure).toMatch(/^stalled: no byte moved for \d+ ms .*; cancelled; the source kept running \(running\)/);
    expect(r.failedIn).toEqual({ phase: 'conclude', code: 'STALLED' });
  }, 90000);

  it('cut off for good: stalled, the source runs on', async () => {
    const r = await run({ faults: ['link-down@1s'] });
    await expectAsRequired(r);
    expect(r.verdict).toBe('stalled');
    // The link came back at teardown.
    expect(r.outputs.faults![0]).toMatchObject({ undo: "the destination host's link set up again" });
  }, 90000);
});

describe('the source lost', () => {
  it('killed mid-migration: failed, and the destination stops', async () => {
    const r = await run({ faults: ['kill-src@1s'] });
    await expectAsRequired(r);
    expect(r.failure).toMatch(/^the source QEMU \(src, pid \d+\) was killed by SIGKILL \(the kill-src@1s fault\)$/);
    expect(r.failedIn).toMatchObject({ code: 'MIGRATION_FAILED', watcher: 'qemu-exit' });
    expect(r.outputs.after?.destination.process).toBe('exited');
  }, 90000);
});

describe('the source lost after the switchover', () => {
  it('is harmless: completed, the guest runs on at the destination, figures from what QEMU said before it died', async () => {
    const r = await run({ faults: ['kill-src@completed'] });
    await expectAsRequired(r);
    expect(r.verdict).toBe('completed');
    expect(r.outputs.heartbeat).toMatchObject({ continuous: true });
    expect(r.outputs.after?.destination).toMatchObject({ process: 'running', status: 'running', heartbeat: 'continuing' });
    // QEMU's own figures died with the source unless it had given them already; nothing is made up.
    expect(['qemu', 'events']).toContain(r.outputs.figureSources?.totalTimeMs);
    expect(r.outputs.totalTimeMs).toBeGreaterThan(0);
  }, 90000);
});

describe('short outages', () => {
  it('a link down for 2 s: the migration completes, the dirtied memory intact on the destination', async () => {
    const r = await run({ workload: 'dirty:16M@4M/s,random', faults: ['link-down:2s@1s'] });
    await expectAsRequired(r);
    expect(r.ok).toBe(true);
    expect(r.failedIn).toBeUndefined();
    expect(r.outputs.integrity).toMatchObject({ ok: true });
    expect(r.outputs.integrityCheckedOn).toBe('destination');
    expect(r.outputs.faults![0]!.undoneAtMs! - r.outputs.faults![0]!.firedAtMs!).toBeGreaterThanOrEqual(2000);
    expect(r.outputs.figureSources).toEqual({ totalTimeMs: 'qemu', downtimeMs: 'qemu' });
  }, 90000);
});

describe('post-copy cut off', () => {
  it('a link down for 3 s mid-post-copy: paused, recovered (migrate-recover, resume) and completed, the dirtied memory intact', async () => {
    // Post-copy from 0.5 s (pre-copy held to 8 MiB/s, so it does not finish first), itself held to
    // 16 MiB/s so the cut at 1.5 s lands while pages remain on the source and the destination
    // already runs the guest: the case QEMU can recover.
    //
    // Not every time: in about 1 run of 4 here QEMU 7.2's destination stops answering its monitor
    // once the link is cut (its main thread waits for a page that cannot come; its MIGRATION
    // events still arrive), so it cannot be paused and recovered: the run must then say the guest
    // is lost, and the case is tried again (up to 3 runs, the wait for a recovery cut to 15 s).
    // QMP's out-of-band commands (migrate-pause, migrate-recover) are QEMU's way around that main
    // thread; miglab does not use them yet.
    let r: RunReport | undefined;
    for (let attempt = 1; attempt <= 3; attempt++) {
      r = await run({
        workload: 'dirty:16M@4M/s,random',
        capabilities: { 'postcopy-ram': true },
        postcopyAfterMs: 500,
        postcopyRecoverWithinMs: 15000,
        parameters: { maxBandwidthMiBps: 8, maxPostcopyBandwidthMiBps: 16 },
        faults: ['link-down:3s@1500ms'],
      });
      if (r.ok) break;
      expect(r.failedIn).toMatchObject({ code: 'POSTCOPY_LOST' });
      expect(r.failure).toMatch(/not paused on both sides within 15000 ms of the stall \(source paused, destination not paused\); the guest is lost/);
      expect(r.outputs.leftovers).toEqual([]);
    }
    r = r!;
    await expectAsRequired(r);
    expect(r.failure).toBeUndefined();
    expect(r.ok).toBe(true);
    const pc = r.outputs.postcopy!;
    expect(pc.startedAtMs).toBeGreaterThanOrEqual(500);
    expect(pc.recoveries).toHaveLength(1);
    const rec = pc.recoveries[0]!;
    expect(rec).toMatchObject({ ok: true, trigger: expect.stringMatching(/^no byte moved for \d+ ms in post-copy \(postcopy-active\)$/) });
    // Stalled from the cut on, running again only once the link was back.
    expect(rec.atMs).toBeGreaterThanOrEqual(r.outputs.faults![0]!.firedAtMs! - 200);
    expect(pc.enteredAtMs).toBeLessThan(r.outputs.faults![0]!.firedAtMs!);
    expect(rec.pausedAtMs).toBeGreaterThanOrEqual(rec.atMs);
    expect(rec.recoveredAtMs).toBeGreaterThan(r.outputs.faults![0]!.undoneAtMs!);
    expect(rec.attempts.at(-1)!.outcome).toMatch(/^resumed/);
    // The destination's vCPUs waited for pages, the outage among them; its page faults were served.
    expect(pc.blocktimeMs).toBeGreaterThan(0);
    expect(pc.requests).toBeGreaterThan(0);
    expect(pc.bytes).toBeGreaterThan(0);
    expect(r.outputs.integrity).toMatchObject({ ok: true });
    expect(r.outputs.integrityCheckedOn).toBe('destination');
    expect(r.outputs.heartbeat).toMatchObject({ continuous: true, sameBoot: true });
    // Paused and resumed through the source's monitor; never cancelled: a post-copy cannot be.
    const sent = r.inputs.monitorCommands!.join('\n');
    expect(sent).toMatch(/"migrate-pause"/);
    expect(sent).toMatch(/"resume":true/);
    expect(sent).not.toMatch(/migrate_cancel/);
  }, 240000);
});

describe('the lab and the guest in trouble', () => {
  it('the NFS server killed: failed within seconds, naming NFS; the server is back afterwards', async () => {
    const r = await run({ faults: ['nfs-down@1s'] });
    await expectAsRequired(r);
    const [j] = judgeFaults(r);
    expect(j!.detectMs).toBeLessThan(15000);
    expect(j!.detectedAs).toMatch(/^nfs: the lab's NFS server \(pid \d+\) is gone/);
    expect(r.failure).toMatch(/the lab's NFS server \(pid \d+\) is gone/);
    expect(r.failedIn).toMatchObject({ code: 'MIGRATION_FAILED', watcher: 'nfs' });
  }, 90000);

  it("the guest's OOM killer ends its agent: failed at once, quoting the console", async () => {
    const r = await run({ faults: ['guest-oom@1s'] });
    await expectAsRequired(r);
    expect(r.outputs.guestTrouble).toMatchObject({ side: 'source', kind: 'oom' });
    expect(r.outputs.guestTrouble!.lines.at(-1)).toMatch(/Out of memory: Killed process \d+ \(miglab-agent\)/);
    // The agent that beats is dead: the heartbeat is not said to go on.
    expect(r.outputs.after?.source.heartbeat).toBe('silent');
    expect(judgeFaults(r)[0]!.detectMs).toBeLessThan(10000);
  }, 90000);
});

describe('results that cannot be kept', () => {
  it('a results disk that fills mid-run stops the run cleanly: nothing left running, the reason named', async () => {
    const mnt = join(fx.runDir, 'small');
    mkdirSync(mnt);
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=70m', 'miglab-test', mnt]);
    try {
      const err = await run({}, mnt, {
        // The check before the run passed (70 MiB free); now the disk fills up to the last byte.
        afterBoot: async () => {
          try {
            writeFileSync(join(mnt, 'filler'), Buffer.alloc(72 * 1024 * 1024));
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
          }
        },
      }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'RESULTS', message: expect.stringMatching(/ended failed \(cannot write .*ENOSPC.*\), but its results could not be written/) });
      expect(fx.lab.liveProcesses()).toEqual([]);
      expect(await fx.lab.tapExists('src', 'tap-g0')).toBe(false);
    } finally {
      await execa('umount', [mnt]);
      rmSync(mnt, { recursive: true, force: true });
    }
  }, 90000);
});

describe("the destination's migration port", () => {
  it('refuses a guest and the client host, while nothing in the lab listens on a wildcard address', async () => {
    const seen: Record<string, string> = {};
    const r = await run({ parameters: {} }, fx.runDir, {
      afterBoot: async ({ lab, guestIp }) => {
        const port = 4444;
        const agent = new AgentClient({ host: lab.hosts.client.host, guestIp, toolPath: fx.toolPath });
        seen.guest = (await agent.tcpConnect(lab.hosts.dst.ip, port, { timeoutMs: 3000 })).result;
        seen.client = (await tcpConnectFrom(lab.hosts.client.host, fx.toolPath, lab.hosts.dst.ip, port, { timeoutMs: 3000 })).result;
        for (const h of Object.values(lab.hosts)) {
          const wild = (await listListeners(h.host, { timeoutMs: 5000 })).filter((l) => l.wildcard);
          if (wild.length > 0) seen[h.where] = wild.map(describeListener).join(', ');
        }
      },
    });
    expect({ seen, failure: r.failure }).toEqual({ seen: { guest: 'refused', client: 'refused' }, failure: undefined });
    // The refused attempts did not disturb the destination: the migration from src went through.
    expect(r.ok).toBe(true);
  }, 90000);
});
