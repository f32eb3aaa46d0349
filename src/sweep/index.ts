// Sweeps: a grid of scenarios run repeatedly on one lab (spec, runner), the per-point statistics
// (summary), and the figures and report drawn from saved results (plots).
export * from './spec.js';
export * from './results.js';
export * from './summary.js';
export * from './run.js';
export * from './plots.js';
export * from './cli.js';
