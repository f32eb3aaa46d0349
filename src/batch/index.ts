// Batch migration until the host stalls: the spec, the runner, stall detection and the memory
// guard, the diagnosis, the scheduler, the report, the CLI's option data and the benchmark.
export * from './spec.js';
export * from './stall.js';
export * from './record.js';
export * from './diagnose.js';
export * from './scheduler.js';
export { runBatch, checkBatch, type BatchOptions, type BatchResult } from './run.js';
export { batchFile, writeBatchReport, renderBatchReport, sampleRows, stepRows, batchMarkers } from './report.js';
export { startBatchSampler, linkRates } from './sampler.js';
export { findGuestQemus, qemuGuestLabel, type BatchSampling, type LinkRead, type SampledHost } from './sampling.js';
export { BATCH_OPTIONS, batchCommand, batchSpecFromArgs, formatBatchSummary, parseModeArg, parseStepsArg } from './cli.js';
export { runBatchBench, BENCH_MAX_N } from './bench.js';
