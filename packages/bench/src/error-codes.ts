import type { ErrorCodeOf } from '@graft/core';

/**
 * Stable codes of `graft bench`. Options, a batch or evaluation size the data cannot hold,
 * and a missing PyTorch or reference script are the user's to fix (exit 2); a measuring
 * process that fails or answers nonsense is a failure (exit 1).
 */
export const BENCH_ERROR_CODES = {
  optionsInvalid: 'BENCH_OPTIONS_INVALID',
  batchTooLarge: 'BENCH_BATCH_TOO_LARGE',
  evalTooLarge: 'BENCH_EVAL_TOO_LARGE',
  runnerFailed: 'BENCH_RUNNER_FAILED',
  torchUnavailable: 'TORCH_UNAVAILABLE',
  torchReferenceMissing: 'TORCH_REFERENCE_MISSING',
} as const;
export type BenchErrorCode = ErrorCodeOf<typeof BENCH_ERROR_CODES>;
