import { constants } from 'node:fs';
import { open, readdir, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ARTIFACT_ERROR_CODES } from './error-codes.ts';
import { GraftError, UsageError, describeSystemError } from '@graft/core';
import { NO_FOLLOW, entryKind, listTree } from './contained.ts';
import { errnoCode, fsyncDir } from './fs-util.ts';
import { CorruptArtifactError, KEY_PATTERN, MANIFEST_FILE, RESERVED_NAMES, STAGE_NAME, readManifest } from './manifest.ts';

/*
 * A directory is a graft store only if it says so. Like CACHEDIR.TAG or `.dvc/`, graft
 * writes a marker file when it creates a store, and every command refuses a non-empty
 * directory without one: `--artifacts ~` (or a default ./artifacts that belongs to some
 * other tool) must never be written into or "garbage collected".
 *
 * Stores made by graft before the marker existed are adopted when everything in them is
 * recognisably graft's (stage dirs of artifacts with valid manifests, runs/, .tmp/, ...);
 * anything else needs `graft artifacts init`, an explicit decision by the user.
 */

export const STORE_MARKER = '.graft-store.json';
/** writeStoreMarker's temp file: the marker's name, the writer's pid, `.tmp`. */
const MARKER_TEMP = new RegExp(`^${STORE_MARKER.replace(/\./g, '\\.')}\\.\\d+\\.tmp$`);
export const STORE_FORMAT = 'graft-artifact-store';
/** Bumped when the layout changes in a way older graft versions would misread. */
export const STORE_FORMAT_VERSION = 1;

/** Top-level names graft itself creates besides stage directories. */
export const STORE_INTERNAL_DIRS: ReadonlySet<string> = new Set(['runs', '.tmp', '.checkpoints', '.locks']);

const MARKER_TEXT =
  JSON.stringify(
    {
      format: STORE_FORMAT,
      version: STORE_FORMAT_VERSION,
      note: 'This directory is a graft artifact store. graft deletes only what it made here; keep other files elsewhere.',
    },
    null,
    2,
  ) + '\n';

export type StoreState =
  /** No directory yet. */
  | { kind: 'absent' }
  /** An empty directory: safe to become a store. */
  | { kind: 'empty' }
  | { kind: 'marked'; version: number }
  /** No marker, but everything in it was made by an older graft. */
  | { kind: 'legacy' }
  /** No marker and at least one entry graft did not make (relative paths, a few of them). */
  | { kind: 'foreign'; foreign: string[] };

