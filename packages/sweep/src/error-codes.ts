import type { ErrorCodeOf } from '@graft/core';

/** Stable codes of sweep planning and unit execution. BAD_GRID and BAD_JOBS are the user's input (exit 2). */
export const SWEEP_ERROR_CODES = {
  /** A `--grid` flag that is not entry.param=[v1,v2,...]. */
  badGrid: 'SWEEP_BAD_GRID',
  /** A `--jobs` value that is not a whole number from 1 up. */
  badJobs: 'SWEEP_BAD_JOBS',
  /** Seeds and grid together plan more runs than one sweep may hold. */
  tooManyRuns: 'SWEEP_TOO_MANY_RUNS',
  /** A unit names a stage this graft does not have (a plan from another version). */
  unknownStage: 'UNIT_UNKNOWN_STAGE',
  /** A unit's input is neither in the store nor on the remote: its producer has not been built (or failed). */
  inputMissing: 'UNIT_INPUT_MISSING',
  /** The unit's key, re-derived here, differs from the plan's: other source data or another graft version. */
  keyMismatch: 'UNIT_KEY_MISMATCH',
  /** A unit was not run because a unit it needs failed. */
  upstreamFailed: 'UNIT_UPSTREAM_FAILED',
  /** Some units of `graft run --jobs` failed; the message names them. */
  unitsFailed: 'UNITS_FAILED',
  /** A child process died or broke the protocol (crash, out of memory, killed). */
  childFailed: 'UNIT_CHILD_FAILED',
  /** The run was stopped by Ctrl-C / SIGTERM. */
  interrupted: 'INTERRUPTED',
} as const;
export type SweepErrorCode = ErrorCodeOf<typeof SWEEP_ERROR_CODES>;
