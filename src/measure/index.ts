// Host-side measurement tools: perf stat on a process, iperf3 between lab endpoints, and a
// sampler of host CPU, memory, pressure, processes and link counters.
export * from './errors.js';
export * from './perf.js';
export * from './iperf.js';
export * from './host-sampler.js';
