import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { GraftError, describeSystemError, errnoCode, syncHandle } from '@graft/core';
import { ARTIFACT_ERROR_CODES } from './error-codes.ts';

// The IO toolkit lives in @graft/core; re-exported so the store's modules import from one place.
export { errnoCode, fsyncDir, pidAlive } from '@graft/core';

/**
 * Wraps a low-level IO failure at the store boundary: a plain sentence naming the
 * path (describeSystemError) and a stable code per kind of trouble, so the CLI can
 * say "free some space" or "choose a writable location" instead of printing errno.
 */
export function storeIoError(error: unknown, path: string, doing: string): GraftError {
  if (error instanceof GraftError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const graftCode =
    code === 'ENOSPC' || code === 'EDQUOT'
      ? ARTIFACT_ERROR_CODES.storeFull
      : code === 'EROFS' || code === 'EACCES' || code === 'EPERM'
        ? ARTIFACT_ERROR_CODES.storeNotWritable
        : ARTIFACT_ERROR_CODES.storeIo;
  // The failing call's own path is more precise than the caller's guess (ENOSPC on a file deep in the artifact).
  const where = (error as NodeJS.ErrnoException | undefined)?.path ?? path;
  // A store the user cannot write to is fixed by pointing --artifacts elsewhere (exit 2), like
  // the CLI's own check before a run; a full disk or an IO fault is not bad input (exit 1).
  return new GraftError(graftCode, `Could not ${doing}: ${describeSystemError(error, where)}.`, { cause: error, exitCode: graftCode === ARTIFACT_ERROR_CODES.storeNotWritable ? 2 : 1 });
}

export interface HashedFile {
  bytes: number;
  sha256: string;
}

const CHUNK = 1 << 20;

/**
 * sha256 and size of one file, read through a single descriptor. With `fsync` the same
 * descriptor is flushed afterwards, which saves reopening every file during publish.
 */
export async function hashFile(file: string, options: { fsync?: boolean; noFollow?: boolean } = {}): Promise<HashedFile> {
  // noFollow: open(2) fails with ELOOP on a link, so a file swapped for a link after a check is still not read.
  const handle = await open(file, options.noFollow ? constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) : 'r');
  try {
    const hash = createHash('sha256');
    const buffer = Buffer.allocUnsafe(CHUNK);
    let bytes = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, CHUNK, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      bytes += bytesRead;
    }
    if (options.fsync) await syncHandle(handle);
    return { bytes, sha256: hash.digest('hex') };
  } finally {
    await handle.close();
  }
}

/** fsync one file (opened read-only: flushing needs no write access to the descriptor on Linux). */
export async function fsyncFile(file: string): Promise<void> {
  const handle = await open(file, 'r');
  try {
    await syncHandle(handle);
  } finally {
    await handle.close();
  }
}

export interface Tree {
  /** Relative POSIX paths of regular files, sorted. */
  files: string[];
  /** Absolute paths of every directory, the root first. */
  dirs: string[];
}

/**
 * Every regular file under `root`. Symlinks and special files are refused: an artifact
 * must be self-contained, or its hashes would not describe what a reader gets.
 */
export async function walkTree(root: string): Promise<Tree> {
  const files: string[] = [];
  const dirs: string[] = [root];
  const visit = async (dir: string, prefix: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    for (const entry of entries) {
      const relative = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
      const absolute = join(dir, entry.name);
      if (entry.isDirectory()) {
        dirs.push(absolute);
        await visit(absolute, relative);
      } else if (entry.isFile()) {
        files.push(relative);
      } else {
        throw new GraftError(
          ARTIFACT_ERROR_CODES.notRegularFile,
          `${absolute} is ${entry.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}; a stage must write plain files into its output directory (copy the target instead of linking it).`,
        );
      }
    }
  };
  await visit(root, '');
  // Plain code-unit order, the same on every platform and locale.
  files.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return { files, dirs };
}

/** Total bytes of the regular files under `path` (0 if it is gone). */
export async function treeBytes(path: string): Promise<number> {
  let info;
  try {
    info = await lstat(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return 0;
    throw error;
  }
  if (!info.isDirectory()) return info.isFile() ? info.size : 0;
  let total = 0;
  let entries;
  try {
    entries = await readdir(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return 0;
    throw error;
  }
  for (const name of entries) total += await treeBytes(join(path, name));
  return total;
}

/** Newest mtime (ms) of anything under `path`, for "untouched for a day" decisions. */
export async function newestMtime(path: string): Promise<number> {
  let info;
  try {
    info = await lstat(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return 0;
    throw error;
  }
  let newest = info.mtimeMs;
  if (info.isDirectory()) {
    let entries: string[] = [];
    try {
      entries = await readdir(path);
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error;
    }
    for (const name of entries) newest = Math.max(newest, await newestMtime(join(path, name)));
  }
  return newest;
}

export async function removeTree(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true, maxRetries: 3 });
}

export async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') return false;
    throw error;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
