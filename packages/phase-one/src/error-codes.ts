import type { ErrorCodeOf } from '@graft/core';

/** Stable codes of the phase-one stage errors. An empty split or a batch larger than the training set comes from the config (exit 2). */
export const PHASE_ONE_ERROR_CODES = {
  inputMissing: 'INPUT_MISSING',
  backendNotSelected: 'BACKEND_NOT_SELECTED',
  emptySplit: 'EMPTY_SPLIT',
  trainSetSmallerThanBatch: 'TRAIN_SET_SMALLER_THAN_BATCH',
} as const;
export type PhaseOneErrorCode = ErrorCodeOf<typeof PHASE_ONE_ERROR_CODES>;
