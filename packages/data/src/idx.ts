import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { UsageError, describeSystemError } from '@graft/core';

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
  tooLarge: 'IDX_TOO_LARGE',
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
 * graft holds a whole IDX file in memory, and an Arrow column holds at most 2^31 - 1
 * bytes: a file (raw, or decompressed) larger than this is refused before any of it is
 * allocated.
 */
export const MAX_IDX_BYTES = 2 ** 31 - 1;

/**
 * deflate cannot expand data more than 1032:1 (a 258-byte match in one code of ~2 bits),
 * so a gzip file of n bytes never inflates past ~1032n: a header declaring more is a lie
 * and is rejected before anything is allocated. 1100 leaves room for gzip framing.
 */
const MAX_GZIP_RATIO = 1100;

/** Dimensions for a message: a handful shown, the rest counted, so a rank-255 header stays one short line. */
export function formatDims(dims: readonly number[]): string {
  const shown = 4;
  return dims.length <= shown ? `[${dims.join(', ')}]` : `[${dims.slice(0, shown).join(', ')}, … ${dims.length - shown} more]`;
}

function formatBytes(n: number): string {
  const [unit, size] = n >= 2 ** 30 ? ['GiB', 2 ** 30] : n >= 2 ** 20 ? ['MiB', 2 ** 20] : ['bytes', 1];
  return `${(n / size).toFixed(size === 1 ? 0 : 1).replace(/\.0$/, '')} ${unit}`;
}

/** The header of an IDX file: what it declares, before any data is read. */
export interface IdxHeader {
  dims: number[];
  /** 4 + 4 × rank. */
  headerBytes: number;
  /** headerBytes + the product of dims: the exact size of the whole file. */
  totalBytes: number;
}

/**
 * How many leading bytes the header needs, judged from the first `prefix.length` bytes:
 * 4 until the magic number is there, then 4 + 4 × rank. Throws on a bad magic number or
 * a non-byte data type, so garbage is rejected after 4 bytes.
 */
function headerLength(prefix: Uint8Array, fileLabel: string): number {
  if (prefix.length < 4) return 4;
  if (prefix[0] !== 0 || prefix[1] !== 0) {
    const found = hex(((prefix[0]! << 24) | (prefix[1]! << 16) | (prefix[2]! << 8) | prefix[3]!) >>> 0, 8);
    throw new UsageError(
      IDX_ERROR_CODES.badMagic,
      `${fileLabel} is not an IDX file: expected a magic number starting with two zero bytes (e.g. 0x00000803 for images), found ${found}. Check that the source directory holds MNIST-style IDX files.`,
    );
  }
  const type = prefix[2]!;
  if (type !== UNSIGNED_BYTE) {
    const name = TYPE_NAMES[type] ?? 'an unknown type';
    throw new UsageError(
      IDX_ERROR_CODES.unsupportedType,
      `${fileLabel} has data type ${hex(type, 2)} (${name}); only unsigned byte (0x08) greyscale data is supported.`,
    );
  }
  return 4 + 4 * prefix[3]!;
}

/**
 * Reads the header from the first bytes of an IDX file (at least `headerLength` of them).
 * Refuses a declared size above MAX_IDX_BYTES here, before anything that size exists.
 */
function readHeader(bytes: Uint8Array, fileLabel: string): IdxHeader {
  const headerBytes = headerLength(bytes, fileLabel);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  // A float is exact here: dims are < 2^32 and any product past 2^53 fails the size check anyway.
  let elements = 1;
  for (let d = 0; d < (headerBytes - 4) / 4; d++) {
    const size = view.getUint32(4 + 4 * d, false);
    dims.push(size);
    elements *= size;
  }
  const totalBytes = headerBytes + elements;
  if (totalBytes > MAX_IDX_BYTES) {
    throw new UsageError(
      IDX_ERROR_CODES.tooLarge,
      `${fileLabel} declares ${dims.length} dimension(s) ${formatDims(dims)}, ${elements > 2 ** 53 ? 'far' : `${formatBytes(totalBytes)},`} over graft's limit of ${formatBytes(MAX_IDX_BYTES)} per IDX file. The header is corrupt or the file is not an IDX file; re-download it.`,
    );
  }
  return { dims, headerBytes, totalBytes };
}

