/**
 * @graft/artifacts: the content-addressed artifact store (DESIGN.md §3).
 * Keys from canonical JSON, manifests validated on read, atomic publish (temp dir +
 * rename, manifest written last), per-key locks, verify and gc.
 */
export { computeKey } from './key.ts';
export type { KeySpec } from './key.ts';
export { resolveStoreRoot, DEFAULT_STORE_DIR } from './store-root.ts';
export { readManifest, parseManifest, CorruptArtifactError, MANIFEST_FILE, STAGE_NAME, KEY_PATTERN, RESERVED_NAMES, isSafeRelativePath } from './manifest.ts';
export { ArtifactStore } from './store.ts';
export type { PendingArtifact, VerifyReport, PublishInfo, PublishOptions, GcOptions, GcResult, StoreOptions, StoreAnomaly, StoreMode } from './store.ts';
export type { LockHolder, LockWait } from './lock.ts';
export { STORE_MARKER, STORE_FORMAT_VERSION, storeMarkerText } from './store-marker.ts';
export type { StoreState } from './store-marker.ts';
export { ARTIFACT_ERROR_CODES } from './error-codes.ts';
export type { ArtifactErrorCode } from './error-codes.ts';
