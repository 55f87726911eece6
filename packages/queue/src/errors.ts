import type { ErrorCodeOf } from '@graft/core';

/** Stable codes of every failure @graft/queue reports; tests and scripts match on these. */
export const QUEUE_ERROR_CODES = {
  /** `--queue` is not `redis://[user:password@]host[:port][/db]` (exit 2). */
  badUrl: 'QUEUE_BAD_URL',
  /** The host name does not resolve (exit 2: a typo to fix). */
  unknownHost: 'QUEUE_UNKNOWN_HOST',
  /** Redis refused the credentials (exit 2). */
  denied: 'QUEUE_ACCESS_DENIED',
  /** Redis does not answer within the connection timeout, or went away for longer than a worker waits (exit 1). */
  unreachable: 'QUEUE_UNREACHABLE',
  /** A Redis too old for BullMQ (exit 2). */
  redisTooOld: 'QUEUE_REDIS_TOO_OLD',
  /** `graft sweep status <id>` names a sweep the queue does not know (exit 2). */
  unknownSweep: 'QUEUE_UNKNOWN_SWEEP',
  /** A job names a unit its sweep's plan does not have (exit 1: the queue's data is damaged or from another graft). */
  badJob: 'QUEUE_BAD_JOB',
  /** The unit's build process died or failed (the job's error). */
  unitFailed: 'QUEUE_UNIT_FAILED',
  /** A bad option value (exit 2). */
  badOption: 'QUEUE_BAD_OPTION',
} as const;

export type QueueErrorCode = ErrorCodeOf<typeof QUEUE_ERROR_CODES>;
