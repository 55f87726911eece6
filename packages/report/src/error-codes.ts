import type { ErrorCodeOf } from '@graft/core';

/** Stable codes of runs ls / compare / plot errors; all but PLOT_WRITE_FAILED are bad arguments (exit 2). */
export const REPORT_ERROR_CODES = {
  badArguments: 'BAD_ARGUMENTS',
  badFormat: 'BAD_FORMAT',
  plotFormat: 'PLOT_FORMAT',
  noCurves: 'NO_CURVES',
  plotWriteFailed: 'PLOT_WRITE_FAILED',
} as const;
export type ReportErrorCode = ErrorCodeOf<typeof REPORT_ERROR_CODES>;