async function readMarker(root: string): Promise<number> {
  const path = join(root, STORE_MARKER);
  let text: string;
  try {
    const handle = await open(path, constants.O_RDONLY | NO_FOLLOW);
    try {
      text = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw new UsageError(ARTIFACT_ERROR_CODES.storeBadMarker, `Cannot read the store marker ${path}: ${describeSystemError(error, path)}. Restore it with \`graft artifacts init --artifacts ${root}\`.`, { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const marker = json as { format?: unknown; version?: unknown } | undefined;
  if (!marker || marker.format !== STORE_FORMAT || typeof marker.version !== 'number' || !Number.isInteger(marker.version) || marker.version < 1) {
    throw new UsageError(
      ARTIFACT_ERROR_CODES.storeBadMarker,
      `${path} is not a graft store marker (expected {"format": "${STORE_FORMAT}", "version": ${STORE_FORMAT_VERSION}}). ` +
        `If ${root} is a graft store, rewrite it with \`graft artifacts init --artifacts ${root}\`.`,
    );
  }
  if (marker.version > STORE_FORMAT_VERSION) {
    throw new UsageError(
      ARTIFACT_ERROR_CODES.storeTooNew,
      `${root} is a graft store of format ${marker.version}, written by a newer graft; this graft understands format ${STORE_FORMAT_VERSION}. Upgrade graft, or use another --artifacts directory.`,
    );
  }
  return marker.version;
}

/** Why a top-level entry is not recognisably an older graft's, or undefined if it is. */
async function legacyProblem(root: string, name: string): Promise<string | undefined> {
  const path = join(root, name);
  const kind = await entryKind(path);
  if (kind !== 'dir') return `${name} (${kind === 'link' ? 'a symbolic link' : kind === 'file' ? 'a file' : 'not a directory'})`;
  if (STORE_INTERNAL_DIRS.has(name)) return undefined;
  if (!STAGE_NAME.test(name) || RESERVED_NAMES.has(name)) return `${name}/`;
  for (const key of await readdir(path)) {
    const dir = join(path, key);
    if (!KEY_PATTERN.test(key) || (await entryKind(dir)) !== 'dir') return `${name}/${key}`;
    try {
      const manifest = await readManifest(join(dir, MANIFEST_FILE));
      if (manifest.stage !== name || manifest.key !== key) return `${name}/${key} (its manifest describes another artifact)`;
    } catch (error) {
      if (error instanceof CorruptArtifactError) return `${name}/${key} (no valid ${MANIFEST_FILE})`;
      throw error;
    }
    const tree = await listTree(dir);
    if (tree.links.length > 0 || tree.special.length > 0) return `${name}/${key}/${[...tree.links, ...tree.special][0]}`;
  }
  return undefined;
}

/** What `root` is, without changing anything. Throws (exit 2) if it is not a directory or has a bad marker. */
export async function inspectStoreRoot(root: string): Promise<StoreState> {
  let names: string[];
  try {
    const info = await stat(root);
    if (!info.isDirectory()) {
      throw new UsageError(ARTIFACT_ERROR_CODES.storeNotADirectory, `The artifact store ${root} is a file, not a directory. Pass a directory with --artifacts DIR (or GRAFT_ARTIFACTS).`);
    }
    names = (await readdir(root)).sort();
  } catch (error) {
    if (error instanceof GraftError) throw error;
    if (errnoCode(error) === 'ENOENT') return { kind: 'absent' };
    if (errnoCode(error) === 'ENOTDIR') {
      throw new UsageError(ARTIFACT_ERROR_CODES.storeNotADirectory, `The artifact store ${root} cannot be used: ${describeSystemError(error, root)}. Pass a directory with --artifacts DIR (or GRAFT_ARTIFACTS).`, { cause: error });
    }
    throw new GraftError(ARTIFACT_ERROR_CODES.storeIo, `Cannot read the artifact store: ${describeSystemError(error, root)}.`, { cause: error });
  }
  if (names.includes(STORE_MARKER)) {
    if ((await entryKind(join(root, STORE_MARKER))) !== 'file') {
      throw new UsageError(ARTIFACT_ERROR_CODES.storeBadMarker, `${join(root, STORE_MARKER)} is not a regular file. Remove it and run \`graft artifacts init --artifacts ${root}\` if ${root} is a graft store.`);
    }
    return { kind: 'marked', version: await readMarker(root) };
  }
  // Another graft process creating this store right now has its marker's temp file here
  // for a moment (writeStoreMarker): that is a store being made, not a foreign entry. Left
  // out by name only, since it may already be renamed by the time it could be looked at; a
  // stray file of that name is never read, moved or deleted, and the marker written beside
  // it is the same either way.
  names = names.filter((name) => !MARKER_TEMP.test(name));
  if (names.length === 0) return { kind: 'empty' };
  const foreign: string[] = [];
  for (const name of names) {
    const problem = await legacyProblem(root, name);
    if (problem) foreign.push(problem);
    if (foreign.length >= 5) break;
  }
  return foreign.length === 0 ? { kind: 'legacy' } : { kind: 'foreign', foreign };
}

/** The error for a non-empty directory that is not a graft store. */
export function notAStoreError(root: string, foreign: string[]): UsageError {
  return new UsageError(
    ARTIFACT_ERROR_CODES.storeNotGraft,
    `${root} is not a graft artifact store: it has no ${STORE_MARKER} marker and holds entries graft did not make (${foreign.join(', ')}${foreign.length >= 5 ? ', ...' : ''}). ` +
      'graft will not write or delete anything there. Point --artifacts (or GRAFT_ARTIFACTS) at a new or empty directory; ' +
      `if it really is an old graft store, move the foreign entries out, or mark it with \`graft artifacts init --artifacts ${root}\` (gc still deletes only what graft made).`,
  );
}

/** Writes the marker (temp file + rename, so a reader never sees half of it). */
export async function writeStoreMarker(root: string): Promise<void> {
  const tmp = join(root, `${STORE_MARKER}.${process.pid}.tmp`);
  const handle = await open(tmp, 'w');
  try {
    await handle.writeFile(MARKER_TEXT, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, join(root, STORE_MARKER));
  await fsyncDir(root).catch(() => undefined);
}

/** The marker text graft writes into every store it creates (and tests use to fake one). */
export function storeMarkerText(): string {
  return MARKER_TEXT;
}
