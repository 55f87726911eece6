import type { ErrorCodeOf } from '@graft/core';

/** Stable codes of model and backend errors. An unknown or explicitly requested but unavailable backend is the user's choice (exit 2); unreadable model files are broken artifacts (exit 1). */
export const MODEL_ERROR_CODES = {
  architecture: 'MODEL_ARCHITECTURE',
  invalid: 'MODEL_INVALID',
  notFound: 'MODEL_NOT_FOUND',
  writeFailed: 'MODEL_WRITE_FAILED',
  labelNotInClassMap: 'LABEL_NOT_IN_CLASS_MAP',
  backendUnavailable: 'BACKEND_UNAVAILABLE',
  backendUnknown: 'BACKEND_UNKNOWN',
} as const;
export type ModelErrorCode = ErrorCodeOf<typeof MODEL_ERROR_CODES>;
