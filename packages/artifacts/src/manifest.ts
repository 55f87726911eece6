import { lstat, open } from 'node:fs/promises';
import { constants } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { GraftError, JsonFileError, canonicalJson, formatZodIssues, parseJsonBytes, type ArtifactManifest } from '@graft/core';
import { KEY_PATTERN, MANIFEST_FILE, STAGE_NAME, isSafeRelativePath, manifestSchema } from '@graft/core/manifest';
import { RUNS_DIR } from '@graft/runs';
import { z } from 'zod';
import { createHash } from 'node:crypto';
import { errnoCode, hashFile, storeIoError } from './fs-util.ts';
import { ARTIFACT_ERROR_CODES } from './error-codes.ts';
import { NO_FOLLOW, entryKind, listTree } from './contained.ts';

/** sha256 of the canonical JSON of a manifest without its `digest` field. */
export function manifestDigest(manifest: object): string {
  const { digest: _ignored, ...rest } = manifest as { digest?: unknown };
  return createHash('sha256').update(canonicalJson(rest), 'utf8').digest('hex');
}

/** Top-level store directories that are not stages: `runs/` belongs to @graft/runs. */
export const RESERVED_NAMES: ReadonlySet<string> = new Set([RUNS_DIR]);

export function checkNames(stage: string, key: string): void {
  if (typeof stage !== 'string' || !STAGE_NAME.test(stage) || RESERVED_NAMES.has(stage)) {
    throw new GraftError(ARTIFACT_ERROR_CODES.badName, `Invalid stage name ${JSON.stringify(stage)}: use letters, digits, '-' and '_' (not "${RUNS_DIR}").`);
  }
  if (typeof key !== 'string' || !KEY_PATTERN.test(key)) {
    throw new GraftError(ARTIFACT_ERROR_CODES.badName, `Invalid artifact key ${JSON.stringify(key)}: expected a sha256 hex string from computeKey().`);
  }
}

// The format itself (schema, name patterns, path rule) lives in @graft/core; re-exported for the store's users.
export { KEY_PATTERN, MANIFEST_FILE, STAGE_NAME, isSafeRelativePath };

/** Validates a manifest object we are about to write, so we never publish what readManifest would reject. */
export function checkManifestShape(manifest: unknown): string[] {
  const result = manifestSchema.safeParse(manifest);
  return result.success ? [] : formatZodIssues(result.error).map((problem) => `${MANIFEST_FILE}: ${problem}`);
}

/**
 * An artifact whose bytes do not match its manifest (or whose manifest is missing or
 * unreadable). The runner discards and rebuilds it; it is never silently read.
 */
export class CorruptArtifactError extends GraftError {
  readonly stage: string;
  readonly key: string;
  /** Absolute path of the artifact directory. */
  readonly path: string;
  /** One sentence per bad file, each starting with the file's relative path. */
  readonly problems: string[];

  constructor(details: { stage: string; key: string; path: string; problems: string[] }, options: { cause?: unknown } = {}) {
    const shown = details.problems.length > 0 ? details.problems : ['unknown problem'];
    super(
      ARTIFACT_ERROR_CODES.corrupt,
      `Artifact ${details.stage}/${details.key.slice(0, 12)} at ${details.path} is corrupt: ${shown.join('; ')}. ` +
        'Its files no longer match its manifest; `graft run` discards and rebuilds it.',
      options,
    );
    this.name = 'CorruptArtifactError';
    this.stage = details.stage;
    this.key = details.key;
    this.path = details.path;
    this.problems = shown;
  }
}

/**
 * Reads and validates `<artifact>/manifest.json`. Whatever the bytes are (missing,
 * empty, not UTF-8, not JSON, wrong shape), the only failure is CorruptArtifactError;
 * only real IO trouble (permissions, disk errors) surfaces as a store IO GraftError.
 */
export async function readManifest(file: string): Promise<ArtifactManifest> {
  const dir = dirname(file);
  const where = { stage: basename(dirname(dir)), key: basename(dir), path: dir };
  let bytes: Buffer;
  try {
    // O_NOFOLLOW: a manifest that is a link is never read through (its target's bytes
    // would otherwise end up in verify output and logs).
    const handle = await open(file, constants.O_RDONLY | NO_FOLLOW);
    try {
      bytes = await handle.readFile();
    } finally {
      await handle.close();
    }
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new CorruptArtifactError({ ...where, problems: [`${MANIFEST_FILE}: missing`] }, { cause: error });
    if (code === 'ELOOP') throw new CorruptArtifactError({ ...where, problems: [`${MANIFEST_FILE}: is a symbolic link (not read; an artifact must not contain links)`] }, { cause: error });
    if (code === 'EISDIR') throw new CorruptArtifactError({ ...where, problems: [`${MANIFEST_FILE}: is a directory, not a file`] }, { cause: error });
    throw storeIoError(error, file, 'read the artifact manifest');
  }
  return parseManifest(bytes, where);
}

