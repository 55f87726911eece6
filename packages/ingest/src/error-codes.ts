import type { ErrorCodeOf } from '@graft/core';

/** Stable codes of the ingest stage errors; all are bad input (exit 2). */
export const INGEST_ERROR_CODES = {
  sourceNotDirectory: 'SOURCE_NOT_DIRECTORY',
  validationTooLarge: 'VALIDATION_TOO_LARGE',
  labelOutOfRange: 'LABEL_OUT_OF_RANGE',
} as const;
export type IngestErrorCode = ErrorCodeOf<typeof INGEST_ERROR_CODES>;
