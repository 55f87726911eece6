import type { ErrorCodeOf } from '@graft/core';

/** Stable codes of the artifact store. STORE_NOT_WRITABLE is the user's to fix with --artifacts (exit 2); a corrupt artifact is rebuilt by graft run; the rest are store faults or misuse (exit 1). */
export const ARTIFACT_ERROR_CODES = {
  corrupt: 'ARTIFACT_CORRUPT',
  badName: 'ARTIFACT_BAD_NAME',
  badManifest: 'ARTIFACT_BAD_MANIFEST',
  reservedName: 'ARTIFACT_RESERVED_NAME',
  notPending: 'ARTIFACT_NOT_PENDING',
  notRegularFile: 'ARTIFACT_NOT_REGULAR_FILE',
  publishRace: 'ARTIFACT_PUBLISH_RACE',
  locked: 'ARTIFACT_LOCKED',
  storeFull: 'STORE_FULL',
  storeNotWritable: 'STORE_NOT_WRITABLE',
  storeIo: 'STORE_IO',
  // Exit 2: the directory is not (only) graft's, see store-marker.ts and contained.ts.
  storeNotGraft: 'STORE_NOT_GRAFT',
  storeBadMarker: 'STORE_BAD_MARKER',
  storeTooNew: 'STORE_TOO_NEW',
  storeNotADirectory: 'STORE_NOT_A_DIRECTORY',
  storeLink: 'STORE_LINK',
  storeForeignEntry: 'STORE_FOREIGN_ENTRY',
} as const;
export type ArtifactErrorCode = ErrorCodeOf<typeof ARTIFACT_ERROR_CODES>;
