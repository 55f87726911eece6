import type { ErrorCodeOf } from '@graft/core';

/** Stable codes of the phase-two stage errors. An empty split or a model with the wrong head (phase-one wired straight into phase-two) comes from the config (exit 2). */
export const PHASE_TWO_ERROR_CODES = {
  inputMissing: 'INPUT_MISSING',
  backendNotSelected: 'BACKEND_NOT_SELECTED',
  emptySplit: 'EMPTY_SPLIT',
  headWidthMismatch: 'HEAD_WIDTH_MISMATCH',
} as const;
export type PhaseTwoErrorCode = ErrorCodeOf<typeof PHASE_TWO_ERROR_CODES>;