/**
 * Parses an (already decompressed) IDX file. `data` is a view into `bytes`, not a copy:
 * the images of a 47 MB training file are never duplicated.
 */
export function parseIdx(bytes: Uint8Array, fileLabel: string): IdxArray {
  const needed = headerLength(bytes, fileLabel);
  if (bytes.length < needed) {
    throw new UsageError(
      IDX_ERROR_CODES.truncated,
      needed === 4
        ? `${fileLabel} is truncated: an IDX file starts with a 4-byte magic number, but the file has only ${bytes.length} byte(s). Re-download it.`
        : `${fileLabel} is truncated: its header declares ${bytes[3]} dimension(s), needing ${needed} header bytes, but the file has ${bytes.length}. Re-download it.`,
    );
  }
  const { dims, headerBytes, totalBytes } = readHeader(bytes, fileLabel);
  if (bytes.length < totalBytes) {
    throw new UsageError(
      IDX_ERROR_CODES.truncated,
      `${fileLabel} is truncated: dimensions ${formatDims(dims)} need ${totalBytes} bytes, but the file has ${bytes.length}. Re-download it.`,
    );
  }
  if (bytes.length > totalBytes) {
    throw new UsageError(
      IDX_ERROR_CODES.trailingBytes,
      `${fileLabel} is too long: dimensions ${formatDims(dims)} need ${totalBytes} bytes, but the file has ${bytes.length} (${bytes.length - totalBytes} extra). The header does not match the data; re-download it.`,
    );
  }
  return { dims, data: bytes.subarray(headerBytes, totalBytes) };
}

/** True when the bytes start with the gzip magic number (1f 8b); file names are not trusted. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Inflates a gzipped IDX file as a stream: the header is parsed from the first inflated
 * bytes, then exactly the size it declares is allocated and filled, and inflation stops
 * the moment the stream yields one byte more. A gzip bomb therefore costs at most its
 * declared size (itself capped by MAX_IDX_BYTES and the deflate ratio), never what it
 * would inflate to.
 */
function gunzipIdx(raw: Uint8Array, fileLabel: string, chunkSize: number | undefined): Promise<Uint8Array> {
  return new Promise((resolvePromise, reject) => {
    const gunzip = createGunzip(chunkSize === undefined ? {} : { chunkSize });
    let header = new Uint8Array(0);
    let out: Uint8Array | undefined;
    let written = 0;
    let declared: IdxHeader | undefined;
    let settled = false;
    const fail = (error: unknown) => {
      if (settled) return;
      settled = true;
      gunzip.destroy();
      reject(error);
    };
    const accept = (chunk: Uint8Array) => {
      if (out === undefined) {
        // Still collecting the header: it is at most 4 + 4 × 255 bytes, so this stays small.
        const joined = new Uint8Array(header.length + chunk.length);
        joined.set(header);
        joined.set(chunk, header.length);
        header = joined;
        // headerLength says 4 until the magic is in, then 4 + 4 × rank.
        if (header.length < headerLength(header, fileLabel)) return;
        declared = readHeader(header, fileLabel);
        if (declared.totalBytes > raw.length * MAX_GZIP_RATIO) {
          throw new UsageError(
            IDX_ERROR_CODES.truncated,
            `${fileLabel} is truncated: dimensions ${formatDims(declared.dims)} need ${declared.totalBytes} bytes, more than a ${raw.length}-byte gzip file can hold. Re-download it.`,
          );
        }
        out = new Uint8Array(declared.totalBytes);
        chunk = header;
      }
      if (written + chunk.length > out.length) {
        throw new UsageError(
          IDX_ERROR_CODES.trailingBytes,
          `${fileLabel} is too long: dimensions ${formatDims(declared!.dims)} need ${declared!.totalBytes} bytes, but it decompresses to more; decompression was stopped there. The header does not match the data; re-download it.`,
        );
      }
      out.set(chunk, written);
      written += chunk.length;
    };
    gunzip.on('data', (chunk: Buffer) => {
      if (settled) return;
      try {
        accept(chunk);
      } catch (error) {
        fail(error);
      }
    });
    gunzip.on('error', (error) =>
      fail(
        new UsageError(
          IDX_ERROR_CODES.corruptGzip,
          `${fileLabel} starts with the gzip magic number but cannot be decompressed (${error.message}). The download is probably incomplete; fetch the file again.`,
          { cause: error },
        ),
      ),
    );
    gunzip.on('end', () => {
      if (settled) return;
      settled = true;
      // Too short for a header, or shorter than declared: parseIdx words both cases.
      if (out === undefined) {
        try {
          parseIdx(header, fileLabel);
        } catch (error) {
          reject(error);
          return;
        }
        resolvePromise(header);
        return;
      }
      if (written < out.length) {
        reject(
          new UsageError(
            IDX_ERROR_CODES.truncated,
            `${fileLabel} is truncated: dimensions ${formatDims(declared!.dims)} need ${declared!.totalBytes} bytes, but it decompresses to ${written}. Re-download it.`,
          ),
        );
        return;
      }
      resolvePromise(out);
    });
    gunzip.end(raw);
  });
}

