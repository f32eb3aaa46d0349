// Realistic data for the chart tests: what a migration of a busy 1 GiB guest looks like.
import {
  barChart,
  dualAxisTimeChart,
  lineChart,
  scatterWithSpread,
  stepAreaChart,
  type Marker,
} from '../../../src/plot/index.js';
import type { VegaLiteSpec } from '../../../src/plot/index.js';

export const markers: Marker[] = [
  { x: 1.0, label: 'pass 1' },
  { x: 4.2, label: 'pass 2' },
  { x: 5.1, label: 'pass 3' },
  { x: 5.5, label: 'switchover', emphasis: true },
];

// iperf samples and QEMU CPU samples come from different sources at different times.
const timeline: { tSec: number; throughputMbps?: number; qemuCpuPct?: number }[] = [];
for (let i = 0; i <= 80; i++) {
  const t = i / 10;
  if (i % 2 === 0) timeline.push({ tSec: t, throughputMbps: t > 5.5 && t < 5.9 ? 0 : 5200 - (t > 1 && t < 5.5 ? 1400 : 0) + 100 * Math.sin(i) });
  else timeline.push({ tSec: t, qemuCpuPct: t > 1 && t < 5.5 ? 180 + 10 * Math.cos(i) : 100 + 5 * Math.cos(i) });
}

const remaining: { tSec: number; remainingMiB: number; pass: number }[] = [];
for (let i = 10; i <= 55; i++) {
  const t = i / 10;
  const pass = t < 4.2 ? 1 : t < 5.1 ? 2 : 3;
  const start = pass === 1 ? 1.0 : pass === 2 ? 4.2 : 5.1;
  const size = pass === 1 ? 1024 : pass === 2 ? 310 : 60;
  const dur = pass === 1 ? 3.2 : pass === 2 ? 0.9 : 0.4;
  remaining.push({ tSec: t, remainingMiB: Math.max(0, size * (1 - (t - start) / dur)), pass });
}

const nics = ['virtio-net-pci', 'e1000'];
const accels = ['KVM', 'TCG'];
const bars = nics.flatMap((nic, i) =>
  accels.map((accel, j) => {
    const mean = (i === 0 ? 5300 : 1350) * (j === 0 ? 1.8 : 1);
    return { nic, accel, throughputMbps: mean, minMbps: mean * 0.93, maxMbps: mean * 1.05 };
  }),
);

const downtime = [256, 512, 1024, 2048].flatMap((memoryMiB) => [
  { memoryMiB, source: 'QEMU', downtimeMs: 20 + memoryMiB / 40, minMs: 18 + memoryMiB / 42, maxMs: 25 + memoryMiB / 38 },
  { memoryMiB, source: 'client-seen', downtimeMs: 90 + memoryMiB / 30, minMs: 70 + memoryMiB / 32, maxMs: 130 + memoryMiB / 28 },
]);

export const sampleCharts: Record<string, VegaLiteSpec> = {
  line: lineChart({
    title: 'Transferred RAM during migration',
    data: remaining.map((r) => ({ ...r, transferredMiB: 1400 - r.remainingMiB })),
    x: { field: 'tSec', title: 'Time since migrate', unit: 's' },
    y: { field: 'transferredMiB', title: 'Transferred', unit: 'MiB' },
    series: { field: 'pass', title: 'Pass' },
    markers,
  }),
  dualAxis: dualAxisTimeChart({
    title: 'Guest throughput and QEMU CPU during migration',
    data: timeline,
    x: { field: 'tSec', title: 'Time since migrate', unit: 's' },
    left: { field: 'throughputMbps', title: 'iperf3 throughput', unit: 'Mbit/s' },
    right: { field: 'qemuCpuPct', title: 'QEMU CPU', unit: '%' },
    markers,
  }),
  bar: barChart({
    title: 'Guest network throughput by NIC model and accelerator',
    data: bars,
    category: { field: 'nic', title: 'NIC model' },
    value: { field: 'throughputMbps', title: 'Throughput', unit: 'Mbit/s' },
    group: { field: 'accel', title: 'Accelerator' },
    errorLow: 'minMbps',
    errorHigh: 'maxMbps',
  }),
  scatter: scatterWithSpread({
    title: 'Downtime vs guest memory size',
    data: downtime,
    x: { field: 'memoryMiB', title: 'Guest memory', unit: 'MiB' },
    y: { field: 'downtimeMs', title: 'Downtime', unit: 'ms' },
    series: { field: 'source', title: 'Measured by' },
    yLow: 'minMs',
    yHigh: 'maxMs',
  }),
  stepArea: stepAreaChart({
    title: 'Remaining RAM per pass',
    data: remaining,
    x: { field: 'tSec', title: 'Time since migrate', unit: 's' },
    y: { field: 'remainingMiB', title: 'Remaining RAM', unit: 'MiB' },
    series: { field: 'pass', title: 'Pass' },
    markers,
  }),
};
