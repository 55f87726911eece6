import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { UsageError, describeSystemError } from '@graft/core';

const gunzipAsync = promisify(gunzip);

/** An IDX array (the MNIST file format): dimensions, outermost first, and row-major unsigned bytes. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** Stable error codes for bad IDX input; every one is a UsageError naming the file. */
export const IDX_ERROR_CODES = {
  notFound: 'IDX_NOT_FOUND',
  unreadable: 'IDX_UNREADABLE',
  badMagic: 'IDX_BAD_MAGIC',
  unsupportedType: 'IDX_UNSUPPORTED_TYPE',
  wrongRank: 'IDX_WRONG_RANK',
  truncated: 'IDX_TRUNCATED',
  trailingBytes: 'IDX_TRAILING_BYTES',
  corruptGzip: 'IDX_CORRUPT_GZIP',
  empty: 'IDX_EMPTY',
  countMismatch: 'IDX_COUNT_MISMATCH',
  shapeMismatch: 'IDX_SHAPE_MISMATCH',
} as const;

const UNSIGNED_BYTE = 0x08;
const TYPE_NAMES: Record<number, string> = {
  0x08: 'unsigned byte',
  0x09: 'signed byte',
  0x0b: 'short (int16)',
  0x0c: 'int (int32)',
  0x0d: 'float (float32)',
  0x0e: 'double (float64)',
};

const hex = (n: number, width: number) => `0x${n.toString(16).padStart(width, '0')}`;

/**
 * Parses an (already decompressed) IDX file. `data` is a view into `bytes`, not a copy:
 * the images of a 47 MB training file are never duplicated.
 */
