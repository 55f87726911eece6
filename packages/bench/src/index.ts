// Importing this module loads tfjs (through @graft/model): the CLI imports it lazily.
export { CHILD_PROGRESS, benchBackend, runBench } from './bench.ts';
export type { BenchResult, StepTiming } from './bench.ts';
export { formatBenchTable } from './format.ts';
export { BENCH_BACKENDS, parseBackendList, resolveBenchOptions } from './options.ts';
export type { BenchOptions, ResolvedBenchOptions } from './options.ts';
export { median, percentile, summarise } from './stats.ts';
export type { Timing } from './stats.ts';
export { TORCH_INSTALL_HINT, formatPaired, runAgainstTorch, runPaired } from './paired.ts';
export type { AgainstTorchOptions, PairedResult, PhasePairing, StepRunner, StepTimes } from './paired.ts';
export { BENCH_ERROR_CODES } from './error-codes.ts';
export type { BenchErrorCode } from './error-codes.ts';
