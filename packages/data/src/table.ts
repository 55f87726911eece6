import { readFile, writeFile } from 'node:fs/promises';
import {
  Field,
  FixedSizeList,
  RecordBatch,
  Schema,
  Struct,
  Table,
  Uint8,
  Uint32,
  makeData,
  tableFromIPC,
  tableToIPC,
  type Data,
  type DataType,
} from 'apache-arrow';
import { GraftError, describeSystemError } from '@graft/core';
import { DATA_ERROR_CODES } from './error-codes.ts';

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
/** The list child name pyarrow and polars use for list items. */
const ITEM_FIELD = 'item';

/** Builds an ImageTable, checking that the arrays agree with the shape. */
export function makeImageTable(fields: Omit<ImageTable, 'metadata'> & { metadata?: Record<string, string> }): ImageTable {
  const table: ImageTable = { ...fields, metadata: fields.metadata ?? {} };
  checkImageTable(table);
  return table;
}

function checkImageTable(table: ImageTable): void {
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

function imageType(pixelsPerImage: number): FixedSizeList<Uint8> {
  return new FixedSizeList(pixelsPerImage, new Field(ITEM_FIELD, new Uint8(), false));
}

/** The Arrow schema of an image table (DESIGN.md §4). */
export function imageTableSchema(rows: number, cols: number, metadata: Record<string, string> = {}): Schema {
  const meta = new Map(Object.entries(metadata));
  meta.set('rows', String(rows));
  meta.set('cols', String(cols));
  return new Schema(
    [
      new Field(LABEL_COLUMN, new Uint8(), false),
      new Field(IMAGE_COLUMN, imageType(rows * cols), false),
      new Field(INDEX_COLUMN, new Uint32(), false),
    ],
    meta,
  );
}

/** Encodes a table as Arrow IPC *file* format bytes, building vectors straight from the typed arrays. */
export function encodeImageTable(table: ImageTable): Uint8Array {
  checkImageTable(table);
  const { length, rows, cols } = table;
  const schema = imageTableSchema(rows, cols, table.metadata);
  const pixelsPerImage = rows * cols;
  const label = makeData({ type: new Uint8(), length, nullCount: 0, data: table.labels });
  const pixels = makeData({ type: new Uint8(), length: length * pixelsPerImage, nullCount: 0, data: table.images });
  const image = makeData({ type: imageType(pixelsPerImage), length, nullCount: 0, child: pixels });
  const index = makeData({ type: new Uint32(), length, nullCount: 0, data: table.indices });
  const struct = makeData({ type: new Struct(schema.fields), length, nullCount: 0, children: [label, image, index] });
  // Always one batch, even when empty: a file with a schema and no batch is legal but
  // some readers treat it as "no table" rather than "zero rows".
  return tableToIPC(new Table(schema, new RecordBatch(schema, struct)), 'file');
}

/** Writes a table as an Arrow IPC file (`.arrow`) any Arrow reader can open. */
export async function writeImageTable(path: string, table: ImageTable): Promise<void> {
  const bytes = encodeImageTable(table);
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
  return decodeImageTable(bytes, path);
}

/** Decodes Arrow IPC (file or stream format) bytes into an ImageTable, copying each column into one typed array. */
export function decodeImageTable(bytes: Uint8Array, fileLabel: string): ImageTable {
  let table: Table;
  try {
    table = tableFromIPC(bytes);
  } catch (error) {
    throw new GraftError(
      DATA_ERROR_CODES.arrowInvalid,
      `${fileLabel} is not a readable Arrow IPC file (${(error as Error).message}). Rebuild the artifact that produced it.`,
      { cause: error },
    );
  }
  const invalid = (what: string) =>
    new GraftError(DATA_ERROR_CODES.arrowInvalid, `${fileLabel} is not an image table: ${what}. Expected columns label (Uint8), image (FixedSizeList<Uint8>), index (Uint32) and rows/cols metadata.`);

  const metadata = Object.fromEntries(table.schema.metadata);
  const rows = Number(metadata.rows);
  const cols = Number(metadata.cols);
  if (!Number.isInteger(rows) || rows < 1 || !Number.isInteger(cols) || cols < 1) {
    throw invalid(`schema metadata rows=${metadata.rows ?? '(missing)'} cols=${metadata.cols ?? '(missing)'}`);
  }
  const pixelsPerImage = rows * cols;
  const field = (name: string) => {
    const found = table.schema.fields.find((f) => f.name === name);
    if (!found) throw invalid(`no column '${name}'`);
    return found;
  };
  const labelType = field(LABEL_COLUMN).type;
  const imageFieldType = field(IMAGE_COLUMN).type;
  const indexType = field(INDEX_COLUMN).type;
  if (!Uint8.isInt(labelType) || labelType.bitWidth !== 8 || labelType.isSigned) throw invalid(`column label has type ${labelType}`);
  if (!Uint32.isInt(indexType) || indexType.bitWidth !== 32 || indexType.isSigned) throw invalid(`column index has type ${indexType}`);
  if (!FixedSizeList.isFixedSizeList(imageFieldType)) throw invalid(`column image has type ${imageFieldType}`);
  const childType = (imageFieldType as FixedSizeList).children[0]!.type;
  if (!Uint8.isInt(childType) || childType.bitWidth !== 8 || childType.isSigned) throw invalid(`column image has items of type ${childType}`);
  if ((imageFieldType as FixedSizeList).listSize !== pixelsPerImage) {
    throw invalid(`image lists hold ${(imageFieldType as FixedSizeList).listSize} pixels but metadata says ${rows}x${cols}`);
  }

  const length = table.numRows;
  const labels = new Uint8Array(length);
  const images = new Uint8Array(length * pixelsPerImage);
  const indices = new Uint32Array(length);
  // Arrow JS slices value buffers (not just offsets) when it slices Data, so `values`
  // always starts at the chunk's first element; `offset` only matters for validity bits.
  const copyChunks = (name: string, target: Uint8Array | Uint32Array, width: number, leaf: (d: Data<DataType>) => Data<DataType>) => {
    let at = 0;
    for (const chunk of table.getChild(name)!.data) {
      if (chunk.nullCount > 0) throw invalid(`column ${name} has ${chunk.nullCount} null(s)`);
      const values = leaf(chunk).values as Uint8Array | Uint32Array;
      target.set(values.subarray(0, chunk.length * width), at);
      at += chunk.length * width;
    }
  };
  copyChunks(LABEL_COLUMN, labels, 1, (d) => d);
  copyChunks(IMAGE_COLUMN, images, pixelsPerImage, (d) => {
    const child = d.children[0]!;
    if (child.nullCount > 0) throw invalid(`column image has null pixels`);
    return child;
  });
  copyChunks(INDEX_COLUMN, indices, 1, (d) => d);
  return { length, rows, cols, labels, images, indices, metadata };
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
