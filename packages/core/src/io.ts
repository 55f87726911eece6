import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { z } from 'zod';
import { GraftError, describeSystemError } from './errors.ts';
import { formatZodIssues } from './zod-issues.ts';

/**
 * The small IO toolkit every package shares (DESIGN.md §2: core holds "a small IO
 * toolkit"): one durable atomic write, one total JSON reader, one directory fsync, one
 * pid check. Before it there were three atomic writes with different durability and two
 * pid checks that disagreed on what an unexpected error meant.
 */

export const IO_ERROR_CODES = {
  /** A JSON file is missing, empty, not UTF-8, not JSON or not of the expected shape. */
  jsonFileInvalid: 'JSON_FILE_INVALID',
  /** Real IO trouble reading a file (permissions, disk errors): not about its bytes. */
  readFailed: 'READ_FAILED',
  /** readBoundedFile: a device, pipe, socket or directory where a file was expected. */
  notRegularFile: 'NOT_A_REGULAR_FILE',
  /** readBoundedFile: a file over the size allowed for what it is. */
  fileTooLarge: 'FILE_TOO_LARGE',
} as const;
export type IoErrorCode = (typeof IO_ERROR_CODES)[keyof typeof IO_ERROR_CODES];

/** The errno code of a Node.js system error (ENOENT, EACCES, ...), if it is one. */
export function errnoCode(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Whatever is wrong with a JSON file's bytes (absent, empty, not UTF-8, not JSON, wrong
 * shape) is this one error. Callers turn it into their own: a corrupt artifact, a run
 * skipped with a warning, a split to rebuild.
 */
export class JsonFileError extends GraftError {
  readonly path: string;
  /** True when the file (or a parent directory) does not exist. */
  readonly missing: boolean;
  /** One short sentence each, shape problems as `json.path: message`; never empty. */
  readonly problems: string[];

  constructor(path: string, problems: string[], options: { missing?: boolean; cause?: unknown } = {}) {
    super(IO_ERROR_CODES.jsonFileInvalid, `${path}: ${problems.join('; ')}`, options.cause === undefined ? {} : { cause: options.cause });
    this.name = 'JsonFileError';
    this.path = path;
    this.missing = options.missing ?? false;
    this.problems = problems;
  }
}

export interface ReadJsonOptions {
  /**
   * How real IO trouble (EACCES, EIO, ...) is reported; the default is a READ_FAILED
   * GraftError naming the path. The store maps it to STORE_NOT_WRITABLE and friends.
   */
  ioError?: (error: unknown, path: string) => Error;
}

/**
 * Reads a JSON file and validates it with `schema`. Total: whatever the bytes are, the
 * only failure about the file's content is JsonFileError (a RangeError from absurdly deep
 * JSON included); only real IO trouble surfaces otherwise.
 */
export async function readJsonFile<Schema extends z.ZodType>(path: string, schema: Schema, options: ReadJsonOptions = {}): Promise<z.output<Schema>> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new JsonFileError(path, ['missing'], { missing: true, cause: error });
    if (code === 'EISDIR') throw new JsonFileError(path, ['is a directory, not a file'], { cause: error });
    throw options.ioError ? options.ioError(error, path) : new GraftError(IO_ERROR_CODES.readFailed, `Cannot read ${describeSystemError(error, path)}.`, { cause: error });
  }
  return parseJsonBytes(path, bytes, schema);
}

/** The content half of readJsonFile, for bytes already in memory (`path` only names them). */
export function parseJsonBytes<Schema extends z.ZodType>(path: string, bytes: Uint8Array, schema: Schema): z.output<Schema> {
  try {
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch (error) {
      throw new JsonFileError(path, ['not valid UTF-8'], { cause: error });
    }
    if (text.trim() === '') throw new JsonFileError(path, ['empty']);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new JsonFileError(path, [`not valid JSON (${error instanceof Error ? error.message : String(error)})`], { cause: error });
    }
    const result = schema.safeParse(json);
    if (!result.success) throw new JsonFileError(path, formatZodIssues(result.error));
    return result.data;
  } catch (error) {
    if (error instanceof JsonFileError) throw error;
    // A RangeError from JSON nested too deep for the stack is still just bad bytes.
    throw new JsonFileError(path, [`unreadable (${error instanceof Error ? error.message : String(error)})`], { cause: error });
  }
}