export function parseIdx(bytes: Uint8Array, fileLabel: string): IdxArray {
  if (bytes.length < 4) {
    throw new UsageError(
      IDX_ERROR_CODES.truncated,
      `${fileLabel} is truncated: an IDX file starts with a 4-byte magic number, but the file has only ${bytes.length} byte(s). Re-download it.`,
    );
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    const found = hex(((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0, 8);
    throw new UsageError(
      IDX_ERROR_CODES.badMagic,
      `${fileLabel} is not an IDX file: expected a magic number starting with two zero bytes (e.g. 0x00000803 for images), found ${found}. Check that the source directory holds MNIST-style IDX files.`,
    );
  }
  const type = bytes[2]!;
  if (type !== UNSIGNED_BYTE) {
    const name = TYPE_NAMES[type] ?? 'an unknown type';
    throw new UsageError(
      IDX_ERROR_CODES.unsupportedType,
      `${fileLabel} has data type ${hex(type, 2)} (${name}); only unsigned byte (0x08) greyscale data is supported.`,
    );
  }
  const rank = bytes[3]!;
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes) {
    throw new UsageError(
      IDX_ERROR_CODES.truncated,
      `${fileLabel} is truncated: its header declares ${rank} dimension(s), needing ${headerBytes} header bytes, but the file has ${bytes.length}. Re-download it.`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  // A float is exact here: dims are < 2^32 and any product past 2^53 fails the size check anyway.
  let elements = 1;
  for (let d = 0; d < rank; d++) {
    const size = view.getUint32(4 + 4 * d, false);
    dims.push(size);
    elements *= size;
  }
  const expected = headerBytes + elements;
  if (bytes.length < expected) {
    throw new UsageError(
      IDX_ERROR_CODES.truncated,
      `${fileLabel} is truncated: dimensions [${dims.join(', ')}] need ${expected} bytes, but the file has ${bytes.length}. Re-download it.`,
    );
  }
  if (bytes.length > expected) {
    throw new UsageError(
      IDX_ERROR_CODES.trailingBytes,
      `${fileLabel} is too long: dimensions [${dims.join(', ')}] need ${expected} bytes, but the file has ${bytes.length} (${bytes.length - expected} extra). The header does not match the data; re-download it.`,
    );
  }
  return { dims, data: bytes.subarray(headerBytes, expected) };
}

/** True when the bytes start with the gzip magic number (1f 8b); file names are not trusted. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** The bytes of an IDX file as stored, and its decompressed contents (the same array when not gzipped). */
export interface IdxFileBytes {
  raw: Uint8Array;
  decoded: Uint8Array;
}

/** Reads a file and gunzips it when it starts with the gzip magic. Keeps the raw bytes for hashing. */
export async function readIdxFileBytes(path: string): Promise<IdxFileBytes> {
  let raw: Uint8Array;
  try {
    const buffer = await readFile(path);
    // A plain Uint8Array view (no copy): callers compare and re-wrap it, and Buffer's
    // subclass behaviour (toJSON, pooled slices) is not part of this API.
    raw = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code === 'ENOENT' ? IDX_ERROR_CODES.notFound : IDX_ERROR_CODES.unreadable;
    throw new UsageError(code, `Cannot read IDX file: ${describeSystemError(error, path)}.`, { cause: error });
  }
  if (!isGzip(raw)) return { raw, decoded: raw };
  try {
    const inflated = await gunzipAsync(raw);
    return { raw, decoded: new Uint8Array(inflated.buffer, inflated.byteOffset, inflated.byteLength) };
  } catch (error) {
    throw new UsageError(
      IDX_ERROR_CODES.corruptGzip,
      `${path} starts with the gzip magic number but cannot be decompressed (${(error as Error).message}). The download is probably incomplete; fetch the file again.`,
      { cause: error },
    );
  }
}

/** Reads an IDX file, raw or gzipped (detected by content, not by name). */
export async function readIdxFile(path: string): Promise<IdxArray> {
  const { decoded } = await readIdxFileBytes(path);
  return parseIdx(decoded, path);
}

/**
 * Finds `baseName` or `baseName.gz` in `dir`, preferring the uncompressed file.
 * Throws IDX_NOT_FOUND naming both candidates when neither is a file.
 */
export async function findIdxFile(dir: string, baseName: string): Promise<string> {
  const candidates = [join(dir, baseName), join(dir, `${baseName}.gz`)];
  for (const candidate of candidates) {
    try {
      if ((await stat(candidate)).isFile()) return candidate;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') {
        throw new UsageError(IDX_ERROR_CODES.unreadable, `Cannot read IDX file: ${describeSystemError(error, candidate)}.`, {
          cause: error,
        });
      }
    }
  }
  throw new UsageError(
    IDX_ERROR_CODES.notFound,
    `Missing IDX file in ${dir}: expected ${baseName} or ${baseName}.gz. A source directory needs the four standard MNIST files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte), raw or gzipped.`,
  );
}

/** A stack of greyscale images from an IDX file of rank 3: [count, rows, cols]. */
export interface IdxImages {
  count: number;
  rows: number;
  cols: number;
  pixels: Uint8Array;
}

/** Checks that an IDX array is a non-empty rank-3 image stack. */
export function asIdxImages(array: IdxArray, fileLabel: string): IdxImages {
  if (array.dims.length !== 3) {
    throw new UsageError(
      IDX_ERROR_CODES.wrongRank,
      `${fileLabel} should hold images (3 dimensions: count, rows, cols, magic 0x00000803) but has ${array.dims.length} dimension(s) [${array.dims.join(', ')}]. Did you swap an images and a labels file?`,
    );
  }
  const [count, rows, cols] = array.dims as [number, number, number];
  if (count === 0 || rows === 0 || cols === 0) {
    throw new UsageError(
      IDX_ERROR_CODES.empty,
      `${fileLabel} holds no images (dimensions [${array.dims.join(', ')}]); expected at least one image of at least 1x1 pixels.`,
    );
  }
  return { count, rows, cols, pixels: array.data };
}

/** Checks that an IDX array is a rank-1 label vector. */
export function asIdxLabels(array: IdxArray, fileLabel: string): Uint8Array {
  if (array.dims.length !== 1) {
    throw new UsageError(
      IDX_ERROR_CODES.wrongRank,
      `${fileLabel} should hold labels (1 dimension, magic 0x00000801) but has ${array.dims.length} dimension(s) [${array.dims.join(', ')}]. Did you swap an images and a labels file?`,
    );
  }
  return array.data;
}

/** Encodes an unsigned-byte IDX file (the inverse of parseIdx): for fixtures and exporting datasets. */
export function encodeIdx(dims: readonly number[], data: Uint8Array): Uint8Array {
  const elements = dims.reduce((a, b) => a * b, 1);
  if (data.length !== elements) {
    throw new RangeError(`encodeIdx: dimensions [${dims.join(', ')}] need ${elements} bytes, got ${data.length}`);
  }
  const headerBytes = 4 + 4 * dims.length;
  const bytes = new Uint8Array(headerBytes + elements);
  const view = new DataView(bytes.buffer);
  view.setUint8(2, UNSIGNED_BYTE);
  view.setUint8(3, dims.length);
  dims.forEach((size, d) => view.setUint32(4 + 4 * d, size, false));
  bytes.set(data, headerBytes);
  return bytes;
}
