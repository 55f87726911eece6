import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RecordBatch, Schema, Field, Table, Uint8, makeData, tableToIPC, Struct, Uint32, FixedSizeList } from 'apache-arrow';
import { GraftError } from '@graft/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImageTable } from './arrow-ipc.ts';
import { makeImageTable, readImageTable, selectRows, writeImageTable, type ImageTable } from './table.ts';

// nodejs-polars is CommonJS with a native addon; require keeps vitest from transforming it.
const pl = createRequire(import.meta.url)('nodejs-polars') as typeof import('nodejs-polars');

function fixture(length: number, rows = 3, cols = 2): ImageTable {
  return makeImageTable({
    length,
    rows,
    cols,
    labels: Uint8Array.from({ length }, (_, i) => (i * 7) % 10),
    images: Uint8Array.from({ length: length * rows * cols }, (_, i) => (i * 13 + 5) & 0xff),
    indices: Uint32Array.from({ length }, (_, i) => 4_000_000_000 - i * 3),
    metadata: { 'source.images.sha256': 'ab'.repeat(32), split: 'train' },
  });
}

describe('image table Arrow IPC', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'graft-table-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  for (const length of [0, 1, 37]) {
    it(`round-trips a ${length}-row table with its metadata`, async () => {
      const table = fixture(length);
      const path = join(dir, `t${length}.arrow`);
      await writeImageTable(path, table);
      // IPC file format: "ARROW1" magic at both ends.
      const bytes = await readFile(path);
      expect(bytes.subarray(0, 6).toString()).toBe('ARROW1');
      expect(bytes.subarray(-6).toString()).toBe('ARROW1');
      const back = await readImageTable(path);
      expect(back).toEqual({ ...table, metadata: { ...table.metadata, rows: '3', cols: '2' } });
    });
  }

  it('writes views into larger buffers correctly (subarrays with a byte offset)', async () => {
    const big = fixture(10);
    const pixels = big.rows * big.cols;
    const view: ImageTable = {
      ...big,
      length: 4,
      labels: big.labels.subarray(3, 7),
      images: big.images.subarray(3 * pixels, 7 * pixels),
      indices: big.indices.subarray(3, 7),
    };
    const path = join(dir, 'view.arrow');
    await writeImageTable(path, view);
    expect(await readImageTable(path)).toMatchObject({
      length: 4,
      labels: Uint8Array.from(view.labels),
      images: Uint8Array.from(view.images),
      indices: Uint32Array.from(view.indices),
    });
  });

  it('is read by polars (an independent Rust Arrow implementation) with the same rows, labels and pixels', async () => {
    for (const length of [0, 1, 37]) {
      const table = fixture(length);
      const path = join(dir, `polars${length}.arrow`);
      await writeImageTable(path, table);
      // readIPC treats a string without an .ipc extension as inline data, so pass the bytes.
      const df = pl.readIPC(await readFile(path));
      expect(df.height).toBe(length);
      expect(df.columns).toEqual(['label', 'image', 'index']);
      expect(String(df.schema.label)).toBe('DataType(UInt8)');
      expect(String(df.schema.index)).toBe('DataType(UInt32)');
      expect(String(df.schema.image)).toBe('DataType(FixedSizeList(DataType(UInt8),6))');
      expect(Uint8Array.from(df.getColumn('label').toArray() as number[])).toEqual(table.labels);
      expect(Uint32Array.from(df.getColumn('index').toArray() as number[])).toEqual(table.indices);
      if (length > 0) {
        expect(Uint8Array.from(df.getColumn('image').explode().toArray() as number[])).toEqual(table.images);
      }
    }
  });

  it('reads tables split over several record batches', () => {
    const a = fixture(5);
    const b = fixture(3);
    const batch = (t: ImageTable, schema: Schema) => {
      const px = t.rows * t.cols;
      const children = [
        makeData({ type: new Uint8(), length: t.length, data: t.labels }),
        makeData({ type: new FixedSizeList(px, new Field('item', new Uint8(), false)), length: t.length, child: makeData({ type: new Uint8(), length: t.length * px, data: t.images }) }),
        makeData({ type: new Uint32(), length: t.length, data: t.indices }),
      ];
      return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: t.length, children }));
    };
    const schema = new Schema(
      [new Field('label', new Uint8()), new Field('image', new FixedSizeList(6, new Field('item', new Uint8()))), new Field('index', new Uint32())],
      new Map([['rows', '3'], ['cols', '2']]),
    );
    const bytes = tableToIPC(new Table(schema, [batch(a, schema), batch(b, schema)]), 'file');
    const back = decodeImageTable(bytes, 'two-batches');
    expect(back.length).toBe(8);
    expect(back.labels).toEqual(Uint8Array.from([...a.labels, ...b.labels]));
    expect(back.images).toEqual(Uint8Array.from([...a.images, ...b.images]));
    expect(back.indices).toEqual(Uint32Array.from([...a.indices, ...b.indices]));
  });

  it('rejects a file that is not Arrow, a table without rows/cols metadata, and a missing file', async () => {
    const garbage = join(dir, 'garbage.arrow');
    await writeFile(garbage, 'this is not arrow');
    await expect(readImageTable(garbage)).rejects.toMatchObject({ code: 'ARROW_INVALID' });

    const noMeta = tableToIPC(new Table({ label: makeData({ type: new Uint8(), length: 1, data: Uint8Array.of(1) }) }), 'file');
    expect(() => decodeImageTable(noMeta, 'plain.arrow')).toThrow(/plain.arrow is not an image table: schema metadata rows=\(missing\)/);

    await expect(readImageTable(join(dir, 'missing.arrow'))).rejects.toMatchObject({
      code: 'ARROW_READ_FAILED',
      message: expect.stringContaining('missing.arrow does not exist'),
    });
  });

  it('refuses to write inconsistent arrays', async () => {
    const bad = { ...fixture(2), images: new Uint8Array(5) };
    await expect(writeImageTable(join(dir, 'bad.arrow'), bad)).rejects.toBeInstanceOf(GraftError);
    await expect(writeImageTable(join(dir, 'bad.arrow'), bad)).rejects.toThrow(/images has 5 bytes, expected 2 x 3 x 2 = 12/);
  });
});

describe('selectRows', () => {
  it('picks rows in the given order, with their pixels, labels and source indices', () => {
    const table = fixture(6);
    const picked = selectRows(table, [4, 0, 4]);
    const px = table.rows * table.cols;
    expect(picked.length).toBe(3);
    expect(picked.labels).toEqual(Uint8Array.of(table.labels[4]!, table.labels[0]!, table.labels[4]!));
    expect(picked.indices).toEqual(Uint32Array.of(table.indices[4]!, table.indices[0]!, table.indices[4]!));
    expect(picked.images.subarray(0, px)).toEqual(table.images.subarray(4 * px, 5 * px));
    expect(picked.images.subarray(px, 2 * px)).toEqual(table.images.subarray(0, px));
    expect(picked.metadata).toEqual(table.metadata);
    expect(selectRows(table, []).length).toBe(0);
  });

  it('rejects rows out of range', () => {
    expect(() => selectRows(fixture(3), [0, 3])).toThrow(/row 3 \(position 1\) is outside a table of 3 rows/);
    expect(() => selectRows(fixture(3), [-1])).toThrow(RangeError);
  });
});
