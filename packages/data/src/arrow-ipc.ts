/** Arrow IPC encoding of image tables (DESIGN.md §4); loaded on demand by table.ts. */
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
import { GraftError } from '@graft/core';
import { DATA_ERROR_CODES } from './error-codes.ts';
import { IMAGE_COLUMN, INDEX_COLUMN, LABEL_COLUMN, checkImageTable, type ImageTable } from './table.ts';

/** The list child name pyarrow and polars use for list items. */
const ITEM_FIELD = 'item';

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
