import { KEY_PATTERN, RESERVED_NAMES, STAGE_NAME } from '@graft/artifacts';
import type { RemoteLocation } from './location.ts';

/**
 * Object names on a remote (all under the URL's prefix):
 *
 *   files/sha256/<first 2 hex>/<sha256>        file contents, named by their sha256
 *   artifacts/<stage>/<key>/manifest.json      the artifact's manifest, byte for byte as in the store
 *
 * Files are content-addressed, so two uploads never write different bytes to one name
 * and identical files are stored once. The manifest is written after every file it
 * lists and is the commit point: a key exists on the remote when its manifest does, and
 * a manifest names exactly the files (by sha256) that belong to it, whichever of two
 * concurrent pushes of the key wrote it last.
 */
export const FILES_DIR = 'files/sha256';
export const ARTIFACTS_DIR = 'artifacts';
export const REMOTE_MANIFEST = 'manifest.json';

function under(location: RemoteLocation, name: string): string {
  return location.prefix === '' ? name : `${location.prefix}/${name}`;
}

export function blobObject(location: RemoteLocation, sha256: string): string {
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`not a sha256: ${JSON.stringify(sha256)}`);
  return under(location, `${FILES_DIR}/${sha256.slice(0, 2)}/${sha256}`);
}

export function manifestObject(location: RemoteLocation, stage: string, key: string): string {
  if (!STAGE_NAME.test(stage) || !KEY_PATTERN.test(key)) throw new Error(`not an artifact name: ${JSON.stringify(`${stage}/${key}`)}`);
  return under(location, `${ARTIFACTS_DIR}/${stage}/${key}/${REMOTE_MANIFEST}`);
}

/** Prefix under which every manifest object lies (for listing). */
export function manifestsPrefix(location: RemoteLocation): string {
  return under(location, `${ARTIFACTS_DIR}/`);
}

/**
 * The stage and key a listed object name stands for, or undefined for anything graft
 * does not write there (a stray object, a name with '..', another tool's file): such
 * names are never followed.
 */
export function parseManifestObject(location: RemoteLocation, objectName: string): { stage: string; key: string } | undefined {
  const prefix = manifestsPrefix(location);
  if (!objectName.startsWith(prefix)) return undefined;
  const parts = objectName.slice(prefix.length).split('/');
  if (parts.length !== 3 || parts[2] !== REMOTE_MANIFEST) return undefined;
  const [stage, key] = parts as [string, string];
  if (!STAGE_NAME.test(stage) || RESERVED_NAMES.has(stage) || !KEY_PATTERN.test(key)) return undefined;
  return { stage, key };
}

/**
 * Whether `stage/key` matches a selector as `graft artifacts ls|verify` take them: a key
 * prefix, or `stage/keyprefix`, case-insensitive.
 */
export function matchesSelector(selector: string, stage: string, key: string): boolean {
  let wanted = selector.trim().toLowerCase();
  const slash = wanted.indexOf('/');
  if (slash >= 0) {
    if (stage.toLowerCase() !== wanted.slice(0, slash)) return false;
    wanted = wanted.slice(slash + 1);
  }
  return key.toLowerCase().startsWith(wanted);
}
