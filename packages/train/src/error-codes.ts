import type { ErrorCodeOf } from '@graft/core';

/** Stable codes of training errors. A bad GRAFT_EVALUATION value is the user's environment (exit 2). */
export const TRAIN_ERROR_CODES = {
  nonFiniteLoss: 'NON_FINITE_LOSS',
  evaluationFailed: 'EVALUATION_FAILED',
  checkpointInvalid: 'CHECKPOINT_INVALID',
  checkpointWriteFailed: 'CHECKPOINT_WRITE_FAILED',
  badEnvironment: 'BAD_ENVIRONMENT',
  trainingMetricsInvalid: 'TRAINING_METRICS_INVALID',
} as const;
export type TrainErrorCode = ErrorCodeOf<typeof TRAIN_ERROR_CODES>;
