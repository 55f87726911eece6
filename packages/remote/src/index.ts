/**
 * @graft/remote: artifacts beyond one machine (issue #12 item 4). An S3-compatible
 * bucket holds content-addressed files and per-key manifests written last (layout.ts);
 * push uploads verified artifacts, pull verifies every sha256 and publishes through the
 * store's atomic rename. The AWS SDK is loaded only by openRemote().
 */
export { openRemote, ArtifactRemote } from './remote.ts';
export type { RemoteOptions, RemoteArtifactName, PushOutcome, PullOutcome, TransferReport, Selection } from './remote.ts';
export { parseRemoteUrl, parseEndpoint } from './location.ts';
export type { RemoteLocation } from './location.ts';
export { REMOTE_ERROR_CODES } from './errors.ts';
export type { RemoteErrorCode } from './errors.ts';
export { blobObject, manifestObject } from './layout.ts';