/**
 * Writes a file so that a reader sees the old content or the new, never half of it, and
 * the new content survives a power cut once this resolves: temp file in the same
 * directory, fsync, rename over the target, fsync the directory. The parent directory is
 * created if needed. On failure the temp file is removed and the system error rethrown
 * for the caller to word (it knows what the file is).
 */
export async function atomicWriteFile(path: string, data: string | Uint8Array | readonly Uint8Array[]): Promise<void> {
  const dir = dirname(path);
  // pid + random: two processes (or two writes in one) never share a temp file.
  const tmp = join(dir, `.${basename(path)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  try {
    await mkdir(dir, { recursive: true });
    const handle = await open(tmp, 'wx');
    try {
      if (typeof data === 'string') await handle.writeFile(data, 'utf8');
      else if (data instanceof Uint8Array) await handle.writeFile(data);
      else for (const chunk of data) await handle.write(chunk);
      await syncHandle(handle);
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
    await fsyncDir(dir);
  } catch (error) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw error;
  }
}

/** fsync through an open handle; platforms that refuse it for this kind of handle are tolerated. */
export async function syncHandle(handle: { sync(): Promise<void> }): Promise<void> {
  try {
    await handle.sync();
  } catch (error) {
    // Some platforms refuse fsync on read-only descriptors or directories; durability
    // there is best effort, a real write error (EIO, ENOSPC) still propagates.
    if (!['EINVAL', 'EPERM', 'EBADF', 'EISDIR', 'ENOTSUP'].includes(errnoCode(error) ?? '')) throw error;
  }
}

/** fsync a directory so the entries created or renamed in it survive a power cut. */
export async function fsyncDir(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
  } catch (error) {
    // Windows cannot open a directory; nothing to flush there.
    if (['EISDIR', 'EPERM', 'EACCES'].includes(errnoCode(error) ?? '')) return;
    throw error;
  }
  try {
    await syncHandle(handle);
  } finally {
    await handle.close();
  }
}

/**
 * Whether a process with this pid exists on this machine. Only ESRCH ("no such process")
 * counts as gone: EPERM means it exists under another user, and anything unexpected is
 * read as alive, because both callers (lock breaking, marking a run interrupted) must
 * never act against a process that may still be working.
 */
export function pidAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoCode(error) !== 'ESRCH';
  }
}

/** What a file is, for messages that refuse it: "a directory", "a character device", ... */
export function describeFileType(info: Stats): string {
  if (info.isFile()) return 'a regular file';
  if (info.isDirectory()) return 'a directory';
  if (info.isCharacterDevice()) return 'a character device';
  if (info.isBlockDevice()) return 'a block device';
  if (info.isFIFO()) return 'a named pipe';
  if (info.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** Why readBoundedFile refused a file: its code says which, its message names the path. */
export class FileRefusedError extends GraftError {
  readonly path: string;
  constructor(code: (typeof IO_ERROR_CODES)['notRegularFile' | 'fileTooLarge'], path: string, message: string) {
    super(code, message);
    this.name = 'FileRefusedError';
    this.path = path;
  }
}

/**
 * Reads a whole regular file of at most `maxBytes` bytes. Devices, pipes and sockets are
 * refused after opening without blocking (`--config /dev/zero` would otherwise be read
 * until memory runs out, a FIFO would hang), and an oversized file before any of it is
 * read; reading stops at `maxBytes + 1` bytes, so a file that grows meanwhile cannot
 * exceed the bound either. Throws FileRefusedError, or the system error for the caller to
 * word (ENOENT, EACCES, ...).
 */
export async function readBoundedFile(path: string, maxBytes: number): Promise<Buffer> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const info = await handle.stat();
    if (!info.isFile()) {
      throw new FileRefusedError(IO_ERROR_CODES.notRegularFile, path, `${path} is ${describeFileType(info)}, not a regular file`);
    }
    const tooLarge = (size: string) =>
      new FileRefusedError(IO_ERROR_CODES.fileTooLarge, path, `${path} is ${size} bytes, more than the ${maxBytes} bytes allowed here`);
    if (info.size > maxBytes) throw tooLarge(String(info.size));
    const buffer = Buffer.alloc(maxBytes + 1);
    let filled = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
      if (filled > maxBytes) throw tooLarge(`over ${maxBytes}`);
    }
    return buffer.subarray(0, filled);
  } finally {
    await handle.close();
  }
}
