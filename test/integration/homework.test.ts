// The reduced homework end to end (what `make demo` runs, with short durations): every section
// present in the report and backed by measured numbers, the plots and CSVs written, and the
// suite's shared lab left as the homework found it.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runHomework } from '../../src/homework/run.js';
import { QUICK_HOMEWORK } from '../../src/homework/spec.js';
import { sharedLabChoice, sharedLabLeftovers } from '../support/shared-lab.js';

const results = mkdtempSync(join(tmpdir(), 'miglab-it-homework-'));
afterAll(() => rmSync(results, { recursive: true, force: true }));

describe('miglab homework (quick)', () => {
  it('measures every section and writes the report', async () => {
    const out = await runHomework({ spec: QUICK_HOMEWORK, lab: sharedLabChoice(), resultsRoot: results });
    const r = out.results;

    // 1. KVM vs TCG: TCG measured; KVM either measured or marked unusable with a reason.
    const tcg = r.accel.find((a) => a.accel === 'tcg')!;
    expect(tcg.available).toBe(true);
    expect(tcg.cpuOpsPerS).toBeGreaterThan(0);
    expect(tcg.memMiBps).toBeGreaterThan(0);
    expect(tcg.perf!.taskClockMs).toBeGreaterThan(0);
    const kvm = r.accel.find((a) => a.accel === 'kvm')!;
    if (kvm.available) expect(kvm.cpuOpsPerS).toBeGreaterThan(0);
    else expect(kvm.reason.length).toBeGreaterThan(10);
    // Unsupported counters are marked, never reported as zero.
    for (const c of [tcg.perf!.cycles, tcg.perf!.instructions]) {
      if (!c.supported) expect(c.value).toBeNull();
    }

    // 2. Devices: every NIC measured both ways; disks found under their own names.
    expect(r.devices.map((d) => d.nic)).toEqual(QUICK_HOMEWORK.nics);
    for (const d of r.devices) {
      expect(d.tcpToGuestMbps).toBeGreaterThan(1);
      expect(d.tcpFromGuestMbps).toBeGreaterThan(1);
      expect(d.udpReceivedMbps).toBeGreaterThan(0);
      expect(d.diskWriteMiBps).toBeGreaterThan(0);
      expect(d.diskDevice).toBe(d.disk === 'virtio' ? 'vda' : 'sda');
    }

    // 3. During migration: completed, both series on the shared axis, passes and switchover marked.
    expect(r.during.report.ok).toBe(true);
    expect(r.during.rows.some((x) => x.series === 'iperf' && x.tS < 0)).toBe(true);
    expect(r.during.rows.some((x) => x.series === 'iperf' && x.tS > 0)).toBe(true);
    expect(r.during.rows.some((x) => x.srcCpuPct !== undefined)).toBe(true);
    expect(r.during.marks.some((m) => m.kind === 'switchover')).toBe(true);
    expect(r.during.report.inputs.migrateCommand).toBe('migrate -d tcp:10.77.0.2:4444');

    // 4. Commands explained from the argv that ran.
    const qemu = r.commands.find((c) => c.title === 'Source QEMU')!;
    expect(qemu.command.explained.flatMap((g) => g.args)).toEqual(qemu.command.argv);
    expect(r.commands.some((c) => c.command.argv.includes('migrate -d tcp:10.77.0.2:4444'))).toBe(true);

    // 5. Fault tolerance: COLO ran on QEMU 11.1 and failed over, the guest the same; the answers
    // to questions E and F quote this run's figures.
    const ft = r.colo!;
    expect({ ran: ft.ran, verdict: ft.verdict, why: ft.why }).toEqual({ ran: true, verdict: 'failed-over', why: undefined });
    expect(ft.qemuVersion).toMatch(/^11\.1\./);
    expect(ft.checkpoints).toBeGreaterThan(0);
    expect(ft.sameBoot).toBe(true);
    expect({ bad: ft.diskBad, gaps: ft.diskGaps }).toEqual({ bad: 0, gaps: 0 });
    expect(existsSync(join(out.dir, 'colo', 'colo.json'))).toBe(true);

    // The report: every section, every plot and CSV present.
    const md = readFileSync(out.markdownPath, 'utf8');
    for (const heading of ['## Environment', '## 1. Performance with and without KVM', '## 2. Network and disk', '## 3. perf and iperf during a live migration', '## 4. The commands', '## 5. Live migration and fault tolerance', '## Wall time per section']) {
      expect(md).toContain(heading);
    }
    for (const f of ['plots/accel.png', 'plots/nic-throughput.png', 'plots/disk.png', 'plots/during-migration.png', 'plots/cpu-during-migration.png', 'accel.csv', 'devices.csv', 'during-migration.csv', 'homework.json', 'report.html']) {
      expect(existsSync(join(out.dir, f))).toBe(true);
      expect(statSync(join(out.dir, f)).size).toBeGreaterThan(100);
    }
    expect(md).toContain(`${ft.checkpoints} checkpoints in`);
    expect(ft.checkpointMeanBytes).toBeGreaterThan(0);
    expect(md).toContain(`carried ${Math.round(ft.checkpointMeanBytes! / 1024)} KiB on average over the migration connection`);
    expect(md).toContain(`paying ${Math.round(r.during.report.outputs.downtimeMs!)} ms of downtime in this run`);
    expect(md).toMatch(/virtio-net carried \d+(\.\d)?x the TCP throughput of e1000/);
    expect(await sharedLabLeftovers()).toEqual([]);
  }, 600000);
});
