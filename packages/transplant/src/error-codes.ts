import type { ErrorCodeOf } from '@graft/core';

/** Stable codes of the transplant stage errors. A model whose head does not fit the split comes from the config (exit 2). */
export const TRANSPLANT_ERROR_CODES = {
  inputMissing: 'INPUT_MISSING',
  backendNotSelected: 'BACKEND_NOT_SELECTED',
  splitInfoInvalid: 'SPLIT_INFO_INVALID',
  modelArchitecture: 'MODEL_ARCHITECTURE',
  headWidthMismatch: 'HEAD_WIDTH_MISMATCH',
} as const;
export type TransplantErrorCode = ErrorCodeOf<typeof TRANSPLANT_ERROR_CODES>;
