import type { ErrorCodeOf } from '@graft/core';

/** Stable codes of Arrow image-table and split-format errors (IDX input: IDX_ERROR_CODES). A file that is not what its artifact says is a broken artifact (exit 1, rebuild). */
export const DATA_ERROR_CODES = {
  arrowInvalid: 'ARROW_INVALID',
  arrowReadFailed: 'ARROW_READ_FAILED',
  arrowWriteFailed: 'ARROW_WRITE_FAILED',
  imageTableInvalid: 'IMAGE_TABLE_INVALID',
  splitInfoUnreadable: 'SPLIT_INFO_UNREADABLE',
  splitInfoInvalid: 'SPLIT_INFO_INVALID',
} as const;
export type DataErrorCode = ErrorCodeOf<typeof DATA_ERROR_CODES>;
