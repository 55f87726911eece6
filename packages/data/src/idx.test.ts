import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { UsageError } from '@graft/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_IDX_BYTES, asIdxImages, asIdxLabels, decodeIdx, encodeIdx, findIdxFile, parseIdx, readIdxFile } from './idx.ts';

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

/** The code of the UsageError `fn` throws, or 'ok' when it returns. Anything else fails the test. */
async function outcome(fn: () => unknown): Promise<string> {
  try {
    await fn();
    return 'ok';
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as UsageError).code;
  }
}

/**
 * A gzip file whose first member holds `head` and whose following members each inflate
 * to 1 MiB of zeros: `mebibytes` MiB of zeros from about 1 KiB per MiB of file (real
 * gzip readers, Node's included, read concatenated members as one stream).
 */
function gzipBomb(head: Uint8Array, mebibytes: number): Buffer {
  const zeros = gzipSync(new Uint8Array(2 ** 20), { level: 9 });
  return Buffer.concat([gzipSync(head), ...Array.from({ length: mebibytes }, () => zeros)]);
}

describe('decodeIdx: gzip is inflated only as far as the header declares', () => {
  it('decodes raw and gzipped bytes alike, whatever the chunk size splits the header into', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 0, maxLength: 40 }),
        fc.integer({ min: 64, max: 300 }),
        async (dims, chunkSize) => {
          // Many dims of 1 make a long header (up to 164 bytes), so small chunks split it.
          const shaped = dims.map((d) => (d > 3 ? 1 : d + 1)).slice(0, 40);
          const n = shaped.reduce((a, b) => a * b, 1);
          const file = encodeIdx(shaped, Uint8Array.from({ length: n }, (_, i) => (i * 7) & 0xff));
          const fromGzip = await decodeIdx(gzipSync(file), 'f', { chunkSize });
          expect(fromGzip).toEqual(parseIdx(file, 'f'));
          expect(await decodeIdx(file, 'f')).toEqual(parseIdx(file, 'f'));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('rejects every truncation and extension of a gzipped file with the code parseIdx gives the inflated bytes', async () => {
    const file = encodeIdx([3, 4, 5], Uint8Array.from({ length: 60 }, (_, i) => i));
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.integer({ min: 0, max: file.length - 1 }).map((cut) => file.subarray(0, cut)),
          fc.uint8Array({ minLength: 1, maxLength: 100 }).map((extra) => Uint8Array.from([...file, ...extra])),
        ),
        fc.integer({ min: 64, max: 128 }),
        async (mutated, chunkSize) => {
          const expected = await outcome(() => parseIdx(mutated, 'f'));
          expect(expected).not.toBe('ok');
          expect(await outcome(() => decodeIdx(gzipSync(mutated), 'f', { chunkSize }))).toBe(expected);
        },
      ),
    );
  });

  it('agrees with parseIdx on arbitrary bytes behind an IDX-like magic, and words every error as one short line', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.tuple(fc.constantFrom(0, 0x12), fc.constantFrom(0x08, 0x08, 0x0d, 0x42), fc.integer({ min: 0, max: 255 })),
        fc.uint8Array({ maxLength: 1200 }),
        async ([second, type, rank], rest) => {
          const bytes = Uint8Array.from([0, second, type, rank, ...rest]);
          let message = '';
          const code = await outcome(async () => {
            try {
              return parseIdx(bytes, 'data/train-images-idx3-ubyte');
            } catch (error) {
              message = (error as Error).message;
              throw error;
            }
          });
          if (code !== 'ok') {
            expect(message).not.toContain('\n');
            expect(message.length).toBeLessThan(400);
          }
          // The streaming reader reaches the same verdict (the trailing-bytes wording differs: it stops early).
          expect(await outcome(() => decodeIdx(gzipSync(bytes), 'data/train-images-idx3-ubyte', { chunkSize: 64 }))).toBe(code);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('rejects a gzip bomb after its declared size: 8 GiB of zeros behind a 2-image header', async () => {
    // Whole-buffer gunzip of this file would need 8 GiB (Node refuses buffers over 4 GiB
    // only after inflating that far); the stream is cut one chunk past the 28 header+data bytes.
    const bomb = gzipBomb(encodeIdx([2, 3, 2], new Uint8Array(12)), 8192);
    expect(bomb.length).toBeLessThan(10 * 2 ** 20);
    const error = await usageError(() => decodeIdx(bomb, 'bomb.gz'));
    expect(error.code).toBe('IDX_TRAILING_BYTES');
    expect(error.message).toContain('bomb.gz is too long: dimensions [2, 3, 2] need 28 bytes, but it decompresses to more');
  }, 10_000);

  it('rejects a bomb behind a full-size MNIST header after the 47 MB it declares', async () => {
    const header = Uint8Array.from([0, 0, 8, 3, 0x00, 0x00, 0xea, 0x60, 0, 0, 0, 28, 0, 0, 0, 28]);
    const bomb = gzipBomb(header, 8192);
    const error = await usageError(() => decodeIdx(bomb, 'train-images-idx3-ubyte.gz'));
    expect(error.code).toBe('IDX_TRAILING_BYTES');
    expect(error.message).toContain('need 47040016 bytes');
  }, 10_000);

  it('refuses a header declaring more than a gzip file of that size can inflate to, before allocating it', async () => {
    const header = Uint8Array.from([0, 0, 8, 3, 0x00, 0x00, 0xea, 0x60, 0, 0, 0x04, 0, 0, 0, 0x04, 0]); // 60000 × 1024 × 1024
    const tooLarge = await usageError(() => decodeIdx(gzipSync(header), 'huge.gz'));
    expect(tooLarge.code).toBe('IDX_TOO_LARGE');
    expect(tooLarge.message).toContain('[60000, 1024, 1024]');
    // Under the 2 GiB limit, but ~1 GB can never come out of a 40-byte gzip file.
    const lying = Uint8Array.from([0, 0, 8, 3, 0x00, 0x00, 0xea, 0x60, 0, 0, 0x01, 0, 0, 0, 0x00, 0x40]); // 60000 × 256 × 64
    const error = await usageError(() => decodeIdx(gzipSync(lying), 'lying.gz'));
    expect(error.code).toBe('IDX_TRUNCATED');
    expect(error.message).toMatch(/need 983040016 bytes, more than a \d+-byte gzip file can hold/);
    expect(MAX_IDX_BYTES).toBe(2 ** 31 - 1);
  });

  it('words a rank-255 header in one short line', async () => {
    const header = new Uint8Array(4 + 4 * 255).fill(0xff);
    header.set([0, 0, 8, 255]);
    for (const bytes of [header, gzipSync(header)]) {
      const error = await usageError(() => decodeIdx(bytes, 'rank255'));
      expect(error.code).toBe('IDX_TOO_LARGE');
      expect(error.message).toContain('255 dimension(s) [4294967295, 4294967295, 4294967295, 4294967295, … 251 more]');
      expect(error.message.length).toBeLessThan(300);
    }
    const labels = await usageError(() => asIdxLabels(parseIdx(encodeIdx(new Array(200).fill(1), Uint8Array.of(7)), 'l'), 'labels-file'));
    expect(labels.code).toBe('IDX_WRONG_RANK');
    expect(labels.message.length).toBeLessThan(300);
  });
});