/**
 * Validates manifest.json bytes that did not come from this store's disk (a remote's
 * copy) exactly as readManifest does. `where` names the artifact in the error: the
 * only failure is CorruptArtifactError.
 */
export function parseManifest(bytes: Uint8Array, where: { stage: string; key: string; path: string }): ArtifactManifest {
  let manifest;
  try {
    manifest = parseJsonBytes(MANIFEST_FILE, bytes, manifestSchema);
  } catch (error) {
    throw error instanceof JsonFileError ? corruptManifest(where, error) : error;
  }
  return checkDigest(manifest, where);
}

type ArtifactPlace = { stage: string; key: string; path: string };

function corruptManifest(where: ArtifactPlace, error: JsonFileError): CorruptArtifactError {
  return new CorruptArtifactError({ ...where, problems: error.problems.map((problem) => `${MANIFEST_FILE}: ${problem}`) }, { cause: error.cause ?? error });
}

function checkDigest(manifest: z.output<typeof manifestSchema>, where: ArtifactPlace): ArtifactManifest {
  let digest: string;
  try {
    digest = manifestDigest(manifest);
  } catch (error) {
    // Valid JSON that canonicalJson still refuses (a "__proto__" key, say) is just bad bytes.
    throw new CorruptArtifactError({ ...where, problems: [`${MANIFEST_FILE}: unreadable (${error instanceof Error ? error.message : String(error)})`] }, { cause: error });
  }
  if (digest !== manifest.digest) {
    throw new CorruptArtifactError({ ...where, problems: [`${MANIFEST_FILE}: digest mismatch: its content (params, metrics, file list) changed after it was published`] });
  }
  return manifest as ArtifactManifest;
}

export interface Inspection {
  /** Present when manifest.json parsed, even if files are bad. */
  manifest?: ArtifactManifest;
  problems: string[];
}

/**
 * Checks an artifact directory against its manifest: that it is a real directory without
 * links, the manifest itself, that it describes this stage/key, then each listed file's
 * presence, size and sha256 (size first, so truncation is reported without hashing).
 * Nothing is read through a link: a link anywhere in the artifact makes it corrupt.
 * Unlisted extra regular files are ignored.
 */
export async function inspectArtifact(dir: string, stage: string, key: string): Promise<Inspection> {
  let tree;
  try {
    const kind = await entryKind(dir);
    if (kind === 'link') return { problems: [`${stage}/${key} is a symbolic link, not a directory inside the store (not followed)`] };
    if (kind === 'missing') return { problems: [`${stage}/${key}: missing`] };
    if (kind !== 'dir') return { problems: [`${stage}/${key} is not a directory`] };
    tree = await listTree(dir);
  } catch (error) {
    throw storeIoError(error, dir, 'check an artifact');
  }
  const linkProblems = [
    ...tree.links.map((path) => `${path}: is a symbolic link (not followed; an artifact must not contain links)`),
    ...tree.special.map((path) => `${path}: not a regular file`),
  ];
  // A linked manifest is reported by the link check; do not let readManifest call it "missing".
  if (tree.links.includes(MANIFEST_FILE)) return { problems: linkProblems };
  let manifest: ArtifactManifest;
  try {
    manifest = await readManifest(join(dir, MANIFEST_FILE));
  } catch (error) {
    if (error instanceof CorruptArtifactError) return { problems: [...linkProblems, ...error.problems] };
    throw error;
  }
  const problems: string[] = [...linkProblems];
  if (manifest.stage !== stage || manifest.key !== key) {
    problems.push(`${MANIFEST_FILE}: describes ${manifest.stage}/${manifest.key}, not ${stage}/${key} (copied from another artifact?)`);
  }
  for (const file of manifest.files) {
    const absolute = join(dir, ...file.path.split('/'));
    if (!tree.files.has(file.path)) {
      // Behind a link counts as missing: the walk never entered it.
      const kind = await entryKind(absolute).catch(() => 'missing' as const);
      problems.push(`${file.path}: ${kind === 'missing' || tree.links.some((link) => file.path.startsWith(`${link}/`)) ? 'missing' : 'not a regular file'}`);
      continue;
    }
    let actual;
    try {
      const { size } = await lstat(absolute);
      if (size !== file.bytes) {
        problems.push(`${file.path}: size mismatch, ${size} bytes, expected ${file.bytes}`);
        continue;
      }
      actual = await hashFile(absolute, { noFollow: true });
    } catch (error) {
      if (errnoCode(error) === 'ELOOP' || errnoCode(error) === 'ENOENT') {
        problems.push(`${file.path}: changed while being checked`);
        continue;
      }
      throw storeIoError(error, absolute, 'read an artifact file');
    }
    if (actual.bytes !== file.bytes) {
      problems.push(`${file.path}: size mismatch, ${actual.bytes} bytes, expected ${file.bytes}`);
      continue;
    }
    if (actual.sha256 !== file.sha256) problems.push(`${file.path}: sha256 mismatch, ${actual.sha256}, expected ${file.sha256}`);
  }
  return { manifest, problems };
}
