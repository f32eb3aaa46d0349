// Section: the same guest benchmark with and without KVM. The guest agent measures its own CPU
// and memory throughput; `perf stat` on the QEMU process measures what it cost the host. Where
// KVM cannot be used, the row says so with the measured reason: it is never faked.
import { runPerfStat, type PerfStatRow } from '../measure/perf.js';
import { withGuest, type HomeworkContext } from './context.js';
import type { AccelRow, PerfFigures } from '../results/homework.js';

// The shapes homework.json records (src/results/homework.ts).
export type { AccelRow, PerfFigures };

function eventValue(rows: readonly PerfStatRow[], event: string) {
  const r = rows.find((x) => x.event === event);
  return { value: r?.value ?? null, supported: r ? r.supported : false };
}

export async function compareAccelerators(ctx: HomeworkContext): Promise<AccelRow[]> {
  const rows: AccelRow[] = [];
  for (const accel of ['kvm', 'tcg'] as const) {
    if (accel === 'kvm' && ctx.accel.kvmUsable !== true) {
      rows.push({ accel, available: false, reason: ctx.accel.reason.replace(/^fell back to TCG: /, '') });
      ctx.progress('accel', `KVM column: not usable here (${ctx.accel.reason})`);
      continue;
    }
    ctx.progress('accel', `benchmarking the guest under ${accel.toUpperCase()}`);
    const t = Date.now();
    rows.push(
      await withGuest(ctx, { accel, label: `bench-${accel}` }, async ({ vm, agent }) => {
        const bootMs = Date.now() - t;
        const { benchMs, memBenchMiB } = ctx.spec;
        // perf watches QEMU for the whole of both benchmarks (plus a margin for the requests).
        const perf = runPerfStat(ctx.lab.hosts.src.host, { pid: vm.process.pid, durationMs: 2 * benchMs + 1000 }, { timeoutMs: 2 * benchMs + 20000, signal: ctx.signal });
        const cpu = await agent.benchCpu(benchMs);
        const mem = await agent.benchMem(memBenchMiB, benchMs);
        const p = await perf;
        const taskClock = p.rows.find((r) => r.event === 'task-clock')?.value ?? null;
        const faults = p.rows.find((r) => r.event === 'page-faults')?.value ?? null;
        return {
          accel,
          available: true,
          reason: accel === 'kvm' ? ctx.accel.reason : 'TCG always works: QEMU translates guest code in software',
          cpuOpsPerS: cpu.opsPerS,
          memMiBps: mem.bandwidthMiBps,
          bootMs,
          perf: {
            taskClockMs: taskClock,
            cpusUtilized: p.cpusUtilized,
            contextSwitchesPerS: p.contextSwitchesPerS,
            pageFaults: faults,
            cycles: eventValue(p.rows, 'cycles'),
            instructions: eventValue(p.rows, 'instructions'),
          },
        };
      }),
    );
  }
  return rows;
}
