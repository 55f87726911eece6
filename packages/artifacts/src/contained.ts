import { constants } from 'node:fs';
import { lstat, mkdir, readdir, rm, unlink } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { ARTIFACT_ERROR_CODES } from './error-codes.ts';
import { GraftError, UsageError } from '@graft/core';
import { errnoCode } from './fs-util.ts';

/*
 * The one rule for every path below the store root: look at it with lstat, never through
 * it. A symbolic link anywhere under the root is reported and left alone; graft neither
 * reads, writes, renames nor deletes what a link points to. Without this, a `.tmp` linked
 * to a home directory is emptied by gc, and a linked artifact directory is renamed and
 * rebuilt outside the store. (The root itself may be a link: the user chose that path.)
 */

/** Open flag that makes open(2) fail with ELOOP on a link (0 where the platform has none). */
export const NO_FOLLOW = constants.O_NOFOLLOW ?? 0;

export type EntryKind = 'missing' | 'file' | 'dir' | 'link' | 'other';

/** What `path` itself is (a link is 'link', never its target). */
export async function entryKind(path: string): Promise<EntryKind> {
  try {
    const info = await lstat(path);
    return info.isSymbolicLink() ? 'link' : info.isDirectory() ? 'dir' : info.isFile() ? 'file' : 'other';
  } catch (error) {
    if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') return 'missing';
    throw error;
  }
}

/** Relative display path of `path` under the store root, for messages. */
function shown(root: string, path: string): string {
  return relative(root, path).split(sep).join('/') || '.';
}

/** A link or a foreign file where the store needs one of its own directories: user-fixable, exit 2. */
export function notOursError(root: string, path: string, kind: EntryKind, wanted: string): GraftError {
  const what = kind === 'link' ? 'a symbolic link' : kind === 'file' ? 'a file' : 'not a directory';
  return new UsageError(
    kind === 'link' ? ARTIFACT_ERROR_CODES.storeLink : ARTIFACT_ERROR_CODES.storeForeignEntry,
    `${shown(root, path)} in the artifact store ${root} is ${what}, where graft keeps ${wanted}. ` +
      'graft never follows links or replaces foreign files inside its store. ' +
      (kind === 'link' ? 'Remove the link (its target is not touched) or replace it with a real directory, then retry.' : 'Move it out of the store, then retry.'),
  );
}

/**
 * Checks each directory from `root` down to `root/segments...` with lstat and returns the
 * kind of the last one. Every component before the last must be a real directory (or be
 * missing, which makes the result 'missing'); a link or file there throws notOursError.
 */
export async function kindInside(root: string, segments: string[], wanted: string): Promise<EntryKind> {
  let path = root;
  for (let i = 0; i < segments.length; i++) {
    path = join(path, segments[i]!);
    const kind = await entryKind(path);
    if (i === segments.length - 1 || kind === 'missing') return kind;
    if (kind !== 'dir') throw notOursError(root, path, kind, wanted);
  }
  return 'dir';
}

/**
 * Creates `root/segments...` as real directories, refusing (notOursError) any existing
 * component that is a link or not a directory. Returns the absolute path.
 */
export async function ensureDirInside(root: string, segments: string[], wanted: string): Promise<string> {
  let path = root;
  for (const segment of segments) {
    path = join(path, segment);
    let kind = await entryKind(path);
    if (kind === 'missing') {
      try {
        await mkdir(path);
        kind = 'dir';
      } catch (error) {
        if (errnoCode(error) !== 'EEXIST') throw error;
        kind = await entryKind(path);
      }
    }
    if (kind !== 'dir') throw notOursError(root, path, kind, wanted);
  }
  return path;
}

export interface TreeEntries {
  /** Relative POSIX paths of regular files. */
  files: Set<string>;
  /** Relative POSIX paths of symbolic links (never followed). */
  links: string[];
  /** Relative POSIX paths of sockets, fifos, devices. */
  special: string[];
}

/** Every entry under the real directory `dir`, classified by lstat (readdir's d_type); links are listed, not entered. */
export async function listTree(dir: string): Promise<TreeEntries> {
  const result: TreeEntries = { files: new Set(), links: [], special: [] };
  const visit = async (absolute: string, prefix: string): Promise<void> => {
    for (const entry of await readdir(absolute, { withFileTypes: true })) {
      const path = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
      if (entry.isSymbolicLink()) result.links.push(path);
      else if (entry.isDirectory()) await visit(join(absolute, entry.name), path);
      else if (entry.isFile()) result.files.add(path);
      else result.special.push(path);
    }
  };
  await visit(dir, '');
  result.links.sort();
  result.special.sort();
  return result;
}

/**
 * Deletes `path`: a link or file is unlinked (a link's target is never touched), a
 * directory is removed recursively (fs.rm works on lstat and unlinks links inside).
 */
export async function removeEntry(path: string): Promise<void> {
  const kind = await entryKind(path);
  if (kind === 'missing') return;
  if (kind === 'dir') await rm(path, { recursive: true, force: true, maxRetries: 3 });
  else await unlink(path).catch((error) => (errnoCode(error) === 'ENOENT' ? undefined : Promise.reject(error)));
}
