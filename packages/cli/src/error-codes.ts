import type { ErrorCodeOf } from '@graft/core';

/** Stable codes of the command layer. ARTIFACT_CORRUPT from `artifacts verify` reports a finding (exit 1), the rest are bad arguments or an unusable store (exit 2). */
export const CLI_ERROR_CODES = {
  badArguments: 'BAD_ARGUMENTS',
  artifactNotFound: 'ARTIFACT_NOT_FOUND',
  artifactAmbiguous: 'ARTIFACT_AMBIGUOUS',
  artifactCorrupt: 'ARTIFACT_CORRUPT',
  storeNotWritable: 'STORE_NOT_WRITABLE',
  storeNotDirectory: 'STORE_NOT_DIRECTORY',
  /** A symbolic link where graft keeps its own directories (found by verify). */
  storeLink: 'STORE_LINK',
  /** gc found a run record it cannot read and stopped. */
  runsUnreadable: 'RUNS_UNREADABLE',
  remoteMissing: 'REMOTE_MISSING',
  remoteTransferFailed: 'REMOTE_TRANSFER_FAILED',
} as const;
export type CliErrorCode = ErrorCodeOf<typeof CLI_ERROR_CODES>;