export interface DecodeIdxOptions {
  /** Size of the inflated chunks (zlib's default 16 KiB; at least 64): tests shrink it to split a header across chunks. */
  chunkSize?: number;
}

/**
 * Decodes the bytes of an IDX file as stored, raw or gzipped (detected by content, not by
 * name). Memory is bounded by what the header declares, whatever a gzip stream holds.
 */
export async function decodeIdx(raw: Uint8Array, fileLabel: string, options: DecodeIdxOptions = {}): Promise<IdxArray> {
  return parseIdx(isGzip(raw) ? await gunzipIdx(raw, fileLabel, options.chunkSize) : raw, fileLabel);
}

/** An IDX file: its bytes as stored (for hashing) and the array it decodes to. */
export interface IdxFileContents {
  raw: Uint8Array;
  array: IdxArray;
}

/**
 * Reads an IDX file, raw or gzipped. Refuses anything but a regular file of at most
 * MAX_IDX_BYTES before reading it, and keeps the stored bytes for hashing.
 */
export async function readIdxFileContents(path: string): Promise<IdxFileContents> {
  let raw: Uint8Array;
  try {
    const info = await stat(path);
    if (!info.isFile()) {
      throw new UsageError(IDX_ERROR_CODES.unreadable, `Cannot read IDX file: ${path} is not a regular file. Point the source at a directory of IDX files.`);
    }
    if (info.size > MAX_IDX_BYTES) {
      throw new UsageError(
        IDX_ERROR_CODES.tooLarge,
        `${path} is ${formatBytes(info.size)}, over graft's limit of ${formatBytes(MAX_IDX_BYTES)} per IDX file. Is it an MNIST-style IDX file?`,
      );
    }
    const buffer = await readFile(path);
    // A plain Uint8Array view (no copy): callers compare and re-wrap it, and Buffer's
    // subclass behaviour (toJSON, pooled slices) is not part of this API.
    raw = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const code = (error as NodeJS.ErrnoException).code === 'ENOENT' ? IDX_ERROR_CODES.notFound : IDX_ERROR_CODES.unreadable;
    throw new UsageError(code, `Cannot read IDX file: ${describeSystemError(error, path)}.`, { cause: error });
  }
  return { raw, array: await decodeIdx(raw, path) };
}

/** Reads an IDX file, raw or gzipped (detected by content, not by name). */
export async function readIdxFile(path: string): Promise<IdxArray> {
  return (await readIdxFileContents(path)).array;
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
      `${fileLabel} should hold images (3 dimensions: count, rows, cols, magic 0x00000803) but has ${array.dims.length} dimension(s) ${formatDims(array.dims)}. Did you swap an images and a labels file?`,
    );
  }
  const [count, rows, cols] = array.dims as [number, number, number];
  if (count === 0 || rows === 0 || cols === 0) {
    throw new UsageError(
      IDX_ERROR_CODES.empty,
      `${fileLabel} holds no images (dimensions ${formatDims(array.dims)}); expected at least one image of at least 1x1 pixels.`,
    );
  }
  return { count, rows, cols, pixels: array.data };
}

/** Checks that an IDX array is a rank-1 label vector. */
export function asIdxLabels(array: IdxArray, fileLabel: string): Uint8Array {
  if (array.dims.length !== 1) {
    throw new UsageError(
      IDX_ERROR_CODES.wrongRank,
      `${fileLabel} should hold labels (1 dimension, magic 0x00000801) but has ${array.dims.length} dimension(s) ${formatDims(array.dims)}. Did you swap an images and a labels file?`,
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
