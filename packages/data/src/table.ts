import { readFile, writeFile } from 'node:fs/promises';
import { GraftError, describeSystemError } from '@graft/core';
import { DATA_ERROR_CODES } from './error-codes.ts';

// apache-arrow takes ~0.15 s to load, so the IPC codec (arrow-ipc.ts) loads on the first
// read or write: a fully cached `graft run` and the other commands never pay for it.
const arrowIpc = () => import('./arrow-ipc.ts');

/**
 * One split of a greyscale image dataset held as flat typed arrays, never as per-row
 * objects: 55,000 MNIST rows are three allocations, not 55,000.
 */
export interface ImageTable {
  length: number;
  rows: number;
  cols: number;
  labels: Uint8Array;
  /** length * rows * cols raw pixels, row-major, image after image. */
  images: Uint8Array;
  /** Row of each image in its source file. */
  indices: Uint32Array;
  /** Arrow schema metadata. On read it includes `rows` and `cols`; on write those two are set from the table. */
  metadata: Record<string, string>;
}

export const LABEL_COLUMN = 'label';
export const IMAGE_COLUMN = 'image';
export const INDEX_COLUMN = 'index';

/** Builds an ImageTable, checking that the arrays agree with the shape. */
export function makeImageTable(fields: Omit<ImageTable, 'metadata'> & { metadata?: Record<string, string> }): ImageTable {
  const table: ImageTable = { ...fields, metadata: fields.metadata ?? {} };
  checkImageTable(table);
  return table;
}

/** Throws IMAGE_TABLE_INVALID unless the arrays agree with the shape. */
export function checkImageTable(table: ImageTable): void {
  const problems: string[] = [];
  const { length, rows, cols } = table;
  if (!Number.isInteger(length) || length < 0) problems.push(`length ${length} is not a non-negative integer`);
  if (!Number.isInteger(rows) || rows < 1) problems.push(`rows ${rows} is not a positive integer`);
  if (!Number.isInteger(cols) || cols < 1) problems.push(`cols ${cols} is not a positive integer`);
  if (table.labels.length !== length) problems.push(`labels has ${table.labels.length} entries, expected ${length}`);
  if (table.indices.length !== length) problems.push(`indices has ${table.indices.length} entries, expected ${length}`);
  if (table.images.length !== length * rows * cols) {
    problems.push(`images has ${table.images.length} bytes, expected ${length} x ${rows} x ${cols} = ${length * rows * cols}`);
  }
  if (problems.length > 0) {
    throw new GraftError(DATA_ERROR_CODES.imageTableInvalid, `Inconsistent image table: ${problems.join('; ')}.`);
  }
}

/** Writes a table as an Arrow IPC file (`.arrow`) any Arrow reader can open. */
export async function writeImageTable(path: string, table: ImageTable): Promise<void> {
  const bytes = (await arrowIpc()).encodeImageTable(table);
  try {
    await writeFile(path, bytes);
  } catch (error) {
    throw new GraftError(DATA_ERROR_CODES.arrowWriteFailed, `Cannot write Arrow file: ${describeSystemError(error, path)}.`, { cause: error });
  }
}

/** Reads a table written by writeImageTable (or by any Arrow writer using the same schema). */
export async function readImageTable(path: string): Promise<ImageTable> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new GraftError(DATA_ERROR_CODES.arrowReadFailed, `Cannot read Arrow file: ${describeSystemError(error, path)}.`, { cause: error });
  }
  return (await arrowIpc()).decodeImageTable(bytes, path);
}

/** A new table holding the given rows, in the given order (pixels copied). Metadata is kept. */
export function selectRows(table: ImageTable, rowIndices: ArrayLike<number>): ImageTable {
  const length = rowIndices.length;
  const pixelsPerImage = table.rows * table.cols;
  const labels = new Uint8Array(length);
  const images = new Uint8Array(length * pixelsPerImage);
  const indices = new Uint32Array(length);
  for (let i = 0; i < length; i++) {
    const row = rowIndices[i]!;
    if (!Number.isInteger(row) || row < 0 || row >= table.length) {
      throw new RangeError(`selectRows: row ${row} (position ${i}) is outside a table of ${table.length} rows`);
    }
    labels[i] = table.labels[row]!;
    indices[i] = table.indices[row]!;
    images.set(table.images.subarray(row * pixelsPerImage, (row + 1) * pixelsPerImage), i * pixelsPerImage);
  }
  return { length, rows: table.rows, cols: table.cols, labels, images, indices, metadata: { ...table.metadata } };
}
