import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { UsageError } from '@graft/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asIdxImages, asIdxLabels, encodeIdx, findIdxFile, parseIdx, readIdxFile } from './idx.ts';

/** Runs fn and returns the UsageError it throws (failing the test if it throws anything else or nothing). */
async function usageError(fn: () => unknown): Promise<UsageError> {
  try {
    await fn();
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return error as UsageError;
  }
  throw new Error('expected a UsageError, nothing was thrown');
}

const images = encodeIdx([2, 3, 2], Uint8Array.from({ length: 12 }, (_, i) => i * 20));

describe('parseIdx', () => {
  it('round-trips any unsigned-byte array through encodeIdx', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 0, maxLength: 4 }), fc.nat(), (dims, seed) => {
        const n = dims.reduce((a, b) => a * b, 1);
        const data = Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
        const parsed = parseIdx(encodeIdx(dims, data), 'x');
        expect(parsed.dims).toEqual(dims);
        expect(parsed.data).toEqual(data);
      }),
    );
  });

  it('rejects every truncation and every extension of a valid file, naming expected and actual sizes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: images.length - 1 }), (cut) => {
        expect(() => parseIdx(images.subarray(0, cut), 'f.idx')).toThrow(/truncated/);
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), (extra) => {
        const longer = new Uint8Array(images.length + extra);
        longer.set(images);
        expect(() => parseIdx(longer, 'f.idx')).toThrow(`need ${images.length} bytes, but the file has ${images.length + extra}`);
      }),
    );
  });

  it('reports the codes and expected vs actual values', async () => {
    const truncated = await usageError(() => parseIdx(images.subarray(0, images.length - 1), 'imgs'));
    expect(truncated.code).toBe('IDX_TRUNCATED');
    expect(truncated.message).toContain(`need ${images.length} bytes, but the file has ${images.length - 1}`);
    expect(truncated.message).toContain('imgs');

    const long = new Uint8Array(images.length + 3);
    long.set(images);
    const tooLong = await usageError(() => parseIdx(long, 'imgs'));
    expect(tooLong.code).toBe('IDX_TRAILING_BYTES');
    expect(tooLong.message).toContain('3 extra');

    const header = await usageError(() => parseIdx(images.subarray(0, 9), 'imgs'));
    expect(header.code).toBe('IDX_TRUNCATED');
    expect(header.message).toContain('needing 16 header bytes, but the file has 9');

    const magic = await usageError(() => parseIdx(Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0]), 'pic.png'));
    expect(magic.code).toBe('IDX_BAD_MAGIC');
    expect(magic.message).toContain('found 0x89504e47');
    expect(magic.message).toContain('pic.png');

    const float = Uint8Array.from(images);
    float[2] = 0x0d;
    const type = await usageError(() => parseIdx(float, 'floats'));
    expect(type.code).toBe('IDX_UNSUPPORTED_TYPE');
    expect(type.message).toContain('0x0d (float (float32))');
    expect(type.message).toContain('unsigned byte (0x08)');
  });
});

describe('asIdxImages / asIdxLabels', () => {
  it('accepts rank-3 images and rank-1 labels', () => {
    expect(asIdxImages(parseIdx(images, 'i'), 'i')).toMatchObject({ count: 2, rows: 3, cols: 2 });
    expect(asIdxLabels(parseIdx(encodeIdx([2], Uint8Array.of(7, 1)), 'l'), 'l')).toEqual(Uint8Array.of(7, 1));
  });

  it('rejects swapped files and zero images', async () => {
    expect((await usageError(() => asIdxImages(parseIdx(encodeIdx([2], Uint8Array.of(1, 2)), 'l'), 'labels-file'))).code).toBe('IDX_WRONG_RANK');
    expect((await usageError(() => asIdxLabels(parseIdx(images, 'i'), 'images-file'))).code).toBe('IDX_WRONG_RANK');
    const empty = await usageError(() => asIdxImages(parseIdx(encodeIdx([0, 28, 28], new Uint8Array(0)), 'e'), 'empty-file'));
    expect(empty.code).toBe('IDX_EMPTY');
    expect(empty.message).toContain('empty-file');
  });
});

describe('readIdxFile / findIdxFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'graft-idx-'));
    await writeFile(join(dir, 'raw-idx'), images);
    // Deliberately misnamed both ways: detection must go by content.
    await writeFile(join(dir, 'zipped-idx.bin'), gzipSync(images));
    await writeFile(join(dir, 'plain.gz'), images);
    const gz = gzipSync(images);
    await writeFile(join(dir, 'cut.gz'), gz.subarray(0, gz.length - 12));
    const garbled = Buffer.from(gz);
    garbled.fill(0xaa, 10, 30);
    await writeFile(join(dir, 'garbled.gz'), garbled);
    await writeFile(join(dir, 'only-gz.gz'), gz);
    await writeFile(join(dir, 'both'), images);
    await writeFile(join(dir, 'both.gz'), gz);
    await mkdir(join(dir, 'a-directory'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('reads raw and gzipped files by content, whatever their names', async () => {
    for (const name of ['raw-idx', 'zipped-idx.bin', 'plain.gz']) {
      const array = await readIdxFile(join(dir, name));
      expect(array.dims).toEqual([2, 3, 2]);
      expect(array.data).toEqual(parseIdx(images, 'x').data);
    }
  });

  it('reports truncated and garbled gzip as IDX_CORRUPT_GZIP naming the file', async () => {
    for (const name of ['cut.gz', 'garbled.gz']) {
      const error = await usageError(() => readIdxFile(join(dir, name)));
      expect(error.code).toBe('IDX_CORRUPT_GZIP');
      expect(error.message).toContain(name);
    }
  });

  it('reports a missing file as IDX_NOT_FOUND', async () => {
    const error = await usageError(() => readIdxFile(join(dir, 'nope')));
    expect(error.code).toBe('IDX_NOT_FOUND');
    expect(error.message).toContain(join(dir, 'nope'));
  });

  it('finds the raw file, then the .gz, and names both when neither exists', async () => {
    expect(await findIdxFile(dir, 'raw-idx')).toBe(join(dir, 'raw-idx'));
    expect(await findIdxFile(dir, 'only-gz')).toBe(join(dir, 'only-gz.gz'));
    expect(await findIdxFile(dir, 'both')).toBe(join(dir, 'both'));
    const missing = await usageError(() => findIdxFile(dir, 'train-images-idx3-ubyte'));
    expect(missing.code).toBe('IDX_NOT_FOUND');
    expect(missing.message).toContain('train-images-idx3-ubyte or train-images-idx3-ubyte.gz');
    // A directory with the right name is not a file.
    expect((await usageError(() => findIdxFile(dir, 'a-directory'))).code).toBe('IDX_NOT_FOUND');
  });
});
