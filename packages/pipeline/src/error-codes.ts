import type { ErrorCodeOf } from '@graft/core';

/** Stable codes of config and runner errors. Config problems are bad input (exit 2); STAGE_FAILED wraps a non-graft failure inside a stage. */
export const PIPELINE_ERROR_CODES = {
  configInvalid: 'CONFIG_INVALID',
  configUnreadable: 'CONFIG_UNREADABLE',
  configNotJson: 'CONFIG_NOT_JSON',
  unknownTarget: 'UNKNOWN_TARGET',
  stageFailed: 'STAGE_FAILED',
  /** A stage that computes with tfjs was run without a backend selected (a wiring bug). */
  backendNotSelected: 'BACKEND_NOT_SELECTED',
  /** A failure that is not a GraftError (a bug): recorded in run.json and printed under this code. */
  unexpected: 'UNEXPECTED',
} as const;
export type PipelineErrorCode = ErrorCodeOf<typeof PIPELINE_ERROR_CODES>;
