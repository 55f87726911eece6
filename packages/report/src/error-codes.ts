import type { ErrorCodeOf } from '@graft/core';

/** Stable codes of runs ls / compare / plot errors; all but the *_FAILED and ASSET_MISSING ones are bad arguments (exit 2). */
export const REPORT_ERROR_CODES = {
  badArguments: 'BAD_ARGUMENTS',
  badFormat: 'BAD_FORMAT',
  plotFormat: 'PLOT_FORMAT',
  noCurves: 'NO_CURVES',
  plotWriteFailed: 'PLOT_WRITE_FAILED',
  /** graft report --out names a file that is not .html (exit 2). */
  reportFormat: 'REPORT_FORMAT',
  reportWriteFailed: 'REPORT_WRITE_FAILED',
  /** A browser bundle (vega, tfjs) is missing from node_modules: npm ci. */
  assetMissing: 'ASSET_MISSING',
  /** graft ui --port names a port in use (exit 2). */
  uiPortInUse: 'UI_PORT_IN_USE',
  uiListenFailed: 'UI_LISTEN_FAILED',
} as const;
export type ReportErrorCode = ErrorCodeOf<typeof REPORT_ERROR_CODES>;
