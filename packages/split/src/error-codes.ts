import type { ErrorCodeOf } from '@graft/core';

/** Stable codes of the split stage errors: the holdout and an empty phase-one split are the user's params (exit 2). */
export const SPLIT_ERROR_CODES = {
  inputMissing: 'SPLIT_INPUT_MISSING',
  holdoutLabelAbsent: 'HOLDOUT_LABEL_ABSENT',
  holdoutAllLabels: 'HOLDOUT_ALL_LABELS',
  emptyPhaseOneSplit: 'EMPTY_PHASE_ONE_SPLIT',
} as const;
export type SplitErrorCode = ErrorCodeOf<typeof SPLIT_ERROR_CODES>;
