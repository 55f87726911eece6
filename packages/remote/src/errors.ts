import type { ErrorCodeOf } from '@graft/core';

/** Stable codes of every failure @graft/remote reports; tests and scripts match on these. */
export const REMOTE_ERROR_CODES = {
  /** `--remote` is not `s3://bucket[/prefix]` (exit 2). */
  badUrl: 'REMOTE_BAD_URL',
  /** `--endpoint` is not an http(s) URL (exit 2). */
  badEndpoint: 'REMOTE_BAD_ENDPOINT',
  /** The bucket does not exist at the endpoint (exit 2). */
  noBucket: 'REMOTE_NO_BUCKET',
  /** Credentials rejected or missing (exit 2). */
  denied: 'REMOTE_ACCESS_DENIED',
  /** The endpoint does not answer (exit 1). */
  unreachable: 'REMOTE_UNREACHABLE',
  /** Any other failed request (exit 1). */
  io: 'REMOTE_IO',
  /** A remote object name that is not one graft writes (exit 1; never followed). */
  badObject: 'REMOTE_BAD_OBJECT',
} as const;

export type RemoteErrorCode = ErrorCodeOf<typeof REMOTE_ERROR_CODES>;
