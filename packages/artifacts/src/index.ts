export { canonicalJson, computeKey } from './canonical-json.ts';
export type { KeySpec } from './canonical-json.ts';
export { resolveStoreRoot, DEFAULT_STORE_DIR } from './store-root.ts';
export { readManifest, CorruptArtifactError, MANIFEST_FILE } from './manifest.ts';
export { ArtifactStore } from './store.ts';
export type { PendingArtifact, VerifyReport, PublishInfo, GcOptions, GcResult, StoreOptions } from './store.ts';
export type { LockHolder } from './lock.ts';
